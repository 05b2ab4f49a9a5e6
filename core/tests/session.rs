//! The session driven with simulated time (no sleeping): retries resume from the last checkpoint with backoff,
//! live feeds poll adaptively and signal caught-up / fell-behind, and no event is handed out twice or lost.
#![allow(clippy::unwrap_used)] // a test panics on what it did not expect

use feedpump_core::request::V1Options;
use feedpump_core::session::MAX_LIMIT;
use feedpump_core::{CursorSet, Decision, Failure, LivePolicy, Protocol, RetryPolicy, Session, SessionConfig, Signal};
use std::fmt::Write;

mod support;

/// A scripted server: answers a request for `cursor0=<c>` with the events after `c` (cursor = event number).
struct Server {
    head: u64,
}

impl Server {
    fn page(&self, url: &str, hint: u64) -> String {
        let from = url.split("cursor0=").nth(1).unwrap().split('&').next().unwrap();
        let from: u64 = if from == "_first" { 0 } else { from.parse().unwrap() };
        let mut body = String::new();
        for i in from + 1..=(from + hint).min(self.head) {
            body.push_str(&format!("{{\"partition\":0,\"data\":{i}}}\n{{\"partition\":0,\"cursor\":\"{i}\"}}\n"));
        }
        body
    }
}

fn events_of(s: &mut Session, seen: &mut Vec<u64>) {
    while let Some(b) = s.flush() {
        seen.extend(support::events(&b).iter().map(|e| e.data.parse::<u64>().unwrap()));
    }
}

#[test]
fn live_polls_back_off_while_idle_and_signal_position() {
    let mut config = SessionConfig::new("http://127.0.0.1:1/f?x=1", CursorSet::first(1));
    config.protocol = Protocol::V1(V1Options { page_size_hint: Some(10), ..V1Options::default() });
    config.live = Some(LivePolicy { min_ms: 100, max_ms: 800, long_poll_param: Some("wait".into()) });
    let mut s = Session::new(config);
    let mut server = Server { head: 25 };
    let (mut now, mut seen, mut signals, mut polls) = (0u64, Vec::new(), Vec::new(), Vec::new());
    while now < 10_000 {
        // A few live events at 3 s, then a burst of more than a page at 6 s.
        server.head = if now >= 6_000 {
            60
        } else if now >= 3_000 {
            28
        } else {
            25
        };
        let Some(url) = s.poll_request(now) else {
            now = s.poll_timeout().unwrap();
            continue;
        };
        polls.push((now, url.contains("&wait=")));
        s.handle_status(200).unwrap();
        s.handle_chunk(server.page(&url, 10).as_bytes()).unwrap();
        s.handle_eof().unwrap();
        events_of(&mut s, &mut seen);
        if let Some(sig) = s.poll_signal() {
            signals.push((now, sig));
        }
    }
    assert_eq!(seen, (1..=60).collect::<Vec<_>>(), "every event once, in order");
    let kinds: Vec<Signal> = signals.iter().map(|s| s.1).collect();
    assert_eq!(
        kinds,
        vec![Signal::CaughtUp, Signal::FellBehind, Signal::CaughtUp],
        "caught up after the backlog; behind on the burst's full page; caught up again: {signals:?}"
    );
    assert!(signals[0].0 == 0 && signals[1].0 >= 6_000 && signals[2].0 == signals[1].0, "{signals:?}");
    // The catch-up pages go out at once; then the waits grow 100, 200, 400, 800, 800...
    let idle: Vec<u64> = polls.windows(2).map(|w| w[1].0 - w[0].0).skip(3).take(6).collect();
    assert_eq!(idle, vec![100, 200, 400, 800, 800, 800]);
    assert!(polls[..3].iter().all(|p| !p.1) && polls[4].1, "only live polls carry the long-poll hint: {polls:?}");
    assert!(!s.is_caught_up(), "a live feed never ends");
}

