//! The wasm-bindgen suite of the transport, entered from `node.rs`, `browser.rs` and `worker.rs` so the same tests run
//! in Node, a browser page and a dedicated worker (no `window` there). The feed is an in-page scripted `fetch`
//! (tests/js/feed_server.js); the real reference server is exercised by tests/interop.

use feedpump::FeedReader;
use js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen(module = "/tests/js/feed_server.js")]
extern "C" {
    #[wasm_bindgen(js_name = scriptedFetch)]
    fn scripted_fetch(pages: JsValue) -> JsValue;
    fn delay(ms: u32) -> Promise;
}

fn js(text: &str) -> JsValue {
    JSON::parse(text).expect("test JSON")
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).expect("property")
}

fn json(v: &JsValue) -> String {
    JSON::stringify(v).expect("stringify").as_string().expect("string")
}

/// A reader over scripted pages; returns it and the fetch log.
fn reader(pages: &str, opts: &str) -> (FeedReader, JsValue) {
    let scripted = scripted_fetch(js(pages));
    let options = js(opts);
    Reflect::set(&options, &"fetch".into(), &get(&scripted, "fetch")).expect("set");
    let r = FeedReader::new("http://127.0.0.1:9/feed/v1?key=k".into(), options).expect("reader");
    (r, get(&scripted, "log"))
}

/// Reads a reader to its end: `{events, checkpoints, error}` (error `null` when it ended caught up).
async fn run(r: &FeedReader) -> JsValue {
    let (events, checkpoints) = (Array::new(), Array::new());
    let mut error = JsValue::NULL;
    loop {
        match JsFuture::from(r.next()).await {
            Ok(b) if b.is_undefined() => break,
            Ok(b) => {
                let parsed: Array = JSON::parse(&get(&b, "text").as_string().expect("text")).expect("JSON").into();
                parsed.for_each(&mut |e, _, _| {
                    events.push(&e);
                });
                Array::from(&get(&b, "checkpoints")).for_each(&mut |c, _, _| {
                    checkpoints.push(&c);
                });
            }
            Err(e) => {
                error = e;
                break;
            }
        }
    }
    let out = Object::new();
    Reflect::set(&out, &"events".into(), &events).expect("set");
    Reflect::set(&out, &"checkpoints".into(), &checkpoints).expect("set");
    Reflect::set(&out, &"error".into(), &error).expect("set");
    out.into()
}

