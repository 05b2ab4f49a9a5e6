//! Retry policy as pure state: exponential backoff with full jitter, honouring `Retry-After`.
//!
//! No clock and no randomness source: the caller passes `now_ms` (any monotonic millisecond clock) and a seed. The
//! delay of attempt `k` (0-based) is uniform in `[0, min(max, initial * multiplier^k)]` ("full jitter"), raised to
//! the server's `Retry-After` when it asks for longer, but never beyond `max` (a `Retry-After` of a day would park the
//! feed for a day) nor beyond [`MAX_TIMER_MS`]. Retries stop after `max_attempts` consecutive failures or
//! when the next try would start after `deadline_ms` from the first failure; a success resets both.

/// The longest delay a timer takes: `setTimeout` and friends keep the delay in a signed 32-bit integer and fire at
/// once beyond it. Every delay the core computes (backoff, `Retry-After`, live poll intervals) is at most this, and
/// the shell clamps its own timers to it.
pub const MAX_TIMER_MS: u64 = (1 << 31) - 1;

/// Why a page failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The request failed before a response (DNS, refused, reset).
    Network,
    /// A non-2xx status.
    Status(u16),
    /// The body was cut (connection closed mid-body or inside a line).
    Truncated,
    /// The body stalled: no bytes for longer than the idle limit.
    Stalled,
    /// The server sent something the protocol does not allow: retrying gives the same answer.
    Protocol,
    /// The caller aborted.
    Aborted,
    /// FeedAPI v2's `409 Conflict` on an events request: the token changed, and the consumer starts again from
    /// discovery. Retried (a new discovery is the retry), and bounded like any failure, so a server that always
    /// answers 409 ends the feed instead of looping.
    Conflict,
}

impl Failure {
    /// Whether a retry can help: network errors, 408, 429, 5xx, cut and stalled bodies. Other 4xx, protocol errors
    /// and aborts are final.
    pub const fn is_retryable(self) -> bool {
        match self {
            Failure::Network | Failure::Truncated | Failure::Stalled | Failure::Conflict => true,
            Failure::Status(s) => s == 408 || s == 429 || s >= 500,
            Failure::Protocol | Failure::Aborted => false,
        }
    }
}

/// The knobs of the policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Cap of the first delay, ms.
    pub initial_ms: u64,
    /// Largest delay, ms: caps the backoff and the server's `Retry-After` alike (and is itself capped at
    /// [`MAX_TIMER_MS`]).
    pub max_ms: u64,
    /// Growth of the cap per attempt.
    pub multiplier: f64,
    /// Consecutive failures after which to give up (`None`: no limit).
    pub max_attempts: Option<u32>,
    /// Time from the first of consecutive failures after which to give up (`None`: no limit).
    pub deadline_ms: Option<u64>,
}

impl Default for RetryPolicy {
    /// 100 ms growing ×2 to 30 s, at most 10 attempts.
    fn default() -> Self {
        RetryPolicy { initial_ms: 100, max_ms: 30_000, multiplier: 2.0, max_attempts: Some(10), deadline_ms: None }
    }
}

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Try again at this time (same clock as `now_ms`).
    RetryAt(u64),
    /// Stop: the failure is final or the budget is spent.
    GiveUp,
}

/// Backoff state of one feed.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    /// Consecutive failures so far.
    attempts: u32,
    /// When the first of the consecutive failures happened.
    first_failure_ms: Option<u64>,
    rng: u64,
}

impl Backoff {
    /// A fresh state; `seed` feeds the jitter (any value; 0 is replaced). Delays beyond [`MAX_TIMER_MS`] are capped.
    pub fn new(mut policy: RetryPolicy, seed: u64) -> Self {
        policy.max_ms = policy.max_ms.min(MAX_TIMER_MS);
        Backoff { policy, attempts: 0, first_failure_ms: None, rng: seed | 1 }
    }

