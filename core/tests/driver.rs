//! The driver's decisions with simulated time: the flush deadline, the idle watchdog, chunk slicing, the 401 resent
//! once, `Retry-After`, the error held back behind the last batch, and the failure class of every fault. No test
//! sleeps: `now` is a number the test moves.
#![allow(clippy::unwrap_used)] // a test panics on what it did not expect

use feedpump_core::driver::{Action, Driver, DriverOptions, Fault, Output, Transport, SNIPPET_BYTES};
use feedpump_core::session::BATCH_BYTES;
use feedpump_core::{CursorSet, ErrorKind, Failure, RetryPolicy, SessionConfig, Signal};

const URL: &str = "http://127.0.0.1:1/f";
const OPTIONS: DriverOptions = DriverOptions { flush_ms: 10, idle_ms: 1_000, can_refresh: false };

fn driver(options: DriverOptions) -> Driver {
    Driver::new(SessionConfig::new(URL, CursorSet::first(1)), options)
}

/// An event and the checkpoint that releases it.
fn released(i: u32) -> String {
    format!("{{\"partition\":0,\"data\":{i}}}\n{{\"partition\":0,\"cursor\":\"{i}\"}}\n")
}

/// Polls past the request and answers it with `status` at `now`.
fn start(d: &mut Driver, now: u64, status: u16) {
    assert!(matches!(d.poll(now), Action::Fetch { refresh: false, .. }));
    d.handle_status(status, None);
}

fn batch(action: Action) -> Output {
    match action {
        Action::Batch(out) => out,
        other => panic!("expected a batch, got {other:?}"),
    }
}

#[test]
fn released_events_wait_flush_ms_from_their_release_not_from_the_last_chunk() {
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 200);
    assert_eq!(d.poll(0), Action::Read);
    d.handle_chunk(100, released(1).as_bytes());
    assert_eq!(d.poll(100), Action::Read);
    assert_eq!(d.poll_timeout(), Some(110));
    // A body that trickles a line every few ms does not postpone the flush.
    for now in [104, 108] {
        d.handle_chunk(now, b"{\"partition\":0,\"data\":0}\n");
        assert_eq!(d.poll(now), Action::Read);
        assert_eq!(d.poll_timeout(), Some(110));
    }
    d.handle_timeout(110);
    let out = batch(d.poll(110));
    assert_eq!(out.batch.unwrap().checkpoints[0].cursor, "1");
    assert!(!out.end);
    // Nothing released: back to the idle watchdog, counted from the new read (however long the consumer took).
    assert_eq!(d.poll(5_000), Action::Read);
    assert_eq!(d.poll_timeout(), Some(6_000));
}

#[test]
fn a_passed_flush_deadline_is_seen_before_the_next_read_without_a_timer() {
    // Chunks keep arriving, so the shell's timer never wins a race: the deadline is checked at every poll.
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 200);
    assert_eq!(d.poll(0), Action::Read);
    d.handle_chunk(0, released(1).as_bytes());
    assert_eq!(d.poll(0), Action::Read);
    d.handle_chunk(9, b"{\"partition\":0,\"da");
    assert_eq!(d.poll(9), Action::Read);
    d.handle_chunk(10, b"ta\":2}\n");
    assert_eq!(batch(d.poll(10)).batch.unwrap().len(), 1);
    // flush_ms 0: handed out at once.
    let mut d = driver(DriverOptions { flush_ms: 0, ..OPTIONS });
    start(&mut d, 0, 200);
    d.handle_chunk(5, released(1).as_bytes());
    assert_eq!(batch(d.poll(5)).batch.unwrap().len(), 1);
}

