//! Reading the config fields of the options object the wrapper passes (its type, `ReaderOptions`, is declared once, in
//! js/src/options.ts; see docs/wasm-contract.md). The function fields (`fetch`, `requestHeaders`, `onRetry`) and
//! `signal` are the TypeScript shell's: never read here.

use crate::error::feed_error;
use alloc::{format, string::String, vec::Vec};
use feedpump_core::request::{EventTypes, V1Options, V2Options, V2_PARTITIONS};
use feedpump_core::typefilter::{TypeFilter, TypePattern};
use feedpump_core::{
    framing::DEFAULT_MAX_LINE, CursorSet, LivePolicy, Protocol, RetryPolicy, SessionConfig, DEFAULT_MAX_HELD,
};
use js_sys::{Array, Error, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// The timings of the driver (its `DriverOptions`, with the shell's `can_refresh`).
#[derive(Debug)]
pub(crate) struct Timers {
    /// A body that brings no bytes for this long is a stalled body (retried); 0 disables the watchdog.
    pub idle_ms: u32,
    /// Released events wait at most this long for more before they are handed out while the body is still open
    /// (long-poll and streaming servers); a full batch or the end of the page hands them out at once.
    pub flush_ms: u32,
}

/// Default wait for more events before a partial batch is handed out.
const DEFAULT_FLUSH_MS: u32 = 10;

/// Default idle limit of a body: generous, so a slow server is not mistaken for a dead one.
pub(crate) const DEFAULT_IDLE_MS: u32 = 60_000;

/// `v2: { token, partition, eventTypes?, skipEventTypes? }`: read one FeedAPI v2 partition.
fn v2_options(obj: &JsValue, page_size_hint: Option<u32>) -> Result<Option<V2Options>, Error> {
    let v = get(obj, "v2");
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if !v.is_object() {
        return Err(bad("v2"));
    }
    let token = crate::error::string(&get(&v, "token")).ok_or_else(|| bad("v2.token"))?;
    let partition = opt_u32(&v, "partition")?.filter(|&p| p < V2_PARTITIONS).ok_or_else(|| bad("v2.partition"))?;
    let types = |key: &str| strings(&v, key);
    let event_types = match (types("eventTypes")?, types("skipEventTypes")?) {
        (Some(_), Some(_)) => return Err(bad("v2.eventTypes")),
        (Some(t), None) => EventTypes::Only(t),
        (None, Some(t)) => EventTypes::Skip(t),
        (None, None) => EventTypes::All,
    };
    Ok(Some(V2Options { token, partition, page_size_hint, event_types }))
}

/// `partitions`: the partitions to read, strictly ascending (the wrapper sorts them and drops repeats; a sort here
/// would weigh more than all of this module); absent reads all.
fn partitions(obj: &JsValue, n: u32) -> Result<Vec<u32>, Error> {
    let v = get(obj, "partitions");
    if v.is_undefined() || v.is_null() {
        return Ok(Vec::new());
    }
    let arr: Array = v.dyn_into().map_err(|_| bad("partitions"))?;
    let mut list = Vec::with_capacity(arr.length() as usize);
    for p in arr.iter() {
        match crate::error::number(&p).and_then(|f| whole_below(f, f64::from(n))) {
            Some(p) => list.push(p),
            None => return Err(bad("partitions")),
        }
    }
    if list.is_empty() || list.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("partitions"));
    }
    Ok(list)
}

fn live_policy(obj: &JsValue) -> Result<Option<LivePolicy>, Error> {
    let v = get(obj, "live");
    if v.is_undefined() || v.is_null() || v == JsValue::FALSE {
        return Ok(None);
    }
    let d = LivePolicy::default();
    if v == JsValue::TRUE {
        return Ok(Some(d));
    }
    if !v.is_object() {
        return Err(bad("live"));
    }
    let min_ms = opt_u32(&v, "minIntervalMs")?.map_or(d.min_ms, u64::from);
    let max_ms = opt_u32(&v, "maxIntervalMs")?.map_or(d.max_ms.max(min_ms), u64::from);
    if max_ms < min_ms {
        return Err(bad("live.maxIntervalMs"));
    }
    let param = get(&v, "longPollParam");
    let long_poll_param = if param.is_undefined() || param.is_null() {
        None
    } else {
        Some(crate::error::string(&param).filter(|p| !p.is_empty()).ok_or_else(|| bad("live.longPollParam"))?)
    };
    Ok(Some(LivePolicy { min_ms, max_ms, long_poll_param }))
}

