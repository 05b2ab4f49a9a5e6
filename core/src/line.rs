//! Classifying one NDJSON line without building a JSON tree.
//!
//! The scanner is deliberately non-validating for `data` and `headers`: it only finds where their values start and
//! end (strings and nesting are respected), because JavaScript's `JSON.parse` validates them anyway when the batch is
//! parsed, and does it faster than any wasm parser that builds JS objects (PERFORMANCE.md). It does validate the
//! envelope: the object shape, `partition` and `cursor`.
//!
//! ## The rule (ZeroEventHub SPEC: "each line is either an event or a checkpoint")
//! | line | result |
//! |---|---|
//! | `cursor` is a non-empty string, no `data` | checkpoint (needs `partition`) |
//! | `cursor` is `""` | error `bad-cursor` (an empty cursor cannot be sent back: servers ignore `cursorN=`) |
//! | `cursor` is a number, object, … | error `bad-cursor` (Go fails on it too) |
//! | `cursor` is `null` or absent, `data` present | event (needs `partition`) |
//! | both `cursor` (string) and `data` | error `bad-line` (ambiguous; Go would drop the data silently) |
//! | neither | ignored (FeedAPI v2: "unknown line types must be ignored") |
//! | `partition` missing, negative, fractional or `>= n` | error `bad-partition` (Go would silently use 0) |
//! | a key repeated | error `bad-line` (Go keeps the first, Python the last: ambiguous) |
//!
//! FeedAPI v2 ([`classify_v2`]) has no `partition` and no `headers`: there they are unknown fields, ignored whatever
//! their value (repeated included), and its rows above without them apply.
//!
//! Keys are matched as written; an escaped key such as `"p\u0061rtition"` is treated as an unknown key.

use crate::error::{ErrorKind, ProtocolError};
use alloc::string::String;
use core::ops::Range;

/// What one line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// An event: `data` (and `headers`, when present and not `null`) as byte ranges of the line.
    Event {
        /// The partition the event belongs to.
        partition: u32,
        /// The raw JSON of `data`.
        data: Range<usize>,
        /// The raw JSON object of `headers`, when present.
        headers: Option<Range<usize>>,
    },
    /// A checkpoint: the cursor that resumes right after everything before it in `partition`.
    Checkpoint {
        /// The partition the cursor belongs to.
        partition: u32,
        /// The cursor, unescaped.
        cursor: String,
    },
    /// A line of no known kind (ignored).
    Ignored,
}

fn err(kind: ErrorKind, detail: &'static str) -> ProtocolError {
    ProtocolError::new(kind, detail)
}

fn bad(detail: &'static str) -> ProtocolError {
    err(ErrorKind::BadLine, detail)
}

/// The values found in one line's top-level object.
#[derive(Debug, Default)]
struct Envelope {
    partition: Option<Range<usize>>,
    cursor: Option<Range<usize>>,
    data: Option<Range<usize>>,
    headers: Option<Range<usize>>,
}