#[test]
fn a_request_unanswered_for_idle_ms_is_stalled_and_retried() {
    // No response head for idle_ms (a server that accepts and never answers): the request fails as a silent body
    // does, counted from the request; the shell drops the request on the Cancel.
    let mut d = driver(OPTIONS);
    assert_eq!(d.poll(100), Action::Fetch { refresh: false });
    assert_eq!(d.poll_timeout(), Some(1_100), "the watchdog runs from the request on");
    assert_eq!(d.poll(600), Action::Wait, "nothing to do while the request is out");
    d.handle_timeout(1_100);
    assert_eq!(d.poll(1_100), Action::Cancel);
    let Action::Retry { fault, page: 1, attempt: 1, .. } = d.poll(1_100) else { panic!() };
    assert_eq!(fault, Fault::Stalled { idle_ms: 1_000, offset: 0 });
    // A refreshed request (after a 401) is watched from its own start.
    let mut d = driver(DriverOptions { can_refresh: true, ..OPTIONS });
    start(&mut d, 0, 401);
    assert_eq!(d.poll(50), Action::Cancel);
    assert_eq!(d.poll(50), Action::Fetch { refresh: true });
    assert_eq!(d.poll_timeout(), Some(1_050));
    // An answer in time: the body's watchdog takes over.
    d.handle_status(200, None);
    assert_eq!(d.poll(900), Action::Read);
    assert_eq!(d.poll_timeout(), Some(1_900));
    // idle_ms 0: never.
    let mut d = driver(DriverOptions { idle_ms: 0, ..OPTIONS });
    assert_eq!(d.poll(0), Action::Fetch { refresh: false });
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn a_body_silent_for_idle_ms_is_stalled_and_retried() {
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 200);
    assert_eq!(d.poll(0), Action::Read);
    d.handle_chunk(500, b"{\"partition\":0,");
    assert_eq!(d.poll(500), Action::Read);
    assert_eq!(d.poll_timeout(), Some(1_500), "counted from the last read, not the start of the body");
    d.handle_timeout(1_500);
    assert_eq!(d.poll(1_500), Action::Cancel);
    let Action::Retry { fault, page: 1, attempt: 1, delay_ms } = d.poll(1_500) else { panic!() };
    assert_eq!(fault, Fault::Stalled { idle_ms: 1_000, offset: 15 });
    assert!(delay_ms <= 100);
    assert_eq!(d.poll(1_500), Action::Wait);
    assert_eq!(d.poll_timeout(), Some(1_500 + delay_ms));
    assert_eq!(d.poll(1_500 + delay_ms), Action::Fetch { refresh: false });
    assert_eq!(d.url(), format!("{URL}?n=1&cursor0=_first"));
}

#[test]
fn idle_ms_zero_sets_no_watchdog() {
    let mut d = driver(DriverOptions { idle_ms: 0, ..OPTIONS });
    start(&mut d, 0, 200);
    assert_eq!(d.poll(0), Action::Read);
    assert_eq!(d.poll_timeout(), None);
    d.handle_timeout(u64::MAX);
    assert_eq!(d.poll(u64::MAX), Action::Read);
}

#[test]
fn a_large_chunk_is_fed_in_batch_bytes_slices_so_batches_stay_bounded() {
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 200);
    let body: String = (0..20_000).map(released).collect();
    assert!(body.len() > 3 * BATCH_BYTES);
    let mut fed = d.handle_chunk(0, body.as_bytes());
    assert_eq!(fed, BATCH_BYTES);
    let mut events = 0;
    loop {
        match d.poll(0) {
            Action::Batch(out) => {
                let b = out.batch.unwrap();
                // Under BATCH_BYTES before the last slice, which adds at most about a slice of text.
                assert!(b.text.len() < 2 * BATCH_BYTES + 1_024, "{}", b.text.len());
                events += b.len();
            }
            Action::Feed => {
                assert!(fed < body.len(), "fed asked for with nothing left");
                fed += d.handle_chunk(0, &body.as_bytes()[fed..]);
            }
            Action::Read => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fed, body.len());
    d.handle_eof(0);
    let out = batch(d.poll(0));
    events += out.batch.unwrap().len();
    assert!(out.end);
    assert_eq!(events, 20_000);
}

#[test]
fn the_end_of_a_page_is_reported_even_with_nothing_to_hand_out_and_bytes_are_counted_per_output() {
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 200);
    let first = released(1);
    d.handle_chunk(0, first.as_bytes());
    assert_eq!(d.poll(0), Action::Read);
    d.handle_timeout(10);
    assert_eq!(batch(d.poll(10)).bytes, first.len() as u64);
    d.handle_chunk(1, b"{\"partition\":0,\"data\":2}\n");
    d.handle_eof(1);
    let out = batch(d.poll(1));
    assert_eq!((out.batch, out.signal, out.page, out.bytes, out.end), (None, None, 1, 25, true));
    // An empty page: caught up, the signal rides on the end; then the feed is done.
    start(&mut d, 2, 200);
    d.handle_eof(2);
    let out = batch(d.poll(2));
    assert_eq!((out.signal, out.page, out.bytes, out.end), (Some(Signal::CaughtUp), 2, 0, true));
    assert_eq!(d.poll(2), Action::Done);
}