#[test]
fn failures_resume_from_the_last_checkpoint_with_backoff() {
    let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
    config.retry =
        Some(RetryPolicy { initial_ms: 100, max_ms: 4_000, multiplier: 2.0, max_attempts: Some(3), deadline_ms: None });
    let mut s = Session::new(config);
    let mut seen = Vec::new();
    let url = s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    s.handle_chunk(b"{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"1\"}\n{\"partition\":0,\"data\":2}\n")
        .unwrap();
    // The connection is cut here.
    let Decision::RetryAt(at) = s.handle_failure(1_000, Failure::Truncated, None) else { panic!("not retried") };
    assert!((1_000..=1_100).contains(&at));
    events_of(&mut s, &mut seen);
    assert_eq!(seen, vec![1], "the released event comes out; the one after the checkpoint is dropped");
    assert_eq!(s.poll_request(at - 1), None, "no request before the backoff ends");
    let retry = s.poll_request(at).unwrap();
    assert!(url.ends_with("cursor0=_first") && retry.ends_with("cursor0=1"), "{retry}");
    s.handle_status(503).unwrap_err();
    assert!(matches!(s.handle_failure(at, Failure::Status(503), Some(2_000)), Decision::RetryAt(t) if t == at + 2_000));
    let again = s.poll_request(at + 2_000).unwrap();
    s.handle_status(500).unwrap_err();
    assert!(matches!(s.handle_failure(at + 2_000, Failure::Status(500), None), Decision::RetryAt(_)));
    let _ = again;
    let url = s.poll_request(u64::MAX / 2).unwrap();
    s.handle_status(500).unwrap_err();
    assert_eq!(s.handle_failure(u64::MAX / 2, Failure::Status(500), None), Decision::GiveUp, "3 attempts, then final");
    assert_eq!(s.poll_request(u64::MAX), None);
    assert!(url.ends_with("cursor0=1"));
}

#[test]
fn a_success_resets_the_backoff_and_final_failures_stop_at_once() {
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    s.poll_request(0).unwrap();
    s.handle_status(400).unwrap_err();
    assert_eq!(s.handle_failure(0, Failure::Status(400), None), Decision::GiveUp);
    assert_eq!(s.poll_request(1_000_000), None);
}

