//! `FeedReader`: drives a core [`Session`] over `fetch`, one committable batch per `next()`.
//!
//! State lives in `Rc<RefCell<Inner>>` behind `&self` exports, and no borrow is ever held across an `.await`
//! (clippy's `await_holding_refcell_ref` is denied workspace-wide): every await first clones the JS handle it needs out
//! of the cell.
//!
//! Failures are [`Fault`]s: a JS `FeedError` plus the core's [`Failure`] class. The core's backoff decides whether to
//! retry; a retry starts again from the last checkpoint (events released before the fault are handed out first).

use crate::error::{feed_error, protocol_error, set, with_cause};
use crate::fetch::{clear_timeout, global_fetch, set_timeout, BodyReader, BodyStream, ReadResult};
use crate::options::{parse, JsOptions};
use feedpump_core::retry::parse_retry_after;
use feedpump_core::session::BATCH_BYTES;
use feedpump_core::{Batch, Decision, ErrorKind, Failure, ProtocolError, Session, Signal};
use js_sys::{Array, Date, Error, Object, Promise, Reflect, Uint32Array};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{AbortController, Request, RequestInit, Response};

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
}

struct Inner {
    session: Session,
    js: JsOptions,
    /// One controller for the reader's whole life: `close()` or the caller's signal aborts it, which rejects the fetch
    /// or body read in flight.
    controller: AbortController,
    /// Keeps the listener on the caller's signal alive; removed on close.
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
    closed: bool,
    busy: bool,
    /// The error that ended the reader, thrown again by later `next()` calls.
    failed: Option<JsValue>,
    /// An error held back while the batch released before it is handed out.
    deferred: Option<JsValue>,
}

/// Internal: the wrapper's handle on one feed. See docs/wasm-contract.md.
#[wasm_bindgen]
pub struct FeedReader {
    inner: Rc<RefCell<Inner>>,
}

impl std::fmt::Debug for FeedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedReader").field("page", &self.inner.borrow().session.page()).finish_non_exhaustive()
    }
}

enum Step {
    Batch(Option<Batch>, Option<Signal>, u32),
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
    /// Validates the options; no request is made before the first `next()`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        url: String,
        #[wasm_bindgen(unchecked_param_type = "ReaderOptions")] options: JsValue,
    ) -> Result<FeedReader, Error> {
        let (config, js) = parse(url, &options)?;
        let controller =
            AbortController::new().map_err(|e| with_cause(feed_error("bad-options", "no AbortController", 0), e))?;
        let mut on_abort = None;
        if let Some(signal) = &js.signal {
            if signal.aborted() {
                controller.abort_with_reason(&signal.reason());
            } else {
                let c = controller.clone();
                let s = signal.clone();
                let closure = Closure::<dyn FnMut()>::new(move || c.abort_with_reason(&s.reason()));
                let _ = signal.add_event_listener_with_callback("abort", closure.as_ref().unchecked_ref());
                on_abort = Some(closure);
            }
        }
        let inner = Inner {
            session: Session::new(config),
            js,
            controller,
            on_abort,
            reader: None,
            pending_read: None,
            flush_now: false,
            released_since: None,
            chunk: Vec::new(),
            chunk_pos: 0,
            closed: false,
            busy: false,
            failed: None,
            deferred: None,
        };
        Ok(FeedReader { inner: Rc::new(RefCell::new(inner)) })
    }

    /// The next committable batch, or `undefined` once caught up or closed.
    #[wasm_bindgen(unchecked_return_type = "Promise<RawBatch | undefined>")]
    pub fn next(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            {
                let mut me = inner.borrow_mut();
                if let Some(e) = &me.failed {
                    return Err(e.clone());
                }
                if me.busy {
                    return Err(feed_error("bad-options", "next() called while a previous call is pending", 0).into());
                }
                me.busy = true;
            }
            let result = next_batch(&inner).await;
            let mut me = inner.borrow_mut();
            me.busy = false;
            if me.deferred.is_some() {
                me.session.handle_transport_error();
                me.release();
            } else if let Err(e) = &result {
                me.failed = Some(e.clone());
                me.session.handle_transport_error();
                me.release();
            }
            result
        })
    }

    /// Aborts the fetch in flight and cancels the body. Idempotent.
    pub fn close(&self) {
        let mut me = self.inner.borrow_mut();
        me.closed = true;
        me.controller.abort();
        me.release();
    }
}