#[wasm_bindgen_test]
async fn pages_split_inside_utf8_are_followed_to_caught_up() {
    // "æ" is C3 A6 and "😀" F0 9F 98 80: the chunks below cut both in the middle.
    let pages = r#"[
        {"chunks": [[123,34,112,97,114,116,105,116,105,111,110,34,58,48,44,34,100,97,116,97,34,58,34,195],
                    [166,240,159],[152,128,34,125,10], "{\"partition\":1,\"data\":2}\n{\"partition\":0,\"cursor\":\"c0\"}\n{\"partition\":1,\"da", "ta\":3}\n"]},
        {"chunks": ["{\"partition\":1,\"data\":2}\r\n{\"partition\":1,\"data\":3}\n{\"cursor\": \"c1\", \"partition\": 1}\n"]},
        {"chunks": []}
    ]"#;
    let (r, log) = reader(pages, r#"{"partitionCount": 2, "cursors": ["_first", "_first"], "pageSizeHint": 50}"#);
    let out = run(&r).await;
    assert_eq!(get(&out, "error"), JsValue::NULL, "{}", json(&out));
    assert_eq!(
        json(&get(&out, "events")),
        r#"[{"partition":0,"data":"æ😀"},{"partition":1,"data":2},{"partition":1,"data":3}]"#
    );
    assert_eq!(json(&get(&out, "checkpoints")), r#"[{"partition":0,"cursor":"c0"},{"partition":1,"cursor":"c1"}]"#);
    assert_eq!(
        json(&get(&log, "urls")),
        concat!(
            r#"["http://127.0.0.1:9/feed/v1?key=k&n=2&cursor0=_first&cursor1=_first&pagesizehint=50","#,
            r#""http://127.0.0.1:9/feed/v1?key=k&n=2&cursor0=c0&cursor1=_first&pagesizehint=50","#,
            r#""http://127.0.0.1:9/feed/v1?key=k&n=2&cursor0=c0&cursor1=c1&pagesizehint=50"]"#
        )
    );
}

#[wasm_bindgen_test]
async fn a_cut_connection_is_truncated_body_after_the_released_events() {
    let pages = r#"[{"chunks": ["{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"a\"}\n{\"partition\":0,\"data\":2}\n{\"parti"], "end": "cut"}]"#;
    let (r, _) = reader(pages, r#"{"partitionCount": 1, "retry": false}"#);
    let out = run(&r).await;
    assert_eq!(json(&get(&out, "events")), r#"[{"partition":0,"data":1}]"#);
    assert_eq!(json(&get(&out, "checkpoints")), r#"[{"partition":0,"cursor":"a"}]"#);
    let err = get(&out, "error");
    assert_eq!(get(&err, "code"), "truncated-body", "{}", json(&err));
    assert_eq!(get(&err, "name"), "FeedError");
    assert_eq!(get(&err, "offset").as_f64(), Some(86.0), "{}", json(&err));
    // The error is sticky: the reader does not pretend the feed ended.
    let again = JsFuture::from(r.next()).await.expect_err("still failed");
    assert_eq!(get(&again, "code"), "truncated-body");
}

#[wasm_bindgen_test]
async fn a_partial_last_line_is_truncated_body_not_a_short_page() {
    let pages = r#"[{"chunks": ["{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"a\"}\n{\"partition\":0,\"data\":2}"]}]"#;
    let (r, _) = reader(pages, r#"{"partitionCount": 1, "retry": false}"#);
    let out = run(&r).await;
    let err = get(&out, "error");
    assert_eq!(get(&err, "code"), "truncated-body", "{}", json(&err));
    assert_eq!(get(&err, "line").as_f64(), Some(3.0));
    assert_eq!(json(&get(&out, "checkpoints")), r#"[{"partition":0,"cursor":"a"}]"#);
}

#[wasm_bindgen_test]
async fn non_2xx_is_http_status_with_a_bounded_snippet() {
    let long = "x".repeat(3000);
    let pages = format!(r#"[{{"status": 503, "statusText": "Service Unavailable", "chunks": ["{long}"]}}]"#);
    let (r, log) = reader(&pages, r#"{"partitionCount": 4, "retry": false}"#);
    let out = run(&r).await;
    let err = get(&out, "error");
    assert_eq!(get(&err, "code"), "http-status");
    assert_eq!(get(&err, "status").as_f64(), Some(503.0));
    assert_eq!(get(&err, "bodySnippet").as_string().map(|s| s.len()), Some(512));
    assert!(get(&err, "message").as_string().unwrap_or_default().contains("503 Service Unavailable"));
    assert_eq!(get(&log, "cancelled").as_f64(), Some(1.0), "the rest of the body is cancelled");
}

#[wasm_bindgen_test]
async fn protocol_errors_name_line_offset_and_partition() {
    let pages = r#"[{"chunks": ["{\"partition\":0,\"data\":1}\n{\"partition\":1,\"cursor\":5}\n"]}]"#;
    let (r, _) = reader(pages, r#"{"partitionCount": 2}"#);
    let err = get(&run(&r).await, "error");
    assert_eq!(get(&err, "code"), "bad-cursor", "{}", json(&err));
    assert_eq!(get(&err, "line").as_f64(), Some(2.0));
    assert_eq!(get(&err, "offset").as_f64(), Some(25.0));
    assert_eq!(get(&err, "partition").as_f64(), Some(1.0));
    assert_eq!(get(&err, "page").as_f64(), Some(1.0));
}

/// A reader whose options are `opts` plus `fetch` over `pages`, and the given JS function as `key`.
fn reader_with(pages: &str, opts: &str, key: &str, f: &Function) -> (FeedReader, JsValue) {
    let scripted = scripted_fetch(js(pages));
    let options = js(opts);
    Reflect::set(&options, &"fetch".into(), &get(&scripted, "fetch")).expect("set");
    Reflect::set(&options, &key.into(), f).expect("set");
    (FeedReader::new("http://127.0.0.1:9/feed/v1".into(), options).expect("reader"), get(&scripted, "log"))
}

#[wasm_bindgen_test]
async fn the_request_headers_hook_runs_for_every_request_refreshes_once_on_401_and_stays_out_of_errors() {
    let pages = r#"[{"chunks": ["{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"a\"}\n"]},
                    {"status": 401, "chunks": ["token expired"]},
                    {"chunks": ["{\"partition\":0,\"data\":2}\n{\"partition\":0,\"cursor\":\"b\"}\n"]},
                    {"status": 401, "chunks": ["denied"]}]"#;
    let hook = Function::new_with_args(
        "arg",
        "this.n = (this.n || 0) + 1; return Promise.resolve({ authorization: 'Bearer secret-' + this.n + (arg.refresh ? '-refreshed' : '') });",
    );
    let (r, log) = reader_with(pages, r#"{"partitionCount": 1}"#, "requestHeaders", &hook.bind0(&Object::new()));
    let out = run(&r).await;
    assert_eq!(
        json(&get(&log, "headers")),
        concat!(
            r#"[{"authorization":"Bearer secret-1"},{"authorization":"Bearer secret-2"},"#,
            r#"{"authorization":"Bearer secret-3-refreshed"},{"authorization":"Bearer secret-4"},"#,
            r#"{"authorization":"Bearer secret-5-refreshed"}]"#
        )
    );
    assert_eq!(json(&get(&out, "events")), r#"[{"partition":0,"data":1},{"partition":0,"data":2}]"#);
    let err = get(&out, "error");
    assert_eq!(get(&err, "status").as_f64(), Some(401.0), "a second 401 is final: {}", json(&err));
    assert!(!json(&err).contains("secret"), "credentials leaked into the error: {}", json(&err));
    let message = get(&err, "message").as_string().unwrap_or_default();
    assert!(!message.contains("secret") && message.contains("401"), "{message}");
}

#[wasm_bindgen_test]
async fn failures_are_retried_from_the_last_checkpoint_without_loss_or_duplicates() {
    let pages = r#"[
        {"chunks": ["{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"a\"}\n{\"partition\":0,\"data\":2}\n{\"par"], "end": "cut"},
        {"status": 503, "chunks": ["busy"]},
        {"status": 429, "chunks": []},
        {"chunks": ["{\"partition\":0,\"data\":2}\n"], "end": "stall"},
        {"chunks": ["{\"partition\":0,\"data\":2}\n{\"partition\":0,\"data\":3}\n{\"partition\":0,\"cursor\":\"b\"}\n"]},
        {"chunks": []}
    ]"#;
    let retries = Array::new();
    let on_retry = Function::new_with_args("info", "this.push([info.error.code, info.attempt, info.delayMs <= 20]);");
    let (r, log) = reader_with(
        pages,
        r#"{"partitionCount": 1, "idleTimeoutMs": 50, "retry": {"initialMs": 10, "maxMs": 20, "maxAttempts": 5}}"#,
        "onRetry",
        &on_retry.bind0(&retries),
    );
    let out = run(&r).await;
    assert_eq!(get(&out, "error"), JsValue::NULL, "{}", json(&out));
    assert_eq!(
        json(&get(&out, "events")),
        r#"[{"partition":0,"data":1},{"partition":0,"data":2},{"partition":0,"data":3}]"#
    );
    assert_eq!(
        json(&retries),
        r#"[["truncated-body",1,true],["http-status",2,true],["http-status",3,true],["stalled-body",4,true]]"#
    );
    let urls = json(&get(&log, "urls"));
    assert_eq!(urls.matches("cursor0=a").count(), 4, "every retry resumes from the last checkpoint: {urls}");
    // The other failed bodies had ended (cut, or read to their end for the error snippet); the stalled one is open.
    assert_eq!(get(&log, "cancelled").as_f64(), Some(1.0), "the stalled body was cancelled: {}", json(&log));
}

#[wasm_bindgen_test]
async fn retry_after_is_honoured_and_client_errors_are_not_retried() {
    let pages = r#"[{"status": 400, "chunks": ["{\"detail\":\"Partition count doesn't match as expected\"}"]}]"#;
    let retries = Array::new();
    let on_retry = Function::new_with_args("info", "this.push(info.attempt);");
    let (r, log) = reader_with(pages, r#"{"partitionCount": 3}"#, "onRetry", &on_retry.bind0(&retries));
    let err = get(&run(&r).await, "error");
    assert_eq!(get(&err, "status").as_f64(), Some(400.0));
    assert_eq!(retries.length(), 0);
    assert_eq!(Array::from(&get(&log, "urls")).length(), 1);
}

#[wasm_bindgen_test]
async fn an_abort_signal_stops_a_stalled_body() {
    let pages = r#"[{"chunks": ["{\"partition\":0,\"data\":1}\n"], "end": "stall"}]"#;
    let scripted = scripted_fetch(js(pages));
    let controller = web_sys::AbortController::new().expect("controller");
    let options = js(r#"{"partitionCount": 1}"#);
    Reflect::set(&options, &"fetch".into(), &get(&scripted, "fetch")).expect("set");
    Reflect::set(&options, &"signal".into(), &controller.signal()).expect("set");
    let r = FeedReader::new("http://127.0.0.1:9/feed/v1".into(), options).expect("reader");
    let pending = JsFuture::from(r.next());
    JsFuture::from(delay(20)).await.expect("delay");
    controller.abort();
    let err = pending.await.expect_err("aborted");
    assert_eq!(get(&err, "code"), "aborted", "{}", json(&err));
}

#[wasm_bindgen_test]
async fn close_cancels_the_body_and_ends_the_reader() {
    // 70 KiB of committed events make a batch before the body ends; the body then stalls.
    let mut chunk = String::new();
    for i in 0..1200 {
        chunk.push_str(&format!(r#"{{\"partition\":0,\"data\":{{\"i\":{i},\"pad\":\"{}\"}}}}\n"#, "p".repeat(40)));
        chunk.push_str(&format!(r#"{{\"partition\":0,\"cursor\":\"{i}\"}}\n"#));
    }
    let pages = format!(r#"[{{"chunks": ["{chunk}"], "end": "stall"}}]"#);
    let (r, log) = reader(&pages, r#"{"partitionCount": 1}"#);
    let first = JsFuture::from(r.next()).await.expect("a batch before the body ends");
    assert!(get(&first, "text").as_string().is_some_and(|t| t.len() >= 64 * 1024));
    r.close();
    JsFuture::from(delay(0)).await.expect("delay");
    assert_eq!(get(&log, "cancelled").as_f64(), Some(1.0));
    assert_eq!(JsFuture::from(r.next()).await.expect("closed"), JsValue::UNDEFINED);
}

#[wasm_bindgen_test]
fn bad_options_are_rejected_before_any_request() {
    for opts in [
        r#"{"partitionCount": 0}"#,
        r#"{"partitionCount": 2, "cursors": ["a"]}"#,
        r#"{"partitionCount": 1, "cursors": [""]}"#,
        r#"{"partitionCount": 3, "partitions": [2, 1]}"#,
        r#"{"partitionCount": 3, "partitions": [1, 1]}"#,
        r#"{"partitionCount": 3, "partitions": []}"#,
        r#"{"partitionCount": 3, "partitions": [3]}"#,
    ] {
        let err = FeedReader::new("http://127.0.0.1:9/".into(), js(opts)).expect_err(opts);
        assert_eq!(get(&err.into(), "code"), "bad-options", "{opts}");
    }
}

#[wasm_bindgen_test]
async fn live_feeds_keep_polling_after_catching_up_and_signal_it() {
    let pages = r#"[
        {"chunks": ["{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"1\"}\n"]},
        {"chunks": []},
        {"chunks": []},
        {"chunks": ["{\"partition\":0,\"data\":2}\n{\"partition\":0,\"cursor\":\"2\"}\n"]},
        {"chunks": ["{\"partition\":0,\"data\":3}\n{\"partition\":0,\"cursor\":\"3\"}\n"]},
        {"chunks": []}
    ]"#;
    let opts = r#"{"partitionCount": 1, "live": {"minIntervalMs": 5, "maxIntervalMs": 20, "longPollParam": "wait"}}"#;
    let (r, log) = reader(pages, opts);
    let (mut data, mut signals) = (Vec::new(), Vec::new());
    while data.len() < 3 || signals.len() < 3 {
        let b = JsFuture::from(r.next()).await.expect("batch");
        let events: Array = JSON::parse(&get(&b, "text").as_string().expect("text")).expect("JSON").into();
        events.for_each(&mut |e, _, _| data.push(get(&e, "data").as_f64().unwrap_or(-1.0)));
        if let Some(s) = get(&b, "signal").as_string() {
            signals.push((s, data.len()));
        }
    }
    r.close();
    assert_eq!(data, vec![1.0, 2.0, 3.0]);
    assert_eq!(
        signals,
        vec![("caught-up".to_string(), 1), ("fell-behind".to_string(), 3), ("caught-up".to_string(), 3)],
        "caught up after the backlog; two busy pages in a row mean behind; then caught up again"
    );
    let urls = json(&get(&log, "urls"));
    assert!(urls.contains("cursor0=1&wait=5") && !urls.contains("_first&wait"), "{urls}");
}

#[wasm_bindgen_test]
async fn released_events_are_handed_out_when_the_body_goes_quiet() {
    // A long-poll / streaming server: one committed event, then the body stays open.
    let pages =
        r#"[{"chunks": ["{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"1\"}\n"], "end": "stall"}]"#;
    let (r, log) = reader(pages, r#"{"partitionCount": 1, "maxBatchDelayMs": 5}"#);
    let started = js_sys::Date::now();
    let b = JsFuture::from(r.next()).await.expect("batch");
    let waited = js_sys::Date::now() - started;
    assert_eq!(get(&b, "text").as_string().as_deref(), Some(r#"[{"partition":0,"data":1}]"#));
    assert!(waited < 1_000.0, "the batch waited {waited} ms for a body that stays open");
    r.close();
    JsFuture::from(delay(0)).await.expect("delay");
    assert_eq!(get(&log, "cancelled").as_f64(), Some(1.0));
}

#[wasm_bindgen_test]
async fn an_abort_during_a_backoff_wait_ends_it_at_once() {
    let pages = r#"[{"status": 503, "chunks": ["busy"]}]"#;
    let scripted = scripted_fetch(js(pages));
    let controller = web_sys::AbortController::new().expect("controller");
    let options = js(r#"{"partitionCount": 1, "retry": {"initialMs": 60000, "maxMs": 60000, "multiplier": 1}}"#);
    Reflect::set(&options, &"fetch".into(), &get(&scripted, "fetch")).expect("set");
    Reflect::set(&options, &"signal".into(), &controller.signal()).expect("set");
    // Server-asked waits are honoured too: Retry-After would be 60 s; the jitter is drawn below 60 s.
    let r = FeedReader::new("http://127.0.0.1:9/feed/v1".into(), options).expect("reader");
    let started = js_sys::Date::now();
    let pending = JsFuture::from(r.next());
    JsFuture::from(delay(50)).await.expect("delay");
    controller.abort();
    let err = pending.await.expect_err("aborted");
    let waited = js_sys::Date::now() - started;
    assert_eq!(get(&err, "code"), "aborted", "{}", json(&err));
    assert!(waited < 5_000.0, "the backoff wait was not cancelled: {waited} ms");
}

#[wasm_bindgen_test]
async fn a_v2_reader_reads_one_partition_by_token_and_reports_409() {
    let pages = r#"[
        {"chunks": ["{\"data\": {\"type\": \"a\"}}\n{\"cursor\": \"c1\"}\n"]},
        {"status": 409, "chunks": ["token changed"]}
    ]"#;
    let opts = r#"{"partitionCount": 1, "cursors": ["_first"], "v2": {"token": "t 1", "partition": 16000, "eventTypes": ["a", "b.c"]}}"#;
    let (r, log) = reader(pages, opts);
    let out = run(&r).await;
    assert_eq!(json(&get(&out, "events")), r#"[{"partition":16000,"data":{"type":"a"}}]"#);
    assert_eq!(json(&get(&out, "checkpoints")), r#"[{"partition":16000,"cursor":"c1"}]"#);
    let err = get(&out, "error");
    assert_eq!(get(&err, "status").as_f64(), Some(409.0), "a token change is not retried: {}", json(&err));
    assert_eq!(
        json(&get(&log, "urls")),
        concat!(
            r#"["http://127.0.0.1:9/feed/v1/events?key=k&token=t%201&partition=16000&cursor=_first&event-types=a;b.c","#,
            r#""http://127.0.0.1:9/feed/v1/events?key=k&token=t%201&partition=16000&cursor=c1&event-types=a;b.c"]"#
        )
    );
}