pub(crate) struct Scanner<'a> {
    pub(crate) s: &'a [u8],
    pub(crate) i: usize,
    /// Whether `partition` and `headers` are fields (v1); in FeedAPI v2 they are unknown fields, ignored.
    pub(crate) v1: bool,
    /// Not empty: a key to watch for while skipping an envelope's `data` object (see [`Scanner::data_single`]).
    pub(crate) watch: &'a [u8],
    /// After the envelope scan with a `watch` key: whether `data` is an object that holds no backslash and `"watch"`
    /// at most once ([`crate::blocks::Skipped::single`]), so that key cannot repeat in it.
    pub(crate) data_single: bool,
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn expect(&mut self, b: u8, detail: &'static str) -> Result<(), ProtocolError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(bad(detail))
        }
    }

    /// At a `"`: moves past the closing quote; returns the range of the string's contents. A byte loop, not
    /// `memchr2`: the envelope's strings are short (keys, a cursor), and the call's setup cost more than the search
    /// (raw reading 0.85-1.0 of the time in Chromium, neutral in Node; 138 B less wasm: bench/NOTES.md).
    fn string(&mut self) -> Result<Range<usize>, ProtocolError> {
        self.expect(b'"', "expected a string")?;
        let start = self.i;
        loop {
            match self.s[self.i..].iter().position(|&b| b == b'"' || b == b'\\') {
                None => return Err(bad("unterminated string")),
                Some(k) => {
                    self.i += k;
                    if self.s[self.i] == b'"' {
                        self.i += 1;
                        return Ok(start..self.i - 1);
                    }
                    // A backslash escapes the next byte (for `\uXXXX` the rest are hex digits, harmless here).
                    self.i += 2;
                    if self.i > self.s.len() {
                        return Err(bad("unterminated string"));
                    }
                }
            }
        }
    }

    /// Skips one JSON value; returns its range. Containers are matched by nesting, strings by quotes; scalars run to
    /// the next delimiter. Validation of the value itself is
    /// left to `JSON.parse`. With a `watch` key, the scan of a container also watches for it: the object's `data`
    /// (see [`Scanner::data_single`]; the last such value sets it, a repeated `data` is an error anyway).
    fn value(&mut self, watch: &[u8]) -> Result<Range<usize>, ProtocolError> {
        let start = self.i;
        match self.peek() {
            None => Err(bad("expected a value")),
            Some(b'"') => {
                self.string()?;
                Ok(start..self.i)
            }
            // 64 bytes at a time (simd128 in wasm), strings and nesting tracked in bitmasks (crate::blocks).
            Some(b'{' | b'[') => match crate::blocks::skip(self.s, start, watch) {
                Ok(skipped) => {
                    self.i = skipped.end;
                    if !watch.is_empty() {
                        self.data_single = skipped.single;
                    }
                    Ok(start..skipped.end)
                }
                Err(in_string) => {
                    Err(bad(if in_string { "unterminated string" } else { "unterminated object or array" }))
                }
            },
            Some(_) => {
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    Err(bad("expected a value"))
                } else {
                    Ok(start..self.i)
                }
            }
        }
    }

    /// At a `{`: walks the object's members in order, calling `f(key, value)` with the range of each key's contents
    /// (escapes unresolved) and of its value, until `f` returns `false` (then the scanner stays just after that value
    /// and this returns `false`) or the object ends (the scanner is past its `}`; `true`).
    pub(crate) fn members(
        &mut self,
        mut f: impl FnMut(Range<usize>, Range<usize>) -> Result<bool, ProtocolError>,
    ) -> Result<bool, ProtocolError> {
        self.expect(b'{', "line is not a JSON object")?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(true);
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':', "expected ':' after a key")?;
            self.skip_ws();
            let watched = self.peek() == Some(b'{') && &self.s[key.clone()] == b"data";
            let value = self.value(if watched { self.watch } else { b"" })?;
            if !f(key, value)? {
                return Ok(false);
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(true);
                }
                _ => return Err(bad("expected ',' or '}' in the object")),
            }
        }
    }

    fn envelope(&mut self) -> Result<Envelope, ProtocolError> {
        let mut env = Envelope::default();
        let (line, v1) = (self.s, self.v1);
        self.skip_ws();
        self.members(|key, value| {
            let slot = match &line[key] {
                b"cursor" => Some(&mut env.cursor),
                b"data" => Some(&mut env.data),
                b"partition" if v1 => Some(&mut env.partition),
                b"headers" if v1 => Some(&mut env.headers),
                _ => None,
            };
            if let Some(slot) = slot {
                if slot.is_some() {
                    return Err(bad("a key appears twice"));
                }
                *slot = Some(value);
            }
            Ok(true)
        })?;
        self.skip_ws();
        if self.i != self.s.len() {
            return Err(bad("unexpected characters after the JSON object"));
        }
        Ok(env)
    }
}

/// Parses a JSON number that must be a non-negative integer below `n`.
fn partition_number(raw: &[u8], n: u32) -> Result<u32, ProtocolError> {
    if raw.is_empty() || raw.len() > 10 || !raw.iter().all(u8::is_ascii_digit) || (raw.len() > 1 && raw[0] == b'0') {
        return Err(err(ErrorKind::BadPartition, "partition is not a non-negative integer"));
    }
    let value = raw.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    if value >= u64::from(n) {
        return Err(err(ErrorKind::BadPartition, "partition is not below the partition count n"));
    }
    Ok(value as u32)
}

fn hex4(s: &[u8]) -> Option<u32> {
    if s.len() < 4 {
        return None;
    }
    s[..4].iter().try_fold(0u32, |acc, &b| Some(acc * 16 + (b as char).to_digit(16)?))
}

