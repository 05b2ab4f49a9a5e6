//! Where a feed stands relative to the head of the stream, and how a live feed polls: the caught-up and fell-behind
//! signals and the wait between polls once caught up. Told of each page's outcome by the session; no clock (the
//! session passes the time a page was requested).

use crate::retry::MAX_TIMER_MS;
use alloc::string::String;

/// How a live feed polls once caught up: the wait after an empty page starts at `min_ms` and doubles on every further
/// empty page up to `max_ms`; a page with events resets it, and the next page is asked for at once. Both bounds are
/// capped at [`MAX_TIMER_MS`], and a `max_ms` below `min_ms` counts as `min_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePolicy {
    /// Shortest wait between polls, ms.
    pub min_ms: u64,
    /// Longest wait between polls, ms.
    pub max_ms: u64,
    /// A long-poll hint for servers that support one (ZEH SPEC's "possible future extension: `wait`"): this query
    /// parameter, set to the wait in ms, is added to live polls. Servers that ignore it answer at once; the result is
    /// the same.
    pub long_poll_param: Option<String>,
}

impl Default for LivePolicy {
    /// 250 ms to 5 s, no long-poll hint.
    fn default() -> Self {
        LivePolicy { min_ms: 250, max_ms: 5_000, long_poll_param: None }
    }
}

/// A change of the feed's position relative to the head of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A page brought no events: everything there is has been delivered.
    CaughtUp,
    /// Once caught up, pages are full again (at least `pagesizehint` events, or two non-empty pages in a row when no
    /// hint is set): the consumer is behind the head.
    FellBehind,
}

/// The position policy's state: see the module docs.
#[derive(Debug)]
pub(crate) struct Position {
    live: Option<LivePolicy>,
    /// Current wait between live polls, ms.
    interval_ms: u64,
    /// When the current page was requested (the anchor of the live poll interval).
    requested_at: u64,
    /// Whether the last signal given was `CaughtUp`.
    caught_up: bool,
    /// Whether a page has ever come back empty (the first `CaughtUp`); short pages count as caught up only after.
    signalled_caught_up: bool,
    /// Non-empty pages in a row since the last caught-up.
    busy_pages: u32,
    signal: Option<Signal>,
}

impl Position {
    /// A feed that has not read a page yet; `live` bounds are capped at [`MAX_TIMER_MS`] (and `max_ms` at least
    /// `min_ms`).
    pub(crate) fn new(live: Option<LivePolicy>) -> Self {
        Position {
            interval_ms: live.as_ref().map_or(0, |l| l.min_ms.min(MAX_TIMER_MS)),
            live: live.map(|mut l| {
                l.min_ms = l.min_ms.min(MAX_TIMER_MS);
                l.max_ms = l.max_ms.clamp(l.min_ms, MAX_TIMER_MS);
                l
            }),
            requested_at: 0,
            caught_up: false,
            signalled_caught_up: false,
            busy_pages: 0,
            signal: None,
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The signal found with the last page, once.
    pub(crate) fn poll_signal(&mut self) -> Option<Signal> {
        self.signal.take()
    }

    /// A page is requested at `now_ms`; for a live poll after catching up, the long-poll hint to add to it.
    pub(crate) fn requested(&mut self, now_ms: u64, after_caught_up: bool) -> Option<(String, u64)> {
        self.requested_at = now_ms;
        match &self.live {
            Some(LivePolicy { long_poll_param: Some(name), .. }) if after_caught_up => {
                Some((name.clone(), self.interval_ms))
            }
            _ => None,
        }
    }

    /// When a caught-up live feed polls again.
    pub(crate) fn wake_at(&self) -> u64 {
        self.requested_at.saturating_add(self.interval_ms)
    }

    /// A page brought nothing: caught up (signalled the first time; after that a live feed polls less often).
    pub(crate) fn empty_page(&mut self) {
        if !self.caught_up {
            self.signal = Some(Signal::CaughtUp);
            self.signalled_caught_up = true;
        } else if let Some(live) = &self.live {
            // Another empty page: poll less often.
            self.interval_ms = (self.interval_ms.saturating_mul(2)).clamp(live.min_ms, live.max_ms);
        }
        self.caught_up = true;
        self.busy_pages = 0;
    }

    /// A page brought `events` events (asked with `page_size_hint`, if any).
    pub(crate) fn busy_page(&mut self, events: u64, page_size_hint: Option<u32>) {
        self.busy_pages = self.busy_pages.saturating_add(1);
        if let Some(live) = &self.live {
            self.interval_ms = live.min_ms;
        }
        // Position signals of a feed that has caught up once. With a page size hint, a full page means behind
        // and, once behind, a page short of the hint reached the head again: a steady live flow keeps every
        // page busy but short, so it never reads as behind. Without a hint only runs of busy pages can tell.
        match page_size_hint.filter(|&h| h > 0) {
            Some(hint) if events >= u64::from(hint) => {
                if self.caught_up {
                    self.caught_up = false;
                    self.signal = Some(Signal::FellBehind);
                }
            }
            Some(_) => {
                if !self.caught_up && self.signalled_caught_up && self.live.is_some() {
                    self.caught_up = true;
                    self.signal = Some(Signal::CaughtUp);
                }
            }
            None => {
                if self.caught_up && self.busy_pages >= 2 {
                    self.caught_up = false;
                    self.signal = Some(Signal::FellBehind);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_pages_past_u32_max_do_not_overflow() {
        // A live feed that is busy for ever (4e9 pages: 50 days at 1000 pages/s) counts its busy pages without
        // overflowing (a panic in a debug build), and still reads as behind.
        let mut p = Position::new(Some(LivePolicy::default()));
        p.empty_page();
        assert_eq!(p.poll_signal(), Some(Signal::CaughtUp));
        p.busy_pages = u32::MAX - 1;
        p.busy_page(1, None);
        assert_eq!(p.poll_signal(), Some(Signal::FellBehind));
        p.busy_page(1, None);
        assert_eq!(p.busy_pages, u32::MAX);
    }
}
