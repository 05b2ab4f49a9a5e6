//! The retry policy, the request builders and the session's counters through the public API: the cases cargo-mutants
//! showed were not pinned by any other test (a changed formula or bound still passed every test).

use feedpump_core::cursor::CursorSet;
use feedpump_core::request::{v1_url, v2_url, V1Options, V2Options};
use feedpump_core::retry::{parse_retry_after, Backoff};
use feedpump_core::session::{Session, SessionConfig};
use feedpump_core::{Decision, Failure, RetryPolicy};

fn policy(initial_ms: u64, max_ms: u64) -> RetryPolicy {
    RetryPolicy { initial_ms, max_ms, multiplier: 2.0, max_attempts: None, deadline_ms: None }
}

/// The delay of the `k`-th consecutive failure (0-based) of a fresh backoff with this seed, failing at time 0.
fn delay_of_attempt(p: RetryPolicy, seed: u64, k: u32) -> u64 {
    let mut b = Backoff::new(p, seed);
    let mut last = 0;
    for _ in 0..=k {
        match b.handle_failure(0, Failure::Network, None) {
            Decision::RetryAt(at) => last = at,
            Decision::GiveUp => panic!("an unlimited policy gave up"),
        }
    }
    last
}

#[test]
fn the_cap_grows_by_the_multiplier_per_attempt() {
    // Attempt 3 of 100 ms x2 has the cap 800 ms: over many seeds the full jitter spreads up to it, never beyond.
    let delays: Vec<u64> = (1..=300).map(|seed| delay_of_attempt(policy(100, 1_000_000), seed, 3)).collect();
    assert!(delays.iter().all(|&d| d <= 800), "a delay above the cap 100 * 2^3: {:?}", delays.iter().max());
    assert!(delays.iter().any(|&d| d > 600), "no delay near the cap 800: {:?}", delays.iter().max());
}

#[test]
fn the_jitter_spreads_over_the_whole_range() {
    // One seed, many failures at the cap: the draws must differ (a broken generator repeats or sticks to one end).
    let mut b = Backoff::new(policy(10_000, 10_000), 7);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        if let Decision::RetryAt(at) = b.handle_failure(0, Failure::Network, None) {
            seen.insert(at / 1000);
        }
    }
    assert!(seen.len() >= 9, "200 draws in [0, 10 s] hit only these whole seconds: {seen:?}");
}

#[test]
fn attempts_count_consecutive_failures_and_reset_on_success() {
    let mut b = Backoff::new(policy(1, 10), 1);
    assert_eq!(b.attempts(), 0);
    b.handle_failure(0, Failure::Network, None);
    b.handle_failure(0, Failure::Stalled, None);
    assert_eq!(b.attempts(), 2);
    b.handle_success();
    assert_eq!(b.attempts(), 0);
}

#[test]
fn a_retry_exactly_at_the_deadline_is_still_made() {
    // No jitter (initial 0): the delay is the Retry-After, 1 s, which lands exactly on the 1 s deadline.
    let p = RetryPolicy { deadline_ms: Some(1_000), ..policy(0, 10_000) };
    assert_eq!(Backoff::new(p, 1).handle_failure(0, Failure::Status(503), Some(1_000)), Decision::RetryAt(1_000));
    assert_eq!(Backoff::new(p, 1).handle_failure(0, Failure::Status(503), Some(1_001)), Decision::GiveUp);
}

#[test]
fn retry_after_is_delta_seconds_of_at_most_nine_digits() {
    assert_eq!(parse_retry_after("120"), Some(120_000));
    assert_eq!(parse_retry_after(""), None);
    assert_eq!(parse_retry_after("   "), None);
    assert_eq!(parse_retry_after("5x"), None);
    assert_eq!(parse_retry_after("-5"), None);
    assert_eq!(parse_retry_after("123456789"), Some(123_456_789_000));
    assert_eq!(parse_retry_after("1234567890"), None);
}

#[test]
fn a_page_size_hint_of_zero_is_omitted_and_one_is_sent() {
    let cursors = CursorSet::first(1);
    let v1 = |hint| v1_url("http://h/f", &cursors, &V1Options { page_size_hint: hint, ..V1Options::default() });
    assert!(!v1(Some(0)).contains("pagesizehint"));
    assert!(v1(Some(1)).ends_with("&pagesizehint=1"));
    let v2 = |hint| v2_url("http://h/f", &V2Options { page_size_hint: hint, ..V2Options::default() }, "_first");
    assert!(!v2(Some(0)).contains("pagesizehint"));
    assert!(v2(Some(1)).ends_with("&pagesizehint=1"));
}

#[test]
fn header_names_are_joined_by_commas() {
    let url = v1_url(
        "http://h/f",
        &CursorSet::first(1),
        &V1Options { headers: "ce_id,ce_type".into(), ..V1Options::default() },
    );
    assert!(url.ends_with("&headers=ce_id,ce_type"), "{url}");
}