#[test]
fn v2_reads_one_partition_and_a_moving_cursor_without_events_is_not_caught_up() {
    use feedpump_core::request::{EventTypes, V2Options};
    let mut config = SessionConfig::new("https://127.0.0.1:1/myfeed", CursorSet::first(1));
    config.protocol = Protocol::V2(V2Options {
        token: "t1".into(),
        partition: 16000,
        page_size_hint: Some(2),
        event_types: EventTypes::Skip(vec!["internal".into()]),
    });
    let mut s = Session::new(config);
    // Page 1: two events. Page 2: only filtered-away events, so only a cursor. Page 3: nothing new.
    let pages = [
        "{\"data\": {\"n\": 1}}\n{\"data\": \"AAEC\"}\n{\"cursor\": \"c2\"}\n",
        "{\"cursor\": \"c9\"}\n{\"future\": \"command\"}\n",
        "{\"cursor\": \"c9\"}\n",
    ];
    let mut urls = Vec::new();
    let mut texts = Vec::new();
    for page in pages {
        urls.push(s.poll_request(0).unwrap());
        s.handle_status(200).unwrap();
        s.handle_chunk(page.as_bytes()).unwrap();
        s.handle_eof().unwrap();
        while let Some(b) = s.flush() {
            texts.push((
                support::objects(&b),
                b.checkpoints.iter().map(|c| (c.partition, c.cursor.clone())).collect::<Vec<_>>(),
            ));
        }
    }
    assert!(s.is_caught_up(), "caught up only once a page neither brings events nor moves the cursor");
    assert_eq!(
        urls,
        vec![
            "https://127.0.0.1:1/myfeed/events?token=t1&partition=16000&cursor=_first&pagesizehint=2&skip-event-types=internal",
            "https://127.0.0.1:1/myfeed/events?token=t1&partition=16000&cursor=c2&pagesizehint=2&skip-event-types=internal",
            "https://127.0.0.1:1/myfeed/events?token=t1&partition=16000&cursor=c9&pagesizehint=2&skip-event-types=internal",
        ]
    );
    assert_eq!(texts[0].0, r#"[{"partition":16000,"data":{"n": 1}},{"partition":16000,"data":"AAEC"}]"#);
    assert_eq!(texts[0].1, vec![(16000, "c2".to_string())]);
    assert_eq!(texts[1].1, vec![(16000, "c9".to_string())], "a cursor-only page still advances the cursor");
}

/// A live feed polled while a steady flow adds events: after the first second, one more event by every request (so
/// even the immediate re-poll after a busy page finds one). Every page is busy, and short of a page size hint of 10.
fn steady_flow_signals(hint: Option<u32>) -> Vec<Signal> {
    let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
    config.protocol = Protocol::V1(V1Options { page_size_hint: hint, ..V1Options::default() });
    config.live = Some(LivePolicy { min_ms: 100, max_ms: 800, long_poll_param: None });
    let mut s = Session::new(config);
    let mut server = Server { head: 5 };
    let (mut now, mut seen, mut signals) = (0u64, Vec::new(), Vec::new());
    while now < 5_000 {
        let Some(url) = s.poll_request(now) else {
            now = s.poll_timeout().unwrap();
            continue;
        };
        if now >= 1_000 {
            server.head += 1;
        }
        s.handle_status(200).unwrap();
        s.handle_chunk(server.page(&url, u64::from(hint.unwrap_or(1_000))).as_bytes()).unwrap();
        s.handle_eof().unwrap();
        events_of(&mut s, &mut seen);
        signals.extend(s.poll_signal());
        now += 5; // the round trip
    }
    assert_eq!(seen, (1..=server.head).collect::<Vec<_>>(), "every event once, in order");
    signals
}

#[test]
fn a_steady_flow_of_short_pages_stays_caught_up_with_a_hint() {
    assert_eq!(steady_flow_signals(Some(10)), vec![Signal::CaughtUp], "short pages are at the head");
    // Without a hint a page's fullness is unknown: busy pages in a row are all there is to go by (documented).
    assert_eq!(steady_flow_signals(None), vec![Signal::CaughtUp, Signal::FellBehind]);
}

#[test]
fn events_held_back_beyond_the_limit_are_a_typed_error_not_unbounded_memory() {
    let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(2));
    config.max_held = 100;
    let mut s = Session::new(config);
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    // Partition 1 gets its checkpoints; partition 0 never does, and its held events pass 100 bytes on line 4.
    let body = "{\"partition\":0,\"data\":\"aaaaaaaaaaaaaaaaaaaa\"}\n{\"partition\":1,\"data\":1}\n{\"partition\":1,\"cursor\":\"1\"}\n\
                {\"partition\":0,\"data\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}\n";
    let e = s.handle_chunk(body.as_bytes()).unwrap_err();
    assert_eq!(e.kind.code(), "no-progress", "{e:?}");
    assert_eq!((e.line, e.partition), (4, Some(0)), "{e:?}");
    assert!(e.detail.contains("maxHeldBytes"));
    let mut seen = Vec::new();
    while let Some(b) = s.flush() {
        seen.push(support::objects(&b));
    }
    assert_eq!(seen, vec!["[{\"partition\":1,\"data\":1}]".to_string()], "what was released before still comes out");
}