/// Unescapes the contents of a JSON string (without its quotes). Errors on a bad escape or a lone surrogate.
pub fn unescape(raw: &[u8]) -> Result<String, ProtocolError> {
    let bad_cursor = || err(ErrorKind::BadCursor, "cursor is not a valid JSON string");
    let text = core::str::from_utf8(raw).map_err(|_| err(ErrorKind::InvalidUtf8, "cursor is not valid UTF-8"))?;
    if !raw.contains(&b'\\') {
        if raw.iter().any(|&b| b < 0x20) {
            return Err(bad_cursor());
        }
        return Ok(String::from(text));
    }
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b < 0x20 {
            return Err(bad_cursor());
        }
        if b != b'\\' {
            // Copy a run of plain bytes at once (keeps multi-byte characters whole).
            let end = raw[i..].iter().position(|&b| b == b'\\').map_or(raw.len(), |k| i + k);
            if raw[i..end].iter().any(|&b| b < 0x20) {
                return Err(bad_cursor());
            }
            out.push_str(text.get(i..end).ok_or_else(bad_cursor)?);
            i = end;
            continue;
        }
        let esc = *raw.get(i + 1).ok_or_else(bad_cursor)?;
        i += 2;
        let c = match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(&raw[i..]).ok_or_else(bad_cursor)?;
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if raw.get(i..i + 2) != Some(b"\\u") {
                        return Err(bad_cursor());
                    }
                    let lo = hex4(&raw[i + 2..]).ok_or_else(bad_cursor)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(bad_cursor());
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                char::from_u32(code).ok_or_else(bad_cursor)?
            }
            _ => return Err(bad_cursor()),
        };
        out.push(c);
    }
    Ok(out)
}

/// Classifies one ZeroEventHub v1 line for a feed of `n` partitions. See the module docs for the rule.
///
/// ```
/// use feedpump_core::line::{classify_v1, LineKind};
/// let line = br#"{"cursor": "c7", "partition": 1}"#;
/// assert_eq!(classify_v1(line, 4).unwrap(), LineKind::Checkpoint { partition: 1, cursor: "c7".into() });
/// ```
pub fn classify_v1(line: &[u8], n: u32) -> Result<LineKind, ProtocolError> {
    classify_v1_watching(line, n, b"").map(|(kind, _)| kind)
}

/// What the scan that skipped an event's values saw of them on the way ([`classify_v1_watching`]); all `false` for a
/// line that is not an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// `data` is an object that holds no backslash and `"watch"` at most once (`watch` not empty; see
    /// [`crate::blocks::Skipped::single`]): the key `watch` cannot repeat in it, which
    /// [`crate::typefield::type_at_hinted`] uses.
    pub single: bool,
}

/// [`classify_v1`], and what the scan saw of an event's values ([`Seen`]), found in the scan that skips them anyway.
pub fn classify_v1_watching(line: &[u8], n: u32, watch: &[u8]) -> Result<(LineKind, Seen), ProtocolError> {
    classify(Scanner { s: line, i: 0, v1: true, watch, data_single: false }, |env: &Envelope| match &env.partition {
        None => Err(err(ErrorKind::BadPartition, "line has no partition")),
        Some(r) => partition_number(&line[r.clone()], n),
    })
}

/// Classifies one FeedAPI v2 line. v2 reads one partition per request, so lines carry no `partition`, and it has no
/// `headers` ("the headers feature is similarly deprecated"): both are unknown fields there, ignored whatever their
/// value ("consumers should gracefully handle [...] new unknown fields"), and every event and checkpoint is of slot 0.
/// The rest of the rule is v1's for `cursor` and `data`: FeedAPI v2 SPEC "If `data` is present, the line contains an
/// individual event; if `cursor` is present, the line is a checkpoint", and consumers "ignore entirely new commands".
///
/// ```
/// use feedpump_core::line::{classify_v2, LineKind};
/// assert_eq!(classify_v2(br#"{"cursor": "24rw3a"}"#).unwrap(), LineKind::Checkpoint { partition: 0, cursor: "24rw3a".into() });
/// assert_eq!(classify_v2(br#"{"resync": true}"#).unwrap(), LineKind::Ignored);
/// ```
pub fn classify_v2(line: &[u8]) -> Result<LineKind, ProtocolError> {
    classify_v2_watching(line, b"").map(|(kind, _)| kind)
}

/// [`classify_v2`] with [`classify_v1_watching`]'s watch of `data`.
pub fn classify_v2_watching(line: &[u8], watch: &[u8]) -> Result<(LineKind, Seen), ProtocolError> {
    classify(Scanner { s: line, i: 0, v1: false, watch, data_single: false }, |_| Ok(0))
}

