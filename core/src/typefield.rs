//! Reading an event's type from its raw `data` without parsing it, so that a type filter can drop events before
//! anything builds a JavaScript object for them.
//!
//! The answer must be the one the JavaScript wrapper's type reader gives on the parsed event (`typeReader` in
//! js/src/filters.ts), or say that only a parse can tell:
//!
//! | `data` (raw JSON) | JavaScript after `JSON.parse` | [`type_at`] |
//! |---|---|---|
//! | an object with a string at the path | that string | [`TypeAt::At`] its contents |
//! | the same, the string holding an escape (`\"`, `\u00e9`) | that string, unescaped | [`TypeAt::Unknown`] (rare: the parser unescapes) |
//! | an object without it, or a non-string there | `undefined` | [`TypeAt::Absent`] |
//! | not an object (array, number, `null`, …) | `undefined` | [`TypeAt::Absent`] |
//! | a string (FeedAPI v2 allows it; it may hold a JSON object) | looked up in the string's parsed form | [`TypeAt::Unknown`] |
//! | a key repeated on the path | the last one (`JSON.parse` keeps the last) | the last one |
//! | an escaped key (`"t\u0079pe"`) | unescaped | unescaped before comparing |
//! | bytes the scanner cannot walk before it knows | (`JSON.parse` decides) | [`TypeAt::Unknown`] |
//!
//! Like the line scanner, this does not validate `data`: an event whose `data` is malformed JSON but whose type is
//! found is dropped by a filter that does not keep that type, without the `bad-line` error that parsing it would
//! raise (the README's section on filters says so).

use crate::blocks::{eq, BLOCK};
use crate::error::ProtocolError;
use crate::line::{unescape, Scanner};
use alloc::string::String;
use core::ops::Range;

/// Where an event's type is in its `data`, as far as a scan can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeAt {
    /// No string at the path: the event has no type.
    Absent,
    /// Only a parse can tell: `data` is a string (which may hold a JSON object), or the scanner could not walk it.
    Unknown,
    /// The contents of the JSON string at the path, without its quotes; they hold no escape, so they are the type.
    At(Range<usize>),
}

/// Finds the string at `path` (keys from the outside in; not empty) in the raw JSON value `data`.
///
/// ```
/// use feedpump_core::typefield::{type_at, TypeAt};
/// let path = ["meta".into(), "type".into()];
/// let data = br#"{"meta": {"type": "OrderCreated"}, "id": 7}"#;
/// assert_eq!(type_at(data, &path), TypeAt::At(19..31));
/// assert_eq!(type_at(br#"{"meta": {}}"#, &path), TypeAt::Absent);
/// assert_eq!(type_at(br#""{\"meta\":{}}""#, &path), TypeAt::Unknown);
/// ```
pub fn type_at(data: &[u8], path: &[String]) -> TypeAt {
    type_at_hinted(data, path, false)
}

/// [`type_at`], told by the scan that skipped `data` ([`crate::line::classify_v1_watching`] watching `path[0]`)
/// whether `data` holds no backslash and `"path[0]"` at most once (`single`): then that key cannot repeat at any
/// level, and the search for a repeat after it is skipped. The answer is [`type_at`]'s for every input.
pub fn type_at_hinted(data: &[u8], path: &[String], single: bool) -> TypeAt {
    if data.first() == Some(&b'"') {
        return TypeAt::Unknown;
    }
    let watched = path.first().map(String::as_bytes);
    let mut at = 0..data.len();
    for key in path {
        let single = single && watched == Some(key.as_bytes());
        match member(&data[at.clone()], key.as_bytes(), single) {
            Ok(Some(r)) => at = at.start + r.start..at.start + r.end,
            Ok(None) => return TypeAt::Absent,
            Err(Unwalkable) => return TypeAt::Unknown,
        }
    }
    match data.get(at.clone()) {
        Some([b'"', s @ .., b'"']) if has_backslash(s) => TypeAt::Unknown,
        Some([b'"', .., b'"']) => TypeAt::At(at.start + 1..at.end - 1),
        _ => TypeAt::Absent,
    }
}