/// `replicas` (more base URLs of the feed, tried after its URL) and `failoverCooldownMs`: read here for the reader and
/// for the v2 feed's [`crate::backoff::Backoff`], which picks among the URLs with the same policy.
pub(crate) fn failover(obj: &JsValue) -> Result<(Vec<String>, u64), Error> {
    let list = strings(obj, "replicas")?.unwrap_or_default();
    let cooldown_ms =
        opt_u32(obj, "failoverCooldownMs")?.map_or(feedpump_core::failover::DEFAULT_COOLDOWN_MS, u64::from);
    Ok((list, cooldown_ms))
}

pub(crate) fn retry_policy(obj: &JsValue) -> Result<Option<RetryPolicy>, Error> {
    let v = get(obj, "retry");
    if v.is_undefined() || v.is_null() || v == JsValue::TRUE {
        return Ok(Some(RetryPolicy::default()));
    }
    if v == JsValue::FALSE {
        return Ok(None);
    }
    if !v.is_object() {
        return Err(bad("retry"));
    }
    let d = RetryPolicy::default();
    let multiplier = get(&v, "multiplier");
    let multiplier = match crate::error::number(&multiplier) {
        None if multiplier.is_undefined() => d.multiplier,
        Some(m) if m >= 1.0 && m.is_finite() => m,
        _ => return Err(bad("retry.multiplier")),
    };
    let max_attempts = get(&v, "maxAttempts");
    Ok(Some(RetryPolicy {
        initial_ms: opt_u32(&v, "initialMs")?.map_or(d.initial_ms, u64::from),
        max_ms: opt_u32(&v, "maxMs")?.map_or(d.max_ms, u64::from),
        multiplier,
        max_attempts: if crate::error::number(&max_attempts) == Some(f64::INFINITY) {
            None
        } else {
            opt_u32(&v, "maxAttempts")?.or(d.max_attempts)
        },
        deadline_ms: opt_u32(&v, "deadlineMs")?.map(u64::from),
    }))
}

/// `typeFilter: { include?, exclude?, ignoreCase? }`, the lists of `string | { prefix: string }` (with `ignoreCase`
/// already lowercased by the wrapper): what the core drops by type (see [`feedpump_core::typefilter`]). A pattern the
/// core cannot apply leaves the filter to JavaScript (`None`): `undefined` (a RegExp), or one holding U+FFFD (a lone
/// surrogate reaches wasm as U+FFFD, so only JavaScript can compare it).
fn type_filter(obj: &JsValue) -> Result<Option<TypeFilter>, Error> {
    let v = get(obj, "typeFilter");
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    let mut f = TypeFilter { ignore_case: get(&v, "ignoreCase").is_truthy(), ..TypeFilter::default() };
    for (key, list) in [("include", &mut f.include), ("exclude", &mut f.exclude)] {
        let l = get(&v, key);
        if l.is_undefined() {
            continue;
        }
        let arr: Array = l.dyn_into().map_err(|_| bad("typeFilter"))?;
        for p in arr.iter() {
            let (s, exact) = match crate::error::string(&p) {
                Some(s) => (s, true),
                None if p.is_undefined() => return Ok(None),
                None => (crate::error::string(&get(&p, "prefix")).ok_or_else(|| bad("typeFilter"))?, false),
            };
            // U+FFFD's bytes, compared as bytes (`str::contains` would pull its searcher into the wasm).
            if s.as_bytes().windows(3).any(|w| w == [0xEF, 0xBF, 0xBD]) {
                return Ok(None);
            }
            list.push(if exact { TypePattern::Exact(s) } else { TypePattern::Prefix(s) });
        }
    }
    Ok(Some(f))
}

