//! `FeedReader`: drives a core [`Session`] over `fetch`, one committable batch per `next()`.
//!
//! State lives in `Rc<RefCell<Inner>>` behind `&self` exports, and no borrow is ever held across an `.await`
//! (clippy's `await_holding_refcell_ref` is denied workspace-wide): every await first clones the JS handle it needs out
//! of the cell.

use crate::error::{feed_error, protocol_error, with_cause};
use crate::fetch::{global_fetch, BodyReader, BodyStream, ReadResult};
use crate::options::{parse, JsOptions};
use feedpump_core::session::BATCH_BYTES;
use feedpump_core::{Batch, Session};
use js_sys::{Array, Error, Object, Promise, Reflect, Uint32Array};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{AbortController, Request, RequestInit, Response};

/// Bytes of a non-2xx body kept for the error (the rest is cancelled).
const SNIPPET_BYTES: usize = 512;

struct Inner {
    session: Session,
    js: JsOptions,
    /// One controller for the reader's whole life: `close()` or the caller's signal aborts it, which rejects the fetch
    /// or body read in flight.
    controller: AbortController,
    /// Keeps the listener on the caller's signal alive; removed on close.
    on_abort: Option<Closure<dyn FnMut()>>,
    /// Resolves (to `undefined`) when `controller` aborts. Every await on something outside our control (the
    /// caller's fetch, hook or body stream, which may ignore the signal) is raced against it, so an abort always
    /// ends the wait. It resolves rather than rejects so that an abort with nobody waiting is not an unhandled
    /// rejection.
    aborted: Promise,
    reader: Option<BodyReader>,
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
        f.debug_struct("FeedReader")
            .field("page", &self.inner.borrow().session.page())
            .finish_non_exhaustive()
    }
}

enum Step {
    Batch(Batch, u32),
    Done,
    Read(BodyReader),
    Fetch(String),
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
        let controller = AbortController::new()
            .map_err(|e| with_cause(feed_error("bad-options", "no AbortController", 0), e))?;
        let mut on_abort = None;
        if let Some(signal) = &js.signal {
            if signal.aborted() {
                controller.abort_with_reason(&signal.reason());
            } else {
                let c = controller.clone();
                let s = signal.clone();
                let closure = Closure::<dyn FnMut()>::new(move || c.abort_with_reason(&s.reason()));
                let _ = signal
                    .add_event_listener_with_callback("abort", closure.as_ref().unchecked_ref());
                on_abort = Some(closure);
            }
        }
        let signal = controller.signal();
        let aborted = Promise::new(&mut |resolve, _reject| {
            if signal.aborted() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            } else {
                let on_abort: js_sys::Function = resolve
                    .bind1(&JsValue::NULL, &JsValue::UNDEFINED)
                    .unchecked_into();
                let _ = signal.add_event_listener_with_callback("abort", &on_abort);
            }
        });
        let inner = Inner {
            session: Session::new(config),
            js,
            controller,
            on_abort,
            aborted,
            reader: None,
            chunk: Vec::new(),
            chunk_pos: 0,
            closed: false,
            busy: false,
            failed: None,
            deferred: None,
        };
        Ok(FeedReader {
            inner: Rc::new(RefCell::new(inner)),
        })
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
                    return Err(feed_error(
                        "bad-options",
                        "next() called while a previous call is pending",
                        0,
                    )
                    .into());
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
    fn release(&mut self) {
        if let Some(reader) = self.reader.take() {
            cancel(reader);
        }
        if let (Some(signal), Some(closure)) = (&self.js.signal, self.on_abort.take()) {
            let _ = signal
                .remove_event_listener_with_callback("abort", closure.as_ref().unchecked_ref());
        }
        self.chunk = Vec::new();
        self.chunk_pos = 0;
    }

    fn aborted_error(&self) -> JsValue {
        let reason = self.controller.signal().reason();
        let page = self.session.page();
        with_cause(feed_error("aborted", "the feed was aborted", page), reason).into()
    }

    /// Decides what to do next without awaiting.
    fn step(&mut self) -> Result<Step, JsValue> {
        loop {
            if self.closed {
                return Ok(Step::Done);
            }
            if self.controller.signal().aborted() {
                return Err(self.aborted_error());
            }
            let page = self.session.page();
            if let Some(batch) = self.session.poll_batch() {
                return Ok(Step::Batch(batch, page));
            }
            if self.chunk_pos < self.chunk.len() {
                let end = (self.chunk_pos + BATCH_BYTES).min(self.chunk.len());
                let r = self.session.handle_chunk(&self.chunk[self.chunk_pos..end]);
                self.chunk_pos = end;
                r.map_err(|e| JsValue::from(protocol_error(&e, page)))?;
                continue;
            }
            if let Some(reader) = &self.reader {
                return Ok(Step::Read(reader.clone()));
            }
            if self.session.is_caught_up() {
                return Ok(Step::Done);
            }
            return match self.session.poll_request() {
                Some(url) => Ok(Step::Fetch(url)),
                None => Err(feed_error("closed", "the feed cannot continue", page).into()),
            };
        }
    }
}