/// The scan met bytes it cannot walk: leave the decision to the parser.
struct Unwalkable;

impl From<ProtocolError> for Unwalkable {
    fn from(_: ProtocolError) -> Self {
        Unwalkable
    }
}

/// The range of the last member `key` of the object `value`; `None` when `value` is not an object or has no such
/// member.
/// `single`: `value` holds no backslash and `"key"` at most once, so the first member `key` is the last.
fn member(value: &[u8], key: &[u8], single: bool) -> Result<Option<Range<usize>>, Unwalkable> {
    if value.first() != Some(&b'{') {
        return Ok(None);
    }
    let mut found = None;
    Scanner { s: value, i: 0, v1: false, watch: b"", data_single: false }.members(|name, v| {
        if !same_key(&value[name], key)? {
            return Ok(true);
        }
        found = Some(v.clone());
        // The scan of the rest only looks for a repeat of the key (the last one wins): skip it when none can be
        // there, the common case, which saves a second pass over most of every event's bytes.
        Ok(!single && may_repeat(&value[v.end..], key))
    })?;
    Ok(found)
}

/// Whether `rest` may hold `key` as a key again: spelled as is (`"key"`, anywhere, nested or in a string: a cheap
/// over-approximation) or with an escape (any backslash). One pass, 16 bytes at a time ([`crate::blocks`]' masks):
/// most events have no backslash, and few of their quotes are followed by the key's first byte, the only ones
/// compared with the key.
fn may_repeat(rest: &[u8], key: &[u8]) -> bool {
    let Some(&first) = key.first() else {
        return true;
    };
    // The key right after the quote at `q`, and its closing quote.
    let key_at =
        |q: usize| rest.get(q + 1..).is_some_and(|r| r.starts_with(key)) && rest.get(q + 1 + key.len()) == Some(&b'"');
    let mut at = 0;
    while let Some(block) = rest.get(at..at + BLOCK).and_then(|b| <&[u8; BLOCK]>::try_from(b).ok()) {
        if eq(block, b'\\') != 0 {
            return true;
        }
        // Quotes followed by the key's first byte (a quote in the last byte: its next byte is in the next block).
        let mut quotes = eq(block, b'"') & (eq(block, first) >> 1 | 0x8000);
        while quotes != 0 {
            if key_at(at + quotes.trailing_zeros() as usize) {
                return true;
            }
            quotes &= quotes - 1;
        }
        at += BLOCK;
    }
    rest[at..].iter().enumerate().any(|(i, &b)| b == b'\\' || (b == b'"' && key_at(at + i)))
}

/// Whether a short slice (a key, a type string) holds a backslash: a byte loop the compiler inlines, where `contains`
/// is a `memchr` call (at opt-level z it showed in the profile of the filtered run; bench/profile/ab.mjs: -3% CPU).
#[allow(clippy::manual_contains)]
#[inline(always)]
fn has_backslash(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'\\')
}

