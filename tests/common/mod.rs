//! The wasm-bindgen suite of the synchronous `Core` (src/core.rs), entered from `node.rs`, `browser.rs` and
//! `worker.rs` so the same tests run in Node, a browser page and a dedicated worker (no `window` there). The core is
//! driven here by hand, as the TypeScript shell (js/src/reader/) drives it; the shell itself is tested in
//! tests/js/unit/reader.test.mjs and against real servers in tests/fault, tests/interop and tests/v2_server.

use feedpump::{code, Core, Decoder};
use js_sys::{Array, Error, Reflect, Uint32Array, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

fn js(text: &str) -> JsValue {
    JSON::parse(text).expect("test JSON")
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).expect("property")
}

fn json(v: &JsValue) -> String {
    JSON::stringify(v).expect("stringify").as_string().expect("string")
}

#[wasm_bindgen]
extern "C" {
    type TextDecoder;
    #[wasm_bindgen(constructor)]
    fn new(label: &str) -> TextDecoder;
}

/// `new TextDecoder(label)`, as the shell makes the decoders of batch texts.
fn decoder(label: &str) -> Decoder {
    TextDecoder::new(label).unchecked_into()
}

/// A core as the shell makes one: its ASCII texts through a `latin1` decoder (as in Chromium and workerd), the rest
/// through a UTF-8 one.
fn new_core(url: &str, opts: JsValue, can_refresh: bool) -> Result<Core, Error> {
    Core::new(url.into(), opts, can_refresh, decoder("latin1"), decoder("utf-8"))
}

fn core(opts: &str) -> Core {
    new_core("http://127.0.0.1:9/feed/v1?key=k", js(opts), false).expect("core")
}

/// Polls at `now` until the core asks for something other than a retry report.
fn answer(c: &mut Core, status: u16, retry_after: Option<&str>) {
    assert_eq!(c.poll(0.0), code::FETCH);
    assert!(c.handle_status(status.into(), retry_after.map_or(JsValue::UNDEFINED, JsValue::from)));
}