/// Waits for `promise`, or resolves to `undefined` when the reader is aborted or closed first.
async fn race(inner: &Rc<RefCell<Inner>>, promise: Promise) -> Result<JsValue, JsValue> {
    let aborted = inner.borrow().aborted.clone();
    JsFuture::from(Promise::race(&Array::of2(&promise, &aborted))).await
}

/// Drives the session until a batch is ready or the feed ends. On an error, events that were already released (with
/// the checkpoints that cover them) are handed out first; the error comes with the next call.
async fn next_batch(inner: &Rc<RefCell<Inner>>) -> Result<JsValue, JsValue> {
    if let Some(e) = inner.borrow_mut().deferred.take() {
        return Err(e);
    }
    let result = async {
        loop {
            let step = inner.borrow_mut().step()?;
            match step {
                Step::Batch(batch, page) => return Ok(batch_to_js(&batch, page).into()),
                Step::Done => return Ok(JsValue::UNDEFINED),
                Step::Read(reader) => read_chunk(inner, reader).await?,
                Step::Fetch(url) => start_page(inner, url).await?,
            }
        }
    }
    .await;
    match result {
        Err(e) => {
            let mut me = inner.borrow_mut();
            let page = me.session.page();
            match me.session.flush() {
                Some(batch) => {
                    me.deferred = Some(e);
                    Ok(batch_to_js(&batch, page).into())
                }
                None => Err(e),
            }
        }
        ok => ok,
    }
}

