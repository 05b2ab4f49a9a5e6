//! The I/O of one page: the request (with the caller's headers hook and `fetch`), its status, and its body's chunks,
//! each handed to the driver as it comes. No decision is made here: the driver says what to fetch, when to read and
//! for how long, and what a failure is.

use crate::body::{chunk, Answer, BodyError, BodyReader, Chunk};
use crate::error::{feed_error, with_cause};
use crate::fetch::{adopt, global_fetch};
use crate::reader::{now_ms, Shared};
use crate::wait::{race, timer_fired};
use feedpump_core::driver::Transport;
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{AbortController, Request, RequestInit};

/// A failure this shell saw, with its JS value (the error itself, or its cause), for [`Driver::handle_transport_error`].
pub(crate) type Failed = (Transport, JsValue);

/// A body that is not a readable stream (or breaks the reader's contract): the caller's `fetch` is at fault.
pub(crate) fn body_error(e: BodyError, page: u32) -> Failed {
    let error = feed_error("bad-options", &e.message, page);
    (Transport::Caller, if let Some(cause) = e.cause { with_cause(error, cause) } else { error }.into())
}

/// Reads one chunk for the driver, under the timer it asks for (the flush deadline while released events wait, else
/// the idle watchdog). A read still in flight when the timer fired is awaited again by the next call.
pub(crate) async fn read_chunk(shared: &Shared) -> Result<(), Failed> {
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
pub(crate) async fn start_page(shared: &Shared, refresh: bool) -> Result<(), Failed> {
    let (custom_fetch, hook, page, url) = {
        let me = shared.inner.borrow();
        (me.js.fetch.clone(), me.js.request_headers.clone(), me.driver.session().page(), me.driver.url().to_string())
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
    let request = Request::new_with_str_and_init(&url, init.unchecked_ref::<RequestInit>())
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
        me.driver.handle_status(answer.status, retry_after.as_deref());
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