#[test]
fn a_final_error_comes_after_the_events_released_before_it() {
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 200);
    d.handle_chunk(0, format!("{}not json\n", released(1)).as_bytes());
    assert_eq!(d.poll(0), Action::Cancel);
    assert!(d.has_failed());
    let out = batch(d.poll(0));
    assert_eq!((out.batch.unwrap().len(), out.signal, out.end), (1, None, false));
    let Action::Fail { fault: Fault::Protocol(e), page: 1 } = d.poll(0) else { panic!() };
    assert_eq!(e.kind, ErrorKind::BadLine);
    assert_eq!(d.poll(1), Action::Fail { fault: Fault::Protocol(e), page: 1 }, "and again on every later poll");
    assert!(!d.handle_transport_error(2, Transport::Network), "nothing changes it");
    d.handle_status(200, None);
    d.handle_eof(2);
    assert_eq!(d.handle_chunk(2, b"x"), 1);
    assert_eq!(d.poll(2), Action::Fail { fault: Fault::Protocol(e), page: 1 });
}

#[test]
fn an_abort_is_final_whatever_the_retry_policy_and_released_events_come_first() {
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 200);
    d.handle_chunk(0, released(1).as_bytes());
    assert!(d.handle_transport_error(0, Transport::Aborted));
    assert_eq!(d.poll(0), Action::Cancel);
    assert_eq!(batch(d.poll(0)).batch.unwrap().len(), 1);
    assert_eq!(d.poll(0), Action::Fail { fault: Fault::Aborted, page: 1 });
    // Before any response too.
    let mut d = driver(OPTIONS);
    d.poll(0);
    assert!(d.handle_transport_error(0, Transport::Aborted));
    assert_eq!(d.poll(0), Action::Cancel);
    assert_eq!(d.poll(0), Action::Fail { fault: Fault::Aborted, page: 1 });
}

#[test]
fn a_cut_body_is_truncated_and_retried_from_the_last_checkpoint() {
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 200);
    let first = released(7);
    d.handle_chunk(0, format!("{first}{{\"partition\":0,\"data\":8}}\n").as_bytes());
    assert!(d.handle_transport_error(3, Transport::Cut));
    assert_eq!(d.poll(3), Action::Cancel);
    let Action::Retry { fault, attempt: 1, .. } = d.poll(3) else { panic!() };
    assert_eq!(fault, Fault::Cut { offset: first.len() as u64 + 25 });
    // The events released before the cut are handed out before the retry's request.
    assert_eq!(batch(d.poll(3)).batch.unwrap().checkpoints[0].cursor, "7");
    assert_eq!(d.poll(1_000), Action::Fetch { refresh: false });
    assert_eq!(d.url(), format!("{URL}?n=1&cursor0=7"));
}

#[test]
fn network_errors_are_retried_and_the_callers_errors_are_not() {
    let mut d = driver(OPTIONS);
    d.poll(0);
    assert!(d.handle_transport_error(0, Transport::Network));
    assert_eq!(d.poll(0), Action::Cancel);
    assert!(matches!(d.poll(0), Action::Retry { fault: Fault::Network, page: 1, attempt: 1, .. }));
    assert!(!d.has_failed());
    assert!(matches!(d.poll(1_000), Action::Fetch { refresh: false, .. }));
    assert!(d.handle_transport_error(1_000, Transport::Caller));
    assert_eq!(d.poll(1_000), Action::Cancel);
    assert_eq!(d.poll(1_000), Action::Fail { fault: Fault::Caller, page: 2 });
}

#[test]
fn a_401_is_sent_again_once_with_fresh_credentials_when_the_shell_can_refresh() {
    let mut d = driver(DriverOptions { can_refresh: true, ..OPTIONS });
    assert_eq!(d.poll(0), Action::Fetch { refresh: false });
    let url = d.url().to_string();
    d.handle_status(401, None);
    assert!(!d.handle_transport_error(0, Transport::Caller), "its body is of no interest");
    d.handle_eof(0);
    assert_eq!(d.poll(0), Action::Cancel);
    assert_eq!(d.poll(0), Action::Fetch { refresh: true });
    assert_eq!(d.url(), url, "the same request");
    assert_eq!(d.poll(0), Action::Wait, "the request is out");
    assert_eq!(d.poll_timeout(), Some(1_000), "under the watchdog");
    d.handle_status(401, None);
    assert_eq!(d.poll(1), Action::Read, "not twice: the error body is read");
    d.handle_eof(1);
    assert_eq!(d.poll(1), Action::Cancel);
    assert_eq!(d.poll(1), Action::Fail { fault: Fault::Status { status: 401, snippet: String::new() }, page: 1 });
    // Without a way to refresh, the first 401 is final.
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 401);
    d.handle_eof(0);
    assert_eq!(d.poll(0), Action::Cancel);
    assert!(matches!(d.poll(0), Action::Fail { fault: Fault::Status { status: 401, .. }, .. }));
    // Only a 401 is resent.
    let mut d = driver(DriverOptions { can_refresh: true, ..OPTIONS });
    start(&mut d, 0, 403);
    assert_eq!(d.poll(0), Action::Read);
}

