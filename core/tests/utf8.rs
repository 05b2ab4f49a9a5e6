//! A line is checked for UTF-8 unless the framing's newline search saw it all ASCII (`framing::Line::ascii`; the
//! batch texts are then not checked again on their way to JavaScript). So a byte outside ASCII anywhere in a line,
//! in a 16-byte block or in the tail, in the first chunk of a split line or in a later one, must still be seen:
//! invalid UTF-8 is `invalid-utf8` at that byte, and valid text comes out as it was sent.
#![allow(clippy::unwrap_used)] // a test panics on what it did not expect

use feedpump_core::{CursorSet, ErrorKind, Session, SessionConfig};

mod support;

/// Each event's headers (if any) and data, as texts.
type Values = Vec<(Option<String>, String)>;

/// Runs `body` through a session in chunks cut at `splits`, with escapes on or off; the events' data and headers, or
/// the error's kind and byte offset.
fn run(body: &[u8], splits: &[usize], escape: bool) -> Result<Values, (ErrorKind, u64)> {
    let mut config = SessionConfig::new("http://127.0.0.1:1/feed/v1", CursorSet::first(1));
    config.escape = escape;
    let mut s = Session::new(config);
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    let mut start = 0;
    for &end in splits.iter().chain([&body.len()]) {
        s.handle_chunk(&body[start..end]).map_err(|e| (e.kind, e.offset))?;
        start = end;
    }
    s.handle_eof().map_err(|e| (e.kind, e.offset))?;
    let mut out = Vec::new();
    while let Some(b) = s.flush() {
        out.extend(support::events(&b).into_iter().map(|e| (e.headers, e.data)));
    }
    Ok(out)
}

#[test]
fn a_byte_outside_ascii_anywhere_in_a_line_is_checked() {
    // An event line of 110 bytes (blocks and a tail) whose strings (keys and values, in headers, data and an unknown
    // field) fill most of it; then a checkpoint.
    let line = br#"{"partition":0,"headers":{"hk":"hhhhhhhh"},"data":{"key":"dddddddddddddddddddddddddd"},"xx":"uuuuuuuuuuuu"}"#;
    let checkpoint = b"\n{\"partition\":0,\"cursor\":\"c\"}\n";
    // Every letter but those of the envelope's own keys (which would make another line of it).
    let keys: Vec<usize> = [&b"\"partition\""[..], b"\"headers\"", b"\"data\""]
        .iter()
        .flat_map(|k| {
            let from = line.windows(k.len()).position(|w| w == *k).unwrap();
            from..from + k.len()
        })
        .collect();
    let mut places = 0;
    for at in 0..line.len() {
        if !line[at].is_ascii_lowercase() || keys.contains(&at) {
            continue;
        }
        places += 1;
        for escape in [false, true] {
            // A lone byte outside ASCII: invalid, at its offset, however the body is cut around it.
            let mut bad = line.to_vec();
            bad[at] = 0xff;
            bad.extend_from_slice(checkpoint);
            for splits in [&[][..], &[at], &[at + 1], &[1, at]] {
                assert_eq!(run(&bad, splits, escape), Err((ErrorKind::InvalidUtf8, at as u64)), "0xff at {at}");
            }
            // Valid text outside ASCII (two bytes for one): the line is kept, its values as sent.
            let mut good = line[..at].to_vec();
            good.extend_from_slice("é".as_bytes());
            good.extend_from_slice(&line[at + 1..]);
            let want = std::str::from_utf8(&good).unwrap().to_string();
            good.extend_from_slice(checkpoint);
            for splits in [&[][..], &[at], &[at + 1], &[1, at]] {
                let events = run(&good, splits, escape).unwrap();
                let [(headers, data)] = &events[..] else { panic!("one event: {events:?}") };
                let (h, d) = (headers.as_deref().unwrap(), data.as_str());
                // Escaped (parsed mode) or as sent: the same JSON values as in the line.
                let value = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
                let sent = value(&want);
                assert_eq!((value(h), value(d)), (sent["headers"].clone(), sent["data"].clone()), "é at {at}");
            }
        }
    }
    assert!(places >= 50, "{places} places");
}

#[test]
fn an_event_is_in_the_wide_text_exactly_when_its_values_are_outside_ascii() {
    // Raw mode (escapes off): the values outside ASCII go to `wide`, whatever else on the line is outside ASCII.
    let wide = |line: &str| {
        let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/feed/v1", CursorSet::first(1)));
        s.poll_request(0).unwrap();
        s.handle_status(200).unwrap();
        s.handle_chunk(format!("{line}\n{{\"partition\":0,\"cursor\":\"c\"}}\n").as_bytes()).unwrap();
        s.handle_eof().unwrap();
        let b = s.flush().unwrap();
        assert_eq!(support::events(&b).len(), 1, "{line}");
        b.wide != b"[]"
    };
    assert!(!wide(r#"{"partition":0,"data":{"a":"b"}}"#));
    assert!(!wide(r#"{"partition":0,"headers":{"h":"v"},"data":[1]}"#));
    assert!(!wide(r#"{"partition":0,"headers":null,"data":{"a":1}}"#));
    assert!(wide(r#"{"partition":0,"data":{"a":"é"}}"#));
    assert!(wide(r#"{"partition":0,"headers":{"h":"é"},"data":{"a":1}}"#));
    assert!(wide(r#"{"data":{"a":1},"headers":{"h":"é"},"partition":0}"#));
    assert!(wide(r#"{"partition":0,"data":"é"}"#));
    // Outside ASCII elsewhere on the line: the line is checked, the values are ASCII.
    assert!(!wide(r#"{"partition":0,"data":{"a":1},"x":"                é"}"#));
    assert!(!wide(r#"{"partition":0,"x":"é","data":"b"}"#));
}
