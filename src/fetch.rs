//! The global `fetch` and the few stream methods used, bound by hand.
//!
//! `web_sys::window()` does not exist in Node, workerd or web workers, so `fetch` is bound as a global function (as
//! gloo-net does). The body reader is bound structurally, so nothing depends on `ReadableStream` being async-iterable
//! (Safari's is not).

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`.
    #[wasm_bindgen(js_name = fetch)]
    pub(crate) fn global_fetch(request: &web_sys::Request) -> Promise;

    /// A `ReadableStreamDefaultReader` of a response body.
    #[derive(Debug, Clone)]
    pub(crate) type BodyReader;
    #[wasm_bindgen(method)]
    pub(crate) fn read(this: &BodyReader) -> Promise;
    #[wasm_bindgen(method)]
    pub(crate) fn cancel(this: &BodyReader) -> Promise;

    /// A response body stream.
    pub(crate) type BodyStream;
    #[wasm_bindgen(method, js_name = getReader)]
    pub(crate) fn get_reader(this: &BodyStream) -> BodyReader;

    /// `{ done, value }` of a read.
    pub(crate) type ReadResult;
    #[wasm_bindgen(method, getter)]
    pub(crate) fn done(this: &ReadResult) -> bool;
    #[wasm_bindgen(method, getter)]
    pub(crate) fn value(this: &ReadResult) -> Option<Uint8Array>;
}

#[wasm_bindgen]
extern "C" {
    /// The global `setTimeout` (every runtime has it; returns a number or a Node `Timeout`).
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;
    /// The global `clearTimeout`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);
}