    /// Consecutive failures so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// A page succeeded: the next failure starts from the first delay again.
    pub fn handle_success(&mut self) {
        self.attempts = 0;
        self.first_failure_ms = None;
    }

    /// xorshift64*: enough for jitter, and reproducible from the seed in tests.
    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The cap of the delay for attempt `k` (0-based).
    fn cap(&self, k: u32) -> u64 {
        let mut cap = self.policy.initial_ms as f64;
        for _ in 0..k {
            let next = cap * self.policy.multiplier;
            if next >= self.policy.max_ms as f64 {
                return self.policy.max_ms;
            }
            if next == cap {
                // A constant cap (multiplier 1): no need to walk every attempt of a policy that never gives up.
                break;
            }
            cap = next;
        }
        (cap as u64).min(self.policy.max_ms)
    }

    /// A failure at `now_ms`; `retry_after_ms` is the server's `Retry-After`, if any (honoured up to `max_ms`).
    pub fn handle_failure(&mut self, now_ms: u64, failure: Failure, retry_after_ms: Option<u64>) -> Decision {
        if !failure.is_retryable() {
            return Decision::GiveUp;
        }
        let first = *self.first_failure_ms.get_or_insert(now_ms);
        let k = self.attempts;
        self.attempts = k.saturating_add(1);
        if self.policy.max_attempts.is_some_and(|max| self.attempts > max) {
            return Decision::GiveUp;
        }
        let cap = self.cap(k);
        let jitter = if cap == 0 { 0 } else { self.next_random() % (cap + 1) };
        let delay = jitter.max(retry_after_ms.unwrap_or(0).min(self.policy.max_ms));
        let at = now_ms.saturating_add(delay);
        if self.policy.deadline_ms.is_some_and(|d| at > first.saturating_add(d)) {
            return Decision::GiveUp;
        }
        Decision::RetryAt(at)
    }
}

