//! The core's retry policy ([`feedpump_core::retry::Backoff`]) for the TypeScript side, which drives FeedAPI v2
//! discovery and the rediscovery after a `409 Conflict`: one home for the backoff formula, whichever side retries.
//! With several base URLs it also holds the core's URL choice ([`feedpump_core::failover::Failover`]): a v2 token
//! belongs to the server that gave it, so the TypeScript side discovers again whenever the choice moves.
//! Pure state: the caller passes the time, starts the timer and calls `onRetry` (never from here).

use crate::options;
use alloc::vec::Vec;
use feedpump_core::failover::Failover;
use feedpump_core::retry::{parse_retry_after, Backoff as CoreBackoff, Decision, Failure};
use js_sys::{Error, Object, Reflect};
use wasm_bindgen::prelude::*;

/// Backoff state of one v2 feed's discovery and rediscovery.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Backoff {
    /// `None`: `retry: false`, every failure is final.
    state: Option<CoreBackoff>,
    /// Consecutive failures, also when retries are off (for `onRetry`'s `attempt`).
    attempts: u32,
    /// Which base URL the next request goes to: the URL (0) or one of `replicas` (1..).
    failover: Failover,
    /// `options.replicas`, as JS strings (handed back as they are: no string-copying code in the generated JS).
    replicas: Vec<JsValue>,
}

#[wasm_bindgen]
impl Backoff {
    /// Reads `options.retry`, `options.replicas` and `options.failoverCooldownMs` exactly as the reader does
    /// (defaults, `false`, checks).
    #[wasm_bindgen(constructor)]
    pub fn new(options: &JsValue) -> Result<Backoff, Error> {
        let policy = options::retry_policy(options)?;
        let (replicas, cooldown_ms) = options::failover(options)?;
        let seed = (js_sys::Math::random() * (u64::MAX as f64)) as u64;
        Ok(Backoff {
            state: policy.map(|p| CoreBackoff::new(p, seed)),
            attempts: 0,
            failover: Failover::new(1 + replicas.len(), cooldown_ms),
            replicas: replicas.iter().map(|u| JsValue::from_str(u)).collect(),
        })
    }

    /// The base URL of the next request at `now_ms` (the first one not cooling down): one of `options.replicas`,
    /// or `undefined` for the feed's own URL. A failure then counts against that URL.
    #[wasm_bindgen(js_name = pollUrl, unchecked_return_type = "string | undefined")]
    pub fn poll_url(&mut self, now_ms: f64) -> JsValue {
        match self.failover.pick(now_ms.max(0.0) as u64) {
            0 => JsValue::UNDEFINED,
            i => self.replicas.get(i - 1).cloned().unwrap_or_default(),
        }
    }

    /// A failure at `now_ms` (any monotonic ms clock) of a request to the last polled URL. `code`: the FeedError's
    /// code, or `'conflict'` for a v2 409 (see [`failure`]); `status`: an `'http-status'` one's; `retry_after` is the
    /// `Retry-After` header, if any. A failure of the URL's own (see
    /// [`Failover::is_url_failure`]) cools it down. Returns the delay before the retry in ms, or `-1` to give up.
    /// (The strings come as JS values, read here: that keeps string-copying code out of the generated JavaScript.)
    #[wasm_bindgen(js_name = handleFailure)]
    pub fn handle_failure(
        &mut self,
        now_ms: f64,
        #[wasm_bindgen(unchecked_param_type = "string")] code: JsValue,
        status: u16,
        #[wasm_bindgen(unchecked_param_type = "string | undefined")] retry_after: JsValue,
    ) -> f64 {
        let failure = failure(&code, status);
        self.attempts = self.attempts.saturating_add(1);
        let now = now_ms.max(0.0) as u64;
        self.failover.handle_failure(now, failure);
        let Some(state) = self.state.as_mut() else { return -1.0 };
        match state.handle_failure(
            now,
            failure,
            crate::error::string(&retry_after).as_deref().and_then(parse_retry_after),
        ) {
            Decision::RetryAt(at) => at.saturating_sub(now) as f64,
            Decision::GiveUp => -1.0,
        }
    }

    /// A success: the next failure starts from the first delay again.
    #[wasm_bindgen(js_name = handleSuccess)]
    pub fn handle_success(&mut self) {
        self.attempts = 0;
        if let Some(s) = self.state.as_mut() {
            s.handle_success();
        }
    }

    /// Consecutive failures so far (the `attempt` of `onRetry`).
    #[wasm_bindgen(getter)]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// How the retry policy sees a failure of the TypeScript side, by its FeedError `code` (`'conflict'`: a v2 409):
/// every code but these is final (never retried). One home: the v2 source and the consumer group read it here.
fn failure(code: &JsValue, status: u16) -> Failure {
    match crate::error::string(code).as_deref().unwrap_or_default() {
        "network" => Failure::Network,
        "stalled-body" => Failure::Stalled,
        "truncated-body" => Failure::Truncated,
        "conflict" => Failure::Conflict,
        "http-status" => Failure::Status(status),
        _ => Failure::Protocol,
    }
}

/// Whether no retry can help a failure with this FeedError `code` (see [`failure`]): a wrong answer, the caller's
/// options or hooks, an abort.
#[wasm_bindgen(js_name = isFinal)]
pub fn is_final(#[wasm_bindgen(unchecked_param_type = "string")] code: &JsValue) -> bool {
    failure(code, 0) == Failure::Protocol
}

/// The reader's defaults the TypeScript side also needs (one home: here and the core):
/// `{ idleTimeoutMs, maxLineLength, snippetBytes, liveMinIntervalMs, pagesPerTurn }`.
#[wasm_bindgen(js_name = readerDefaults)]
pub fn reader_defaults() -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"idleTimeoutMs".into(), &JsValue::from(options::DEFAULT_IDLE_MS));
    let _ =
        Reflect::set(&o, &"maxLineLength".into(), &JsValue::from_f64(feedpump_core::framing::DEFAULT_MAX_LINE as f64));
    let _ = Reflect::set(&o, &"snippetBytes".into(), &JsValue::from_f64(feedpump_core::driver::SNIPPET_BYTES as f64));
    let _ = Reflect::set(
        &o,
        &"liveMinIntervalMs".into(),
        &JsValue::from_f64(feedpump_core::LivePolicy::default().min_ms as f64),
    );
    let _ = Reflect::set(&o, &"pagesPerTurn".into(), &JsValue::from(feedpump_core::schedule::PAGES_PER_TURN));
    o.into()
}
