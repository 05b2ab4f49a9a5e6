//! Several base URLs of one feed (a primary and replicas that serve the same feed with the same cursors): which one
//! the next request goes to, as pure state (the caller passes `now_ms`).
//!
//! Requests go to the first URL, in the given order, that is not cooling down. A URL whose request failed in a way
//! another server may not (no response, a 5xx, a cut or stalled body) cools down for `cooldown_ms`, so the retry goes
//! to the next healthy URL with the same cursors, and the failed one is tried again once its cool-down is over. When
//! every URL is cooling down, the one whose cool-down ends first is used.

use alloc::vec::Vec;

use crate::retry::Failure;

/// The cool-down of a failed URL when none is configured, ms.
pub const DEFAULT_COOLDOWN_MS: u64 = 30_000;

/// The URL choice of one feed.
///
/// ```
/// use feedpump_core::failover::Failover;
/// use feedpump_core::Failure;
///
/// let mut f = Failover::new(2, 1_000);
/// assert_eq!(f.pick(0), 0);
/// f.handle_failure(0, Failure::Network);
/// assert_eq!(f.pick(10), 1); // the replica while the primary cools down
/// assert_eq!(f.pick(1_000), 0); // back to the primary after its cool-down
/// ```
#[derive(Clone, Debug)]
pub struct Failover {
    /// Per URL: until when it cools down (0: healthy). Filled at the first failure (an empty list: all healthy).
    down_until: Vec<u64>,
    count: usize,
    cooldown_ms: u64,
    /// The URL of the request in flight (the last pick).
    current: usize,
}

impl Failover {
    /// `count` URLs (at least one is assumed), cooling down for `cooldown_ms` after a failure.
    pub fn new(count: usize, cooldown_ms: u64) -> Self {
        Failover { down_until: Vec::new(), count: count.max(1), cooldown_ms, current: 0 }
    }

    /// The URL of the last pick.
    pub fn current(&self) -> usize {
        self.current
    }

    /// Whether a failure is the URL's own, so that another URL may do better.
    pub const fn is_url_failure(failure: Failure) -> bool {
        match failure {
            Failure::Network | Failure::Truncated | Failure::Stalled => true,
            Failure::Status(s) => s >= 500,
            Failure::Protocol | Failure::Aborted | Failure::Conflict => false,
        }
    }

    /// The URL for a request at `now_ms`: the first one not cooling down, or the one whose cool-down ends first.
    pub fn pick(&mut self, now_ms: u64) -> usize {
        if self.down_until.is_empty() {
            self.current = 0;
            return 0;
        }
        let healthy = self.down_until.iter().position(|&until| until <= now_ms);
        let soonest = || {
            let mut best = 0;
            for (i, &until) in self.down_until.iter().enumerate() {
                if until < self.down_until[best] {
                    best = i;
                }
            }
            best
        };
        self.current = healthy.unwrap_or_else(soonest);
        self.current
    }

