//! The session's position and hand-out rules at their exact boundaries, through the public API with simulated time:
//! when a feed has caught up, when a batch is worth handing out mid-page, when a live feed counts as behind. These
//! pin the cases cargo-mutants showed no other test did (a changed comparison still passed every test).
#![allow(clippy::unwrap_used)] // a test panics on what it did not expect

use feedpump_core::request::V1Options;
use feedpump_core::session::BATCH_BYTES;
use feedpump_core::{CursorSet, LivePolicy, Protocol, Session, SessionConfig, Signal};

fn page(s: &mut Session, now: u64, body: &str) {
    s.poll_request(now).unwrap();
    s.handle_status(200).unwrap();
    s.handle_chunk(body.as_bytes()).unwrap();
    s.handle_eof().unwrap();
    while s.flush().is_some() {}
}

#[test]
fn a_v1_page_with_a_checkpoint_and_no_events_is_caught_up() {
    // v1's rule: zero events is caught up, even when the page moves a cursor (only v2 keeps reading then).
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    page(&mut s, 0, "{\"partition\":0,\"cursor\":\"c1\"}\n");
    assert_eq!(s.cursors().cursor(0), Some("c1"));
    assert!(s.is_caught_up());
    assert_eq!(s.poll_signal(), Some(Signal::CaughtUp));
    assert_eq!(s.poll_request(1_000), None, "an ended feed asks for nothing more");
}

#[test]
fn a_feed_that_is_not_live_has_no_timeout_once_caught_up() {
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    assert_eq!(s.poll_timeout(), None);
    page(&mut s, 0, "");
    assert!(s.is_caught_up());
    assert_eq!(s.poll_timeout(), None, "nothing to wait for: the feed has ended");
    let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
    config.live = Some(LivePolicy { min_ms: 100, max_ms: 100, long_poll_param: None });
    let mut s = Session::new(config);
    page(&mut s, 50, "");
    assert_eq!(s.poll_timeout(), Some(150), "a live feed polls again one interval after the request");
}

/// A page streaming one event whose data is `data_len` bytes (a string, `"x…"`) and its checkpoint: whether
/// `poll_batch` hands it out before the page ends.
fn handed_out_mid_page(data_len: usize) -> bool {
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    let data = "x".repeat(data_len - r#""""#.len());
    let body = format!("{{\"partition\":0,\"data\":\"{data}\"}}\n{{\"partition\":0,\"cursor\":\"1\"}}\n");
    s.handle_chunk(body.as_bytes()).unwrap();
    let batch = s.poll_batch();
    if let Some(b) = &batch {
        assert_eq!(b.text.len(), data_len + 2, "the event's data, in brackets");
    }
    batch.is_some()
}

#[test]
fn a_batch_is_handed_out_mid_page_from_exactly_batch_bytes() {
    assert_eq!(BATCH_BYTES, 64 * 1024);
    assert!(!handed_out_mid_page(BATCH_BYTES - 1));
    assert!(handed_out_mid_page(BATCH_BYTES));
}

#[test]
fn a_page_size_hint_of_zero_is_no_hint_for_the_position_signals() {
    // With no hint, one busy page after catching up is not yet "behind" (two in a row are); a hint of 0 is no hint,
    // not "every page is full".
    for hint in [None, Some(0)] {
        let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
        config.protocol = Protocol::V1(V1Options { page_size_hint: hint, ..V1Options::default() });
        config.live = Some(LivePolicy { min_ms: 100, max_ms: 100, long_poll_param: None });
        let mut s = Session::new(config);
        page(&mut s, 0, "");
        assert_eq!(s.poll_signal(), Some(Signal::CaughtUp));
        page(&mut s, 100, "{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"1\"}\n");
        assert_eq!(s.poll_signal(), None, "{hint:?}: one busy page");
        page(&mut s, 100, "{\"partition\":0,\"data\":2}\n{\"partition\":0,\"cursor\":\"2\"}\n");
        assert_eq!(s.poll_signal(), Some(Signal::FellBehind), "{hint:?}: two busy pages in a row");
    }
}

#[test]
fn no_position_signal_comes_before_the_first_catch_up() {
    // Busy pages, full or short, before the feed has ever caught up are just the backlog: the first signal is the
    // CaughtUp of the first empty page.
    for hint in [None, Some(10)] {
        let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1));
        config.protocol = Protocol::V1(V1Options { page_size_hint: hint, ..V1Options::default() });
        config.live = Some(LivePolicy { min_ms: 100, max_ms: 100, long_poll_param: None });
        let mut s = Session::new(config);
        for i in 1..=3 {
            page(&mut s, 0, &format!("{{\"partition\":0,\"data\":{i}}}\n{{\"partition\":0,\"cursor\":\"{i}\"}}\n"));
            assert_eq!(s.poll_signal(), None, "{hint:?}: busy page {i} of the backlog");
        }
        page(&mut s, 0, "");
        assert_eq!(s.poll_signal(), Some(Signal::CaughtUp), "{hint:?}");
    }
}

#[test]
fn by_default_a_page_may_hold_back_64_mib_of_events_and_no_more() {
    // README and docs/errors.md: maxHeldBytes defaults to 64 MiB. Five events of about 12.8 MiB (under the default
    // line limit, 16 MiB) with no checkpoint hold back exactly 64 MiB: their values joined by commas, and the
    // bookkeeping of each (HELD_EVENT_BYTES); one more event is over.
    const MIB: usize = 1024 * 1024;
    assert_eq!(feedpump_core::DEFAULT_MAX_HELD, 64 * MIB);
    let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(1)));
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    const EVENTS: usize = 5;
    let data_total = 64 * MIB - (EVENTS - 1) - EVENTS * (r#""""#.len() + feedpump_core::batch::HELD_EVENT_BYTES);
    for i in 0..EVENTS {
        let len = data_total / EVENTS + usize::from(i < data_total % EVENTS);
        let line = format!("{{\"partition\":0,\"data\":\"{}\"}}\n", "x".repeat(len));
        assert!(line.len() - 1 <= 16 * MIB);
        s.handle_chunk(line.as_bytes()).unwrap_or_else(|e| panic!("event {i}: {e}"));
    }
    let e = s.handle_chunk(b"{\"partition\":0,\"data\":1}\n").unwrap_err();
    assert_eq!((e.code(), e.line), ("no-progress", EVENTS as u64 + 1));
}