/// Whether the raw contents of a JSON key name `key`.
fn same_key(raw: &[u8], key: &[u8]) -> Result<bool, ProtocolError> {
    // Keys are short: byte loops, not `memchr`/`memcmp` calls (they showed in the profile of the filtered run).
    if !has_backslash(raw) {
        return Ok(raw.len() == key.len() && raw.iter().zip(key).all(|(a, b)| a == b));
    }
    Ok(unescape(raw)?.as_bytes() == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec::Vec;

    fn at(data: &str, path: &str) -> Option<Result<&'static str, &'static str>> {
        let path: Vec<String> = path.split('.').map(String::from).collect();
        match type_at(data.as_bytes(), &path) {
            TypeAt::Absent => None,
            TypeAt::Unknown => Some(Err("unknown")),
            TypeAt::At(r) => Some(Ok(String::leak(String::from(&data[r])))),
        }
    }

    #[test]
    fn the_string_at_the_path() {
        assert_eq!(at(r#"{"type":"A"}"#, "type"), Some(Ok("A")));
        assert_eq!(at(r#" { "id" : [1,{"type":"X"}] , "type" : "B.c" } "#.trim(), "type"), Some(Ok("B.c")));
        assert_eq!(at(r#"{"meta":{"type":"C"},"type":"D"}"#, "meta.type"), Some(Ok("C")));
        assert_eq!(at(r#"{"type":""}"#, "type"), Some(Ok("")));
        assert_eq!(at(r#"{"type":"a\"b"}"#, "type"), Some(Err("unknown")), "the parser unescapes");
        assert_eq!(at(r#"{"type":"\u00e9"}"#, "type"), Some(Err("unknown")));
        assert_eq!(at(r#"{"tÿpe":"é"}"#, "tÿpe"), Some(Ok("é")));
    }

    #[test]
    fn no_type_where_javascript_finds_none() {
        for (data, path) in [
            (r#"{"type":1}"#, "type"),
            (r#"{"type":null}"#, "type"),
            (r#"{"type":{"a":"b"}}"#, "type"),
            (r#"{"Type":"A"}"#, "type"),
            (r#"{}"#, "type"),
            (r#"{ }"#, "type"),
            (r#"[{"type":"A"}]"#, "type"),
            (r#"null"#, "type"),
            (r#"7"#, "type"),
            (r#"{"meta":"x"}"#, "meta.type"),
            (r#"{"meta":["type"]}"#, "meta.type"),
            (r#"{"a":{"type":"A"}}"#, "type"),
        ] {
            assert_eq!(at(data, path), None, "{data} at {path}");
        }
    }

    #[test]
    fn the_last_of_a_repeated_key_as_json_parse_keeps() {
        assert_eq!(at(r#"{"type":"A","type":"B"}"#, "type"), Some(Ok("B")));
        assert_eq!(at(r#"{"type":"A","x":{"type":"C"},"y":"\"type\"","type":"B"}"#, "type"), Some(Ok("B")));
        assert_eq!(at(r#"{"type":"A","x":{"type":"C"}}"#, "type"), Some(Ok("A")), "nested is not a repeat");
        assert_eq!(at(r#"{"type":"A","x":"\n","t\u0079pe":"B"}"#, "type"), Some(Ok("B")));
        assert_eq!(at(r#"{"type":"A","x":"\n"}"#, "type"), Some(Ok("A")));
        assert_eq!(at(r#"{"type":"A","type_":"B","typ":"C"}"#, "type"), Some(Ok("A")));
        assert_eq!(at(r#"{"type":"A","type":2}"#, "type"), None);
        assert_eq!(at(r#"{"m":{"type":"A"},"m":{}}"#, "m.type"), None);
    }

    #[test]
    fn escaped_keys_are_compared_unescaped() {
        assert_eq!(at(r#"{"t\u0079pe":"A"}"#, "type"), Some(Ok("A")));
        assert_eq!(at(r#"{"\u0074ype":"A","type":"B"}"#, "type"), Some(Ok("B")));
        assert_eq!(at(r#"{"type":"B","\u0074ype":"A"}"#, "type"), Some(Ok("A")));
        assert_eq!(at(r#"{"a\\b":"A"}"#, r"a\b"), Some(Ok("A")));
        // A lone surrogate JSON.parse accepts but Rust strings cannot hold: the parser decides.
        assert_eq!(at(r#"{"\ud800":"A"}"#, "type"), Some(Err("unknown")));
    }

    #[test]
    fn a_parse_decides_for_string_data_and_what_the_scan_cannot_walk() {
        assert_eq!(at(r#""{\"type\":\"A\"}""#, "type"), Some(Err("unknown")));
        assert_eq!(at(r#""A""#, "type"), Some(Err("unknown")));
        for data in
            [r#"{"type" "A"}"#, r#"{"b":1 "type":"A"}"#, r#"{"b":1,"type":"A","type""#, r#"{type:"A"}"#, r#"{"type":"#]
        {
            assert_eq!(at(data, "type"), Some(Err("unknown")), "{data}");
        }
        // Not validated: once the key is found and cannot repeat, the rest is not walked (JSON.parse judges it if
        // the event is kept).
        assert_eq!(at(r#"{"type":"A" "b":1}"#, "type"), Some(Ok("A")));
    }

    /// The hint of the scan that skips `data` (watching the path's first key) never changes the answer: for every
    /// input, [`type_at_hinted`] with the scanner's hint is [`type_at`] (which walks `data` again to rule out a
    /// repeated key). Repeats, escaped keys and backslashes on and across block edges, random and adversarial bytes.
    #[test]
    fn the_scan_hint_equals_the_plain_type_read() {
        let mut datas = crate::blocks::differential::random(11, 3000, 90);
        datas.extend(crate::blocks::differential::adversarial());
        for pad in 0..40 {
            let x = "x".repeat(pad);
            for tail in [
                r#","type":"B""#,
                r#","t\u0079pe":"B""#,
                r#","y":"\"type\"""#,
                r#","y":"type""#,
                r#","y":{"type":"C"}"#,
                r#","type_":"B""#,
                r#","typ":"B""#,
                r#","meta":{"type":"M","type":"N"}"#,
                r#","y":"\\""#,
                "",
            ] {
                datas.push(format!(r#"{{"type":"A","p":"{x}"{tail}}}"#).into_bytes());
                datas.push(format!(r#"{{"meta":{{"type":"A","p":"{x}"{tail}}},"q":"{x}"{tail}}}"#).into_bytes());
                datas.push(format!(r#"{{"p":"{x}"{tail},"type":"A"}}"#).into_bytes());
            }
        }
        let mut singles = 0;
        for data in &datas {
            let line = [&br#"{"partition":0,"data":"#[..], data, b"}"].concat();
            for path in [&["type"][..], &["meta", "type"], &["meta", "meta"], &["t"]] {
                let path: Vec<String> = path.iter().map(|k| String::from(*k)).collect();
                let Ok((crate::line::LineKind::Event { data: r, .. }, crate::line::Seen { single, .. })) =
                    crate::line::classify_v1_watching(&line, 1, path[0].as_bytes())
                else {
                    continue;
                };
                singles += usize::from(single);
                let data = &line[r];
                let want = type_at(data, &path);
                assert_eq!(
                    type_at_hinted(data, &path, single),
                    want,
                    "{path:?} in {:?}",
                    String::from_utf8_lossy(data)
                );
            }
        }
        assert!(singles > 100, "the hint is used ({singles})");
    }

    /// The block pass equals the plain rule (any backslash, or the key in quotes anywhere) on every input: keys and
    /// backslashes on and across block edges, random bytes and the scanner's adversarial inputs.
    #[test]
    fn may_repeat_equals_the_plain_rule() {
        fn plain(rest: &[u8], key: &[u8]) -> bool {
            let quoted = [&b"\""[..], key, b"\""].concat();
            rest.contains(&b'\\') || rest.windows(quoted.len()).any(|w| w == quoted)
        }
        let mut inputs = crate::blocks::differential::random(7, 300, 70);
        inputs.extend(crate::blocks::differential::adversarial());
        for pad in 0..40 {
            for tail in
                [&br#""type""#[..], br#""typ""#, br#""type"#, br#"\"type""#, br#"\"#, br#""tYpe""#, br#"""type"""#]
            {
                inputs.push([&b"x".repeat(pad)[..], tail, &b"\"y\"".repeat(pad % 5)].concat());
            }
        }
        for rest in &inputs {
            for key in [&b"type"[..], b"t", b"\"", b""] {
                let want = key.is_empty() || plain(rest, key);
                assert_eq!(may_repeat(rest, key), want, "{key:?} in {:?}", String::from_utf8_lossy(rest));
            }
        }
    }
}