/// Parses `Retry-After` (delta-seconds only; an HTTP date needs a calendar clock and is ignored) to milliseconds.
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().map(|s| s * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy { initial_ms: 100, max_ms: 1000, multiplier: 2.0, max_attempts: Some(6), deadline_ms: None }
    }

    #[test]
    fn delays_stay_under_an_exponential_cap_and_attempts_run_out() {
        for seed in 0..200 {
            let mut b = Backoff::new(policy(), seed);
            let caps = [100, 200, 400, 800, 1000, 1000];
            for cap in caps {
                match b.handle_failure(10_000, Failure::Network, None) {
                    Decision::RetryAt(at) => assert!((10_000..=10_000 + cap).contains(&at), "seed {seed}"),
                    Decision::GiveUp => panic!("gave up early"),
                }
            }
            assert_eq!(b.handle_failure(10_000, Failure::Network, None), Decision::GiveUp);
            b.handle_success();
            assert!(matches!(b.handle_failure(10_000, Failure::Network, None), Decision::RetryAt(_)));
        }
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let mut b = Backoff::new(RetryPolicy { max_attempts: None, ..policy() }, 42);
        let delays: alloc::vec::Vec<u64> = (0..400)
            .map(|_| {
                b.handle_success();
                match b.handle_failure(0, Failure::Status(503), None) {
                    Decision::RetryAt(at) => at,
                    Decision::GiveUp => u64::MAX,
                }
            })
            .collect();
        assert!(delays.iter().all(|&d| d <= 100));
        assert!(delays.iter().any(|&d| d < 20) && delays.iter().any(|&d| d > 80), "full jitter uses the range");
    }

    #[test]
    fn retry_after_is_honoured_and_final_failures_are_not_retried() {
        let mut b = Backoff::new(policy(), 7);
        assert_eq!(b.handle_failure(0, Failure::Status(429), Some(800)), Decision::RetryAt(800));
        for f in [Failure::Status(400), Failure::Status(401), Failure::Status(404), Failure::Protocol, Failure::Aborted]
        {
            assert_eq!(b.handle_failure(0, f, None), Decision::GiveUp, "{f:?}");
        }
        for f in [Failure::Status(408), Failure::Status(500), Failure::Truncated, Failure::Stalled, Failure::Conflict] {
            assert!(f.is_retryable(), "{f:?}");
        }
        assert_eq!(parse_retry_after(" 3 "), Some(3000));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn full_jitter_includes_the_cap_itself() {
        // Uniform in [0, cap]: with a cap of 1 ms both 0 and 1 come up.
        let p = RetryPolicy { initial_ms: 1, max_ms: 1, multiplier: 1.0, max_attempts: None, deadline_ms: None };
        let mut b = Backoff::new(p, 9);
        let delays: alloc::vec::Vec<u64> = (0..64)
            .map(|_| match b.handle_failure(0, Failure::Network, None) {
                Decision::RetryAt(at) => at,
                Decision::GiveUp => u64::MAX,
            })
            .collect();
        assert!(delays.contains(&0) && delays.contains(&1) && delays.iter().all(|&d| d <= 1), "{delays:?}");
    }

    #[test]
    fn retry_after_is_capped_at_max_ms() {
        // A day of Retry-After would park the feed for a day: the wait is capped at the policy's max_ms.
        let mut b = Backoff::new(policy(), 7);
        assert_eq!(b.handle_failure(0, Failure::Status(503), Some(86_400_000)), Decision::RetryAt(1_000));
        assert_eq!(
            b.handle_failure(0, Failure::Status(503), Some(parse_retry_after("999999999").unwrap())),
            Decision::RetryAt(1_000)
        );
        let mut b = Backoff::new(RetryPolicy { max_ms: 0, ..policy() }, 7);
        assert_eq!(b.handle_failure(5, Failure::Status(429), Some(3_000)), Decision::RetryAt(5));
    }

    #[test]
    fn every_delay_fits_a_timer() {
        // Timers fire at once beyond 2^31-1 ms: no policy, however large, gives a longer delay (nor overflows).
        for (initial_ms, max_ms, retry_after) in
            [(u64::MAX, u64::MAX, None), (1, u64::MAX, Some(u64::MAX)), (u64::MAX / 2, u64::MAX / 2, Some(1 << 40))]
        {
            let p = RetryPolicy { initial_ms, max_ms, multiplier: 1e300, max_attempts: None, deadline_ms: None };
            for seed in 0..50 {
                let mut b = Backoff::new(p, seed);
                for _ in 0..5 {
                    let Decision::RetryAt(at) = b.handle_failure(1_000, Failure::Network, retry_after) else {
                        panic!("gave up")
                    };
                    assert!(at - 1_000 <= MAX_TIMER_MS, "{initial_ms} {max_ms} {retry_after:?}: {at}");
                }
            }
        }
        assert_eq!(MAX_TIMER_MS, (1 << 31) - 1);
    }

    #[test]
    fn consecutive_failures_beyond_u32_max_neither_overflow_nor_slow_down() {
        // A policy that never gives up, with a constant cap (multiplier 1): the attempt count saturates instead of
        // overflowing (a panic in a debug build) and the cap of attempt k costs no k steps.
        let p = RetryPolicy { initial_ms: 100, max_ms: 1_000, multiplier: 1.0, max_attempts: None, deadline_ms: None };
        let mut b = Backoff { attempts: u32::MAX - 1, ..Backoff::new(p, 5) };
        for _ in 0..3 {
            let Decision::RetryAt(at) = b.handle_failure(0, Failure::Network, None) else { panic!("gave up") };
            assert!(at <= 100);
        }
        assert_eq!(b.attempts(), u32::MAX);
    }

    #[test]
    fn a_deadline_bounds_the_total_time() {
        let mut b = Backoff::new(RetryPolicy { max_attempts: None, deadline_ms: Some(2_000), ..policy() }, 3);
        assert!(matches!(b.handle_failure(0, Failure::Network, None), Decision::RetryAt(_)));
        assert_eq!(b.handle_failure(1_500, Failure::Network, Some(1_000)), Decision::GiveUp);
    }
}
