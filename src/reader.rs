//! `FeedReader`: drives a core [`Session`] over `fetch`, one committable batch per `next()`.
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
//!
//! Failures are [`Fault`]s: a JS `FeedError` plus the core's [`Failure`] class. The core's backoff decides whether to
//! retry; a retry starts again from the last checkpoint (events released before the fault are handed out first).

use crate::body::{chunk, Answer, BodyError, BodyReader, Chunk};
use crate::error::{feed_error, protocol_error, set, with_cause};
use crate::fetch::{adopt, clear_timeout, global_fetch, new_promise, set_timeout};
use crate::options::{parse, JsOptions};
use feedpump_core::retry::parse_retry_after;
use feedpump_core::session::BATCH_BYTES;
use feedpump_core::{Batch, Decision, ErrorKind, Failure, ProtocolError, Session, Signal};
use js_sys::{Array, Date, Error, Function, Object, Promise, Reflect, Uint32Array};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{AbortController, AbortSignal, Request, RequestInit};

/// Bytes of a non-2xx body kept for the error (the rest is cancelled).
const SNIPPET_BYTES: usize = 512;
/// What a timer race resolves to when the timer wins (the abort race resolves to `undefined`).
const TIMER_FIRED: &str = "feedpump:timer";

/// A failed step: the error to show and how the retry policy should see it.
struct Fault {
    error: JsValue,
    failure: Failure,
    retry_after_ms: Option<u64>,
}

impl Fault {
    fn new(error: impl Into<JsValue>, failure: Failure) -> Self {
        Fault { error: error.into(), failure, retry_after_ms: None }
    }

    fn protocol(e: &ProtocolError, page: u32) -> Self {
        let failure = match e.kind {
            ErrorKind::TruncatedBody => Failure::Truncated,
            _ => Failure::Protocol,
        };
        Fault::new(protocol_error(e, page), failure)
    }

    /// A body that is not a readable stream (or breaks the reader's contract): the caller's `fetch` is at fault, and
    /// retrying gives the same.
    fn body(e: BodyError, page: u32) -> Self {
        let error = feed_error("bad-options", &e.message, page);
        Fault::new(if let Some(cause) = e.cause { with_cause(error, cause) } else { error }, Failure::Protocol)
    }
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

    fn aborted_fault(&self, page: u32) -> Fault {
        let reason = self.controller.signal().reason();
        Fault::new(with_cause(feed_error("aborted", "the feed was aborted", page), reason), Failure::Aborted)
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
    session: Session,
    js: JsOptions,
    /// Keeps the listener on the caller's signal alive; removed on release.
    on_abort: Option<Closure<dyn FnMut()>>,
    reader: Option<BodyReader>,
    /// A `read()` still in flight after the flush timer won the race; the next read awaits it instead of reading
    /// again.
    pending_read: Option<Promise>,
    /// The body went quiet with events released: hand them out now.
    flush_now: bool,
    /// When released events first waited to be handed out (ms); the flush timer counts from here, so a body that
    /// trickles a line every few ms cannot postpone them.
    released_since: Option<f64>,
    /// The chunk being fed to the core and how far it got: chunks are fed in `BATCH_BYTES` slices so a large network
    /// chunk still gives batches of bounded size.
    chunk: Vec<u8>,
    chunk_pos: usize,
    busy: bool,
    /// The error that ended the reader, thrown again by later `next()` calls.
    failed: Option<JsValue>,
    /// An error held back while the batch released before it is handed out.
    deferred: Option<JsValue>,
    /// The page and body position the last batch handed out reached: each batch reports the body bytes read since.
    reported: (u32, u64),
    /// The body of the current page was read to its end: the batch that empties it says so (`end`), even an empty one.
    page_done: bool,
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
        let page = self.shared.inner.try_borrow().map(|me| me.session.page()).ok();
        f.debug_struct("FeedReader")
            .field("page", &page)
            .field("closed", &self.shared.closed.get())
            .finish_non_exhaustive()
    }
}

