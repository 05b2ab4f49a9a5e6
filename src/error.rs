//! Errors at the boundary: every error becomes a real `Error` with `name = "FeedError"` and a stable `code`; an
//! original JS error is kept as `cause`. No request headers ever go into an error (they may hold credentials).

use alloc::{
    format,
    string::{String, ToString},
    vec::Vec,
};
use feedpump_core::ProtocolError;
use js_sys::{Error, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// Builds a `FeedError`-shaped JS error. `message` already names what went wrong; `page` is appended as "where".
pub(crate) fn feed_error(code: &str, message: &str, page: u32) -> Error {
    let text = if page > 0 { format!("{code}: {message} (page {page})") } else { format!("{code}: {message}") };
    let e = Error::new(&text);
    set(&e, "name", &JsValue::from_str("FeedError"));
    set(&e, "code", &JsValue::from_str(code));
    if page > 0 {
        set(&e, "page", &JsValue::from(page));
    }
    e
}

/// Sets a property on an error object. Setting a plain property on a fresh `Error` cannot fail.
pub(crate) fn set(e: &Error, key: &str, value: &JsValue) {
    let _ = Reflect::set(e, &JsValue::from_str(key), value);
}

/// A core protocol error, with its location as fields.
pub(crate) fn protocol_error(p: &ProtocolError, page: u32) -> Error {
    let mut message = p.detail.to_string();
    if p.line > 0 {
        message.push_str(&format!(" at line {}, byte {}", p.line, p.offset));
    }
    if let Some(part) = p.partition {
        message.push_str(&format!(", partition {part}"));
    }
    let e = feed_error(p.code(), &message, page);
    if p.line > 0 {
        set(&e, "line", &JsValue::from_f64(p.line as f64));
        set(&e, "offset", &JsValue::from_f64(p.offset as f64));
    }
    if let Some(part) = p.partition {
        set(&e, "partition", &JsValue::from(part));
    }
    e
}

/// Attaches the original JS error.
pub(crate) fn with_cause(e: Error, cause: JsValue) -> Error {
    set(&e, "cause", &cause);
    e
}

/// A JS string as a Rust one (`None` for any other value), read one UTF-16 unit at a time: the generated JavaScript
/// then needs no string encoder (wasm-bindgen's `as_string` ships one in every bundle). Only short strings cross this
/// way (options, a status text, a header); lone surrogates become U+FFFD.
pub(crate) fn string(v: &JsValue) -> Option<String> {
    let s = v.dyn_ref::<js_sys::JsString>()?;
    let units: Vec<u16> = (0..s.length()).map(|i| s.char_code_at(i) as u16).collect();
    Some(String::from_utf16_lossy(&units))
}

/// A JS number as an `f64` (`None` for any other value, and for NaN and -Infinity, which nothing here takes), read
/// without wasm-bindgen's `as_f64`, whose generated JavaScript ships a `DataView` over wasm memory in every bundle.
pub(crate) fn number(v: &JsValue) -> Option<f64> {
    if js_sys::Number::is_finite(v) {
        Some(v.unchecked_into_f64())
    } else {
        (*v == JsValue::from_f64(f64::INFINITY)).then_some(f64::INFINITY)
    }
}

/// A message table's template filled in one pass: \x01 is `a`, \x02 `n`, \x03 the longest timer (MAX_TIMER_MS). A
/// `format!` per message of a table cost about a kilobyte of wasm.
pub(crate) fn fill(template: &str, a: &str, n: u32) -> String {
    let mut message = String::new();
    for c in template.chars() {
        match c {
            '\x01' => message.push_str(a),
            '\x02' => message.push_str(&format!("{n}")),
            '\x03' => message.push_str(&format!("{}", feedpump_core::MAX_TIMER_MS)),
            c => message.push(c),
        }
    }
    message
}

/// The `bad-options` errors of the TypeScript shell (js/src/reader/, js/src/transport.ts): what the caller's `fetch`,
/// `requestHeaders`, answer or body broke, by number (the messages live here, not in every JS bundle). `kind`: what the
/// value at fault is ("a string", …, the shell's `kindOf`); `cause`: the runtime's error, if any (`undefined`: none).
#[wasm_bindgen::prelude::wasm_bindgen(js_name = callerError)]
pub fn caller_error(
    which: u8,
    page: u32,
    #[wasm_bindgen(unchecked_param_type = "string")] kind: JsValue,
    cause: JsValue,
) -> Error {
    let kind = string(&kind).unwrap_or_default();
    // Templates ([`fill`]: \x01 is `kind`).
    let template = match which {
        0 => "the response body cannot be read (locked or already read)",
        1 => "the response body cannot be read (its iterator threw)",
        2 => "the response body is not a ReadableStream or an async iterable (it is \x01)",
        3 => "the response body cannot be read (its reader has no read())",
        4 => "the response body cannot be read (its read() threw)",
        5 => "the response body's read() gave \x01, not { done, value }",
        6 => "the response body gave a chunk that is not a Uint8Array (it is \x01)",
        7 => "the fetch you passed returned something that is not a Response (\x01)",
        8 => "the feed URL is not a valid URL",
        10 => {
            "requestHeaders must give headers: an object, an array of [name, value] pairs or a Headers (it gave \x01)"
        }
        // 9 (the reader's), and any other number.
        _ => "next() called while a previous call is pending",
    };
    let e = feed_error("bad-options", &fill(template, &kind, 0), page);
    if cause.is_undefined() {
        e
    } else {
        with_cause(e, cause)
    }
}
