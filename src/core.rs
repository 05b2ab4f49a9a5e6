//! `Core`: the synchronous wasm surface over a core [`Driver`], driven by the TypeScript shell (js/src/reader/).
//!
//! The driver decides everything (what to fetch, when a batch is handed out, when a body is stalled, what a failure
//! is and whether it is retried, the 401 resent once, the error held back behind the last batch). The shell owns
//! `fetch`, the body reader, the timers and the caller's callbacks; it reports what happened through the `handle*`
//! methods and does what [`Core::poll`] says. Every method here returns before any caller code can run: no futures, no
//! closures, no call to caller code (the return values are built; the one call out is `batch()`'s to the shell's own
//! `TextDecoder`s, caught), so nothing is ever borrowed across a call that could come back in.
//!
//! Chunks cross the boundary once: `handleChunk` takes the bytes by value (wasm-bindgen copies them into wasm memory,
//! the one copy), keeps what the driver did not take yet, and feeds it on the driver's [`Action::Feed`] itself, so the
//! shell never sees `Feed`. See docs/wasm-contract.md.

use crate::convert::{batch_to_js, fault_to_js, Decoder, Decoders};
use crate::error::feed_error;
use crate::options::parse;
use alloc::vec::Vec;
use feedpump_core::driver::{Action, Driver, DriverOptions, Fault, Output, Transport};
use js_sys::{Error, Object, Reflect};
use wasm_bindgen::prelude::*;

/// What [`Core::poll`] returns (the driver's [`Action`] without `Feed`, which the core does itself). The numbers are
/// the contract with js/src/reader/core.ts.
pub mod code {
    /// Read the body's next chunk (or keep awaiting the read in flight) under the idle watchdog.
    pub const READ: u32 = 0;
    /// The same, while released events wait: under the flush deadline of `pollTimeout()`.
    pub const READ_FLUSH: u32 = 1;
    /// Take the batch with `batch()` and hand it out.
    pub const BATCH: u32 = 2;
    /// The feed is done.
    pub const DONE: u32 = 3;
    /// The feed failed: `error()` is the error (again on every later poll).
    pub const FAIL: u32 = 4;
    /// Tell the caller of a retry: `retry()` is what to tell.
    pub const RETRY: u32 = 5;
    /// Cancel the body and drop a read in flight.
    pub const CANCEL: u32 = 6;
    /// GET `url()`.
    pub const FETCH: u32 = 7;
    /// GET `url()` with fresh credentials (after a 401).
    pub const FETCH_REFRESH: u32 = 8;
    /// Nothing to do before `pollTimeout()`.
    pub const WAIT: u32 = 9;
}

/// Internal: the wrapper's synchronous handle on one feed's core. See docs/wasm-contract.md.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Core {
    driver: Driver,
    /// The last chunk, and how much of it the driver took (it takes a bounded slice at a time).
    chunk: Vec<u8>,
    pos: usize,
    /// The last batch polled, until `batch()` takes it.
    out: Option<Output>,
    /// The fault of the last `FAIL` or `RETRY`, with its page.
    fault: Option<(Fault, u32)>,
    attempt: u32,
    delay_ms: u64,
    decoders: Decoders,
}