/// Reads one chunk into `inner.chunk`, or ends the page.
async fn read_chunk(inner: &Rc<RefCell<Inner>>, reader: BodyReader) -> Result<(), JsValue> {
    let read = race(inner, reader.read()).await;
    let mut me = inner.borrow_mut();
    let page = me.session.page();
    if me.closed {
        return Ok(());
    }
    if me.controller.signal().aborted() {
        return Err(me.aborted_error());
    }
    match read {
        Ok(result) => {
            let result: ReadResult = result.unchecked_into();
            if result.done() {
                me.reader = None;
                me.session
                    .handle_eof()
                    .map_err(|e| JsValue::from(protocol_error(&e, page)))
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
            if me.controller.signal().aborted() {
                return Err(me.aborted_error());
            }
            let at = me.session.body_position();
            let msg =
                format!("the connection ended before the body was complete, after {at} bytes");
            let e = feed_error("truncated-body", &msg, page);
            crate::error::set(&e, "offset", &JsValue::from_f64(at as f64));
            Err(with_cause(e, cause).into())
        }
    }
}

/// Sends the request for the next page and checks its status.
async fn start_page(inner: &Rc<RefCell<Inner>>, url: String) -> Result<(), JsValue> {
    let (hook, custom_fetch, signal, page) = {
        let me = inner.borrow();
        (
            me.js.request_headers.clone(),
            me.js.fetch.clone(),
            me.controller.signal(),
            me.session.page(),
        )
    };
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_signal(Some(&signal));
    if let Some(hook) = hook {
        // The caller's own error is passed through untouched: it is theirs, not a feed error.
        let headers = hook.call0(&JsValue::NULL)?;
        let headers = race(inner, Promise::resolve(&headers)).await?;
        if !headers.is_undefined() && !headers.is_null() {
            init.set_headers(&headers);
        }
    }
    let request = Request::new_with_str_and_init(&url, &init).map_err(|e| {
        with_cause(
            feed_error("bad-options", "the feed URL is not a valid URL", page),
            e,
        )
    })?;
    let promise = match custom_fetch {
        Some(f) => Promise::resolve(&f.call1(&JsValue::NULL, &request)?),
        None => global_fetch(&request),
    };
    let response = race(inner, promise).await;
    let failed_status = {
        let mut me = inner.borrow_mut();
        if me.closed {
            return Ok(());
        }
        if me.controller.signal().aborted() {
            return Err(me.aborted_error());
        }
        let response: Response = match response {
            Ok(r) => r.unchecked_into(),
            Err(cause) => {
                let e = feed_error(
                    "network",
                    "the request failed before a response arrived",
                    page,
                );
                return Err(with_cause(e, cause).into());
            }
        };
        let status = response.status();
        if me.session.handle_status(status).is_err() {
            Some((response, status))
        } else {
            match response.body() {
                Some(body) => me.reader = Some(body.unchecked_into::<BodyStream>().get_reader()),
                None => me
                    .session
                    .handle_eof()
                    .map_err(|e| JsValue::from(protocol_error(&e, page)))?,
            }
            None
        }
    };
    if let Some((response, status)) = failed_status {
        return Err(status_error(response, status, page).await);
    }
    Ok(())
}

/// A non-2xx answer: the status, its text and the start of the body (bounded), then the body is cancelled.
async fn status_error(response: Response, status: u16, page: u32) -> JsValue {
    let mut snippet = Vec::new();
    if let Some(body) = response.body() {
        let reader = body.unchecked_into::<BodyStream>().get_reader();
        while snippet.len() < SNIPPET_BYTES {
            let Ok(result) = JsFuture::from(reader.read()).await else {
                break;
            };
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
    crate::error::set(&e, "status", &JsValue::from(status));
    crate::error::set(&e, "bodySnippet", &JsValue::from_str(&text));
    e.into()
}

/// Cancels a body reader in the background. The promise rejects when the stream already errored, which needs no
/// handling: the stream is released either way.
fn cancel(reader: BodyReader) {
    spawn_local(async move {
        let _ = JsFuture::from(reader.cancel()).await;
    });
}

fn batch_to_js(batch: &Batch, page: u32) -> Object {
    let obj = Object::new();
    let checkpoints = Array::new_with_length(batch.checkpoints.len() as u32);
    for (i, c) in batch.checkpoints.iter().enumerate() {
        let cp = Object::new();
        let _ = Reflect::set(&cp, &"partition".into(), &JsValue::from(c.partition));
        let _ = Reflect::set(&cp, &"cursor".into(), &JsValue::from_str(&c.cursor));
        checkpoints.set(i as u32, cp.into());
    }
    let _ = Reflect::set(&obj, &"text".into(), &JsValue::from_str(&batch.text));
    let _ = Reflect::set(
        &obj,
        &"meta".into(),
        &Uint32Array::from(batch.meta.as_slice()),
    );
    let _ = Reflect::set(&obj, &"checkpoints".into(), &checkpoints);
    let _ = Reflect::set(&obj, &"page".into(), &JsValue::from(page));
    let _ = Reflect::set(&obj, &"ascii".into(), &JsValue::from_bool(batch.ascii));
    obj
}
