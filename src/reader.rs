//! `FeedReader`: the I/O shell over a core [`Driver`], one committable batch per `next()`.
//!
//! The driver decides everything (what to fetch, when a batch is handed out, when a body is stalled, what a failure
//! is and whether it is retried, the 401 resent once, the error held back behind the last batch): this shell only
//! fetches the URL it is given, reads the body's chunks, sets the one timer the driver asks for, calls the caller's
//! code and turns the driver's outputs into JS values. See core/src/driver.rs.
//!
//! State lives in an `Rc<Shared>`: the reader's `RefCell<Inner>`, plus what `close()` and the abort paths need
//! without a borrow (the `closed` flag and the controllers). Two rules keep the cell sound against callers that
//! re-enter (a `close()` from `onRetry`, from `requestHeaders`, from their `fetch`, from an abort listener):
//!
//! - no borrow is ever held across an `.await` (clippy's `await_holding_refcell_ref` is denied workspace-wide);
//! - no code we do not own runs while a borrow is held: the caller's callbacks, their `fetch`, their body's reader,
//!   getters of what they return, and aborting a controller (which runs every abort listener at once). What such a
//!   call needs is copied out of the cell first, and what it gives back is stored after.
//!
//! `close()` borrows nothing: it sets `closed`, aborts, and releases the body only if the cell is free (the loop
//! releases it otherwise, as it sees `closed`).

use crate::body::BodyReader;
use crate::convert::{batch_to_js, fault_to_js};
use crate::error::{feed_error, with_cause};
use crate::fetch::{adopt, new_promise};
use crate::options::{parse, JsOptions};
use crate::page::{read_chunk, start_page, Failed};
use crate::wait::race;
use feedpump_core::driver::{Action, Driver, DriverOptions, Fault, Transport};
use js_sys::{Date, Error, Function, Object, Promise, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{AbortController, AbortSignal};

/// What the reader shares with `close()` and the abort listeners, none of which may borrow `inner`.
pub(crate) struct Shared {
    pub(crate) inner: RefCell<Inner>,
    /// `close()` was called: the loop ends quietly at its next step.
    pub(crate) closed: Cell<bool>,
    /// The reader's own controller for its whole life: `close()` or the caller's signal aborts it. Every wait on
    /// something outside our control races its signal (see [`race`]). It is never handed to a request.
    pub(crate) controller: AbortController,
    /// The controller of the page in flight: each request gets its own signal, so a runtime that keeps a listener on
    /// a request's signal until the request is collected (undici) never piles thousands of them on one signal.
    pub(crate) page: Cell<Option<AbortController>>,
}

impl Shared {
    /// Aborts the reader and the page in flight. Runs every abort listener (the caller's among them): never call it
    /// while `inner` is borrowed.
    fn abort(&self, reason: &JsValue) {
        if !self.controller.signal().aborted() {
            self.controller.abort_with_reason(reason);
        }
        let page = self.page.take();
        self.page.set(page.clone());
        if let Some(page) = page {
            page.abort_with_reason(&self.controller.signal().reason());
        }
    }

    pub(crate) fn aborted(&self) -> bool {
        self.controller.signal().aborted()
    }

    /// Releases the body and the listener on the caller's signal, if the cell is free (it always is, unless a caller
    /// re-entered from code we run while borrowing, which we never do; then the loop releases when it sees `closed`).
    fn release(&self) {
        let Ok(mut me) = self.inner.try_borrow_mut() else { return };
        let released = me.take_release();
        drop(me);
        released.run();
    }
}

pub(crate) struct Inner {
    pub(crate) driver: Driver,
    pub(crate) js: JsOptions,
    /// Keeps the listener on the caller's signal alive; removed on release.
    on_abort: Option<Closure<dyn FnMut()>>,
    pub(crate) reader: Option<BodyReader>,
    /// A `read()` still in flight after the flush timer won the race; the next read awaits it instead of reading
    /// again.
    pub(crate) pending_read: Option<Promise>,
    /// The last chunk and how much of it the driver took (it takes a bounded slice at a time).
    pub(crate) chunk: Vec<u8>,
    pub(crate) chunk_pos: usize,
    busy: bool,
    /// The error that ended the reader, thrown again by later `next()` calls.
    failed: Option<JsValue>,
    /// The JS value of the failure the driver reports next: the error itself (network, the caller's) or its cause.
    cause: JsValue,
    /// The status text of the last response, for an `http-status` message.
    pub(crate) status_text: String,
}

/// What releasing takes out of the cell; [`Released::run`] makes the JS calls once the borrow is dropped.
struct Released {
    reader: Option<BodyReader>,
    listener: Option<(AbortSignal, Closure<dyn FnMut()>)>,
}

impl Released {
    fn run(self) {
        if let Some(reader) = self.reader {
            reader.cancel();
        }
        if let Some((signal, closure)) = self.listener {
            let _ = signal.remove_event_listener_with_callback("abort", closure.as_ref().unchecked_ref());
        }
    }
}

/// Internal: the wrapper's handle on one feed. See docs/wasm-contract.md.
#[wasm_bindgen]
pub struct FeedReader {
    shared: Rc<Shared>,
}

impl std::fmt::Debug for FeedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let page = self.shared.inner.try_borrow().map(|me| me.driver.session().page()).ok();
        f.debug_struct("FeedReader")
            .field("page", &page)
            .field("closed", &self.shared.closed.get())
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    Date::now() as u64
}