#[wasm_bindgen]
impl Core {
    /// Reads the config fields of `options` (src/options.rs; the function fields are the shell's). `can_refresh`: the
    /// shell has a request-headers hook, so a 401 is sent again once with fresh credentials. `ascii` and `utf8`
    /// decode the batch texts (`TextDecoder`s: `utf8` a UTF-8 one, `ascii` any that is exact for ASCII). No request
    /// is made here.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "string")] url: JsValue,
        #[wasm_bindgen(unchecked_param_type = "object")] options: JsValue,
        can_refresh: bool,
        #[wasm_bindgen(unchecked_param_type = "TextDecoder")] ascii: Decoder,
        #[wasm_bindgen(unchecked_param_type = "TextDecoder")] utf8: Decoder,
    ) -> Result<Core, Error> {
        let url =
            crate::error::string(&url).ok_or_else(|| feed_error("bad-options", "the feed URL must be a string", 0))?;
        let (config, timers) = parse(url, &options)?;
        let options = DriverOptions { flush_ms: timers.flush_ms.into(), idle_ms: timers.idle_ms.into(), can_refresh };
        Ok(Core {
            driver: Driver::new(config, options),
            chunk: Vec::new(),
            pos: 0,
            out: None,
            fault: None,
            attempt: 0,
            delay_ms: 0,
            decoders: Decoders { ascii, utf8 },
        })
    }

    /// The next thing to do at `now` (ms, any monotonic clock): one of the codes of js/src/reader/core.ts.
    pub fn poll(&mut self, now: f64) -> u32 {
        let now = now as u64;
        loop {
            return match self.driver.poll(now) {
                Action::Feed => {
                    self.pos += self.driver.handle_chunk(now, &self.chunk[self.pos..]);
                    if self.pos >= self.chunk.len() {
                        self.chunk = Vec::new();
                        self.pos = 0;
                    }
                    continue;
                }
                Action::Read if self.driver.session().has_released() => code::READ_FLUSH,
                Action::Read => code::READ,
                Action::Batch(out) => {
                    self.out = Some(out);
                    code::BATCH
                }
                Action::Done => code::DONE,
                Action::Fail { fault, page } => {
                    self.fault = Some((fault, page));
                    code::FAIL
                }
                Action::Retry { fault, page, attempt, delay_ms } => {
                    self.fault = Some((fault, page));
                    self.attempt = attempt;
                    self.delay_ms = delay_ms;
                    code::RETRY
                }
                Action::Cancel => {
                    self.chunk = Vec::new();
                    self.pos = 0;
                    code::CANCEL
                }
                Action::Fetch { refresh: false } => code::FETCH,
                Action::Fetch { refresh: true } => code::FETCH_REFRESH,
                Action::Wait => code::WAIT,
            };
        }
    }

    /// The batch of the last `BATCH`, as a `RawBatch` (docs/wasm-contract.md).
    #[wasm_bindgen(unchecked_return_type = "RawBatch | undefined")]
    pub fn batch(&mut self) -> Result<JsValue, JsValue> {
        self.out.take().map_or(Ok(JsValue::UNDEFINED), |out| Ok(batch_to_js(out, &self.decoders)?.into()))
    }

    /// The error of the last `FAIL` or `RETRY`: a FeedError-shaped `Error`, or `value` itself for a failure of the
    /// network or of the caller's code (then `value` is that error; otherwise it is kept as the cause, if any).
    /// `status_text` is the last response's, for an `http-status` message.
    pub fn error(
        &self,
        value: JsValue,
        #[wasm_bindgen(js_name = statusText, unchecked_param_type = "unknown")] status_text: JsValue,
    ) -> JsValue {
        let Some((fault, page)) = &self.fault else { return value };
        fault_to_js(fault, *page, value, &crate::error::string(&status_text).unwrap_or_default())
    }

    /// What `onRetry` is told after a `RETRY`: `{ error, attempt, delayMs }`, the error as [`Core::error`] makes it.
    pub fn retry(
        &self,
        value: JsValue,
        #[wasm_bindgen(js_name = statusText, unchecked_param_type = "unknown")] status_text: JsValue,
    ) -> Object {
        let info = Object::new();
        let _ = Reflect::set(&info, &"error".into(), &self.error(value, status_text));
        let _ = Reflect::set(&info, &"attempt".into(), &JsValue::from(self.attempt));
        let _ = Reflect::set(&info, &"delayMs".into(), &JsValue::from_f64(self.delay_ms as f64));
        info
    }

    /// The current page (1-based; 0 before the first request).
    #[wasm_bindgen(getter)]
    pub fn page(&self) -> u32 {
        self.driver.session().page()
    }

    /// The URL to GET on `FETCH`.
    #[wasm_bindgen(unchecked_return_type = "string")]
    pub fn url(&self) -> JsValue {
        JsValue::from_str(self.driver.url())
    }

    /// When to call `handleTimeout` (or poll again after a `WAIT`), in ms of the shell's clock; -1: never.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> f64 {
        self.driver.poll_timeout().map_or(-1.0, |at| at as f64)
    }

    /// The timer `pollTimeout()` asked for fired at `now`.
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now: f64) {
        self.driver.handle_timeout(now as u64);
    }

    /// The response's `status` and its `Retry-After` header (a string; anything else is none). Returns `false`, and
    /// changes nothing, when `status` is not an integer HTTP status (0..=999): the answer is not a `Response`.
    #[wasm_bindgen(js_name = handleStatus)]
    pub fn handle_status(
        &mut self,
        status: JsValue,
        #[wasm_bindgen(js_name = retryAfter, unchecked_param_type = "unknown")] retry_after: JsValue,
    ) -> bool {
        let Some(status) = crate::error::number(&status).and_then(|s| crate::options::whole_below(s, 1000.0)) else {
            return false;
        };
        self.driver.handle_status(status as u16, crate::error::string(&retry_after).as_deref());
        true
    }

    /// A chunk of the body at `now` (`undefined`: the body ended, or there was none), then the next thing to do (as
    /// [`Core::poll`]): one call per chunk. The bytes are taken by value: copied into wasm memory once, and what the
    /// driver does not take yet is kept here, not copied again.
    #[wasm_bindgen(js_name = handleChunk)]
    pub fn handle_chunk(&mut self, now: f64, bytes: Option<Vec<u8>>) -> u32 {
        match bytes {
            Some(bytes) => {
                let taken = self.driver.handle_chunk(now as u64, &bytes);
                if taken < bytes.len() {
                    self.chunk = bytes;
                    self.pos = taken;
                }
            }
            None => self.driver.handle_eof(now as u64),
        }
        self.poll(now)
    }

    /// The shell failed to fetch or read: `kind` is 0 aborted, 1 a cut body, 2 the network, 3 the caller's code or
    /// objects. Returns whether the fault that follows is this one (then the shell passes its value to `error()`).
    #[wasm_bindgen(js_name = handleError)]
    pub fn handle_error(&mut self, now: f64, kind: u8) -> bool {
        let kind = match kind {
            0 => Transport::Aborted,
            1 => Transport::Cut,
            2 => Transport::Network,
            _ => Transport::Caller,
        };
        self.driver.handle_transport_error(now as u64, kind)
    }

    /// Whether a final fault ended the feed (the shell releases everything; the error may still wait behind a batch).
    #[wasm_bindgen(js_name = hasFailed)]
    pub fn has_failed(&self) -> bool {
        self.driver.has_failed()
    }
}
