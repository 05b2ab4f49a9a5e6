//! Reads a [`Batch`] as the wrapper's decoder does (js/src/decode.ts): one parse of `text` (and of `wide`), then each
//! event made from its values and its `meta` entry. Every read checks the layout: the values parsed from `text` are,
//! in order, each event's headers (when its data does not start where its values do) and data, and each equals the
//! value at the event's offsets (UTF-16 units, as JavaScript indexes strings); the same for `wide`, the events whose
//! offsets are [`WIDE`] and more, each with text outside ASCII (and then `text` is ASCII).

#![allow(dead_code, clippy::unwrap_used)] // shared by test binaries that each use a part; a test panics on surprises

use feedpump_core::batch::{Batch, META_STRIDE, WIDE};
use serde_json::Value;

/// One event of a batch: its `meta` entry and its values' texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub partition: u32,
    pub line: u32,
    pub offset: u32,
    pub headers: Option<String>,
    pub data: String,
}

/// The text of `units[from..to]`.
fn utf16(units: &[u16], from: u32, to: u32) -> String {
    String::from_utf16(&units[from as usize..to as usize]).unwrap()
}

/// A batch text as a string: it must be valid UTF-8.
pub fn str(text: &[u8]) -> &str {
    std::str::from_utf8(text).unwrap_or_else(|e| panic!("a batch text is not UTF-8: {e}"))
}

/// The text of `b` from offset `from` to `to` (UTF-16 units in `text`, or in `wide` from [`WIDE`] on).
pub fn text_at(b: &Batch, from: u32, to: u32) -> String {
    let wide = from >= WIDE;
    assert_eq!(to >= WIDE, wide, "both offsets in the same text");
    let text = str(if wide { &b.wide } else { &b.text });
    utf16(&text.encode_utf16().collect::<Vec<_>>(), from % WIDE, to % WIDE)
}

/// The events of `b`, checked against one parse of each of its texts.
pub fn events(b: &Batch) -> Vec<Event> {
    let texts = [str(&b.text), str(&b.wide)];
    let values = texts.map(|t| serde_json::from_str::<Vec<Value>>(t).unwrap_or_else(|e| panic!("{e}: {t}")));
    let units = texts.map(|t| t.encode_utf16().collect::<Vec<u16>>());
    let mut next = [values[0].iter(), values[1].iter()];
    let mut out = Vec::new();
    for m in b.meta.chunks(META_STRIDE) {
        let [start, end, partition, line, offset, data_start] = m.try_into().unwrap();
        let w = usize::from(start >= WIDE);
        assert!([end, data_start].iter().all(|&o| usize::from(o >= WIDE) == w), "one text per event: {m:?}");
        let [start, end, data_start] = [start, end, data_start].map(|o| o % WIDE);
        let units = &units[w];
        let headers = (data_start != start).then(|| {
            assert_eq!(units[data_start as usize - 1], u16::from(b','), "the headers end at the comma before the data");
            utf16(units, start, data_start - 1)
        });
        let data = utf16(units, data_start, end);
        assert!(w == 0 || !(data.is_ascii() && headers.as_ref().map_or(true, |h| h.is_ascii())), "wide: not ASCII");
        for text in headers.iter().chain([&data]) {
            let parsed: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(next[w].next(), Some(&parsed), "the parse's next value is the one at the offsets: {text}");
        }
        out.push(Event { partition, line, offset, headers, data });
    }
    for (t, mut next) in texts.into_iter().zip(next) {
        assert_eq!(next.next(), None, "no value in the text belongs to no event: {t}");
    }
    assert!(values[1].is_empty() || b.text.is_ascii(), "with a wide text, text is ASCII");
    assert_eq!(b.ascii, b.text.is_ascii(), "the batch says whether its text is ASCII");
    out
}

/// The event objects JavaScript makes of `b`, as JSON text: `[{"partition":P[,"headers":H],"data":D},…]`.
pub fn objects(b: &Batch) -> String {
    let objects: Vec<String> = events(b).iter().map(object).collect();
    format!("[{}]", objects.join(","))
}

/// One event object as JSON text, `{"partition":P[,"headers":H],"data":D}`.
pub fn object(e: &Event) -> String {
    match &e.headers {
        Some(h) => format!("{{\"partition\":{},\"headers\":{h},\"data\":{}}}", e.partition, e.data),
        None => format!("{{\"partition\":{},\"data\":{}}}", e.partition, e.data),
    }
}