/// The limit bounds what held events cost, not only their text: a page of the smallest events (`"data":0`, two bytes
/// of text each, with the comma) and no checkpoint fails once their bookkeeping reaches it. It counted the text only,
/// so 1 MiB held 524,288 events (15 MiB of bookkeeping), and the default 64 MiB held 33.5 million (2.9 GB of wasm
/// memory in Node); a limit of 128 MiB ran the wasm out of memory (tests/fault/memory.test.mjs).
#[test]
fn the_held_limit_counts_each_events_bookkeeping() {
    let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
    config.max_held = 1 << 20;
    let mut s = Session::new(config);
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    let chunk = "{\"partition\":0,\"data\":0}\n".repeat(4096);
    let e = loop {
        if let Err(e) = s.handle_chunk(chunk.as_bytes()) {
            break e;
        }
    };
    assert_eq!(e.kind.code(), "no-progress", "{e:?}");
    // The events held when it failed (all but the last line's), each with at least its bookkeeping, fit in the limit.
    let held = e.line - 1;
    let most = (1 << 20) / feedpump_core::batch::HELD_EVENT_BYTES as u64;
    assert!(held <= most, "{held} events held under a limit of 1 MiB: more than {most}");
    assert!(held > most * 9 / 10, "{held} events: the limit is the text and the bookkeeping, not more");
}

/// `maxHeldBytes` and `maxLineLength` above [`MAX_LIMIT`] act as it, so that a batch's text and a cursor always fit in
/// a JavaScript string: events held past it are `no-progress`, a line past it is `line-too-long`, typed errors both.
#[test]
fn limits_past_the_longest_javascript_string_act_as_max_limit() {
    let started = |max_line: usize, max_held: usize| {
        let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
        (config.max_line, config.max_held) = (max_line, max_held);
        let mut s = Session::new(config);
        s.poll_request(0).unwrap();
        s.handle_status(200).unwrap();
        s
    };
    // Events of 8 MiB with no checkpoint: the one that takes the held bytes past MAX_LIMIT fails.
    let mut s = started(16 << 20, usize::MAX);
    let event = format!("{{\"partition\":0,\"data\":\"{}\"}}\n", "x".repeat(8 << 20));
    // What is held of each: its data, the string with its quotes, and its bookkeeping.
    let held_events = MAX_LIMIT / ((8 << 20) + 2 + feedpump_core::batch::HELD_EVENT_BYTES) + 1;
    for i in 1..held_events {
        s.handle_chunk(event.as_bytes()).unwrap_or_else(|e| panic!("event {i}: {e:?}"));
    }
    let e = s.handle_chunk(event.as_bytes()).unwrap_err();
    assert_eq!((e.kind.code(), e.line), ("no-progress", held_events as u64), "{e:?}");
    drop(s);
    // A line that does not end: refused once it is longer than MAX_LIMIT, fed a MiB at a time.
    let mut s = started(usize::MAX, 64 << 20);
    s.handle_chunk(b"{\"partition\":0,\"data\":\"").unwrap();
    let mib = vec![b'y'; 1 << 20];
    let mut fed = 0;
    let e = loop {
        match s.handle_chunk(&mib) {
            Ok(()) => fed += mib.len(),
            Err(e) => break e,
        }
        assert!(fed <= MAX_LIMIT, "past MAX_LIMIT");
    };
    assert_eq!(e.kind.code(), "line-too-long", "{e:?}");
    assert!(fed + mib.len() > MAX_LIMIT - 32, "not before MAX_LIMIT: {fed}");
}

/// Runs one page of `body` from `_first` on a one-partition feed; returns the batches' (text, cursors) and the error.
fn one_page(body: &str) -> (Vec<(String, Vec<String>)>, Option<String>) {
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    let err = s.handle_chunk(body.as_bytes()).and_then(|()| s.handle_eof()).err().map(|e| e.code().to_string());
    let mut out = Vec::new();
    while let Some(b) = s.flush() {
        out.push((support::objects(&b), b.checkpoints.iter().map(|c| c.cursor.clone()).collect()));
    }
    (out, err)
}