fn classify(
    mut scanner: Scanner<'_>,
    partition: impl Fn(&Envelope) -> Result<u32, ProtocolError>,
) -> Result<(LineKind, Seen), ProtocolError> {
    let env = scanner.envelope()?;
    let line = scanner.s;
    let cursor = match env.cursor.clone() {
        Some(r) if &line[r.clone()] != b"null" => Some(r),
        _ => None,
    };
    let data = env.data.clone();
    match (cursor, data) {
        (Some(c), data) => {
            let raw = &line[c];
            if raw.first() != Some(&b'"') {
                let e = err(ErrorKind::BadCursor, "cursor is not a string");
                return Err(partition(&env).map_or(e, |p| e.in_partition(p)));
            }
            if data.is_some() {
                return Err(bad("line has both a cursor and data"));
            }
            let p = partition(&env)?;
            let cursor = unescape(&raw[1..raw.len() - 1]).map_err(|e| e.in_partition(p))?;
            if cursor.is_empty() {
                return Err(err(ErrorKind::BadCursor, "cursor is empty").in_partition(p));
            }
            Ok((LineKind::Checkpoint { partition: p, cursor }, Seen::default()))
        }
        (None, Some(data)) => {
            let p = partition(&env)?;
            let headers = match env.headers {
                Some(h) if &line[h.clone()] == b"null" => None,
                Some(h) if line[h.start] == b'{' => Some(h),
                Some(_) => return Err(bad("headers is not an object").in_partition(p)),
                None => None,
            };
            Ok((LineKind::Event { partition: p, data, headers }, Seen { single: scanner.data_single }))
        }
        (None, None) => Ok((LineKind::Ignored, Seen::default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(line: &str) -> Result<LineKind, ErrorKind> {
        classify_v1(line.as_bytes(), 4).map_err(|e| e.kind)
    }

    #[test]
    fn events_and_checkpoints_in_any_key_order() {
        let l = r#"{"partition":0,"data":{"a":[1,"}"]}}"#;
        assert_eq!(kind(l), Ok(LineKind::Event { partition: 0, data: 22..35, headers: None }));
        let l = r#"{"data": "e1", "headers": {"h": "v"}, "partition": 3}"#;
        assert_eq!(kind(l), Ok(LineKind::Event { partition: 3, data: 9..13, headers: Some(26..36) }));
        assert_eq!(
            kind(r#"{"cursor": "c\u00e6\/", "partition": 2}"#),
            Ok(LineKind::Checkpoint { partition: 2, cursor: "cæ/".into() })
        );
        assert_eq!(
            kind(r#"{"partition": 1, "cursor": null, "data": 5}"#),
            Ok(LineKind::Event { partition: 1, data: 41..42, headers: None })
        );
        assert_eq!(kind(r#"{"partition": 1, "other": [1,2]}"#), Ok(LineKind::Ignored));
        assert_eq!(kind("{}"), Ok(LineKind::Ignored));
    }

    #[test]
    fn only_data_is_watched_for_a_repeated_key() {
        let single = |line: &str| classify_v1_watching(line.as_bytes(), 4, b"type").map(|(_, seen)| seen.single);
        assert_eq!(single(r#"{"partition":0,"data":{"type":"a"},"headers":{"h":1}}"#), Ok(true));
        // The key twice in data: whatever the objects after it hold (headers, an unknown field).
        assert_eq!(single(r#"{"partition":0,"data":{"type":"a","type":"b"},"headers":{"h":1}}"#), Ok(false));
        assert_eq!(single(r#"{"partition":0,"data":{"type":"a","type":"b"},"x":{"h":1}}"#), Ok(false));
        // Nor does an object before data count.
        assert_eq!(single(r#"{"x":{"type":1,"type":2},"partition":0,"data":{"type":"a"}}"#), Ok(true));
    }

    #[test]
    fn envelope_errors() {
        assert_eq!(kind("Internal server error"), Err(ErrorKind::BadLine));
        assert_eq!(kind(r#"{"partition":0,"data":1} x"#), Err(ErrorKind::BadLine));
        assert_eq!(kind(r#"{"partition":0,"data":"x}"#), Err(ErrorKind::BadLine));
        assert_eq!(kind(r#"{"partition":0,"data":"x\"#), Err(ErrorKind::BadLine), "a line that ends in an escape");
        assert_eq!(kind(r#"{"partition":0,"data":"x\""#), Err(ErrorKind::BadLine));
        assert_eq!(kind(r#"{"partition":0,"partition":1,"data":1}"#), Err(ErrorKind::BadLine));
        assert_eq!(kind(r#"{"data":1}"#), Err(ErrorKind::BadPartition));
        assert_eq!(kind(r#"{"partition":4,"data":1}"#), Err(ErrorKind::BadPartition));
        assert_eq!(kind(r#"{"partition":-1,"data":1}"#), Err(ErrorKind::BadPartition));
        assert_eq!(kind(r#"{"partition":1.0,"data":1}"#), Err(ErrorKind::BadPartition));
        assert_eq!(kind(r#"{"partition":"1","data":1}"#), Err(ErrorKind::BadPartition));
        assert_eq!(kind(r#"{"partition":1,"cursor":7}"#), Err(ErrorKind::BadCursor));
        assert_eq!(kind(r#"{"partition":1,"cursor":""}"#), Err(ErrorKind::BadCursor));
        assert_eq!(kind(r#"{"partition":1,"cursor":"a\ud800"}"#), Err(ErrorKind::BadCursor));
        assert_eq!(kind(r#"{"partition":1,"cursor":"c","data":1}"#), Err(ErrorKind::BadLine));
        assert_eq!(kind(r#"{"partition":1,"headers":[],"data":1}"#), Err(ErrorKind::BadLine));
    }

    #[test]
    fn v2_lines_have_no_partition() {
        let v2 = |l: &str| classify_v2(l.as_bytes()).map_err(|e| e.kind);
        assert_eq!(v2(r#"{"data": "e1"}"#), Ok(LineKind::Event { partition: 0, data: 9..13, headers: None }));
        assert_eq!(v2(r#"{"data": {"a": 1}, "partition": 7}"#).map(|k| matches!(k, LineKind::Event { .. })), Ok(true));
        assert_eq!(v2(r#"{"cursor": 3}"#), Err(ErrorKind::BadCursor));
        assert_eq!(v2(r#"{"newCommand": {}}"#), Ok(LineKind::Ignored));
    }

    #[test]
    fn v2_has_no_headers_field_so_any_headers_value_is_an_unknown_field() {
        let v2 = |l: &str| classify_v2(l.as_bytes()).map_err(|e| e.kind);
        let event = Ok(LineKind::Event { partition: 0, data: 9..10, headers: None });
        assert_eq!(v2(r#"{"data": 1, "headers": "x"}"#), event);
        assert_eq!(v2(r#"{"data": 1, "headers": [1]}"#), event);
        assert_eq!(v2(r#"{"data": 1, "headers": {"h": "v"}}"#), event, "not handed out as v1 headers");
        assert_eq!(v2(r#"{"data": 1, "headers": 1, "headers": 2}"#), event, "a repeated unknown field");
        assert_eq!(v2(r#"{"data": 1, "partition": 1, "partition": "x"}"#), event);
        assert_eq!(v2(r#"{"headers": "x"}"#), Ok(LineKind::Ignored));
        assert_eq!(v2(r#"{"data": 1, "data": 2}"#), Err(ErrorKind::BadLine), "a repeated known field stays ambiguous");
    }

    #[test]
    fn partitions_are_plain_decimal_integers() {
        let p = |raw: &str| {
            classify_v1(alloc::format!(r#"{{"partition":{raw},"data":1}}"#).as_bytes(), 20).map_err(|e| e.kind)
        };
        assert_eq!(p("0").map(|k| matches!(k, LineKind::Event { partition: 0, .. })), Ok(true));
        assert_eq!(p("12").map(|k| matches!(k, LineKind::Event { partition: 12, .. })), Ok(true));
        assert_eq!(p("19").map(|k| matches!(k, LineKind::Event { partition: 19, .. })), Ok(true));
        for bad in ["01", "20", "1e1", "12345678901", "1234567890123456789012345"] {
            assert_eq!(p(bad), Err(ErrorKind::BadPartition), "{bad}");
        }
    }

    #[test]
    fn every_json_escape_of_a_cursor() {
        assert_eq!(unescape(br#"\"\\\/\b\f\n\r\t\u0041"#).unwrap(), "\"\\/\u{8}\u{c}\n\r\tA");
        assert_eq!(unescape(b"a b").unwrap(), "a b", "a space is no control character");
        assert_eq!(unescape(br"a b\n").unwrap(), "a b\n");
        assert!(unescape(b"a\x1fb").is_err() && unescape(b"a\x1f\\n").is_err(), "raw control characters");
    }

    #[test]
    fn unescape_surrogate_pairs() {
        assert_eq!(unescape(br"\ud83d\ude00!").unwrap(), "\u{1F600}!");
        assert!(unescape(br"\x").is_err());
    }
}