#[wasm_bindgen_test]
fn a_page_is_fetched_read_and_handed_out_as_raw_batches() {
    // Raw mode's text: the values as they came.
    let mut c = core(r#"{"partitionCount": 2, "cursors": ["_first", "_first"], "pageSizeHint": 50, "raw": true}"#);
    assert_eq!(c.poll(0.0), code::FETCH);
    assert_eq!(
        c.url().as_string().as_deref(),
        Some("http://127.0.0.1:9/feed/v1?key=k&n=2&cursor0=_first&cursor1=_first&pagesizehint=50")
    );
    assert_eq!(c.page(), 1);
    assert!(c.handle_status(200.into(), JsValue::UNDEFINED));
    assert_eq!(c.poll(1.0), code::READ);
    // "æ" split across two chunks; the second chunk also releases the events with a checkpoint.
    let mut first = br#"{"partition":0,"data":""#.to_vec();
    first.push(0xC3);
    assert_eq!(c.handle_chunk(2.0, Some(first)), code::READ);
    let mut second = vec![0xA6];
    second.extend_from_slice(b"\"}\n{\"partition\":1,\"data\":2}\n{\"partition\":0,\"cursor\":\"c0\"}\n");
    assert_eq!(c.handle_chunk(3.0, Some(second)), code::READ_FLUSH, "released events wait under the flush deadline");
    assert_eq!(c.poll_timeout(), 13.0, "the default flush deadline is 10 ms after the release");
    assert_eq!(c.handle_chunk(4.0, None), code::BATCH);
    let b = c.batch().expect("batch");
    assert_eq!(get(&b, "text").as_string().as_deref(), Some("[]"), "raw mode: no ASCII event");
    assert_eq!(get(&b, "wide").as_string().as_deref(), Some(r#"["æ"]"#), "the events' data outside ASCII");
    let meta: Uint32Array = get(&b, "meta").dyn_into().expect("meta");
    let w = 1 << 31;
    assert_eq!(meta.to_vec(), [w + 1, w + 4, 0, 1, 0, w + 1], "6 u32 per event: values 1..4 of wide, partition 0…");
    assert_eq!(json(&get(&b, "checkpoints")), r#"[{"partition":0,"cursor":"c0"}]"#);
    assert_eq!(get(&b, "page").as_f64(), Some(1.0));
    assert_eq!(get(&b, "end"), JsValue::TRUE);
    assert!(get(&b, "bytes").as_f64().is_some_and(|n| n > 0.0));
    assert_eq!(c.batch().expect("batch"), JsValue::UNDEFINED, "a batch is taken once");
    assert_eq!(c.poll(5.0), code::FETCH, "the next page");
    assert!(c.url().as_string().is_some_and(|u| u.contains("cursor0=c0&cursor1=_first")));
}

/// Without `raw` (parsed mode), the text's characters outside ASCII are `\u` escapes, the offsets those of the
/// escaped text; with it, the event is as it came, in the wide text (offsets from 2^31 on), and the text is ASCII.
/// A parsed-mode event that cannot be escaped (`"\æ"`) is as it came in the text: no longer ASCII, the text is
/// decoded as UTF-8, not by the decoder of ASCII texts (`latin1` here, which would make `Ã¦` of it).
#[wasm_bindgen_test]
fn parsed_mode_text_is_escaped_ascii() {
    let w = 1 << 31;
    let escapable = "{\"partition\":0,\"data\":\"æ😀\"}\n{\"partition\":0,\"data\":1}\n";
    let not = "{\"partition\":0,\"data\":\"\\æ\"}\n{\"partition\":0,\"data\":1}\n";
    for (opts, events, text, wide, start, end) in [
        (r#"{"partitionCount": 1}"#, escapable, r#"["\u00e6\ud83d\ude00",1]"#, None, 1, 21),
        (r#"{"partitionCount": 1, "raw": false}"#, escapable, r#"["\u00e6\ud83d\ude00",1]"#, None, 1, 21),
        (r#"{"partitionCount": 1, "raw": true}"#, escapable, "[1]", Some("[\"æ😀\"]"), w + 1, w + 6),
        (r#"{"partitionCount": 1}"#, not, "[\"\\æ\",1]", None, 1, 5),
    ] {
        let mut c = core(opts);
        answer(&mut c, 200, None);
        let body = format!("{events}{{\"partition\":0,\"cursor\":\"c\"}}\n");
        c.handle_chunk(1.0, Some(body.as_bytes().to_vec()));
        assert_eq!(c.handle_chunk(2.0, None), code::BATCH, "{opts}");
        let b = c.batch().expect("batch");
        assert_eq!(get(&b, "text").as_string().as_deref(), Some(text), "{opts}");
        assert_eq!(get(&b, "wide").as_string().as_deref(), wide, "{opts}");
        let meta: Uint32Array = get(&b, "meta").dyn_into().expect("meta");
        assert_eq!(meta.to_vec()[..6], [start, end, 0, 1, 0, start], "{opts}: UTF-16 offsets in its text");
    }
}

#[wasm_bindgen_test]
fn a_large_chunk_crosses_once_and_is_fed_in_bounded_slices() {
    let mut c = core(r#"{"partitionCount": 1}"#);
    answer(&mut c, 200, None);
    assert_eq!(c.poll(0.0), code::READ);
    let mut body = String::new();
    for i in 0..3000 {
        body.push_str(&format!("{{\"partition\":0,\"data\":{{\"i\":{i},\"pad\":\"{}\"}}}}\n", "p".repeat(40)));
        body.push_str(&format!("{{\"partition\":0,\"cursor\":\"{i}\"}}\n"));
    }
    let total = body.len();
    let mut action = c.handle_chunk(1.0, Some(body.into_bytes()));
    let mut events = 0;
    let mut batches = 0;
    while action == code::BATCH {
        let b = c.batch().expect("batch");
        let text = get(&b, "text").as_string().expect("text");
        assert!(text.len() <= 2 * 64 * 1024, "batches stay bounded: {}", text.len());
        events += Uint32Array::from(get(&b, "meta")).length() / 6;
        batches += 1;
        // The core feeds the rest of the chunk itself: the shell never sees a Feed.
        action = c.poll(1.0);
    }
    assert!(batches >= 2, "{batches} batches of a {total}-byte chunk");
    assert_eq!(action, code::READ_FLUSH);
    let mut action = c.handle_chunk(2.0, None);
    while action == code::BATCH {
        events += Uint32Array::from(get(&c.batch().expect("batch"), "meta")).length() / 6;
        action = c.poll(2.0);
    }
    assert_eq!(events, 3000);
}

#[wasm_bindgen_test]
fn the_flush_deadline_and_the_idle_watchdog_are_the_cores() {
    let mut c = core(r#"{"partitionCount": 1, "maxBatchDelayMs": 5, "idleTimeoutMs": 100, "retry": false}"#);
    answer(&mut c, 200, None);
    assert_eq!(c.poll(10.0), code::READ);
    assert_eq!(c.poll_timeout(), 110.0, "the idle watchdog counts from the read");
    assert_eq!(
        c.handle_chunk(20.0, Some(b"{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"1\"}\n".to_vec())),
        code::READ_FLUSH
    );
    assert_eq!(c.poll_timeout(), 25.0);
    c.handle_timeout(25.0);
    assert_eq!(c.poll(25.0), code::BATCH);
    assert_eq!(get(&c.batch().expect("batch"), "text").as_string().as_deref(), Some("[1]"));
    assert_eq!(c.poll(26.0), code::READ);
    c.handle_timeout(126.0);
    assert_eq!(c.poll(126.0), code::CANCEL, "a stalled body is cancelled");
    assert_eq!(c.poll(126.0), code::FAIL);
    assert!(c.has_failed());
    let e = c.error(JsValue::UNDEFINED, "".into());
    assert_eq!(get(&e, "code"), "stalled-body");
    assert_eq!(get(&e, "name"), "FeedError");
    assert_eq!(c.poll(127.0), code::FAIL, "the failure is final");
}

#[wasm_bindgen_test]
fn a_non_2xx_status_is_retried_with_its_status_text_and_snippet_and_retry_after() {
    let mut c = core(r#"{"partitionCount": 1, "retry": {"initialMs": 10, "maxMs": 20000}}"#);
    answer(&mut c, 503, Some("2"));
    assert_eq!(c.poll(0.0), code::READ);
    assert_eq!(
        c.handle_chunk(1.0, Some("x".repeat(3000).into_bytes())),
        code::CANCEL,
        "the snippet is kept, the rest cancelled"
    );
    assert_eq!(c.poll(1.0), code::RETRY);
    let info = c.retry(JsValue::UNDEFINED, "Service Unavailable".into());
    assert_eq!(get(&info, "attempt").as_f64(), Some(1.0));
    assert_eq!(get(&info, "delayMs").as_f64(), Some(2000.0), "Retry-After: 2");
    let e = get(&info, "error");
    assert_eq!(get(&e, "code"), "http-status");
    assert_eq!(get(&e, "status").as_f64(), Some(503.0));
    assert_eq!(get(&e, "bodySnippet").as_string().map(|s| s.len()), Some(512));
    assert!(get(&e, "message")
        .as_string()
        .is_some_and(|m| m.starts_with("http-status: the server answered 503 Service Unavailable: xxx")));
    assert_eq!(c.poll(1.0), code::WAIT);
    assert_eq!(c.poll_timeout(), 2001.0);
    assert_eq!(c.poll(2001.0), code::FETCH);
    assert!(!c.has_failed());
}

#[wasm_bindgen_test]
fn a_401_is_fetched_again_with_fresh_credentials_once_when_the_shell_can_refresh() {
    let mut c =
        new_core("http://127.0.0.1:9/feed/v1", js(r#"{"partitionCount": 1, "retry": false}"#), true).expect("core");
    answer(&mut c, 401, None);
    assert_eq!(c.poll(0.0), code::CANCEL);
    assert_eq!(c.poll(0.0), code::FETCH_REFRESH);
    assert!(c.handle_status(401.into(), JsValue::UNDEFINED));
    assert!(!c.handle_status(JsValue::from(1.5), JsValue::UNDEFINED), "not a status");
    assert_eq!(c.poll(0.0), code::READ);
    assert_eq!(c.handle_chunk(1.0, None), code::CANCEL);
    assert_eq!(c.poll(1.0), code::FAIL, "a second 401 is final");
    assert_eq!(get(&c.error(JsValue::UNDEFINED, "".into()), "status").as_f64(), Some(401.0));
}

#[wasm_bindgen_test]
fn transport_failures_keep_the_shells_value_as_the_error_or_its_cause() {
    // A cut body: truncated-body after the released events, with the runtime's error as cause.
    let mut c = core(r#"{"partitionCount": 1, "retry": false}"#);
    answer(&mut c, 200, None);
    assert_eq!(c.poll(0.0), code::READ);
    let chunk = b"{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"a\"}\n{\"partition\":0,\"da";
    assert_eq!(c.handle_chunk(1.0, Some(chunk.to_vec())), code::READ_FLUSH);
    assert!(c.handle_error(2.0, 1), "the fault that follows is the cut");
    assert_eq!(c.poll(2.0), code::CANCEL);
    assert_eq!(c.poll(2.0), code::BATCH, "the released events come before the error");
    assert_eq!(get(&c.batch().expect("batch"), "text").as_string().as_deref(), Some("[1]"));
    assert_eq!(c.poll(2.0), code::FAIL);
    let cause: JsValue = Error::new("terminated").into();
    let e = c.error(cause.clone(), "".into());
    assert_eq!(get(&e, "code"), "truncated-body");
    assert_eq!(get(&e, "offset").as_f64(), Some(72.0));
    assert_eq!(get(&e, "cause"), cause);
    assert!(!c.handle_error(3.0, 2), "nothing follows a final failure");

    // The network's and the caller's errors are handed on as they are; an abort is `aborted` with its reason.
    for (kind, code_name) in [(2u8, None), (3, None), (0, Some("aborted"))] {
        let mut c = core(r#"{"partitionCount": 1, "retry": false}"#);
        assert_eq!(c.poll(0.0), code::FETCH);
        let value: JsValue = Error::new("theirs").into();
        assert!(c.handle_error(1.0, kind));
        let mut action = c.poll(1.0);
        while action == code::CANCEL {
            action = c.poll(1.0);
        }
        assert_eq!(action, code::FAIL);
        let e = c.error(value.clone(), "".into());
        match code_name {
            None => assert_eq!(e, value),
            Some(name) => {
                assert_eq!(get(&e, "code"), name);
                assert_eq!(get(&e, "cause"), value);
            }
        }
    }
}

#[wasm_bindgen_test]
fn protocol_errors_name_line_offset_and_partition() {
    let mut c = core(r#"{"partitionCount": 2}"#);
    answer(&mut c, 200, None);
    assert_eq!(c.poll(0.0), code::READ);
    let mut action =
        c.handle_chunk(1.0, Some(b"{\"partition\":0,\"data\":1}\n{\"partition\":1,\"cursor\":5}\n".to_vec()));
    while action == code::CANCEL {
        action = c.poll(1.0);
    }
    assert_eq!(action, code::FAIL);
    let e = c.error(JsValue::UNDEFINED, "".into());
    assert_eq!(get(&e, "code"), "bad-cursor", "{}", json(&e));
    assert_eq!(get(&e, "line").as_f64(), Some(2.0));
    assert_eq!(get(&e, "offset").as_f64(), Some(25.0));
    assert_eq!(get(&e, "partition").as_f64(), Some(1.0));
    assert_eq!(get(&e, "page").as_f64(), Some(1.0));
}

#[wasm_bindgen_test]
fn bad_options_are_refused() {
    for opts in [
        r#"{"partitionCount": 0}"#,
        r#"{"partitionCount": 2, "cursors": ["a"]}"#,
        r#"{"partitionCount": 1, "cursors": [""]}"#,
        r#"{"partitionCount": 3, "partitions": [2, 1]}"#,
        r#"{"partitionCount": 3, "partitions": [1, 1]}"#,
        r#"{"partitionCount": 3, "partitions": []}"#,
        r#"{"partitionCount": 3, "partitions": [3]}"#,
        r#"{"partitionCount": 1, "retry": {"multiplier": 0.5}}"#,
    ] {
        let err = new_core("http://127.0.0.1:9/", js(opts), false).expect_err(opts);
        assert_eq!(get(&err.into(), "code"), "bad-options", "{opts}");
    }
    let (ascii, utf8) = (decoder("latin1"), decoder("utf-8"));
    let err = Core::new(JsValue::from(7), js(r#"{"partitionCount": 1}"#), false, ascii, utf8)
        .expect_err("a URL that is not a string");
    assert_eq!(get(&err.into(), "code"), "bad-options");
    assert!(Array::is_array(&js("[]")), "the harness is sound");
}

#[wasm_bindgen_test]
fn a_live_feed_waits_between_polls_and_signals_caught_up() {
    let mut c =
        core(r#"{"partitionCount": 1, "live": {"minIntervalMs": 5, "maxIntervalMs": 20, "longPollParam": "wait"}}"#);
    answer(&mut c, 200, None);
    assert_eq!(c.poll(0.0), code::READ);
    assert_eq!(c.handle_chunk(1.0, None), code::BATCH);
    assert_eq!(get(&c.batch().expect("batch"), "signal").as_string().as_deref(), Some("caught-up"));
    assert_eq!(c.poll(1.0), code::WAIT);
    let at = c.poll_timeout();
    assert!(at > 1.0, "{at}");
    assert_eq!(c.poll(at), code::FETCH);
    assert!(c.url().as_string().is_some_and(|u| u.contains("cursor0=_first")));
}
