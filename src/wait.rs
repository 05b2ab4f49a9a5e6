//! Every wait on something outside our control (the caller's `fetch`, hook or body stream, a timer the core asked
//! for) is one `Promise.race` against the reader's abort signal and, if any, a timer.

use crate::fetch::{adopt, clear_timeout, new_promise, set_timeout};
use js_sys::{Array, Function, Promise};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

/// What a timer race resolves to when the timer wins (the abort race resolves to `undefined`).
const TIMER_FIRED: &str = "feedpump:timer";

/// Waits for `promise` (a native promise: one of ours, see [`adopt`], or one whose `then` may be the caller's, which
/// `Promise.race` calls without ever throwing); resolves to `undefined` when `signal` (the reader's) is aborted first,
/// or to [`TIMER_FIRED`] when `timeout_ms` (if any) passes first. Every await on something outside our control (the
/// caller's fetch, hook or body stream, which may ignore the signal) goes through here, so an abort always ends the
/// wait. The promise is raced even when the reader is already aborted, so its rejection is always handled.
///
/// The abort racer is made per call and its listener removed afterwards: racing against one long-lived promise
/// would add a reaction to it per call, each holding that call's result (a body chunk) for the reader's whole life,
/// which kept every byte of a page alive (bench/NOTES.md, RSS growing with the page).
pub(crate) async fn race(signal: &AbortSignal, promise: Promise, timeout_ms: Option<f64>) -> Result<JsValue, JsValue> {
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
pub(crate) fn timer_fired(v: &Result<JsValue, JsValue>) -> bool {
    v.as_ref().is_ok_and(|v| v.as_string().as_deref() == Some(TIMER_FIRED))
}