enum Step {
    Batch(Option<Batch>, Option<Signal>, u32, u64, bool),
    Done,
    Read(BodyReader),
    Fetch(String),
    Sleep(u64),
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
        let inner = Inner {
            session: Session::new(config),
            js,
            on_abort: None,
            reader: None,
            pending_read: None,
            flush_now: false,
            released_since: None,
            chunk: Vec::new(),
            chunk_pos: 0,
            busy: false,
            failed: None,
            deferred: None,
            reported: (0, 0),
            page_done: false,
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
            let failed = if me.deferred.is_some() {
                true
            } else if let Err(e) = &result {
                me.failed = Some(e.clone());
                true
            } else {
                false
            };
            if failed {
                me.session.handle_transport_error();
            }
            if failed || shared.closed.get() {
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

    /// Milliseconds until released events must be handed out (`maxBatchDelayMs` after they were first released; <= 0
    /// when due). Only meaningful while events are released.
    /// The body bytes of the current page read since the last batch was handed out (a new page counts from 0).
    fn new_bytes(&mut self) -> u64 {
        let (page, position) = (self.session.page(), self.session.body_position());
        let since = if self.reported.0 == page { self.reported.1 } else { 0 };
        self.reported = (page, position);
        position.saturating_sub(since)
    }

    fn flush_in_ms(&mut self) -> f64 {
        let now = Date::now();
        let since = *self.released_since.get_or_insert(now);
        since + f64::from(self.js.flush_ms) - now
    }
}

/// Decides what to do next without awaiting and without calling out.
fn step(shared: &Shared) -> Result<Step, Fault> {
    let mut me = shared.inner.borrow_mut();
    loop {
        if shared.closed.get() {
            return Ok(Step::Done);
        }
        let page = me.session.page();
        if shared.aborted() {
            return Err(shared.aborted_fault(page));
        }
        // A signal rides on the batch that ends the page it was found in, or comes alone.
        let batch = if std::mem::take(&mut me.flush_now) { me.session.flush() } else { me.session.poll_batch() };
        let signal = me.session.poll_signal();
        let end = me.page_done && me.chunk_pos >= me.chunk.len() && !me.session.has_released();
        if batch.is_some() || signal.is_some() || end {
            me.released_since = None;
            me.page_done &= !end;
            let bytes = me.new_bytes();
            return Ok(Step::Batch(batch, signal, page, bytes, end));
        }
        if me.chunk_pos < me.chunk.len() {
            let end = (me.chunk_pos + BATCH_BYTES).min(me.chunk.len());
            let me = &mut *me;
            let r = me.session.handle_chunk(&me.chunk[me.chunk_pos..end]);
            me.chunk_pos = end;
            r.map_err(|e| Fault::protocol(&e, page))?;
            continue;
        }
        // The flush deadline is checked before every read, not only by the timer raced against it: while the
        // body keeps bringing chunks, an already-settled read wins every race and the timer would never fire.
        if me.reader.is_some() && me.session.has_released() && me.flush_in_ms() <= 0.0 {
            me.flush_now = true;
            continue;
        }
        if let Some(reader) = &me.reader {
            return Ok(Step::Read(reader.clone()));
        }
        if me.session.is_caught_up() {
            return Ok(Step::Done);
        }
        if let Some(url) = me.session.poll_request(now_ms()) {
            return Ok(Step::Fetch(url));
        }
        if let Some(at) = me.session.poll_timeout() {
            return Ok(Step::Sleep(at));
        }
        return Err(Fault::new(feed_error("closed", "the feed cannot continue", page), Failure::Protocol));
    }
}

/// Waits for `promise` (a native promise: one of ours, see [`adopt`], or one whose `then` may be the caller's, which
/// `Promise.race` calls without ever throwing); resolves to `undefined` when the reader is aborted first, or to [`TIMER_FIRED`] when `timeout_ms` (if any) passes first. Every await on something outside our control
/// (the caller's fetch, hook or body stream, which may ignore the signal) goes through here, so an abort always ends
/// the wait. The promise is raced even when the reader is already aborted, so its rejection is always handled.
///
/// The abort racer is made per call and its listener removed afterwards: racing against one long-lived promise
/// would add a reaction to it per call, each holding that call's result (a body chunk) for the reader's whole life,
/// which kept every byte of a page alive (bench/NOTES.md, RSS growing with the page).
async fn race(shared: &Shared, promise: Promise, timeout_ms: Option<f64>) -> Result<JsValue, JsValue> {
    let signal = shared.controller.signal();
    let mut on_abort: Option<Function> = None;
    // The abort racer resolves to the `abort` event (an object, never [`TIMER_FIRED`]).
    let aborted = if signal.aborted() {
        adopt(&JsValue::UNDEFINED)
    } else {
        new_promise(&mut |resolve| {
            let _ = signal.add_event_listener_with_callback("abort", &resolve);
            on_abort = Some(resolve);
        })
    };
    let racers = Array::new();
    racers.push(&promise);
    racers.push(&aborted);
    let mut timer = JsValue::UNDEFINED;
    if let Some(ms) = timeout_ms {
        racers.push(&new_promise(&mut |resolve| {
            timer = set_timeout(&resolve, ms, &TIMER_FIRED.into());
        }));
    }
    let result = JsFuture::from(Promise::race(&racers)).await;
    if timeout_ms.is_some() {
        clear_timeout(&timer);
    }
    if let Some(f) = on_abort {
        let _ = signal.remove_event_listener_with_callback("abort", &f);
    }
    result
}

/// Whether `v` is what a race resolves to when its timer wins.
fn timer_fired(v: &Result<JsValue, JsValue>) -> bool {
    v.as_ref().is_ok_and(|v| v.as_string().as_deref() == Some(TIMER_FIRED))
}

/// Drives the session until a batch is ready or the feed ends. Retryable faults are retried as the policy says; on a
/// final one, events already released (with the checkpoints that cover them) are handed out first and the error
/// comes with the next call.
async fn next_batch(shared: &Shared) -> Result<JsValue, JsValue> {
    if let Some(e) = shared.inner.borrow_mut().deferred.take() {
        return Err(e);
    }
    loop {
        let result = match step(shared) {
            Ok(Step::Batch(batch, signal, page, bytes, end)) => {
                return Ok(batch_to_js(batch.as_ref(), signal, page, bytes, end).into())
            }
            Ok(Step::Done) => return Ok(JsValue::UNDEFINED),
            Ok(Step::Read(reader)) => read_chunk(shared, reader).await,
            Ok(Step::Fetch(url)) => start_page(shared, url).await,
            Ok(Step::Sleep(at)) => {
                let ms = at.saturating_sub(now_ms()) as f64;
                let _ = race(shared, new_promise(&mut |_| {}), Some(ms)).await;
                Ok(())
            }
            Err(fault) => Err(fault),
        };
        let Err(fault) = result else { continue };
        if shared.closed.get() {
            continue; // the next step ends the iteration quietly
        }
        let mut me = shared.inner.borrow_mut();
        let body = me.take_body();
        let retry = if fault.failure == Failure::Aborted {
            None
        } else {
            let now = now_ms();
            match me.session.handle_failure(now, fault.failure, fault.retry_after_ms) {
                Decision::RetryAt(at) => Some((me.js.on_retry.clone(), me.session.attempts(), at.saturating_sub(now))),
                _ => None,
            }
        };
        let page = me.session.page();
        let flushed = if retry.is_none() { me.session.flush() } else { None };
        if let Some(batch) = &flushed {
            me.deferred = Some(fault.error.clone());
            let bytes = me.new_bytes();
            drop(me);
            if let Some(body) = body {
                body.cancel();
            }
            return Ok(batch_to_js(Some(batch), None, page, bytes, false).into());
        }
        drop(me);
        if let Some(body) = body {
            body.cancel();
        }
        match retry {
            Some((on_retry, attempt, delay_ms)) => {
                report_retry(on_retry.as_ref(), &fault.error, attempt, delay_ms);
                continue;
            }
            None => return Err(fault.error),
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

/// Reads one chunk into `inner.chunk`, or ends the page. While released events wait, the read is raced against the
/// flush timer (counted from when they were released) instead of the idle watchdog, so they are handed out within
/// `maxBatchDelayMs` even while the body is still open.
async fn read_chunk(shared: &Shared, reader: BodyReader) -> Result<(), Fault> {
    let (pending, timeout, flushing, idle, page) = {
        let mut me = shared.inner.borrow_mut();
        let pending = me.pending_read.take();
        let idle = me.js.idle_timeout_ms;
        let page = me.session.page();
        if me.session.has_released() {
            (pending, Some(me.flush_in_ms().max(0.0)), true, idle, page)
        } else {
            (pending, (idle > 0).then_some(f64::from(idle)), false, idle, page)
        }
    };
    let promise = match pending {
        Some(p) => p,
        None => reader.read().map_err(|e| Fault::body(e, page))?,
    };
    let read = race(shared, promise.clone(), timeout).await;
    if flushing && timer_fired(&read) {
        let mut me = shared.inner.borrow_mut();
        me.pending_read = Some(promise);
        me.flush_now = true;
        return Ok(());
    }
    if shared.closed.get() {
        return Ok(());
    }
    if shared.aborted() {
        return Err(shared.aborted_fault(page));
    }
    let at = shared.inner.borrow().session.body_position();
    match read {
        Ok(_) if timer_fired(&read) => {
            let msg = format!("the body brought no bytes for {idle} ms, after {at} bytes");
            let e = feed_error("stalled-body", &msg, page);
            set(&e, "offset", &JsValue::from_f64(at as f64));
            Err(Fault::new(e, Failure::Stalled))
        }
        Ok(result) => {
            // Read outside the borrow: `done` and `value` may be getters of the caller's body.
            let chunk = chunk(&result).map_err(|e| Fault::body(e, page))?;
            let mut me = shared.inner.borrow_mut();
            match chunk {
                Chunk::End => {
                    me.reader = None;
                    me.session.handle_eof().map_err(|e| Fault::protocol(&e, page))?;
                    me.page_done = true;
                    Ok(())
                }
                Chunk::Bytes(bytes) => {
                    me.chunk = bytes;
                    me.chunk_pos = 0;
                    Ok(())
                }
            }
        }
        Err(cause) => {
            shared.inner.borrow_mut().reader = None;
            let msg = format!("the connection ended before the body was complete, after {at} bytes");
            let e = feed_error("truncated-body", &msg, page);
            set(&e, "offset", &JsValue::from_f64(at as f64));
            Err(Fault::new(with_cause(e, cause), Failure::Truncated))
        }
    }
}

/// Calls the request-headers hook with `({ refresh }, page)`; what it gives is a checked `Headers` (the wrapper's
/// transport, js/src/transport.ts, checks the caller's answer and makes its `bad-header` errors). Its errors pass
/// through untouched.
async fn request_headers(shared: &Shared, hook: Option<&Function>, refresh: bool, page: u32) -> Result<JsValue, Fault> {
    let Some(hook) = hook else { return Ok(JsValue::UNDEFINED) };
    let arg = Object::new();
    let _ = Reflect::set(&arg, &"refresh".into(), &JsValue::from_bool(refresh));
    let own = |e: JsValue| Fault::new(e, Failure::Protocol);
    let given = hook.call2(&JsValue::NULL, &arg, &JsValue::from(page)).map_err(own)?;
    race(shared, adopt(&given), None).await.map_err(own)
}

/// Sends the request for the next page and checks its status. On a 401 the headers hook is asked once more, with
/// `refresh: true`, so it can renew a token. Every call out (the hook, `fetch`, the answer's getters, the body's
/// reader) is made with no borrow held.
async fn start_page(shared: &Shared, url: String) -> Result<(), Fault> {
    let (custom_fetch, hook, page, idle) = {
        let me = shared.inner.borrow();
        (me.js.fetch.clone(), me.js.request_headers.clone(), me.session.page(), me.js.idle_timeout_ms)
    };
    let mut refresh = false;
    loop {
        let controller = AbortController::new().map_err(|e| {
            Fault::new(with_cause(feed_error("bad-options", "no AbortController", page), e), Failure::Protocol)
        })?;
        shared.page.set(Some(controller.clone()));
        let headers = request_headers(shared, hook.as_ref(), refresh, page).await?;
        if shared.closed.get() {
            return Ok(());
        }
        if shared.aborted() {
            return Err(shared.aborted_fault(page));
        }
        // A plain object (see crate::fetch on bindings): `{ method, signal, headers? }`.
        let init = Object::new();
        let _ = Reflect::set(&init, &"method".into(), &"GET".into());
        let _ = Reflect::set(&init, &"signal".into(), &controller.signal());
        if !headers.is_undefined() && !headers.is_null() {
            let _ = Reflect::set(&init, &"headers".into(), &headers);
        }
        // The runtime's error would quote the URL, query included: it is not kept.
        let request = Request::new_with_str_and_init(&url, init.unchecked_ref::<RequestInit>()).map_err(|_| {
            Fault::new(feed_error("bad-options", "the feed URL is not a valid URL", page), Failure::Protocol)
        })?;
        // The wrapper's fetch (js/src/transport.ts) makes the `network` error of a failure before a response.
        let sent = match &custom_fetch {
            Some(f) => f.call2(&JsValue::NULL, &request, &JsValue::from(page)),
            None => global_fetch(&request),
        };
        let response = match sent {
            Ok(p) => race(shared, adopt(&p), None).await,
            Err(e) => Err(e),
        };
        if shared.closed.get() {
            return Ok(());
        }
        if shared.aborted() {
            return Err(shared.aborted_fault(page));
        }
        let response = response.map_err(|e| Fault::new(e, Failure::Network))?;
        let Some(answer) = Answer::read(&response) else {
            let msg = format!(
                "the fetch you passed returned something that is not a Response ({})",
                crate::fetch::kind_of(&response)
            );
            return Err(Fault::new(feed_error("bad-options", &msg, page), Failure::Protocol));
        };
        let status = answer.status;
        let ok = shared.inner.borrow_mut().session.handle_status(status).is_ok();
        if ok {
            let reader = BodyReader::open(&answer.body, answer.body_used).map_err(|e| Fault::body(e, page))?;
            let mut me = shared.inner.borrow_mut();
            match reader {
                Some(reader) => me.reader = Some(reader),
                None => me.session.handle_eof().map_err(|e| Fault::protocol(&e, page))?,
            }
            return Ok(());
        }
        // A 401 asks the headers hook once more (refresh: true); the core allows one resend per failed status.
        if status == 401 && !refresh && hook.is_some() && shared.inner.borrow_mut().session.handle_retry_same_page() {
            refresh = true;
            if let Ok(Some(body)) = BodyReader::open(&answer.body, answer.body_used) {
                body.cancel();
            }
            continue;
        }
        let fault = status_error(shared, answer, page, idle).await;
        if shared.closed.get() {
            return Ok(());
        }
        return Err(fault);
    }
}

/// A non-2xx answer: the status, its text and the start of the body (bounded), then the body is cancelled. The body
/// is read under the idle watchdog and the abort signal like any other: an error body that never comes is reported
/// with what came, and an abort meanwhile is `aborted`.
async fn status_error(shared: &Shared, answer: Answer, page: u32, idle_ms: u32) -> Fault {
    let retry_after = answer.header("retry-after").and_then(|v| parse_retry_after(&v));
    let mut snippet = Vec::new();
    if let Ok(Some(reader)) = BodyReader::open(&answer.body, answer.body_used) {
        let timeout = (idle_ms > 0).then_some(f64::from(idle_ms));
        while snippet.len() < SNIPPET_BYTES {
            let Ok(promise) = reader.read() else { break };
            let read = race(shared, promise, timeout).await;
            if shared.aborted() {
                reader.cancel();
                return shared.aborted_fault(page);
            }
            let Ok(result) = read else { break };
            if timer_fired(&Ok(result.clone())) {
                break;
            }
            match chunk(&result) {
                Ok(Chunk::Bytes(bytes)) => snippet.extend_from_slice(&bytes),
                _ => break,
            }
        }
        reader.cancel();
    }
    snippet.truncate(SNIPPET_BYTES);
    let text = String::from_utf8_lossy(&snippet).trim().to_string();
    let mut msg = format!("the server answered {} {}", answer.status, answer.status_text);
    if !text.is_empty() {
        msg.push_str(": ");
        msg.push_str(&text);
    }
    let e = feed_error("http-status", msg.trim(), page);
    set(&e, "status", &JsValue::from(answer.status));
    set(&e, "bodySnippet", &JsValue::from_str(&text));
    Fault { error: e.into(), failure: Failure::Status(answer.status), retry_after_ms: retry_after }
}

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
    if !batch.types.is_empty() {
        let _ = Reflect::set(&obj, &"types".into(), &Uint32Array::from(batch.types.as_slice()));
    }
    let _ = Reflect::set(&obj, &"checkpoints".into(), &checkpoints);
    let _ = Reflect::set(&obj, &"page".into(), &JsValue::from(page));
    let _ = Reflect::set(&obj, &"ascii".into(), &JsValue::from_bool(batch.ascii));
    let _ = Reflect::set(&obj, &"bytes".into(), &JsValue::from_f64(bytes as f64));
    if end {
        let _ = Reflect::set(&obj, &"end".into(), &JsValue::TRUE);
    }
    obj
}