#[test]
fn retry_after_sets_the_delay_of_a_retried_status() {
    let mut d = driver(OPTIONS);
    d.poll(0);
    d.handle_status(503, Some("3"));
    d.handle_eof(60);
    assert_eq!(d.poll(60), Action::Cancel);
    let Action::Retry { fault, attempt: 1, delay_ms: 3_000, .. } = d.poll(60) else { panic!() };
    assert_eq!(fault.failure(), Failure::Status(503));
    assert_eq!(d.poll(3_059), Action::Wait);
    assert_eq!(d.poll_timeout(), Some(3_060));
    assert!(matches!(d.poll(3_060), Action::Fetch { refresh: false, .. }));
    // A date (or garbage) is no delay the core can use.
    let mut d = driver(OPTIONS);
    d.poll(0);
    d.handle_status(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"));
    d.handle_eof(0);
    d.poll(0);
    let Action::Retry { delay_ms, .. } = d.poll(0) else { panic!() };
    assert!(delay_ms <= 100, "{delay_ms}");
}

#[test]
fn an_error_body_keeps_a_bounded_trimmed_snippet_and_ends_on_any_trouble() {
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 500);
    assert_eq!(d.poll(0), Action::Read);
    assert_eq!(d.poll_timeout(), Some(1_000));
    d.handle_chunk(0, b"  oops \xff");
    assert_eq!(d.poll(0), Action::Read);
    let long = vec![b'x'; 2 * SNIPPET_BYTES];
    assert_eq!(d.handle_chunk(0, &long), long.len());
    assert_eq!(d.poll(0), Action::Cancel, "full: the rest of the body is not read");
    let Action::Retry { fault: Fault::Status { status: 500, snippet }, .. } = d.poll(0) else { panic!() };
    assert_eq!(snippet.len(), "oops \u{fffd}".len() + SNIPPET_BYTES - 8);
    assert!(snippet.starts_with("oops \u{fffd}x"));
    // A body that never comes: the idle watchdog ends it, with what came.
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 404);
    d.handle_chunk(0, b"gone\n");
    assert_eq!(d.poll(200), Action::Read);
    assert_eq!(d.poll_timeout(), Some(1_200));
    d.handle_timeout(1_200);
    assert_eq!(d.poll(1_200), Action::Cancel);
    let snippet = "gone".to_string();
    assert_eq!(d.poll(1_200), Action::Fail { fault: Fault::Status { status: 404, snippet }, page: 1 });
    // A cut error body ends it too: the status is the error, not the cut.
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 404);
    assert!(!d.handle_transport_error(0, Transport::Cut));
    assert_eq!(d.poll(0), Action::Cancel);
    assert!(matches!(d.poll(0), Action::Fail { fault: Fault::Status { status: 404, .. }, .. }));
    // But an abort meanwhile is an abort.
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 404);
    assert!(d.handle_transport_error(0, Transport::Aborted));
    d.poll(0);
    assert_eq!(d.poll(0), Action::Fail { fault: Fault::Aborted, page: 1 });
}

#[test]
fn every_fault_has_its_failure_class() {
    use feedpump_core::ProtocolError;
    let truncated = ProtocolError::new(ErrorKind::TruncatedBody, "cut");
    let bad = ProtocolError::new(ErrorKind::BadLine, "bad");
    for (fault, failure) in [
        (Fault::Protocol(truncated), Failure::Truncated),
        (Fault::Protocol(bad), Failure::Protocol),
        (Fault::Status { status: 429, snippet: String::new() }, Failure::Status(429)),
        (Fault::Stalled { idle_ms: 1, offset: 0 }, Failure::Stalled),
        (Fault::Cut { offset: 0 }, Failure::Truncated),
        (Fault::Network, Failure::Network),
        (Fault::Caller, Failure::Protocol),
        (Fault::Aborted, Failure::Aborted),
        (Fault::Stuck, Failure::Protocol),
    ] {
        assert_eq!(fault.failure(), failure, "{fault:?}");
    }
}

