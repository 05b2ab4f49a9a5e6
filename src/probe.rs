//! Bench-only shell probe (issue #11), behind the `probe-sync` feature, which the shipped build never enables.
//!
//! A synchronous surface over the core's [`Session`]: no futures, no `fetch`, no timers, no JS callbacks. The read
//! loop that drives it is JavaScript (bench/probe/shell.js): it owns `fetch`, the body reader and the timers, and
//! calls these methods between its awaits. Every method returns before any caller code can run, so nothing is
//! borrowed across a JS call. Built by bench/probe/build.sh into bench/probe/out/ (gitignored) to measure that
//! shell against today's Rust one (src/reader.rs); see bench/NOTES.md, "Shell probe".
//!
//! Happy path only: retries, failover, 401 refresh and held-back errors are not modelled (errors end the probe).

use crate::error::{feed_error, protocol_error};
use crate::options::parse;
use feedpump_core::{Batch, ProtocolError, Session, Signal};
use js_sys::{Array, Error, Object, Reflect, Uint32Array};
use wasm_bindgen::prelude::*;

/// Internal (bench only): a core session driven synchronously by a JavaScript read loop.
#[wasm_bindgen]
#[derive(Debug)]
pub struct ProbeSession {
    session: Session,
    /// The page and body position the last batch reached: each batch reports the body bytes read since.
    reported: (u32, u64),
}

#[wasm_bindgen]
impl ProbeSession {
    /// Reads the same `ReaderOptions` as `FeedReader` (src/options.rs), so both shells run the same core config.
    #[wasm_bindgen(constructor)]
    pub fn new(url: String, options: JsValue) -> Result<ProbeSession, Error> {
        let (config, _js) = parse(url, &options)?;
        Ok(ProbeSession { session: Session::new(config), reported: (0, 0) })
    }

    /// The URL of the next page, if one is due at `now_ms`.
    #[wasm_bindgen(js_name = pollRequest)]
    pub fn poll_request(&mut self, now_ms: f64) -> Option<String> {
        self.session.poll_request(now_ms as u64)
    }

    /// The response status; a non-2xx one throws.
    #[wasm_bindgen(js_name = handleStatus)]
    pub fn handle_status(&mut self, status: u16) -> Result<(), Error> {
        let page = self.session.page();
        self.session.handle_status(status).map_err(|e| error(&e, page))
    }

    /// A piece of the body (at most `BATCH_BYTES`: the loop slices larger chunks).
    #[wasm_bindgen(js_name = handleChunk)]
    pub fn handle_chunk(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let page = self.session.page();
        self.session.handle_chunk(chunk).map_err(|e| error(&e, page))
    }

    /// The body ended.
    #[wasm_bindgen(js_name = handleEof)]
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        let page = self.session.page();
        self.session.handle_eof().map_err(|e| error(&e, page))
    }

    /// Whether released events wait to be handed out (the flush deadline runs).
    #[wasm_bindgen(js_name = hasReleased)]
    pub fn has_released(&self) -> bool {
        self.session.has_released()
    }

    /// Whether the feed ended (caught up, not live, every batch taken).
    #[wasm_bindgen(js_name = isCaughtUp)]
    pub fn is_caught_up(&self) -> bool {
        self.session.is_caught_up()
    }

    /// The current page (1-based).
    pub fn page(&self) -> u32 {
        self.session.page()
    }

    /// The next `RawBatch` (docs/wasm-contract.md), or `undefined`: a full batch, or with `flush` whatever was
    /// released; `page_done` (the loop read the body to its end and fed every byte) marks the batch that empties the
    /// page as its `end`, even an empty one. The same object `FeedReader.next()` resolves to.
    #[wasm_bindgen(js_name = pollBatch)]
    pub fn poll_batch(&mut self, flush: bool, page_done: bool) -> JsValue {
        let batch = if flush { self.session.flush() } else { self.session.poll_batch() };
        let signal = self.session.poll_signal();
        let end = page_done && !self.session.has_released();
        if batch.is_none() && signal.is_none() && !end {
            return JsValue::UNDEFINED;
        }
        let (page, position) = (self.session.page(), self.session.body_position());
        let since = if self.reported.0 == page { self.reported.1 } else { 0 };
        self.reported = (page, position);
        batch_to_js(batch.as_ref(), signal, page, position.saturating_sub(since), end).into()
    }
}

fn error(e: &ProtocolError, page: u32) -> Error {
    if page == 0 {
        return feed_error("bad-options", "no page", 0);
    }
    protocol_error(e, page)
}

/// The `RawBatch` object, built as src/reader.rs builds it.
fn batch_to_js(batch: Option<&Batch>, signal: Option<Signal>, page: u32, bytes: u64, end: bool) -> Object {
    let obj = Object::new();
    let empty = Batch { text: "[]".into(), ascii: true, ..Batch::default() };
    let batch = batch.unwrap_or(&empty);
    if let Some(signal) = signal {
        let name = match signal {
            Signal::CaughtUp => "caught-up",
            Signal::FellBehind => "fell-behind",
        };
        let _ = Reflect::set(&obj, &"signal".into(), &JsValue::from_str(name));
    }
    let checkpoints = Array::new();
    for c in &batch.checkpoints {
        let cp = Object::new();
        let _ = Reflect::set(&cp, &"partition".into(), &JsValue::from(c.partition));
        let _ = Reflect::set(&cp, &"cursor".into(), &JsValue::from_str(&c.cursor));
        checkpoints.push(&cp);
    }
    let _ = Reflect::set(&obj, &"text".into(), &JsValue::from_str(&batch.text));
    let _ = Reflect::set(&obj, &"meta".into(), &Uint32Array::from(batch.meta.as_slice()));
    let _ = Reflect::set(&obj, &"checkpoints".into(), &checkpoints);
    let _ = Reflect::set(&obj, &"page".into(), &JsValue::from(page));
    let _ = Reflect::set(&obj, &"ascii".into(), &JsValue::from_bool(batch.ascii));
    let _ = Reflect::set(&obj, &"bytes".into(), &JsValue::from_f64(bytes as f64));
    if end {
        let _ = Reflect::set(&obj, &"end".into(), &JsValue::TRUE);
    }
    obj
}