#[test]
fn the_session_counts_pages_body_bytes_and_events() {
    let mut s = Session::new(SessionConfig::new("http://h/f", CursorSet::first(1)));
    assert_eq!(s.page(), 0);
    s.poll_request(0).unwrap();
    assert_eq!(s.page(), 1);
    s.handle_status(200).unwrap();
    let body = b"{\"partition\":0,\"data\":1}\n{\"partition\":0,\"data\":2}\n{\"partition\":0,\"cursor\":\"2\"}\n";
    s.handle_chunk(body).unwrap();
    assert_eq!(s.body_position(), body.len() as u64);
    assert_eq!((s.stats().events, s.stats().checkpoints), (2, 1));
    s.handle_eof().unwrap();
    s.poll_batch().unwrap();
    s.poll_request(0).unwrap();
    assert_eq!(s.page(), 2);
}

#[test]
fn with_every_url_cooling_down_the_soonest_is_picked_and_a_tie_goes_to_the_earlier_url() {
    use feedpump_core::failover::Failover;
    // The soonest is not the first URL: the primary failed again after the replica did.
    let mut f = Failover::new(2, 100);
    assert_eq!(f.pick(0), 0);
    f.handle_failure(0, Failure::Network); // 0 cools down until 100
    assert_eq!(f.pick(50), 1);
    f.handle_failure(50, Failure::Network); // 1 until 150
    assert_eq!(f.pick(100), 0, "the primary's cool-down is over");
    f.handle_failure(100, Failure::Network); // 0 until 200
    assert_eq!(f.pick(110), 1, "both cooling down: the replica's ends first (150 < 200)");
    // Both cool down until the same time: the earlier URL in the given order.
    let mut f = Failover::new(3, 100);
    f.pick(0);
    f.handle_failure(0, Failure::Network);
    assert_eq!(f.pick(0), 1);
    f.handle_failure(0, Failure::Network);
    assert_eq!(f.pick(0), 2);
    f.handle_failure(0, Failure::Network);
    assert_eq!(f.pick(10), 0, "all three until 100: the first one");
    assert_eq!(f.current(), 0);
}

#[test]
fn the_session_counts_ignored_lines_and_failed_attempts() {
    let mut s = Session::new(SessionConfig::new("http://h/f", CursorSet::first(1)));
    assert_eq!(s.attempts(), 0);
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    s.handle_chunk(b"{\"partition\":0,\"future\":1}\n{}\n{\"partition\":0,\"data\":1}\n").unwrap();
    assert_eq!((s.stats().ignored, s.stats().events), (2, 1));
    let Decision::RetryAt(at) = s.handle_failure(0, Failure::Truncated, None) else { panic!("gave up") };
    assert_eq!(s.attempts(), 1);
    s.poll_request(at).unwrap();
    assert_eq!(s.stats().ignored, 0, "the counters are the current page's");
    s.handle_status(503).unwrap_err();
    let Decision::RetryAt(at) = s.handle_failure(at, Failure::Status(503), None) else { panic!("gave up") };
    assert_eq!(s.attempts(), 2, "consecutive failures of the page");
    s.poll_request(at).unwrap();
    s.handle_status(200).unwrap();
    s.handle_chunk(b"{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"1\"}\n").unwrap();
    s.handle_eof().unwrap();
    assert_eq!(s.attempts(), 0, "a page that succeeds resets them");
}

#[test]
fn after_a_transport_error_the_page_takes_no_more_body() {
    // The connection was cut after an event: a late chunk with its checkpoint must not release it (the shell decides
    // about retrying; the page is over).
    let mut s = Session::new(SessionConfig::new("http://h/f", CursorSet::first(1)));
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    s.handle_chunk(b"{\"partition\":0,\"data\":1}\n").unwrap();
    s.handle_transport_error();
    let e = s.handle_chunk(b"{\"partition\":0,\"cursor\":\"1\"}\n").unwrap_err();
    assert_eq!(e.code(), "bad-options");
    assert!(s.flush().is_none() && !s.has_released(), "the held event was dropped, not released");
    assert_eq!(s.cursors().cursor(0), Some("_first"));
    assert_eq!(s.poll_request(1_000_000), None, "nothing is asked for until the shell reports the failure");
}

#[test]
fn the_jitter_is_uniform_down_to_the_last_bit() {
    // Full jitter with a cap of 1 ms is a fair coin between 0 and 1: a generator whose low bit leans one way would
    // still pass every spread check above.
    for seed in [1, 7, 42] {
        let mut b = Backoff::new(RetryPolicy { multiplier: 1.0, ..policy(1, 1) }, seed);
        let ones: u32 = (0..10_000)
            .map(|_| match b.handle_failure(0, Failure::Network, None) {
                Decision::RetryAt(at) => u32::try_from(at).unwrap(),
                Decision::GiveUp => panic!("an unlimited policy gave up"),
            })
            .sum();
        assert!((4_500..=5_500).contains(&ones), "seed {seed}: {ones} of 10,000 delays were 1 ms");
    }
}