impl Inner {
    fn drop_body(&mut self) {
        if let Some(reader) = self.reader.take() {
            cancel(reader);
        }
        self.pending_read = None;
        self.chunk = Vec::new();
        self.chunk_pos = 0;
    }

    fn release(&mut self) {
        self.drop_body();
        if let (Some(signal), Some(closure)) = (&self.js.signal, self.on_abort.take()) {
            let _ = signal.remove_event_listener_with_callback("abort", closure.as_ref().unchecked_ref());
        }
    }

    fn aborted_fault(&self) -> Fault {
        let reason = self.controller.signal().reason();
        let page = self.session.page();
        Fault::new(with_cause(feed_error("aborted", "the feed was aborted", page), reason), Failure::Aborted)
    }

    /// Decides what to do next without awaiting.
    fn step(&mut self) -> Result<Step, Fault> {
        loop {
            if self.closed {
                return Ok(Step::Done);
            }
            if self.controller.signal().aborted() {
                return Err(self.aborted_fault());
            }
            let page = self.session.page();
            // A signal rides on the batch that ends the page it was found in, or comes alone.
            let batch =
                if std::mem::take(&mut self.flush_now) { self.session.flush() } else { self.session.poll_batch() };
            let signal = self.session.poll_signal();
            if batch.is_some() || signal.is_some() {
                self.released_since = None;
                return Ok(Step::Batch(batch, signal, page));
            }
            if self.chunk_pos < self.chunk.len() {
                let end = (self.chunk_pos + BATCH_BYTES).min(self.chunk.len());
                let r = self.session.handle_chunk(&self.chunk[self.chunk_pos..end]);
                self.chunk_pos = end;
                r.map_err(|e| Fault::protocol(&e, page))?;
                continue;
            }
            // The flush deadline is checked before every read, not only by the timer raced against it: while the
            // body keeps bringing chunks, an already-settled read wins every race and the timer would never fire.
            if self.reader.is_some() && self.session.has_released() && self.flush_in_ms() <= 0.0 {
                self.flush_now = true;
                continue;
            }
            if let Some(reader) = &self.reader {
                return Ok(Step::Read(reader.clone()));
            }
            if self.session.is_caught_up() {
                return Ok(Step::Done);
            }
            if let Some(url) = self.session.poll_request(now_ms()) {
                return Ok(Step::Fetch(url));
            }
            if let Some(at) = self.session.poll_timeout() {
                return Ok(Step::Sleep(at));
            }
            return Err(Fault::new(feed_error("closed", "the feed cannot continue", page), Failure::Protocol));
        }
    }

    /// Milliseconds until released events must be handed out (`maxBatchDelayMs` after they were first released; <= 0
    /// when due). Only meaningful while events are released.
    fn flush_in_ms(&mut self) -> f64 {
        let now = Date::now();
        let since = *self.released_since.get_or_insert(now);
        since + f64::from(self.js.flush_ms) - now
    }

    /// Tells the caller's `onRetry` about a retry. Its own errors are not ours to handle, but must not stop the feed.
    fn report_retry(&self, error: &JsValue, delay_ms: u64) {
        if let Some(f) = &self.js.on_retry {
            let info = Object::new();
            let _ = Reflect::set(&info, &"error".into(), error);
            let _ = Reflect::set(&info, &"attempt".into(), &JsValue::from(self.session.attempts()));
            let _ = Reflect::set(&info, &"delayMs".into(), &JsValue::from_f64(delay_ms as f64));
            let _ = f.call1(&JsValue::NULL, &info);
        }
    }
}

