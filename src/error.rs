//! Errors at the boundary: every error becomes a real `Error` with `name = "FeedError"` and a stable `code`; an
//! original JS error is kept as `cause`. No request headers ever go into an error (they may hold credentials).

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