#[test]
fn retries_stop_when_the_policy_says_and_the_last_fault_is_final() {
    let mut config = SessionConfig::new(URL, CursorSet::first(1));
    config.retry = Some(RetryPolicy { max_attempts: Some(2), ..RetryPolicy::default() });
    let mut d = Driver::new(config, OPTIONS);
    let mut now = 0;
    for attempt in 1..=2 {
        assert!(matches!(d.poll(now), Action::Fetch { .. }));
        d.handle_transport_error(now, Transport::Network);
        d.poll(now);
        let Action::Retry { attempt: a, delay_ms, .. } = d.poll(now) else { panic!() };
        assert_eq!(a, attempt);
        now += delay_ms;
    }
    d.poll(now);
    d.handle_transport_error(now, Transport::Network);
    d.poll(now);
    assert_eq!(d.poll(now), Action::Fail { fault: Fault::Network, page: 3 });
}

#[test]
fn an_abort_while_a_retry_is_announced_ends_the_feed_without_the_retry() {
    // Found by the `driver` fuzz target: a network error announced a retry (Cancel, then Retry); an abort that came
    // between the two (the shell checks its signal before each poll) still let the stale Retry out after the final
    // fault, so the caller was told of a retry of a feed already aborted.
    let mut d = driver(OPTIONS);
    assert_eq!(d.poll(0), Action::Fetch { refresh: false });
    assert!(d.handle_transport_error(0, Transport::Network));
    assert_eq!(d.poll(0), Action::Cancel);
    assert!(d.handle_transport_error(0, Transport::Aborted));
    assert!(d.has_failed());
    // (A second Cancel, of a body already dropped, is harmless.)
    let next = match d.poll(0) {
        Action::Cancel => d.poll(0),
        other => other,
    };
    assert_eq!(next, Action::Fail { fault: Fault::Aborted, page: 1 });
    assert_eq!(d.poll(0), Action::Fail { fault: Fault::Aborted, page: 1 });
}

#[test]
fn lines_skipped_with_nothing_released_make_one_empty_output_per_chunk() {
    // A long-poll's heartbeats (unknown commands), blank lines: an empty output, not the end of the page, so a v2
    // schedule sees the page go on. Events held for a checkpoint, a partial line, or released events (their batch
    // comes at the flush) make none.
    let mut d = driver(OPTIONS);
    start(&mut d, 0, 200);
    assert_eq!(d.poll(0), Action::Read);
    d.handle_chunk(1, b"{\"x-heartbeat\":{}}\n\n{\"resync\":true}\n  \n");
    let out = batch(d.poll(1));
    assert_eq!((out.batch, out.signal, out.end, out.page, out.bytes), (None, None, false, 1, 39));
    assert_eq!(d.poll(1), Action::Read, "one output for the chunk");
    assert_eq!(d.session().skipped_lines(), 4);
    d.handle_chunk(2, b"{\"partition\":0,\"data\":1}\n{\"x-hea");
    assert_eq!(d.poll(2), Action::Read, "an event held, a partial line: nothing skipped yet");
    d.handle_chunk(3, b"rtbeat\":{}}\n");
    assert!(batch(d.poll(3)).batch.is_none(), "the heartbeat completed (the event still held)");
    d.handle_chunk(4, b"{\"partition\":0,\"cursor\":\"1\"}\n\n");
    assert_eq!(d.poll(4), Action::Read, "released: its batch comes at the flush deadline, with the blank line");
    d.handle_timeout(14);
    assert_eq!(batch(d.poll(14)).batch.unwrap().checkpoints[0].cursor, "1");
    assert_eq!(d.poll(14), Action::Read);
    d.handle_eof(20);
    assert!(batch(d.poll(20)).end);
    // The next page counts its own lines from 0: nothing before its first skipped line.
    assert!(matches!(d.poll(20), Action::Fetch { .. }));
    d.handle_status(200, None);
    assert_eq!(d.poll(21), Action::Read);
    d.handle_chunk(22, b"{\"partition\":0,\"data\":2}\n");
    assert_eq!(d.poll(22), Action::Read);
    d.handle_chunk(23, b"\n");
    let out = batch(d.poll(23));
    assert_eq!((out.batch, out.page, out.end), (None, 2, false));
}