    /// The request to the current URL failed at `now_ms`: a failure of the URL's own cools it down.
    pub fn handle_failure(&mut self, now_ms: u64, failure: Failure) {
        if Self::is_url_failure(failure) && self.count > 1 {
            self.down_until.resize(self.count, 0);
            if let Some(until) = self.down_until.get_mut(self.current) {
                *until = now_ms.saturating_add(self.cooldown_ms.max(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn one_url_is_always_picked() {
        let mut f = Failover::new(1, 100);
        f.handle_failure(0, Failure::Network);
        assert_eq!(f.pick(1), 0);
    }

    #[test]
    fn a_failed_url_cools_down_and_the_next_healthy_one_is_used() {
        let mut f = Failover::new(3, 100);
        assert_eq!(f.pick(0), 0);
        f.handle_failure(0, Failure::Status(503));
        assert_eq!(f.pick(0), 1);
        f.handle_failure(5, Failure::Stalled);
        assert_eq!(f.pick(5), 2);
        // every URL cooling down: the one whose cool-down ends first
        f.handle_failure(6, Failure::Truncated);
        assert_eq!(f.pick(7), 0);
        // the primary again once its cool-down is over, even though the others are healthy by then too
        assert_eq!(f.pick(200), 0);
    }

    #[test]
    fn failures_that_are_not_the_urls_own_keep_it() {
        let mut f = Failover::new(2, 100);
        for failure in
            [Failure::Status(404), Failure::Status(429), Failure::Protocol, Failure::Aborted, Failure::Conflict]
        {
            f.pick(0);
            f.handle_failure(0, failure);
            assert_eq!(f.pick(1), 0, "{failure:?}");
        }
    }

    #[test]
    fn a_cool_down_of_zero_still_moves_the_next_attempt() {
        let mut f = Failover::new(2, 0);
        f.pick(10);
        f.handle_failure(10, Failure::Network);
        assert_eq!(f.pick(10), 1);
        assert_eq!(f.pick(11), 0);
    }

    #[test]
    fn a_session_asks_the_replica_with_the_same_cursors_and_the_primary_after_its_cool_down() {
        use crate::{CursorSet, Decision, Session, SessionConfig};
        use alloc::string::ToString;
        let mut config = SessionConfig::new("http://a/feed", CursorSet::first(1));
        config.replicas = vec!["http://b/feed".to_string()];
        config.failover_cooldown_ms = 1_000;
        let mut s = Session::new(config);
        assert_eq!(s.poll_request(0).as_deref(), Some("http://a/feed?n=1&cursor0=_first"));
        s.handle_status(200).unwrap();
        s.handle_chunk(b"{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"c1\"}\n").unwrap();
        s.handle_eof().unwrap();
        while s.poll_batch().is_some() || s.flush().is_some() {}
        // the primary dies: the next attempt goes to the replica, from the cursor the primary gave
        assert_eq!(s.poll_request(10).as_deref(), Some("http://a/feed?n=1&cursor0=c1"));
        s.handle_transport_error();
        let Decision::RetryAt(at) = s.handle_failure(20, Failure::Network, None) else { panic!("gave up") };
        assert_eq!(s.poll_request(at).as_deref(), Some("http://b/feed?n=1&cursor0=c1"));
        assert_eq!(s.url_index(), 1);
        s.handle_status(200).unwrap();
        s.handle_chunk(b"{\"partition\":0,\"data\":2}\n{\"partition\":0,\"cursor\":\"c2\"}\n").unwrap();
        s.handle_eof().unwrap();
        while s.poll_batch().is_some() || s.flush().is_some() {}
        // a page later, past the cool-down: the primary again, from the replica's cursor
        assert_eq!(s.poll_request(2_000).as_deref(), Some("http://a/feed?n=1&cursor0=c2"));
        assert_eq!(s.url_index(), 0);
    }

    #[test]
    fn a_v2_session_with_replicas_keeps_to_its_url_and_leaves_every_failure_to_the_driver() {
        use crate::request::{EventTypes, V2Options};
        use crate::{CursorSet, Decision, RetryPolicy, Session, SessionConfig};
        use alloc::string::ToString;
        let v2 = |replicas: Vec<alloc::string::String>| {
            let mut config = SessionConfig::new("http://a/feed", CursorSet::first(1));
            config.protocol = crate::session::Protocol::V2(V2Options {
                token: "t".into(),
                partition: 0,
                page_size_hint: None,
                event_types: EventTypes::All,
            });
            config.retry = Some(RetryPolicy::default());
            config.replicas = replicas;
            Session::new(config)
        };
        // The token is http://a's: a retry on the replica would carry it to a server that never gave it out.
        for failure in [Failure::Network, Failure::Status(503), Failure::Status(429), Failure::Stalled] {
            let mut s = v2(vec!["http://b/feed".to_string()]);
            let url = s.poll_request(0).unwrap();
            assert!(url.starts_with("http://a/feed/events?"), "{url}");
            s.handle_transport_error();
            assert_eq!(s.handle_failure(10, failure, None), Decision::GiveUp, "{failure:?}");
            assert_eq!(s.poll_request(100_000), None);
        }
        // One URL: the session retries as any other.
        let mut s = v2(vec![]);
        s.poll_request(0).unwrap();
        s.handle_transport_error();
        assert!(matches!(s.handle_failure(10, Failure::Network, None), Decision::RetryAt(_)));
    }
}
