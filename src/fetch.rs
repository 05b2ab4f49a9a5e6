//! The global `fetch`, timers and the few built-ins used, bound by hand.
//!
//! `web_sys::window()` does not exist in Node, workerd or web workers, so `fetch` is bound as a global function (as
//! gloo-net does). Every binding that can reach code we do not own (a patched global `fetch`, a caller's object, a
//! getter, an iterator) is `catch`: a throw becomes an `Err`, never an exception unwinding through the wasm (which
//! would leave a `RefCell` borrowed for ever and escape the promise `next()` returned).
//!
//! Each distinct binding costs a function in the generated JavaScript the package ships, so the shell uses few:
//! every call out is `Function.call2` (a callee ignores the arguments it does not take), arrays are built with
//! `push`, and plain objects (a `RequestInit` among them) with `Reflect.set`.

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;

use feedpump_core::MAX_TIMER_MS;

#[wasm_bindgen]
extern "C" {
    /// `setTimeout(callback, ms, arg)`: `callback` is called with `arg`.
    #[wasm_bindgen(js_name = setTimeout)]
    fn raw_set_timeout(callback: &Function, ms: f64, arg: &JsValue) -> JsValue;
    /// The global `clearTimeout`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);
}

/// `setTimeout(callback, ms, arg)`, clamped to what timers accept: `ms` is limited to `0..=MAX_TIMER_MS`, so no timer
/// the shell sets can fire early because its delay overflowed.
pub(crate) fn set_timeout(callback: &Function, ms: f64, arg: &JsValue) -> JsValue {
    let ms = if ms.is_nan() { 0.0 } else { ms.clamp(0.0, MAX_TIMER_MS as f64) };
    raw_set_timeout(callback, ms, arg)
}

/// Calls the global `fetch` as it is now (a test double or an instrumentation library may have replaced it). The
/// wrapper always passes its own `fetch` (js/src/transport.ts); this serves a reader made directly.
pub(crate) fn global_fetch(request: &JsValue) -> Result<JsValue, JsValue> {
    match get(&js_sys::global(), "fetch").dyn_into::<Function>() {
        Ok(f) => f.call2(&JsValue::UNDEFINED, request, &JsValue::UNDEFINED),
        Err(_) => Err(js_sys::Error::new("fetch is not a function in this runtime").into()),
    }
}

/// `new Promise(executor)` (`executor` gets `resolve`), through the same binding as `future_to_promise` uses: one
/// `Promise` constructor in the generated JavaScript, not two.
pub(crate) fn new_promise(executor: &mut dyn FnMut(Function)) -> Promise {
    Promise::new_typed::<JsValue>(&mut |resolve, _reject| executor(resolve.unchecked_into()))
}

/// Our own promise that follows `value` (a promise, a thenable or a plain value). Unlike `Promise.resolve`, it never
/// throws (a throwing `then` or `constructor` getter rejects it instead), and awaiting or racing it never runs the
/// caller's `then` synchronously. Call it outside any borrow: the resolve function reads `value.then` at once.
pub(crate) fn adopt(value: &JsValue) -> Promise {
    new_promise(&mut |resolve| {
        let _ = resolve.call2(&JsValue::UNDEFINED, value, &JsValue::UNDEFINED);
    })
}

/// `Reflect.get`, with a throwing getter or proxy trap read as `undefined`.
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() && !obj.is_function() {
        return JsValue::UNDEFINED;
    }
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `Reflect.get` with a symbol key.
pub(crate) fn get_symbol(obj: &JsValue, key: &js_sys::Symbol) -> JsValue {
    if !obj.is_object() && !obj.is_function() {
        return JsValue::UNDEFINED;
    }
    js_sys::Reflect::get(obj, key).unwrap_or(JsValue::UNDEFINED)
}

/// What a value is, for a message: "a string", "an object", … (never its content).
pub(crate) fn kind_of(v: &JsValue) -> &'static str {
    if v.is_null() {
        "null"
    } else if v.is_undefined() {
        "undefined"
    } else if v.is_string() {
        "a string"
    } else if v.is_function() {
        "a function"
    } else if Array::is_array(v) {
        "an array"
    } else if v.is_object() {
        "an object"
    } else if v.as_f64().is_some() {
        "a number"
    } else if v.as_bool().is_some() {
        "a boolean"
    } else {
        "a value of another type"
    }
}
