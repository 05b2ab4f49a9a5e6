//! The driver's outputs as JS values: a batch as a `RawBatch`, a fault as the error `next()` rejects with (see
//! docs/wasm-contract.md). Pure conversion: what to hand out and when is the driver's.

use crate::error::{feed_error, protocol_error, set, with_cause};
use alloc::format;
use feedpump_core::driver::{Fault, Output};
use feedpump_core::Signal;
use js_sys::{Array, Object, Reflect, Uint32Array};
use wasm_bindgen::prelude::*;

/// The one declaration of the batch layout, beside the code that builds it (`ReaderOptions` is declared in
/// js/src/options.ts).
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** One committable batch as the core builds it (see docs/wasm-contract.md). */
export interface RawBatch {
  /** JSON array text of the events' values: `H,D` for an event with headers, `D` for one without; without the `raw`
   * option, with their characters outside ASCII as `\u` escapes while few events have any. */
  text: string;
  /** With the `raw` option, when any event's values have characters outside ASCII: a JSON array text like `text` of
   * those events' values as they came, which are then not in `text`. Their offsets are 2^31 + offsets in it. */
  wide?: string;
  /** 6 u32 per event: the start of its values and the end of its data (UTF-16 offsets in text, or in wide), partition,
   * line, byte offset, data start (= the values' start when it has no headers). */
  meta: Uint32Array;
  /** With `typeField`: 2 u32 per event, the start and end in text (or wide) of its type string's contents (no escape
   * in them); 0, 0 when it has none; 1, 1 when only parsing the event can tell. */
  types?: Uint32Array;
  /** With `typeFilter`, when it dropped any: pairs [partition, count] of the dropped events this batch's checkpoints
   * cover (read, never in text). */
  dropped?: Uint32Array;
  /** Checkpoints released with the events, in order. */
  checkpoints: { partition: number; cursor: string }[];
  /** Page number (1-based). */
  page: number;
  /** Body bytes of the page read since the previous batch of this reader (the page's bytes, over its batches). */
  bytes: number;
  /** Set on the batch that ends a page whose body was read to its end (it may be empty: every page ends with one). */
  end?: boolean;
  /** A change of position found with this batch's page. */
  signal?: 'caught-up' | 'fell-behind';
}
"#;

/// The JS error of a fault: a `FeedError`, or the caller's own error as it was (`Network`, `Caller`: then `value` is
/// that error; otherwise it is the cause, if any). `status_text` is the last response's.
pub(crate) fn fault_to_js(fault: &Fault, page: u32, value: JsValue, status_text: &str) -> JsValue {
    let cause = value;
    let (code, msg, offset) = match fault {
        Fault::Protocol(e) => return protocol_error(e, page).into(),
        Fault::Network | Fault::Caller => return cause,
        Fault::Aborted => return with_cause(feed_error("aborted", "the feed was aborted", page), cause).into(),
        Fault::Stuck => return feed_error("closed", "the feed cannot continue", page).into(),
        Fault::Status { status, snippet } => {
            let mut msg = format!("the server answered {status} {}", status_text);
            if !snippet.is_empty() {
                msg.push_str(": ");
                msg.push_str(snippet);
            }
            let e = feed_error("http-status", msg.trim(), page);
            set(&e, "status", &JsValue::from(*status));
            set(&e, "bodySnippet", &JsValue::from_str(snippet));
            return e.into();
        }
        Fault::Stalled { idle_ms, offset } => (
            "stalled-body",
            format!("the response brought no bytes for {idle_ms} ms, after {offset} bytes of its body"),
            offset,
        ),
        Fault::Cut { offset } => (
            "truncated-body",
            format!("the connection ended before the body was complete, after {offset} bytes"),
            offset,
        ),
    };
    let e = feed_error(code, &msg, page);
    set(&e, "offset", &JsValue::from_f64(*offset as f64));
    if matches!(fault, Fault::Cut { .. }) {
        set(&e, "cause", &cause);
    }
    e.into()
}

#[wasm_bindgen]
extern "C" {
    /// A decoder of batch texts, a `TextDecoder` of the shell's ([`crate::Core::new`]): the bytes the core checked
    /// (or knew to be ASCII) become strings without another check here.
    #[derive(Debug)]
    pub type Decoder;
    /// `TextDecoder.decode` of a view of wasm memory (read at once; it cannot throw for a batch's bounded text, but a
    /// throw would surface from `batch()` without leaving the core borrowed).
    #[wasm_bindgen(method, catch)]
    fn decode(this: &Decoder, bytes: &[u8]) -> Result<JsValue, JsValue>;
}

/// The decoders of a core: `ascii` for an ASCII text (one faster where the runtime has it: `latin1` in Chromium;
/// exact for ASCII), `utf8` for the rest.
#[derive(Debug)]
pub(crate) struct Decoders {
    pub(crate) ascii: Decoder,
    pub(crate) utf8: Decoder,
}

pub(crate) fn batch_to_js(out: Output, decoders: &Decoders) -> Result<Object, JsValue> {
    let obj = Object::new();
    // No batch (a signal or the end of a page alone): an empty one, without allocating it.
    let (text, ascii, meta, cps) = match &out.batch {
        Some(b) => (b.text.as_slice(), b.ascii, b.meta.as_slice(), b.checkpoints.as_slice()),
        None => (&b"[]"[..], true, &[][..], &[][..]),
    };
    if let Some(signal) = out.signal {
        let name = match signal {
            Signal::CaughtUp => "caught-up",
            Signal::FellBehind => "fell-behind",
        };
        let _ = Reflect::set(&obj, &"signal".into(), &JsValue::from_str(name));
    }
    let checkpoints = Array::new();
    for c in cps {
        let cp = Object::new();
        let _ = Reflect::set(&cp, &"partition".into(), &JsValue::from(c.partition));
        let _ = Reflect::set(&cp, &"cursor".into(), &JsValue::from_str(&c.cursor));
        checkpoints.push(&cp);
    }
    let _ = Reflect::set(&obj, &"text".into(), &if ascii { &decoders.ascii } else { &decoders.utf8 }.decode(text)?);
    if let Some(b) = out.batch.as_ref().filter(|b| b.wide.len() > 2) {
        let _ = Reflect::set(&obj, &"wide".into(), &decoders.utf8.decode(&b.wide)?);
    }
    let _ = Reflect::set(&obj, &"meta".into(), &Uint32Array::from(meta));
    if let Some(b) = out.batch.as_ref().filter(|b| !b.types.is_empty()) {
        let _ = Reflect::set(&obj, &"types".into(), &Uint32Array::from(b.types.as_slice()));
    }
    if let Some(b) = out.batch.as_ref().filter(|b| !b.dropped.is_empty()) {
        let _ = Reflect::set(&obj, &"dropped".into(), &Uint32Array::from(b.dropped.as_slice()));
    }
    let _ = Reflect::set(&obj, &"checkpoints".into(), &checkpoints);
    let _ = Reflect::set(&obj, &"page".into(), &JsValue::from(out.page));
    let _ = Reflect::set(&obj, &"bytes".into(), &JsValue::from_f64(out.bytes as f64));
    if out.end {
        let _ = Reflect::set(&obj, &"end".into(), &JsValue::TRUE);
    }
    Ok(obj)
}