#[test]
fn a_checkpoint_moving_back_with_no_events_between_is_regressed() {
    // e1, cp A, e2, cp B, cp A: committing A after e2 was delivered would apply e2 again on the next page.
    let (batches, err) = one_page(
        "{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"A\"}\n{\"partition\":0,\"data\":2}\n\
         {\"partition\":0,\"cursor\":\"B\"}\n{\"partition\":0,\"cursor\":\"A\"}\n",
    );
    assert_eq!(err.as_deref(), Some("cursor-regressed"));
    let cursors: Vec<String> = batches.iter().flat_map(|b| b.1.clone()).collect();
    assert_eq!(cursors, vec!["A", "B"], "A is never committed after B");
    // Back to the page's start cursor with no events held is a regression too.
    let (_, err) = one_page(
        "{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"A\"}\n{\"partition\":0,\"cursor\":\"_first\"}\n",
    );
    assert_eq!(err.as_deref(), Some("cursor-regressed"));
    // Repeating the current cursor with no new events stays a no-op.
    let (batches, err) = one_page(
        "{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"A\"}\n{\"partition\":0,\"cursor\":\"A\"}\n",
    );
    assert_eq!(err, None);
    assert_eq!(batches, vec![("[{\"partition\":0,\"data\":1}]".to_string(), vec!["A".to_string()])]);
}

#[test]
fn a_checkpoint_after_every_event_of_a_huge_page_keeps_bounded_cursor_state() {
    // 2 million `event, checkpoint` pairs on one never-ending page, fed in chunks with batches taken in between: every
    // event is delivered, and the cursors remembered for the regression check stay bounded (they used to grow with
    // every checkpoint: 48 MiB of wasm memory for 200k events).
    const PAIRS: u64 = 2_000_000;
    const PER_CHUNK: u64 = 1_000;
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    let (mut delivered, mut max_state, mut chunk) = (0u64, 0usize, String::new());
    for start in (0..PAIRS).step_by(PER_CHUNK as usize) {
        chunk.clear();
        for i in start + 1..=start + PER_CHUNK {
            writeln!(chunk, "{{\"partition\":0,\"data\":{i}}}\n{{\"partition\":0,\"cursor\":\"c{i}\"}}").unwrap();
        }
        s.handle_chunk(chunk.as_bytes()).unwrap();
        while let Some(b) = s.poll_batch() {
            delivered += (b.meta.len() / feedpump_core::batch::META_STRIDE) as u64;
        }
        max_state = max_state.max(s.passed_cursor_bytes());
        assert!(max_state <= 64 * 1024, "passed-cursor state grew to {max_state} bytes after {start} pairs");
    }
    s.handle_eof().unwrap();
    while let Some(b) = s.flush() {
        delivered += (b.meta.len() / feedpump_core::batch::META_STRIDE) as u64;
    }
    assert_eq!(delivered, PAIRS, "every event delivered");
    assert_eq!(s.cursors().cursor(0), Some(format!("c{PAIRS}").as_str()));
    assert!(max_state >= 64 * "c1999999".len(), "the state is measured: {max_state}");
}

#[test]
fn live_poll_waits_fit_a_timer_and_odd_bounds_do_not_panic() {
    use feedpump_core::MAX_TIMER_MS;
    for (min_ms, max_ms) in [(u64::MAX, u64::MAX), (1, u64::MAX), (5_000, 100), (1 << 40, 1 << 41)] {
        let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
        config.live = Some(LivePolicy { min_ms, max_ms, long_poll_param: Some("wait".into()) });
        let mut s = Session::new(config);
        let mut now = 1_000u64;
        for page in 0..40 {
            let url = s.poll_request(now).unwrap_or_else(|| panic!("page {page} not ready at {now}"));
            s.handle_status(200).unwrap();
            s.handle_eof().unwrap();
            let wake = s.poll_timeout().unwrap();
            assert!(wake - now <= MAX_TIMER_MS, "{min_ms}..{max_ms}: waits {} ms", wake - now);
            if let Some(wait) = url.split("wait=").nth(1) {
                assert!(wait.parse::<u64>().unwrap() <= MAX_TIMER_MS, "{url}");
            }
            now = wake;
        }
    }
}