#[wasm_bindgen]
impl FeedReader {
    /// Validates the options; no request is made before the first `next()`. (The URL comes as a JS value, read
    /// here: that keeps string-copying code out of the generated JavaScript.)
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "string")] url: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ReaderOptions")] options: JsValue,
    ) -> Result<FeedReader, Error> {
        let url = url.as_string().ok_or_else(|| feed_error("bad-options", "the feed URL must be a string", 0))?;
        let (config, js) = parse(url, &options)?;
        let controller =
            AbortController::new().map_err(|e| with_cause(feed_error("bad-options", "no AbortController", 0), e))?;
        let signal = js.signal.clone();
        let options = DriverOptions {
            flush_ms: js.flush_ms.into(),
            idle_ms: js.idle_timeout_ms.into(),
            can_refresh: js.request_headers.is_some(),
        };
        let inner = Inner {
            driver: Driver::new(config, options),
            js,
            on_abort: None,
            reader: None,
            pending_read: None,
            chunk: Vec::new(),
            chunk_pos: 0,
            busy: false,
            failed: None,
            cause: JsValue::UNDEFINED,
            status_text: String::new(),
        };
        let shared =
            Rc::new(Shared { inner: RefCell::new(inner), closed: Cell::new(false), controller, page: Cell::new(None) });
        if let Some(signal) = signal {
            if signal.aborted() {
                shared.abort(&signal.reason());
            } else {
                // Weak: the listener must not keep the reader alive (the signal may outlive it).
                let weak: Weak<Shared> = Rc::downgrade(&shared);
                let s = signal.clone();
                let closure = Closure::<dyn FnMut()>::new(move || {
                    if let Some(shared) = weak.upgrade() {
                        shared.abort(&s.reason());
                    }
                });
                let _ = signal.add_event_listener_with_callback("abort", closure.as_ref().unchecked_ref());
                shared.inner.borrow_mut().on_abort = Some(closure);
            }
        }
        Ok(FeedReader { shared })
    }

    /// The next committable batch, or `undefined` once caught up or closed.
    #[wasm_bindgen(unchecked_return_type = "Promise<RawBatch | undefined>")]
    pub fn next(&self) -> Promise {
        let shared = self.shared.clone();
        future_to_promise(async move {
            {
                let mut me = shared.inner.borrow_mut();
                if let Some(e) = &me.failed {
                    return Err(e.clone());
                }
                if me.busy {
                    return Err(feed_error("bad-options", "next() called while a previous call is pending", 0).into());
                }
                me.busy = true;
            }
            let result = next_batch(&shared).await;
            let mut me = shared.inner.borrow_mut();
            me.busy = false;
            if let Err(e) = &result {
                me.failed = Some(e.clone());
            }
            // A final failure (its error may still wait behind the batch just handed out) releases everything now.
            if result.is_err() || me.driver.has_failed() || shared.closed.get() {
                drop(me);
                shared.release();
            }
            result
        })
    }

    /// Aborts the fetch in flight and cancels the body. Idempotent, and safe from anywhere: from the caller's
    /// callbacks, their `fetch` and their abort listeners, while a `next()` is in flight.
    pub fn close(&self) {
        if self.shared.closed.replace(true) {
            return;
        }
        self.shared.abort(&JsValue::UNDEFINED);
        self.shared.release();
    }
}

