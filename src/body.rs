//! What `fetch` answered, read defensively: the status, headers and body of a `Response`, or of whatever the caller's
//! `fetch` returned in its place.
//!
//! A body is read through one shape, `read() -> Promise<{ done, value }>` plus an optional `cancel()`: a web
//! `ReadableStream`'s default reader has it, and so has the iterator of an async-iterable body (a Node `Readable`, as
//! node-fetch gives), whose `next()` and `return()` are used. Nothing here relies on `ReadableStream` being
//! async-iterable (Safari's is not). Every call goes through `Reflect` or a `catch` binding: the caller's objects may
//! throw anywhere, and no call here may be made while reader state is borrowed.

use crate::fetch::{adopt, get, get_symbol, kind_of};
use js_sys::{Function, Promise, Symbol, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// Why a body cannot be read: a message for a `bad-options` error, and the runtime's error if there was one (a
/// `TypeError` about a locked stream: it holds no data of ours).
#[derive(Debug)]
pub(crate) struct BodyError {
    pub message: String,
    pub cause: Option<JsValue>,
}

impl BodyError {
    fn new(message: impl Into<String>, cause: Option<JsValue>) -> Self {
        BodyError { message: message.into(), cause }
    }
}

/// A reader of a response body: `read` called on `target` gives `{ done, value }` promises.
#[derive(Debug, Clone)]
pub(crate) struct BodyReader {
    target: JsValue,
    read: Function,
    cancel: Option<Function>,
}

/// One read: the next bytes, or the end of the body.
pub(crate) enum Chunk {
    Bytes(Vec<u8>),
    End,
}

impl BodyReader {
    /// Opens `body`: `Ok(None)` for no body (`null` / `undefined`, an empty page).
    pub(crate) fn open(body: &JsValue, body_used: bool) -> Result<Option<BodyReader>, BodyError> {
        if body_used {
            return Err(BodyError::new("the response body cannot be read (locked or already read)", None));
        }
        if body.is_undefined() || body.is_null() {
            return Ok(None);
        }
        let get_reader = get(body, "getReader");
        if let Some(f) = get_reader.dyn_ref::<Function>() {
            let reader = f
                .call2(body, &JsValue::UNDEFINED, &JsValue::UNDEFINED)
                .map_err(|e| BodyError::new("the response body cannot be read (locked or already read)", Some(e)))?;
            return BodyReader::with(reader, "read", "cancel").map(Some);
        }
        let iterate = get_symbol(body, &Symbol::async_iterator());
        if let Some(f) = iterate.dyn_ref::<Function>() {
            let iterator = f
                .call2(body, &JsValue::UNDEFINED, &JsValue::UNDEFINED)
                .map_err(|e| BodyError::new("the response body cannot be read (its iterator threw)", Some(e)))?;
            return BodyReader::with(iterator, "next", "return").map(Some);
        }
        Err(BodyError::new(
            format!("the response body is not a ReadableStream or an async iterable (it is {})", kind_of(body)),
            None,
        ))
    }

    fn with(target: JsValue, read: &str, cancel: &str) -> Result<BodyReader, BodyError> {
        let read = get(&target, read)
            .dyn_into::<Function>()
            .map_err(|_| BodyError::new("the response body cannot be read (its reader has no read())", None))?;
        let cancel = get(&target, cancel).dyn_into::<Function>().ok();
        Ok(BodyReader { target, read, cancel })
    }

    /// Starts a read: a promise of its `{ done, value }` to race (see [`crate::fetch::adopt`]), or the error a
    /// synchronous throw gave.
    pub(crate) fn read(&self) -> Result<Promise, BodyError> {
        match self.read.call2(&self.target, &JsValue::UNDEFINED, &JsValue::UNDEFINED) {
            // A promise goes to `Promise.race` as it is (which never throws, whatever its `then` does): one adoption
            // per chunk would cost two extra microtask turns on the hot path.
            Ok(p) => Ok(p.dyn_into::<Promise>().unwrap_or_else(|v| adopt(&v))),
            Err(e) => Err(BodyError::new("the response body cannot be read (its read() threw)", Some(e))),
        }
    }

    /// Cancels the body in the background (a later task, so no caller code runs in ours); whatever the cancel
    /// throws or rejects with needs no handling: the body is dropped either way.
    pub(crate) fn cancel(self) {
        let Some(cancel) = self.cancel else { return };
        spawn_local(async move {
            if let Ok(p) = cancel.call2(&self.target, &JsValue::UNDEFINED, &JsValue::UNDEFINED) {
                let _ = JsFuture::from(adopt(&p)).await;
            }
        });
    }
}

/// Reads what a read resolved to (`{ done, value }`); the value must be bytes.
pub(crate) fn chunk(result: &JsValue) -> Result<Chunk, BodyError> {
    if !result.is_object() {
        return Err(BodyError::new(
            format!("the response body's read() gave {}, not {{ done, value }}", kind_of(result)),
            None,
        ));
    }
    if get(result, "done").is_truthy() {
        return Ok(Chunk::End);
    }
    let value = get(result, "value");
    match value.dyn_ref::<Uint8Array>() {
        Some(bytes) => Ok(Chunk::Bytes(bytes.to_vec())),
        None => Err(BodyError::new(
            format!("the response body gave a chunk that is not a Uint8Array (it is {})", kind_of(&value)),
            None,
        )),
    }
}

/// The parts of a `Response` the reader uses, read once.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub status_text: String,
    pub body: JsValue,
    pub body_used: bool,
    headers: JsValue,
}

impl Answer {
    /// Reads `response`; `None` when it has no integer HTTP status (not a `Response`, or a hostile one).
    pub(crate) fn read(response: &JsValue) -> Option<Answer> {
        let status = get(response, "status").as_f64().filter(|s| s.fract() == 0.0 && (0.0..=999.0).contains(s))?;
        Some(Answer {
            status: status as u16,
            status_text: get(response, "statusText").as_string().unwrap_or_default(),
            body: get(response, "body"),
            body_used: get(response, "bodyUsed").is_truthy(),
            headers: get(response, "headers"),
        })
    }

    /// A response header (`headers.get(name)`), or `None`.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let f = get(&self.headers, "get").dyn_into::<Function>().ok()?;
        f.call2(&self.headers, &JsValue::from_str(name), &JsValue::UNDEFINED).ok()?.as_string()
    }
}