/// Drives a session against `serve` (cursor -> body; `None` cuts the connection after the body) the way a shell does,
/// with simulated time, but with the planted shell bug of treating every failure as retryable, under a policy that
/// never gives up. Returns the pages requested, the events delivered and whether it ended (within `max_pages`).
fn drive_buggy_shell(serve: impl Fn(&str) -> (String, bool), max_pages: usize) -> (usize, Vec<u64>, bool) {
    let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
    config.retry =
        Some(RetryPolicy { initial_ms: 10, max_ms: 1_000, multiplier: 2.0, max_attempts: None, deadline_ms: None });
    let mut s = Session::new(config);
    let (mut now, mut pages, mut seen) = (0u64, 0usize, Vec::new());
    while pages < max_pages {
        if s.is_caught_up() {
            return (pages, seen, true);
        }
        let Some(url) = s.poll_request(now) else {
            match s.poll_timeout() {
                Some(at) => now = at,
                None => return (pages, seen, true),
            }
            continue;
        };
        pages += 1;
        let cursor = url.split("cursor0=").nth(1).unwrap().to_string();
        let (body, cut) = serve(&cursor);
        s.handle_status(200).unwrap();
        let r = s.handle_chunk(body.as_bytes()).and_then(|()| if cut { Ok(()) } else { s.handle_eof() });
        events_of(&mut s, &mut seen);
        if r.is_err() || cut {
            // The planted bug: a protocol error reported as a cut body, so the policy would retry it.
            if s.handle_failure(now, Failure::Truncated, None) == Decision::GiveUp {
                return (pages, seen, true);
            }
        }
        now += 1;
    }
    (pages, seen, false)
}

#[test]
fn a_page_that_repeats_a_regression_is_not_refetched_forever() {
    // The server answers every request with a page that moves the cursor back: retrying cannot help.
    let page = |_: &str| {
        ("{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"A\"}\n{\"partition\":0,\"cursor\":\"_first\"}\n"
            .to_string(), false)
    };
    let (pages, seen, ended) = drive_buggy_shell(page, 1_000);
    assert!(ended && pages == 1, "a core-detected protocol error is final whatever the shell says: {pages} pages");
    assert_eq!(seen, vec![1], "event 1 once");
}

#[test]
fn cursors_cycling_across_pages_are_regressed_not_a_loop() {
    // _first -> A -> B -> _first -> ...: every page brings events and a new checkpoint, but the cursors cycle.
    let cycle = |c: &str| {
        let (data, next) = match c {
            "_first" => (1, "A"),
            "A" => (2, "B"),
            _ => (3, "_first"),
        };
        (format!("{{\"partition\":0,\"data\":{data}}}\n{{\"partition\":0,\"cursor\":\"{next}\"}}\n"), false)
    };
    let (pages, seen, ended) = drive_buggy_shell(cycle, 1_000);
    assert!(ended && pages == 3, "the third page moves back to the first page's start: {pages} pages");
    assert_eq!(seen, vec![1, 2], "nothing delivered twice");
}

#[test]
fn a_page_cut_the_same_way_every_time_gives_up_after_a_few_tries() {
    // Events, then the connection is cut before any checkpoint, on every try: unlimited retries would refetch the
    // same page forever.
    let cut = |_: &str| ("{\"partition\":0,\"data\":1}\n{\"partition\":0,\"data\":2}\n".to_string(), true);
    let (pages, seen, ended) = drive_buggy_shell(cut, 1_000);
    assert!(ended && pages == feedpump_core::session::MAX_STUCK_ATTEMPTS as usize, "{pages} pages");
    assert!(seen.is_empty());
}

#[test]
fn the_same_page_is_resent_at_once_only_after_a_status_and_only_once() {
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    s.poll_request(0).unwrap();
    s.handle_status(401).unwrap_err();
    assert!(s.handle_retry_same_page(), "a 401 may be resent once with fresh credentials");
    s.handle_status(401).unwrap_err();
    assert!(!s.handle_retry_same_page(), "not twice: a shell that keeps resending would loop");
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    s.handle_chunk(b"not json\n").unwrap_err();
    assert!(!s.handle_retry_same_page(), "a protocol error is not resent");
    assert_eq!(s.poll_request(1_000_000), None);
}

