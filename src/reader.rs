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

use crate::body::{chunk, Answer, BodyError, BodyReader, Chunk};
use crate::convert::{batch_to_js, fault_to_js};
use crate::error::{feed_error, with_cause};
use crate::fetch::{adopt, global_fetch, new_promise};
use crate::options::{parse, JsOptions};
use crate::wait::{race, timer_fired};
use feedpump_core::driver::{Action, Driver, DriverOptions, Fault, Transport};
use js_sys::{Date, Error, Function, Object, Promise, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{AbortController, AbortSignal, Request, RequestInit};

/// A failure this shell saw, with its JS value (the error itself, or its cause), for [`Driver::handle_transport_error`].
type Failed = (Transport, JsValue);

/// A body that is not a readable stream (or breaks the reader's contract): the caller's `fetch` is at fault.
fn body_error(e: BodyError, page: u32) -> Failed {
    let error = feed_error("bad-options", &e.message, page);
    (Transport::Caller, if let Some(cause) = e.cause { with_cause(error, cause) } else { error }.into())
}

/// What the reader shares with `close()` and the abort listeners, none of which may borrow `inner`.
struct Shared {
    inner: RefCell<Inner>,
    /// `close()` was called: the loop ends quietly at its next step.
    closed: Cell<bool>,
    /// The reader's own controller for its whole life: `close()` or the caller's signal aborts it. Every wait on
    /// something outside our control races its signal (see [`race`]). It is never handed to a request.
    controller: AbortController,
    /// The controller of the page in flight: each request gets its own signal, so a runtime that keeps a listener on
    /// a request's signal until the request is collected (undici) never piles thousands of them on one signal.
    page: Cell<Option<AbortController>>,
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

    fn aborted(&self) -> bool {
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

struct Inner {
    driver: Driver,
    js: JsOptions,
    /// Keeps the listener on the caller's signal alive; removed on release.
    on_abort: Option<Closure<dyn FnMut()>>,
    reader: Option<BodyReader>,
    /// A `read()` still in flight after the flush timer won the race; the next read awaits it instead of reading
    /// again.
    pending_read: Option<Promise>,
    /// The last chunk and how much of it the driver took (it takes a bounded slice at a time).
    chunk: Vec<u8>,
    chunk_pos: usize,
    busy: bool,
    /// The error that ended the reader, thrown again by later `next()` calls.
    failed: Option<JsValue>,
    /// The JS value of the failure the driver reports next: the error itself (network, the caller's) or its cause.
    cause: JsValue,
    /// The status text of the last response, for an `http-status` message.
    status_text: String,
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

fn now_ms() -> u64 {
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
            Action::Fetch { url, refresh } => start_page(shared, &url, refresh).await,
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

/// Reads one chunk for the driver, under the timer it asks for (the flush deadline while released events wait, else
/// the idle watchdog). A read still in flight when the timer fired is awaited again by the next call.
async fn read_chunk(shared: &Shared) -> Result<(), Failed> {
    let (reader, pending, timeout, page) = {
        let mut me = shared.inner.borrow_mut();
        let timeout = me.driver.poll_timeout().map(|at| at.saturating_sub(now_ms()) as f64);
        (me.reader.clone(), me.pending_read.take(), timeout, me.driver.session().page())
    };
    let promise = match (pending, reader) {
        (Some(p), _) => p,
        (None, Some(reader)) => reader.read().map_err(|e| body_error(e, page))?,
        // No body to read (the driver asks only after one was opened): it ended.
        (None, None) => {
            shared.inner.borrow_mut().driver.handle_eof(now_ms());
            return Ok(());
        }
    };
    let read = race(&shared.controller.signal(), promise.clone(), timeout).await;
    if shared.closed.get() || shared.aborted() {
        return Ok(()); // the next step ends quietly or reports the abort
    }
    if timer_fired(&read) {
        let mut me = shared.inner.borrow_mut();
        me.pending_read = Some(promise);
        me.driver.handle_timeout(now_ms());
        return Ok(());
    }
    let result = match read {
        Ok(result) => result,
        Err(cause) => {
            shared.inner.borrow_mut().reader = None;
            return Err((Transport::Cut, cause));
        }
    };
    // Read outside the borrow: `done` and `value` may be getters of the caller's body.
    let chunk = chunk(&result).map_err(|e| body_error(e, page))?;
    let mut me = shared.inner.borrow_mut();
    match chunk {
        Chunk::End => {
            me.reader = None;
            me.driver.handle_eof(now_ms());
        }
        Chunk::Bytes(bytes) => {
            let taken = me.driver.handle_chunk(now_ms(), &bytes);
            if taken < bytes.len() {
                me.chunk = bytes;
                me.chunk_pos = taken;
            }
        }
    }
    Ok(())
}

/// Calls the request-headers hook with `({ refresh }, page)`; what it gives is a checked `Headers` (the wrapper's
/// transport, js/src/transport.ts, checks the caller's answer and makes its `bad-header` errors). Its errors pass
/// through untouched.
async fn request_headers(
    shared: &Shared,
    hook: Option<&Function>,
    refresh: bool,
    page: u32,
) -> Result<JsValue, Failed> {
    let Some(hook) = hook else { return Ok(JsValue::UNDEFINED) };
    let arg = Object::new();
    let _ = Reflect::set(&arg, &"refresh".into(), &JsValue::from_bool(refresh));
    let own = |e: JsValue| (Transport::Caller, e);
    let given = hook.call2(&JsValue::NULL, &arg, &JsValue::from(page)).map_err(own)?;
    race(&shared.controller.signal(), adopt(&given), None).await.map_err(own)
}

/// Sends one request and hands its status and body to the driver (which reads, keeps the start of an error's body,
/// or cancels it to resend a 401). Every call out (the hook, `fetch`, the answer's getters, the body's reader) is
/// made with no borrow held.
async fn start_page(shared: &Shared, url: &str, refresh: bool) -> Result<(), Failed> {
    let (custom_fetch, hook, page) = {
        let me = shared.inner.borrow();
        (me.js.fetch.clone(), me.js.request_headers.clone(), me.driver.session().page())
    };
    let caller = |code: &str, msg: &str| (Transport::Caller, JsValue::from(feed_error(code, msg, page)));
    let controller = AbortController::new().map_err(|e| {
        (Transport::Caller, with_cause(feed_error("bad-options", "no AbortController", page), e).into())
    })?;
    shared.page.set(Some(controller.clone()));
    let headers = request_headers(shared, hook.as_ref(), refresh, page).await?;
    if shared.closed.get() || shared.aborted() {
        return Ok(());
    }
    // A plain object (see crate::fetch on bindings): `{ method, signal, headers? }`.
    let init = Object::new();
    let _ = Reflect::set(&init, &"method".into(), &"GET".into());
    let _ = Reflect::set(&init, &"signal".into(), &controller.signal());
    if !headers.is_undefined() && !headers.is_null() {
        let _ = Reflect::set(&init, &"headers".into(), &headers);
    }
    // The runtime's error would quote the URL, query included: it is not kept.
    let request = Request::new_with_str_and_init(url, init.unchecked_ref::<RequestInit>())
        .map_err(|_| caller("bad-options", "the feed URL is not a valid URL"))?;
    // The wrapper's fetch (js/src/transport.ts) makes the `network` error of a failure before a response.
    let sent = match &custom_fetch {
        Some(f) => f.call2(&JsValue::NULL, &request, &JsValue::from(page)),
        None => global_fetch(&request),
    };
    let response = match sent {
        Ok(p) => race(&shared.controller.signal(), adopt(&p), None).await,
        Err(e) => Err(e),
    };
    if shared.closed.get() || shared.aborted() {
        return Ok(());
    }
    let response = response.map_err(|e| (Transport::Network, e))?;
    let Some(answer) = Answer::read(&response) else {
        let kind = crate::fetch::kind_of(&response);
        let msg = format!("the fetch you passed returned something that is not a Response ({kind})");
        return Err(caller("bad-options", &msg));
    };
    let retry_after = answer.header("retry-after");
    {
        let mut me = shared.inner.borrow_mut();
        me.driver.handle_status(now_ms(), answer.status, retry_after.as_deref());
        me.status_text = answer.status_text;
    }
    // The driver takes the body in every case: to read it, to keep the start of an error's, or to cancel it.
    let reader = BodyReader::open(&answer.body, answer.body_used).map_err(|e| body_error(e, page))?;
    let mut me = shared.inner.borrow_mut();
    match reader {
        Some(reader) => me.reader = Some(reader),
        None => me.driver.handle_eof(now_ms()),
    }
    Ok(())
}