/// An optional array of strings (`undefined` or `null`: `None`); anything else is `bad-options`.
fn strings(obj: &JsValue, key: &str) -> Result<Option<Vec<String>>, Error> {
    let v = get(obj, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    let arr: Array = v.dyn_into().map_err(|_| bad(key))?;
    arr.iter().map(|x| crate::error::string(&x).ok_or_else(|| bad(key))).collect::<Result<_, _>>().map(Some)
}

/// An option the reader cannot take. The wrapper checks every option first and says what is wrong with it
/// (js/src/options.ts); this is the last guard, naming only the option, which keeps the messages out of the wasm.
fn bad(key: &str) -> Error {
    feed_error("bad-options", &format!("the reader refused option {key}"), 0)
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `f` when it is a whole number from 0 up to, not including, `end` (`f64::fract` is std's; NaN is none).
pub(crate) fn whole_below(f: f64, end: f64) -> Option<u32> {
    (f >= 0.0 && f < end && f % 1.0 == 0.0).then_some(f as u32)
}

fn opt_u32(obj: &JsValue, key: &str) -> Result<Option<u32>, Error> {
    let v = get(obj, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    match crate::error::number(&v).and_then(|f| whole_below(f, f64::from(u32::MAX) + 1.0)) {
        Some(n) => Ok(Some(n)),
        None => Err(bad(key)),
    }
}

/// Parses the options into a session config and the driver's timings.
///
/// Millisecond options are taken as any u32 here: the limit of what a timer accepts is decided once, by the wrapper's
/// option checks (js/src/options.ts, `MAX_TIMER_MS`), and every timer the shell sets is clamped to it besides
/// (js/src/reader/).
pub(crate) fn parse(url: String, obj: &JsValue) -> Result<(SessionConfig, Timers), Error> {
    if !obj.is_object() {
        return Err(bad("options"));
    }
    let n = opt_u32(obj, "partitionCount")?.filter(|&n| n >= 1).ok_or_else(|| bad("partitionCount"))?;
    let cursors = get(obj, "cursors");
    let cursors = if cursors.is_undefined() {
        CursorSet::first(n)
    } else {
        let arr: Array = cursors.dyn_into().map_err(|_| bad("cursors"))?;
        if arr.length() != n {
            return Err(bad("cursors"));
        }
        let list = arr
            .iter()
            .map(|c| crate::error::string(&c).ok_or_else(|| bad("cursors")))
            .collect::<Result<Vec<_>, _>>()?;
        CursorSet::new(list).map_err(|_| bad("cursors"))?
    };
    let headers = get(obj, "headers");
    let headers = if headers.is_undefined() || headers.is_null() {
        String::new()
    } else {
        crate::error::string(&headers).ok_or_else(|| bad("headers"))?
    };
    let mut config = SessionConfig::new(url, cursors);
    let page_size_hint = opt_u32(obj, "pageSizeHint")?;
    config.protocol = match v2_options(obj, page_size_hint)? {
        Some(_) if n != 1 => return Err(bad("partitionCount")),
        Some(v2) => Protocol::V2(v2),
        None => Protocol::V1(V1Options { page_size_hint, headers, partitions: partitions(obj, n)? }),
    };
    config.max_line = opt_u32(obj, "maxLineLength")?.map_or(DEFAULT_MAX_LINE, |m| m as usize);
    config.max_held = opt_u32(obj, "maxHeldBytes")?.map_or(DEFAULT_MAX_HELD, |m| m as usize);
    config.retry = retry_policy(obj)?;
    config.live = live_policy(obj)?;
    (config.replicas, config.failover_cooldown_ms) = failover(obj)?;
    config.type_field = strings(obj, "typeField")?.unwrap_or_default();
    config.type_filter = type_filter(obj)?;
    // Parsed mode (the default) reads values through one `JSON.parse` of the batch text, which escapes keep as they
    // are and make pure ASCII; raw mode hands out each value as the server sent it.
    config.escape = !get(obj, "raw").is_truthy();
    config.seed = (js_sys::Math::random() * (u64::MAX as f64)) as u64;
    let timers = Timers {
        idle_ms: opt_u32(obj, "idleTimeoutMs")?.unwrap_or(DEFAULT_IDLE_MS),
        flush_ms: opt_u32(obj, "maxBatchDelayMs")?.unwrap_or(DEFAULT_FLUSH_MS),
    };
    Ok((config, timers))
}

/// The `bad-options` errors of the wrapper's option checks (js/src/options.ts, `badOption`), by number: the messages
/// live here, not in every JS bundle. `a` is the name or the value (JSON) the message shows (`undefined` shows as
/// `undefined`, as a JS template does), `n` a number it shows.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = optionError)]
pub fn option_error(
    which: u8,
    #[wasm_bindgen(unchecked_param_type = "string | undefined")] a: JsValue,
    n: u32,
) -> Error {
    // Templates ([`crate::error::fill`]: \x01 is `a`, \x02 `n`, \x03 the longest timer).
    let template = match which {
        0 => "url must be a non-empty string or a URL",
        1 => "headers must be an array of header names or '_all'",
        2 => "headers: \x01 is not a header name (a non-empty string without ',')",
        3 => "options must be an object",
        4 => "partitionCount must be an integer >= 1",
        5 => "pageSizeHint must be an integer >= 0",
        6 => "signal must be an AbortSignal",
        7 => "\x01 must be a function",
        8 => "\x01 must be an integer >= 1 (bytes)",
        9 => "\x01 must be an integer from 0 to \x03 (ms)",
        10 => "idleTimeoutMs must be an integer from 0 to \x03 (ms; 0 = off)",
        11 => "partitions must be a non-empty array",
        12 => "partitions: \x01 is not a partition (an integer 0..\x02)",
        13 => "mode must be 'parsed' or 'raw'",
        14 => "logger must be an object with debug, info, warn and error methods (any of them)",
        15 => "cursors must be an object { [partition]: cursor }",
        16 => "cursors: \x01 is not a partition (an integer 0..\x02)",
        17 => "cursors: the cursor of partition \x02 must be a non-empty string",
        18 => "\x01 must be a non-empty array of type names (non-empty strings without ';')",
        19 => "live must be a boolean or an object",
        20 => "live.maxIntervalMs must be >= live.minIntervalMs",
        21 => "live.longPollParam must be a non-empty string",
        22 => "retry must be false or an object",
        23 => "retry.deadlineMs must be an integer >= 0 (ms)",
        24 => "retry.multiplier must be a number >= 1",
        25 => "retry.maxAttempts must be an integer >= 0 or Infinity",
        26 => "url must name at least one URL",
        27 => "protocol must be 'v1', 'v2' or 'auto'",
        28 => "eventTypes and skipEventTypes cannot be used together",
        30 => "consume() needs a store with load() and save()",
        31 => "consume() needs a non-empty key",
        32 => "maxBatches must be >= 1",
        33 => "onMissingCursors must be 'first', 'last', 'throw' or a function, got \x01",
        34 => "onHandlerError must be 'retry', 'skip', 'stop' or a function, got \x01",
        35 => "onMissingCursors gave \x01",
        36 => "onMissingCursors 'last' needs partitionCount or partitions",
        37 => "the server speaks FeedAPI v1 (ZeroEventHub): use protocol 'v1' or 'auto' with partitionCount",
        38 => "tabs mode needs Web Locks (navigator.locks), absent here; pass tabs: false",
        39 => "tabs must be a boolean or { lockName?, channelName? }, got \x01",
        40 => "tabs.lockName must be a non-empty string not starting with \"-\", got \x01",
        41 => "tabs.channelName must be a non-empty string, got \x01",
        42 => "Web Locks refused the lock \x01 (pass tabs: false to consume without it)",
        _ => "a feed can be iterated only once; open a new one from feed.cursors() to continue",
    };
    let a = crate::error::string(&a).unwrap_or_else(|| "undefined".into());
    feed_error("bad-options", &crate::error::fill(template, &a, n), 0)
}