/// Waits for `promise`; resolves to `undefined` when the reader is aborted first, or to [`TIMER_FIRED`] when
/// `timeout_ms` (if any) passes first. Every await on something outside our control (the caller's fetch, hook or body
/// stream, which may ignore the signal) goes through here, so an abort always ends the wait.
///
/// The abort racer is made per call and its listener removed afterwards: racing against one long-lived promise
/// would add a reaction to it per call, each holding that call's result (a body chunk) for the reader's whole life,
/// which kept every byte of a page alive (bench/NOTES.md, RSS growing with the page).
async fn race(inner: &Rc<RefCell<Inner>>, promise: Promise, timeout_ms: Option<f64>) -> Result<JsValue, JsValue> {
    let signal = inner.borrow().controller.signal();
    if signal.aborted() {
        return Ok(JsValue::UNDEFINED);
    }
    let mut on_abort: Option<js_sys::Function> = None;
    let aborted = Promise::new(&mut |resolve, _reject| {
        let f: js_sys::Function = resolve.bind1(&JsValue::NULL, &JsValue::UNDEFINED).unchecked_into();
        let _ = signal.add_event_listener_with_callback("abort", &f);
        on_abort = Some(f);
    });
    let racers = Array::of2(&promise, &aborted);
    let mut timer = JsValue::UNDEFINED;
    if let Some(ms) = timeout_ms {
        racers.push(&Promise::new(&mut |resolve, _| {
            let fire: js_sys::Function = resolve.bind1(&JsValue::NULL, &TIMER_FIRED.into()).unchecked_into();
            timer = set_timeout(&fire, ms);
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

/// Drives the session until a batch is ready or the feed ends. Retryable faults are retried as the policy says; on a
/// final one, events already released (with the checkpoints that cover them) are handed out first and the error
/// comes with the next call.
async fn next_batch(inner: &Rc<RefCell<Inner>>) -> Result<JsValue, JsValue> {
    if let Some(e) = inner.borrow_mut().deferred.take() {
        return Err(e);
    }
    loop {
        let step = inner.borrow_mut().step();
        let result = match step {
            Ok(Step::Batch(batch, signal, page)) => return Ok(batch_to_js(batch.as_ref(), signal, page).into()),
            Ok(Step::Done) => return Ok(JsValue::UNDEFINED),
            Ok(Step::Read(reader)) => read_chunk(inner, reader).await,
            Ok(Step::Fetch(url)) => start_page(inner, url).await,
            Ok(Step::Sleep(at)) => {
                let ms = at.saturating_sub(now_ms()) as f64;
                let _ = race(inner, Promise::new(&mut |_, _| {}), Some(ms)).await;
                Ok(())
            }
            Err(fault) => Err(fault),
        };
        let Err(fault) = result else { continue };
        let mut me = inner.borrow_mut();
        me.drop_body();
        if fault.failure != Failure::Aborted {
            let now = now_ms();
            if let Decision::RetryAt(at) = me.session.handle_failure(now, fault.failure, fault.retry_after_ms) {
                me.report_retry(&fault.error, at.saturating_sub(now));
                continue;
            }
        }
        let page = me.session.page();
        return match me.session.flush() {
            Some(batch) => {
                me.deferred = Some(fault.error);
                Ok(batch_to_js(Some(&batch), None, page).into())
            }
            None => Err(fault.error),
        };
    }
}

/// Reads one chunk into `inner.chunk`, or ends the page. While released events wait, the read is raced against the
/// flush timer (counted from when they were released) instead of the idle watchdog, so they are handed out within
/// `maxBatchDelayMs` even while the body is still open.
async fn read_chunk(inner: &Rc<RefCell<Inner>>, reader: BodyReader) -> Result<(), Fault> {
    let (promise, timeout, flushing) = {
        let mut me = inner.borrow_mut();
        let promise = me.pending_read.take().unwrap_or_else(|| reader.read());
        let idle = me.js.idle_timeout_ms;
        if me.session.has_released() {
            (promise, Some(me.flush_in_ms().max(0.0)), true)
        } else {
            (promise, (idle > 0).then_some(f64::from(idle)), false)
        }
    };
    let read = race(inner, promise.clone(), timeout).await;
    let mut me = inner.borrow_mut();
    if flushing && read.as_ref().is_ok_and(|v| v.as_string().as_deref() == Some(TIMER_FIRED)) {
        me.pending_read = Some(promise);
        me.flush_now = true;
        return Ok(());
    }
    let idle = me.js.idle_timeout_ms;
    let page = me.session.page();
    if me.closed {
        return Ok(());
    }
    if me.controller.signal().aborted() {
        return Err(me.aborted_fault());
    }
    let at = me.session.body_position();
    match read {
        Ok(v) if v.as_string().as_deref() == Some(TIMER_FIRED) => {
            let msg = format!("the body brought no bytes for {idle} ms, after {at} bytes");
            let e = feed_error("stalled-body", &msg, page);
            set(&e, "offset", &JsValue::from_f64(at as f64));
            Err(Fault::new(e, Failure::Stalled))
        }
        Ok(result) => {
            let result: ReadResult = result.unchecked_into();
            if result.done() {
                me.reader = None;
                me.session.handle_eof().map_err(|e| Fault::protocol(&e, page))
            } else {
                if let Some(bytes) = result.value() {
                    me.chunk = bytes.to_vec();
                    me.chunk_pos = 0;
                }
                Ok(())
            }
        }
        Err(cause) => {
            me.reader = None;
            let msg = format!("the connection ended before the body was complete, after {at} bytes");
            let e = feed_error("truncated-body", &msg, page);
            set(&e, "offset", &JsValue::from_f64(at as f64));
            Err(Fault::new(with_cause(e, cause), Failure::Truncated))
        }
    }
}

/// Calls the caller's request-headers hook with `{ refresh }`; its own errors pass through untouched.
async fn request_headers(inner: &Rc<RefCell<Inner>>, refresh: bool) -> Result<JsValue, Fault> {
    let Some(hook) = inner.borrow().js.request_headers.clone() else { return Ok(JsValue::UNDEFINED) };
    let arg = Object::new();
    let _ = Reflect::set(&arg, &"refresh".into(), &JsValue::from_bool(refresh));
    let own = |e: JsValue| Fault::new(e, Failure::Protocol);
    let headers = hook.call1(&JsValue::NULL, &arg).map_err(own)?;
    race(inner, Promise::resolve(&headers), None).await.map_err(own)
}

/// Sends the request for the next page and checks its status. On a 401 the headers hook is asked once more, with
/// `refresh: true`, so it can renew a token.
async fn start_page(inner: &Rc<RefCell<Inner>>, url: String) -> Result<(), Fault> {
    let (custom_fetch, signal, page) = {
        let me = inner.borrow();
        (me.js.fetch.clone(), me.controller.signal(), me.session.page())
    };
    let mut refresh = false;
    loop {
        let init = RequestInit::new();
        init.set_method("GET");
        init.set_signal(Some(&signal));
        let headers = request_headers(inner, refresh).await?;
        if !headers.is_undefined() && !headers.is_null() {
            init.set_headers(&headers);
        }
        let request = Request::new_with_str_and_init(&url, &init).map_err(|e| {
            Fault::new(
                with_cause(feed_error("bad-options", "the feed URL is not a valid URL", page), e),
                Failure::Protocol,
            )
        })?;
        let promise = match &custom_fetch {
            Some(f) => f.call1(&JsValue::NULL, &request).map(|p| Promise::resolve(&p)),
            None => Ok(global_fetch(&request)),
        };
        let response = match promise {
            Ok(p) => race(inner, p, None).await,
            Err(e) => Err(e),
        };
        let failed_status = {
            let mut me = inner.borrow_mut();
            if me.closed {
                return Ok(());
            }
            if me.controller.signal().aborted() {
                return Err(me.aborted_fault());
            }
            let response: Response = match response {
                Ok(r) => r.unchecked_into(),
                Err(cause) => {
                    let e = feed_error("network", "the request failed before a response arrived", page);
                    return Err(Fault::new(with_cause(e, cause), Failure::Network));
                }
            };
            let status = response.status();
            if me.session.handle_status(status).is_err() {
                Some((response, status))
            } else {
                match response.body() {
                    Some(body) => me.reader = Some(body.unchecked_into::<BodyStream>().get_reader()),
                    None => me.session.handle_eof().map_err(|e| Fault::protocol(&e, page))?,
                }
                None
            }
        };
        let Some((response, status)) = failed_status else { return Ok(()) };
        if status == 401 && !refresh && inner.borrow().js.request_headers.is_some() {
            refresh = true;
            cancel_body(&response);
            inner.borrow_mut().session.handle_retry_same_page();
            continue;
        }
        return Err(status_error(response, status, page).await);
    }
}

/// A non-2xx answer: the status, its text and the start of the body (bounded), then the body is cancelled.
async fn status_error(response: Response, status: u16, page: u32) -> Fault {
    let retry_after = response.headers().get("retry-after").ok().flatten().and_then(|v| parse_retry_after(&v));
    let mut snippet = Vec::new();
    if let Some(body) = response.body() {
        let reader = body.unchecked_into::<BodyStream>().get_reader();
        while snippet.len() < SNIPPET_BYTES {
            let Ok(result) = JsFuture::from(reader.read()).await else { break };
            let result: ReadResult = result.unchecked_into();
            match result.value() {
                Some(bytes) if !result.done() => snippet.extend_from_slice(&bytes.to_vec()),
                _ => break,
            }
        }
        cancel(reader);
    }
    snippet.truncate(SNIPPET_BYTES);
    let text = String::from_utf8_lossy(&snippet).trim().to_string();
    let mut msg = format!("the server answered {status} {}", response.status_text());
    if !text.is_empty() {
        msg.push_str(": ");
        msg.push_str(&text);
    }
    let e = feed_error("http-status", msg.trim(), page);
    set(&e, "status", &JsValue::from(status));
    set(&e, "bodySnippet", &JsValue::from_str(&text));
    Fault { error: e.into(), failure: Failure::Status(status), retry_after_ms: retry_after }
}

fn cancel_body(response: &Response) {
    if let Some(body) = response.body() {
        cancel(body.unchecked_into::<BodyStream>().get_reader());
    }
}

/// Cancels a body reader in the background. The promise rejects when the stream already errored, which needs no
/// handling: the stream is released either way.
fn cancel(reader: BodyReader) {
    spawn_local(async move {
        let _ = JsFuture::from(reader.cancel()).await;
    });
}

fn batch_to_js(batch: Option<&Batch>, signal: Option<Signal>, page: u32) -> Object {
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
    let checkpoints = Array::new_with_length(batch.checkpoints.len() as u32);
    for (i, c) in batch.checkpoints.iter().enumerate() {
        let cp = Object::new();
        let _ = Reflect::set(&cp, &"partition".into(), &JsValue::from(c.partition));
        let _ = Reflect::set(&cp, &"cursor".into(), &JsValue::from_str(&c.cursor));
        checkpoints.set(i as u32, cp.into());
    }
    let _ = Reflect::set(&obj, &"text".into(), &JsValue::from_str(&batch.text));
    let _ = Reflect::set(&obj, &"meta".into(), &Uint32Array::from(batch.meta.as_slice()));
    let _ = Reflect::set(&obj, &"checkpoints".into(), &checkpoints);
    let _ = Reflect::set(&obj, &"page".into(), &JsValue::from(page));
    let _ = Reflect::set(&obj, &"ascii".into(), &JsValue::from_bool(batch.ascii));
    obj
}