#[test]
fn only_tries_that_read_events_and_got_nowhere_count_towards_giving_up() {
    let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
    config.retry =
        Some(RetryPolicy { initial_ms: 10, max_ms: 1_000, multiplier: 2.0, max_attempts: None, deadline_ms: None });
    let mut s = Session::new(config);
    let mut now = 0u64;
    let mut next = 0u32;
    // Each step is one try: a network failure (nothing read), a cut after events with no checkpoint (stuck), a cut
    // after a checkpoint (progress), a body cut inside a line (a core error that is retried), or a complete page.
    let mut try_page = |s: &mut Session, kind: &str| -> Decision {
        let mut now_at = now;
        let url = loop {
            match s.poll_request(now_at) {
                Some(url) => break url,
                None => now_at = s.poll_timeout().expect("waiting"),
            }
        };
        now = now_at;
        assert!(url.contains("cursor0="), "{url}");
        let failure = match kind {
            "network" => Failure::Network,
            "stuck" => {
                s.handle_status(200).unwrap();
                s.handle_chunk(b"{\"partition\":0,\"data\":1}\n").unwrap();
                Failure::Truncated
            }
            "progress" | "complete" => {
                next += 1;
                s.handle_status(200).unwrap();
                s.handle_chunk(
                    format!("{{\"partition\":0,\"data\":1}}\n{{\"partition\":0,\"cursor\":\"c{next}\"}}\n").as_bytes(),
                )
                .unwrap();
                if kind == "complete" {
                    s.handle_eof().unwrap();
                    while s.flush().is_some() {}
                    return Decision::RetryAt(now);
                }
                Failure::Truncated
            }
            _ => {
                s.handle_status(200).unwrap();
                s.handle_chunk(b"{\"partition\":0,\"da").unwrap();
                assert_eq!(s.handle_eof().unwrap_err().code(), "truncated-body");
                Failure::Truncated
            }
        };
        let d = s.handle_failure(now, failure, None);
        while s.flush().is_some() {}
        d
    };
    let plan = [
        ["network"; 20].as_slice(),
        &["stuck"; 7],
        &["progress"],
        &["stuck"; 7],
        &["complete"],
        &["stuck"; 7],
        &["cut-line"; 20],
    ]
    .concat();
    for (i, kind) in plan.iter().enumerate() {
        assert_ne!(try_page(&mut s, kind), Decision::GiveUp, "try {i} ({kind}) gave up");
    }
    assert_eq!(try_page(&mut s, "stuck"), Decision::GiveUp, "the 8th stuck try in a row gives up");
    // A session that is not failed has nothing to resend.
    let mut fresh = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    assert!(!fresh.handle_retry_same_page());
    fresh.poll_request(0).unwrap();
    assert!(!fresh.handle_retry_same_page());
}

#[test]
fn released_batches_are_taken_before_the_next_page() {
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    assert!(!s.has_released());
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    s.handle_chunk(b"{\"partition\":0,\"data\":1}\n").unwrap();
    assert!(!s.has_released(), "held, not released");
    s.handle_chunk(b"{\"partition\":0,\"cursor\":\"1\"}\n").unwrap();
    assert!(s.has_released());
    assert_eq!(s.poll_batch(), None, "less than a batch while the page streams");
    s.handle_eof().unwrap();
    assert_eq!(s.poll_request(0), None, "the next page waits until the batch is taken");
    s.poll_batch().unwrap();
    assert!(!s.has_released());
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    s.handle_eof().unwrap();
    assert!(s.is_caught_up());
    // A checkpoint with no events is released too (a v2 cursor-only page moves the cursor).
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    s.handle_chunk(b"{\"partition\":0,\"cursor\":\"5\"}\n").unwrap();
    assert!(s.has_released());
    s.handle_eof().unwrap();
    assert_eq!(s.flush().unwrap().checkpoints[0].cursor, "5");
    assert!(!s.has_released());
}
