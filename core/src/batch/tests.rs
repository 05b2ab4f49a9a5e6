//! The builder's unit tests.

use super::*;
use alloc::vec;

/// A batch text as a string (it must be UTF-8).
fn s(text: &[u8]) -> &str {
    core::str::from_utf8(text).unwrap()
}

#[test]
fn held_until_checkpoint_and_offsets_in_utf16() {
    let mut b = BatchBuilder::new(2);
    b.handle_event(0, 1, 0, None, "\"\u{1F600}\"");
    b.handle_event(1, 2, 30, Some("{\"h\":\"v\"}"), "1");
    b.handle_event(0, 3, 60, None, "2");
    assert_eq!(b.take(), None);
    let held = b.held_bytes();
    assert_eq!(
        held,
        "\"\u{1F600}\"".len() + "2".len() + r#"{"h":"v"},1"#.len() + 3 * HELD_EVENT_BYTES,
        "the values, joined, per partition and text, and the bookkeeping of each event"
    );
    assert!(!b.has_checkpoints() && b.released_bytes() == 0);
    assert!(!b.over_held_limit(), "unlimited by default");
    b.set_max_held(held);
    assert!(!b.over_held_limit(), "the limit itself is allowed");
    b.set_max_held(held - 1);
    assert!(b.over_held_limit());
    b.handle_checkpoint(0, "c0".into());
    assert!(b.has_checkpoints() && b.released_bytes() > 0 && b.held_bytes() < held);
    let batch = b.take().unwrap();
    assert_eq!((batch.len(), batch.is_empty()), (2, false));
    assert_eq!((s(&batch.text), s(&batch.wide)), ("[2]", "[\"\u{1F600}\"]"), "escapes off: wide");
    assert_eq!(
        batch.meta,
        vec![WIDE + 1, WIDE + 5, 0, 1, 0, WIDE + 1, 1, 2, 0, 3, 60, 1],
        "UTF-16 offsets, from WIDE on in the wide text; data start = start: no headers"
    );
    assert_eq!(batch.checkpoints, vec![Checkpoint { partition: 0, cursor: "c0".into() }]);
    assert!(!b.has_checkpoints() && b.released_bytes() == 0);
    assert_eq!(b.held_bytes(), r#"{"h":"v"},1"#.len() + HELD_EVENT_BYTES);
    b.handle_checkpoint(1, "c1".into());
    let with_headers = b.take().unwrap();
    assert_eq!(s(&with_headers.text), r#"[{"h":"v"},1]"#);
    assert_eq!(with_headers.meta, vec![1, 12, 1, 2, 30, 11], "headers from 1 to 10, the comma, data from 11");
    b.handle_event(1, 2, 30, None, "1");
    assert_eq!(b.drop_held(), 1);
    assert_eq!((b.take(), b.held_bytes(), b.drop_held()), (None, 0, 0));
    b.handle_event(1, 4, 90, None, "3");
    b.handle_event(1, 5, 99, None, "4");
    assert_eq!(b.drop_held(), 2);
    b.handle_checkpoint(1, "c1".into());
    let only = b.take().unwrap();
    assert_eq!((only.len(), only.is_empty(), only.checkpoints.len()), (0, true, 1), "a checkpoint-only batch");
}

/// The type offsets index the batch texts as JavaScript strings do (UTF-16), across partitions released in any
/// order and after non-ASCII text (in the wide text); the markers pass through unshifted.
#[test]
fn type_offsets_in_utf16_of_the_released_text() {
    let utf16 = |b: &Batch, from: u32, to: u32| {
        let units: Vec<u16> = s(if from < WIDE { &b.text } else { &b.wide }).encode_utf16().collect();
        String::from_utf16(&units[(from % WIDE) as usize..(to % WIDE) as usize]).unwrap()
    };
    let mut b = BatchBuilder::new(2);
    b.handle_event(0, 1, 0, None, r#"{"type":"A"}"#);
    assert!(b.take().is_none());
    b.set_type_field(vec!["type".into()]);
    b.handle_event(1, 2, 0, None, r#"{"x":"😀é","type":"B😀"}"#);
    b.handle_event(0, 3, 0, Some(r#"{"type":"h"}"#), r#"{"type":"C'x"}"#);
    b.handle_event(1, 4, 0, None, r#""{\"type\":\"D\"}""#);
    b.handle_event(1, 5, 0, None, r#"{"type":7}"#);
    b.handle_checkpoint(1, "c1".into());
    b.handle_checkpoint(0, "c0".into());
    let batch = b.take().unwrap();
    assert_eq!(batch.len(), 5);
    let t = &batch.types;
    assert_eq!(t.len(), 5 * TYPE_STRIDE);
    assert_eq!(utf16(&batch, t[0], t[1]), "B😀");
    assert_eq!(&t[2..6], &[TYPE_UNKNOWN, TYPE_UNKNOWN, TYPE_ABSENT, TYPE_ABSENT]);
    assert_eq!(t[6..8], [TYPE_ABSENT; 2], "read before the field was set");
    assert_eq!(utf16(&batch, t[8], t[9]), "C'x");
    b.set_type_field(Vec::new());
    b.handle_event(0, 6, 0, None, r#"{"type":"E"}"#);
    b.handle_checkpoint(0, "c2".into());
    assert!(b.take().unwrap().types.is_empty(), "no types unless asked");
}

/// Escapes (parsed mode): text outside ASCII becomes `\u` escapes, UTF-16 units as JSON spells them (a pair for
/// a character outside the BMP), in the headers too; the offsets index the escaped text; a type whose place in it
/// is not worked out is left to a parse; what is held is counted as written. An event with a character outside
/// ASCII right after an escaping backslash is kept as it came, as is everything with escapes off.
#[test]
fn escapes_write_text_outside_ascii_as_json_escapes() {
    let mut b = BatchBuilder::new(1);
    b.set_escape(true);
    b.set_type_field(vec!["type".into()]);
    b.handle_event(0, 1, 0, Some(r#"{"h":"ü"}"#), r#"{"type":"A","t":"é😀\\é"}"#);
    let held = b.held_bytes();
    let written = r#"{"h":"\u00fc"},{"type":"A","t":"\u00e9\ud83d\ude00\\\u00e9"}"#;
    assert_eq!(held, written.len() + HELD_EVENT_BYTES, "as written");
    b.handle_event(0, 2, 40, None, r#"{"type":"B"}"#);
    b.handle_event(0, 3, 80, None, r#"{"t":"x\é","type":"C"}"#);
    b.handle_checkpoint(0, "c".into());
    let batch = b.take().unwrap();
    assert_eq!(
        s(&batch.text),
        r#"[{"h":"\u00fc"},{"type":"A","t":"\u00e9\ud83d\ude00\\\u00e9"},{"type":"B"},{"t":"x\é","type":"C"}]"#
    );
    assert!(!batch.text.is_ascii(), "the last event is as it came");
    assert_eq!(s(&batch.wide), "[]", "nothing goes to the wide text with escapes on");
    assert_eq!(&batch.meta[..6], &[1, 61, 0, 1, 0, 16], "headers from 1 to 15, data from 16 to 61: bytes, all ASCII");
    assert_eq!(&batch.meta[6..12], &[62, 74, 0, 2, 40, 62]);
    assert_eq!(&batch.types[..2], &[TYPE_UNKNOWN; 2], "escaped: the type is read after the parse");
    assert_eq!(&batch.types[2..4], &[71, 72], "B, after the escaped event");
    let units: Vec<u16> = s(&batch.text).encode_utf16().collect();
    let last = String::from_utf16(&units[batch.types[4] as usize..batch.types[5] as usize]).unwrap();
    assert_eq!(last, "C", "as it came: its type where it is, in UTF-16 units");
    b.set_escape(false);
    b.handle_event(0, 4, 0, None, "\"é\"");
    b.handle_checkpoint(0, "d".into());
    let off = b.take().unwrap();
    assert_eq!((s(&off.text), s(&off.wide)), ("[]", "[\"é\"]"), "off: as the server sent it");
    b.set_escape(true);
    b.handle_event(0, 5, 0, None, "1");
    b.handle_event(0, 6, 0, None, "\"é\"");
    assert_eq!(
        b.held_bytes(),
        r#"1,"\u00e9""#.len() + 2 * HELD_EVENT_BYTES,
        "an escaped event after another, as written"
    );
}

/// Escapes off (raw mode): the events with text outside ASCII, in their values or headers, go to the wide text
/// (a JSON array text of their values, in release order), so `text` stays ASCII; their offsets, types' too, are
/// [`WIDE`] + UTF-16 offsets in it; what is held and released counts both texts.
#[test]
fn escapes_off_put_events_outside_ascii_in_the_wide_text() {
    let mut b = BatchBuilder::new(2);
    b.set_type_field(vec!["type".into()]);
    b.handle_event(0, 1, 0, None, r#"{"type":"A"}"#);
    b.handle_event(0, 2, 9, Some(r#"{"h":"ü"}"#), r#"{"type":"B"}"#);
    b.handle_event(1, 3, 20, None, r#"{"t":"😀","type":"C"}"#);
    b.handle_event(0, 4, 30, None, r#"{"type":"é"}"#);
    b.handle_event(1, 5, 40, None, "7");
    let wide_held = r#"{"h":"ü"},{"type":"B"},{"type":"é"}"#.len() + r#"{"t":"😀","type":"C"}"#.len();
    assert_eq!(b.held_bytes(), wide_held + r#"{"type":"A"}"#.len() + "7".len() + 5 * HELD_EVENT_BYTES);
    b.handle_checkpoint(1, "c1".into());
    b.handle_checkpoint(0, "c0".into());
    assert_eq!(b.released_bytes(), b"7,{\"type\":\"A\"}".len() + 1 + wide_held, "both texts, commas between");
    assert_eq!(b.held_bytes(), 0);
    let batch = b.take().unwrap();
    assert_eq!(s(&batch.text), r#"[7,{"type":"A"}]"#);
    assert_eq!(s(&batch.wide), r#"[{"t":"😀","type":"C"},{"h":"ü"},{"type":"B"},{"type":"é"}]"#);
    let w = WIDE;
    #[rustfmt::skip]
    assert_eq!(batch.meta, vec![
        w + 1, w + 22, 1, 3, 20, w + 1,
        1, 2, 1, 5, 40, 1,
        3, 15, 0, 1, 0, 3,
        w + 23, w + 45, 0, 2, 9, w + 33,
        w + 46, w + 58, 0, 4, 30, w + 46,
    ], "release order: partition 1, then 0; UTF-16 units (the emoji is two)");
    #[rustfmt::skip]
    assert_eq!(batch.types, vec![
        w + 19, w + 20,
        TYPE_ABSENT, TYPE_ABSENT,
        12, 13,
        w + 42, w + 43,
        w + 55, w + 56,
    ]);
    b.handle_event(0, 6, 0, None, "\"ü\"");
    assert_eq!(b.drop_held(), 1);
    b.handle_event(0, 7, 0, None, "1");
    b.handle_checkpoint(0, "c2".into());
    let batch = b.take().unwrap();
    assert_eq!((s(&batch.text), s(&batch.wide)), ("[1]", "[]"), "dropped with the page's end");
}

/// An event of a partition whose held text already has a character outside ASCII as it came (one not escapable)
/// is not escaped (that batch text decodes the slow way anyway); once released, the next one is again.
#[test]
fn no_escape_after_an_event_held_as_it_came() {
    let mut b = BatchBuilder::new(2);
    b.set_escape(true);
    b.handle_event(0, 1, 0, None, r#""\é""#);
    b.handle_event(0, 2, 0, None, r#""é""#);
    b.handle_event(1, 3, 0, None, r#""é""#);
    b.handle_checkpoint(0, "c0".into());
    b.handle_checkpoint(1, "c1".into());
    assert_eq!(s(&b.take().unwrap().text), r#"["\é","é","\u00e9"]"#, "as it came after one held so; escaped elsewhere");
    b.handle_event(0, 4, 0, None, r#""é""#);
    b.handle_checkpoint(0, "c2".into());
    assert_eq!(s(&b.take().unwrap().text), r#"["\u00e9"]"#, "escaped again after the release");
}

/// Escaping stops when more than [`ESCAPE_MOST`] of the last 32 kept events had text outside ASCII (their
/// batches are slow to decode anyway) and resumes once [`ESCAPE_AGAIN`] or fewer had.
#[test]
fn escapes_only_while_few_events_are_not_ascii() {
    let mut b = BatchBuilder::new(1);
    b.set_escape(true);
    let escaped = |b: &mut BatchBuilder| {
        b.handle_checkpoint(0, "c".into());
        b.take().unwrap().text.is_ascii()
    };
    for i in 0..ESCAPE_MOST {
        b.handle_event(0, u64::from(i), 0, None, "\"é\"");
        assert!(escaped(&mut b), "event {i}");
    }
    b.handle_event(0, 99, 0, None, "\"é\"");
    assert!(!escaped(&mut b), "the one past the most");
    // The last 32 then hold 24 events not ASCII, then 24 again with the next: at most ESCAPE_MOST, but more than
    // ESCAPE_AGAIN, so it does not start again yet.
    for i in 0..8 {
        b.handle_event(0, i, 0, None, "1");
        assert!(escaped(&mut b));
    }
    b.handle_event(0, 100, 0, None, "\"é\"");
    assert!(!escaped(&mut b), "not yet");
    for _ in 0..32 {
        b.handle_event(0, 101, 0, None, "1");
    }
    b.handle_event(0, 102, 0, None, "\"é\"");
    assert!(escaped(&mut b), "few again");
}

/// The line scanner watches each event's `data` for the type field's first key (the hint `sort_event` takes):
/// none without a type field.
#[test]
fn the_watched_key_is_the_type_fields_first() {
    let mut b = BatchBuilder::new(1);
    assert_eq!(b.watched_key(), b"");
    b.set_type_field(vec!["meta".into(), "type".into()]);
    assert_eq!(b.watched_key(), b"meta");
}

/// A dropped event is only counted: nothing of it is held (memory) nor released; its checkpoint is released as
/// ever, with the count; events the filter cannot decide pass with their markers.
#[test]
fn dropped_events_are_counted_never_held() {
    use crate::typefilter::{TypeFilter, TypePattern};
    let mut b = BatchBuilder::new(2);
    b.set_type_filter(Some(TypeFilter { include: vec![TypePattern::Exact("K".into())], ..TypeFilter::default() }));
    b.handle_event(0, 1, 0, None, r#"{"type":"D"}"#);
    assert_eq!((b.held_bytes(), b.held_events(0)), (r#"{"type":"D"}"#.len() + HELD_EVENT_BYTES, 1), "no field");
    b.drop_held();
    b.set_type_field(vec!["type".into()]);
    for i in 0..1000 {
        b.handle_event(0, i, 0, None, r#"{"type":"D","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#);
        b.handle_event(1, i, 0, None, r#"{"id":1}"#);
    }
    assert_eq!(b.held_bytes(), 0, "nothing of a dropped event is held");
    assert_eq!((b.held_events(0), b.held_events(1)), (1000, 1000), "but every one counts as held");
    b.handle_event(0, 2000, 0, None, r#"{"type":"K"}"#);
    b.handle_event(0, 2001, 0, None, r#""{\"type\":\"D\"}""#);
    b.handle_event(0, 2002, 0, None, r#"{"type":"\u0044"}"#);
    assert!(b.held_bytes() > 0);
    b.handle_checkpoint(1, "c1".into());
    b.handle_checkpoint(0, "c0".into());
    let batch = b.take().unwrap();
    assert_eq!(batch.dropped, vec![1, 1000, 0, 1000]);
    assert_eq!(batch.len(), 3, "the kept one and the two only a parse can decide");
    assert_eq!(&batch.types[2..], &[TYPE_UNKNOWN; 4]);
    assert_eq!(batch.checkpoints.len(), 2);
    assert_eq!((b.held_bytes(), b.held_events(0), b.released_cursor_bytes()), (0, 0, 0));
    b.handle_event(1, 1, 0, None, "{}");
    b.handle_checkpoint(1, "c2".into());
    assert_eq!((b.released_cursor_bytes(), b.released_bytes()), (2, 0));
    assert_eq!(b.take().unwrap().dropped, vec![1, 1], "only partitions that dropped any, once per release");
    b.handle_event(0, 1, 0, None, "{}");
    assert_eq!(b.drop_held(), 1, "a page's end drops the counts too");
    b.handle_checkpoint(0, "c3".into());
    assert!(b.take().unwrap().dropped.is_empty());
}
