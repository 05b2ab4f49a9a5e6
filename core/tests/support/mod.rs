//! Reads a [`Batch`] as the wrapper's decoder does (js/src/decode.ts): one parse of `text`, then each event made from
//! its values and its `meta` entry. Every read checks the layout: the values parsed from `text` are, in order, each
//! event's headers (when its data does not start where its values do) and data, and each equals the value at the
//! event's offsets (UTF-16 units, as JavaScript indexes strings).

#![allow(dead_code, clippy::unwrap_used)] // shared by test binaries that each use a part; a test panics on surprises

use feedpump_core::batch::{Batch, META_STRIDE};
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

/// The events of `b`, checked against one parse of its text.
pub fn events(b: &Batch) -> Vec<Event> {
    let values: Vec<Value> = serde_json::from_str(&b.text).unwrap_or_else(|e| panic!("{e}: {}", b.text));
    let units: Vec<u16> = b.text.encode_utf16().collect();
    let mut next = values.iter();
    let mut out = Vec::new();
    for m in b.meta.chunks(META_STRIDE) {
        let [start, end, partition, line, offset, data_start] = m.try_into().unwrap();
        let headers = (data_start != start).then(|| {
            assert_eq!(units[data_start as usize - 1], u16::from(b','), "the headers end at the comma before the data");
            utf16(&units, start, data_start - 1)
        });
        let data = utf16(&units, data_start, end);
        for text in headers.iter().chain([&data]) {
            let parsed: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(next.next(), Some(&parsed), "the parse's next value is the one at the offsets: {text}");
        }
        out.push(Event { partition, line, offset, headers, data });
    }
    assert_eq!(next.next(), None, "no value in the text belongs to no event: {}", b.text);
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