impl Inner {
    /// Takes the body out of the cell (the caller cancels it once the borrow is dropped).
    fn take_body(&mut self) -> Option<BodyReader> {
        self.pending_read = None;
        self.chunk = Vec::new();
        self.chunk_pos = 0;
        self.reader.take()
    }

    fn take_release(&mut self) -> Released {
        let listener = match (&self.js.signal, self.on_abort.take()) {
            (Some(signal), Some(closure)) => Some((signal.clone(), closure)),
            _ => None,
        };
        Released { reader: self.take_body(), listener }
    }

    /// Reports a failure to the driver; keeps its JS value when the driver's next fault is this one.
    fn fail(&mut self, (error, value): Failed) {
        if self.driver.handle_transport_error(now_ms(), error) {
            self.cause = value;
        }
    }

    /// The JS error of a fault; the JS value kept for it is used up.
    fn error(&mut self, fault: &Fault, page: u32) -> JsValue {
        fault_to_js(fault, page, std::mem::replace(&mut self.cause, JsValue::UNDEFINED), &self.status_text)
    }
}

/// Does what the driver asks until a batch is ready or the feed ends. The shell decides nothing: retries, flushes,
/// stalls and the error held back behind the last batch are the driver's.
async fn next_batch(shared: &Shared) -> Result<JsValue, JsValue> {
    loop {
        if shared.closed.get() {
            return Ok(JsValue::UNDEFINED);
        }
        let action = {
            let mut me = shared.inner.borrow_mut();
            if shared.aborted() {
                me.fail((Transport::Aborted, shared.controller.signal().reason()));
            }
            me.driver.poll(now_ms())
        };
        let failed = match action {
            Action::Batch(out) => return Ok(batch_to_js(out).into()),
            Action::Done => return Ok(JsValue::UNDEFINED),
            Action::Fail { fault, page } => return Err(shared.inner.borrow_mut().error(&fault, page)),
            Action::Retry { fault, page, attempt, delay_ms } => {
                let (error, on_retry) = {
                    let mut me = shared.inner.borrow_mut();
                    (me.error(&fault, page), me.js.on_retry.clone())
                };
                report_retry(on_retry.as_ref(), &error, attempt, delay_ms);
                Ok(())
            }
            Action::Cancel => {
                let body = shared.inner.borrow_mut().take_body();
                if let Some(body) = body {
                    body.cancel();
                }
                Ok(())
            }
            Action::Feed => {
                let mut me = shared.inner.borrow_mut();
                let me = &mut *me;
                me.chunk_pos += me.driver.handle_chunk(now_ms(), &me.chunk[me.chunk_pos..]);
                Ok(())
            }
            Action::Read => read_chunk(shared).await,
            Action::Fetch { refresh } => start_page(shared, refresh).await,
            Action::Wait => {
                let at = shared.inner.borrow().driver.poll_timeout();
                let ms = at.map(|at| at.saturating_sub(now_ms()) as f64);
                let _ = race(&shared.controller.signal(), new_promise(&mut |_| {}), ms).await;
                Ok(())
            }
        };
        if let Err(failed) = failed {
            shared.inner.borrow_mut().fail(failed);
        }
    }
}

/// Tells the caller's `onRetry` about a retry (called with no borrow held: it may `close()` the feed). Its own errors,
/// thrown or as a rejected promise, are not ours to handle, but must not stop the feed or go unhandled.
fn report_retry(on_retry: Option<&Function>, error: &JsValue, attempt: u32, delay_ms: u64) {
    let Some(f) = on_retry else { return };
    let info = Object::new();
    let _ = Reflect::set(&info, &"error".into(), error);
    let _ = Reflect::set(&info, &"attempt".into(), &JsValue::from(attempt));
    let _ = Reflect::set(&info, &"delayMs".into(), &JsValue::from_f64(delay_ms as f64));
    if let Ok(returned) = f.call2(&JsValue::NULL, &info, &JsValue::UNDEFINED) {
        if returned.is_object() {
            let settled = adopt(&returned);
            spawn_local(async move {
                let _ = JsFuture::from(settled).await;
            });
        }
    }
}
