//! The page loop of a feed (ZeroEventHub / FeedAPI v1, or one FeedAPI v2 partition) as a state machine: no I/O, no
//! clock. What a page's lines do is the `page` module's; where the feed stands and when a live feed polls again is the
//! `position` module's.
//!
//! The transport drives it: [`Session::poll_request`] says which URL to GET, [`Session::handle_status`],
//! [`Session::handle_chunk`] and [`Session::handle_eof`] feed it the response, and [`Session::poll_batch`] hands out
//! committable batches. ZEH's usual "caught up" signal is a page with zero events (fewer than `pagesizehint` is *not*
//! one, says the SPEC), so the session ends there.

use crate::batch::{Batch, BatchBuilder};
use crate::cursor::CursorSet;
use crate::error::{ErrorKind, ProtocolError};
use crate::failover::Failover;
use crate::framing::{LineDecoder, DEFAULT_MAX_LINE};
use crate::page::handle_line;
pub use crate::page::PageStats;
use crate::passed::PassedCursors;
use crate::position::Position;
pub use crate::position::{LivePolicy, Signal};
use crate::request::{v1_url, v2_url, V1Options, V2Options};
use crate::retry::{Backoff, Decision, Failure, RetryPolicy};
use crate::typefilter::TypeFilter;
use alloc::string::String;
use alloc::vec::Vec;

/// Released event text that makes a batch worth handing out before the page ends (PERFORMANCE.md: 16–64 KiB chunks
/// are fastest for `JSON.parse` and the GC).
pub const BATCH_BYTES: usize = 64 * 1024;

/// Consecutive failed tries of one page that each read events and got nowhere (no checkpoint released, the
/// cursors where they started) after which the page is given up whatever the retry policy says: the same answer
/// over and over is a server that cannot serve this page, and an unlimited policy would refetch it forever.
pub const MAX_STUCK_ATTEMPTS: u32 = 8;

/// Default of [`SessionConfig::max_held`]: 64 MiB of events waiting for checkpoints.
pub const DEFAULT_MAX_HELD: usize = 64 * 1024 * 1024;

/// The longest JavaScript string, in UTF-16 units: V8's (Node, Chromium, workerd), the shortest of the engines.
const JS_STRING_MAX: usize = (1 << 29) - 24;

/// The most [`SessionConfig::max_line`] and [`SessionConfig::max_held`] take effect up to (256 MiB). A batch's text
/// holds at most the events held before its last chunk (`max_held`), what was released before that chunk (under
/// [`BATCH_BYTES`]) and the events of the chunk (at most [`BATCH_BYTES`] of input, three times that escaped), and a
/// cursor at most a line: so each fits in a JavaScript string (a longer one would be the runtime's error in the glue,
/// Node's `ERR_STRING_TOO_LONG`, not a `no-progress` or `line-too-long` error), and offsets stay far below
/// [`crate::batch::WIDE`].
pub const MAX_LIMIT: usize = 1 << 28;
const _: () = assert!(MAX_LIMIT + 4 * BATCH_BYTES + 2 <= JS_STRING_MAX);

/// The protocol a session speaks, with its request options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// ZeroEventHub (FeedAPI v1): one request reads every partition of the cursor set (or the listed ones), and
    /// lines name their `partition`.
    V1(V1Options),
    /// FeedAPI v2: one request reads one partition (then the cursor set holds that partition's cursor only), and lines
    /// have no `partition`. Which partition, and discovery, are the shell's.
    V2(V2Options),
}

impl Protocol {
    /// `pagesizehint`, if any.
    pub fn page_size_hint(&self) -> Option<u32> {
        match self {
            Protocol::V1(o) => o.page_size_hint,
            Protocol::V2(o) => o.page_size_hint,
        }
    }
}

/// Everything a session needs to start.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The feed URL (the full URL: the protocol defines no path).
    pub url: String,
    /// Where to start, one cursor per partition; its length is `n`.
    pub cursors: CursorSet,
    /// The protocol and its request options.
    pub protocol: Protocol,
    /// Maximum line length in bytes (at most [`MAX_LIMIT`] takes effect).
    pub max_line: usize,
    /// Most bytes of events a page may hold back waiting for their partitions' checkpoints (all partitions together);
    /// more is a [`ErrorKind::NoProgress`] error. Bounds memory when a server sends long runs without checkpoints.
    /// At most [`MAX_LIMIT`] takes effect.
    pub max_held: usize,
    /// How failed pages are retried; `None` makes every failure final.
    pub retry: Option<RetryPolicy>,
    /// Seed of the retry jitter.
    pub seed: u64,
    /// Keep polling after catching up (`None`: end there).
    pub live: Option<LivePolicy>,
    /// More base URLs of the same feed (replicas sharing its cursors), tried after `url` (see [`crate::failover`]).
    /// A v2 session keeps to `url` and does not retry when there are any (see [`Session::new`]).
    pub replicas: Vec<String>,
    /// How long a URL whose request failed is skipped, ms.
    pub failover_cooldown_ms: u64,
    /// The path in each event's `data` of its type, read into [`Batch::types`] for a type filter; empty: not read.
    pub type_field: Vec<String>,
    /// With a `type_field`: the events whose type this filter does not keep are dropped in the core, only counted in
    /// [`Batch::dropped`] (see [`crate::typefilter`]).
    pub type_filter: Option<TypeFilter>,
    /// Write the characters outside ASCII of the events' values as `\u` escapes in the batch text (see
    /// [`crate::batch::BatchBuilder::set_escape`]); `false` (the default): as the server sent them.
    pub escape: bool,
}

impl SessionConfig {
    /// A config reading every partition of `cursors` from `url`, with defaults for the rest.
    pub fn new(url: impl Into<String>, cursors: CursorSet) -> Self {
        SessionConfig {
            url: url.into(),
            cursors,
            protocol: Protocol::V1(V1Options::default()),
            max_line: DEFAULT_MAX_LINE,
            max_held: DEFAULT_MAX_HELD,
            retry: Some(RetryPolicy::default()),
            seed: 1,
            live: None,
            replicas: Vec::new(),
            failover_cooldown_ms: crate::failover::DEFAULT_COOLDOWN_MS,
            type_field: Vec::new(),
            type_filter: None,
            escape: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next call is `poll_request`.
    Ready,
    /// A request went out; waiting for its status.
    Requested,
    /// Reading the body.
    Streaming,
    /// A page failed; the same page is requested again at `retry_at`.
    Waiting,
    /// A page brought no events: nothing more to fetch (or, when live, wait until `wake_at`).
    CaughtUp,
    /// An error ended the session.
    Failed,
}

/// A v1 feed session. See the module docs.
///
/// ```
/// use feedpump_core::{cursor::CursorSet, session::{Session, SessionConfig}};
/// let mut s = Session::new(SessionConfig::new("http://127.0.0.1:1/feed/v1", CursorSet::first(1)));
/// let url = s.poll_request(0).unwrap();
/// assert_eq!(url, "http://127.0.0.1:1/feed/v1?n=1&cursor0=_first");
/// s.handle_status(200).unwrap();
/// s.handle_chunk(b"{\"partition\":0,\"data\":{\"a\":1}}\n{\"partition\":0,\"cur").unwrap();
/// s.handle_chunk(b"sor\":\"7\"}\n").unwrap();
/// s.handle_eof().unwrap();
/// let batch = s.poll_batch().unwrap();
/// assert_eq!(batch.text, br#"[{"a":1}]"#);
/// assert_eq!(s.cursors().cursor(0), Some("7"));
/// assert_eq!(s.poll_request(0).unwrap(), "http://127.0.0.1:1/feed/v1?n=1&cursor0=7");
/// ```
#[derive(Debug)]
pub struct Session {
    url: String,
    /// More base URLs of the feed; `failover` picks among `url` (0) and these (1..).
    replicas: Vec<String>,
    failover: Failover,
    protocol: Protocol,
    /// Latest checkpoint read per partition: where the next page starts.
    cursors: CursorSet,
    decoder: LineDecoder,
    builder: BatchBuilder,
    state: State,
    /// Pages requested so far; the current page's number (1-based).
    page: u32,
    stats: PageStats,
    /// `None` when retries are off.
    backoff: Option<Backoff>,
    /// When to retry, while `Waiting`.
    retry_at: u64,
    /// Caught up or behind, and when a caught-up live feed polls again.
    position: Position,
    /// Per partition, the cursors passed (the page's start and the latest checkpoints, bounded: see
    /// [`crate::passed`]). A checkpoint must not name one of them again, other than a repeat of the current cursor
    /// with no new events: it would resume before events already handed out.
    passed: Vec<PassedCursors>,
    /// The error the core ended the current page with, if any: one it detected itself in the body is final, whatever
    /// failure class the shell reports for it.
    page_error: Option<ErrorKind>,
    /// Whether the current page was already resent at once ([`Session::handle_retry_same_page`]).
    resent: bool,
    /// Consecutive failed tries of the current cursors that read events and got nowhere (see
    /// [`MAX_STUCK_ATTEMPTS`]).
    stuck: u32,
}

impl Session {
    /// A session that has not requested anything yet.
    pub fn new(mut config: SessionConfig) -> Self {
        let n = config.cursors.len();
        // FeedAPI v2: a token is its server's, so a v2 session keeps to its URL and, when the feed has others, does
        // not retry either: every failure ends it, and the driver retries, discovering again on the URL the
        // failover picks (js/src/source/v2.ts).
        if matches!(config.protocol, Protocol::V2(_)) && !config.replicas.is_empty() {
            config.replicas.clear();
            config.retry = None;
        }
        Session {
            failover: Failover::new(1 + config.replicas.len(), config.failover_cooldown_ms),
            url: config.url,
            replicas: config.replicas,
            cursors: config.cursors,
            decoder: LineDecoder::with_max_line(config.max_line.min(MAX_LIMIT)),
            builder: {
                let mut b = match &config.protocol {
                    Protocol::V2(v2) => BatchBuilder::with_ids([v2.partition]),
                    Protocol::V1(_) => BatchBuilder::new(n),
                };
                b.set_max_held(config.max_held.min(MAX_LIMIT));
                b.set_type_field(config.type_field);
                b.set_type_filter(config.type_filter);
                b.set_escape(config.escape);
                b
            },
            state: State::Ready,
            page: 0,
            stats: PageStats::default(),
            backoff: config.retry.map(|p| Backoff::new(p, config.seed)),
            retry_at: 0,
            position: Position::new(config.live),
            passed: (0..n).map(|_| PassedCursors::default()).collect(),
            page_error: None,
            resent: false,
            stuck: 0,
            protocol: config.protocol,
        }
    }

    /// The index of the base URL the current page was asked from (0: the configured URL, then its replicas).
    pub fn url_index(&self) -> usize {
        self.failover.current()
    }

    /// Number of the current page (1-based; 0 before the first request).
    pub fn page(&self) -> u32 {
        self.page
    }

    /// The latest checkpoint read per partition.
    pub fn cursors(&self) -> &CursorSet {
        &self.cursors
    }

    /// Bytes of the current page's body received so far.
    pub fn body_position(&self) -> u64 {
        self.decoder.position()
    }

    /// Bytes of cursors the session remembers to detect checkpoints that move back (all partitions together).
    pub fn passed_cursor_bytes(&self) -> usize {
        self.passed.iter().map(PassedCursors::bytes).sum()
    }

    /// Counters of the current page.
    pub fn stats(&self) -> PageStats {
        self.stats
    }

    /// Lines of the current page that were neither events nor checkpoints: blank, or of no known kind (ignored, such
    /// as a long-poll's heartbeats).
    pub fn skipped_lines(&self) -> u64 {
        self.decoder.lines().wrapping_sub(self.stats.events + self.stats.checkpoints)
    }

    /// Whether the feed has ended: it caught up (a page brought no events), is not live, and every batch was taken.
    pub fn is_caught_up(&self) -> bool {
        self.state == State::CaughtUp && !self.position.is_live() && self.builder.released_bytes() == 0
    }

    /// The latest change of position, once (see [`Signal`]).
    pub fn poll_signal(&mut self) -> Option<Signal> {
        self.position.poll_signal()
    }

    /// The URL of the next page to GET at `now_ms`, once per page; `None` while a page is in flight, while waiting
    /// to retry (see [`Session::poll_timeout`]), after catching up, after a final error, or while released batches
    /// wait to be taken.
    pub fn poll_request(&mut self, now_ms: u64) -> Option<String> {
        let ready = match self.state {
            State::Ready => true,
            State::Waiting => now_ms >= self.retry_at,
            State::CaughtUp => self.position.is_live() && now_ms >= self.position.wake_at(),
            _ => false,
        };
        if !ready || self.builder.released_bytes() > 0 {
            return None;
        }
        let long_poll = self.position.requested(now_ms, self.state == State::CaughtUp);
        self.state = State::Requested;
        // Wraps to 1 after u32::MAX pages (0 is "no request yet"): pages are told apart, not counted for ever.
        self.page = self.page.wrapping_add(1).max(1);
        self.stats = PageStats::default();
        self.page_error = None;
        self.resent = false;
        for (passed, start) in self.passed.iter_mut().zip(self.cursors.as_slice()) {
            passed.start_page(start);
        }
        self.decoder.reset();
        let base = match self.failover.pick(now_ms) {
            0 => &self.url,
            i => &self.replicas[i - 1],
        };
        let mut url = match &self.protocol {
            Protocol::V2(v2) => v2_url(base, v2, self.cursors.cursor(0).unwrap_or(crate::cursor::FIRST)),
            Protocol::V1(v1) => v1_url(base, &self.cursors, v1),
        };
        if let Some((name, ms)) = long_poll {
            url.push('&');
            crate::request::percent_encode(&mut url, &name);
            url.push('=');
            url.push_str(&alloc::format!("{ms}"));
        }
        Some(url)
    }

    /// Whether a checkpoint of the current page moved any cursor from where the page started.
    fn moved(&self) -> bool {
        self.passed.iter().zip(self.cursors.as_slice()).any(|(p, c)| p.start() != c)
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        self.state = State::Failed;
        self.page_error = Some(e.kind);
        self.builder.drop_held();
        e
    }

    /// The response status. Any 2xx starts the body (a 204's empty body is an empty page); anything else ends the
    /// session with [`ErrorKind::HttpStatus`].
    pub fn handle_status(&mut self, status: u16) -> Result<(), ProtocolError> {
        if self.state != State::Requested {
            return Err(self.fail(ProtocolError::new(ErrorKind::BadOptions, "status received with no request")));
        }
        if (200..300).contains(&status) {
            self.state = State::Streaming;
            Ok(())
        } else {
            Err(self.fail(ProtocolError::new(ErrorKind::HttpStatus, "the server answered with a non-2xx status")))
        }
    }

    /// Feeds a piece of the body. Feed at most about [`BATCH_BYTES`] at a time and call [`Session::poll_batch`] in
    /// between, to keep batches small.
    pub fn handle_chunk(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        if self.state != State::Streaming {
            return Err(self.fail(ProtocolError::new(ErrorKind::BadOptions, "body received outside a page")));
        }
        let Session { decoder, builder, cursors, stats, passed, protocol, .. } = self;
        let result = decoder.handle_chunk(chunk, |line| handle_line(line, protocol, builder, cursors, stats, passed));
        result.map_err(|e| self.fail(e))
    }

    /// The body ended cleanly. A partial last line is an error; events still held are dropped (the next page
    /// fetches them again from the last checkpoint).
    pub fn handle_eof(&mut self) -> Result<(), ProtocolError> {
        if self.state != State::Streaming {
            return Err(self.fail(ProtocolError::new(ErrorKind::BadOptions, "end of body outside a page")));
        }
        self.decoder.finish().map_err(|e| self.fail(e))?;
        self.builder.drop_held();
        // v1: a page with no events means caught up. v2 publishers may filter events away and still move the cursor
        // ("being able to make progress also in the case of no new (external) events is important"), so there only a
        // page that neither brings events nor moves the cursor means caught up.
        // (A checkpoint back to the start is refused, so a cursor other than the start means it moved.)
        let moved = matches!(self.protocol, Protocol::V2(_)) && self.moved();
        if self.stats.events == 0 && !moved {
            self.position.empty_page();
            self.state = State::CaughtUp;
        } else if self.stats.events == 0 {
            // v2: no events, but the cursor moved past filtered-away events: keep reading at once.
            self.state = State::Ready;
        } else if self.stats.released == 0 {
            return Err(self.fail(ProtocolError::new(
                ErrorKind::NoProgress,
                "the page had events but no checkpoint after any of them; the feed cannot move forward",
            )));
        } else {
            self.state = State::Ready;
            self.position.busy_page(self.stats.events, self.protocol.page_size_hint());
        }
        if let Some(b) = &mut self.backoff {
            b.handle_success();
        }
        self.stuck = 0;
        Ok(())
    }

    /// The transport failed (network error, cut body, abort): the session ends and held events are dropped.
    pub fn handle_transport_error(&mut self) {
        self.state = State::Failed;
        self.builder.drop_held();
    }

    /// A page failed at `now_ms`. Held events are dropped (the retry starts again from the last checkpoint, so
    /// nothing is lost; only events after it can come twice, and they were never handed out). Returns whether and
    /// when to retry; [`Session::poll_request`] then gives the same page's URL again from that time on.
    ///
    /// Whatever the `failure` says, the core gives up on a page it failed itself for a reason a retry cannot cure (a
    /// malformed or regressing body: only a cut body and a status are retried), and on a page that was tried
    /// [`MAX_STUCK_ATTEMPTS`] times in a row reading events without moving a cursor: a shell that misreports a
    /// failure cannot make the same page be fetched forever.
    pub fn handle_failure(&mut self, now_ms: u64, failure: Failure, retry_after_ms: Option<u64>) -> Decision {
        self.failover.handle_failure(now_ms, failure);
        self.builder.drop_held();
        if self.moved() {
            self.stuck = 0;
        } else if self.stats.events > 0 {
            self.stuck += 1;
        }
        let final_error =
            self.page_error.is_some_and(|k| !matches!(k, ErrorKind::TruncatedBody | ErrorKind::HttpStatus));
        let decision = match &mut self.backoff {
            Some(_) if final_error || self.stuck >= MAX_STUCK_ATTEMPTS => Decision::GiveUp,
            Some(b) => b.handle_failure(now_ms, failure, retry_after_ms),
            None => Decision::GiveUp,
        };
        match decision {
            Decision::RetryAt(at) => {
                self.state = State::Waiting;
                self.retry_at = at;
            }
            Decision::GiveUp => self.state = State::Failed,
        }
        decision
    }

    /// The request of the current page is about to be sent again at once (after a 401, with refreshed credentials):
    /// the session goes back to waiting for its status and returns true. Only a page that failed on its status can
    /// be resent so, and only once: otherwise this returns false and the session stays failed.
    pub fn handle_retry_same_page(&mut self) -> bool {
        if self.state != State::Failed || self.resent || self.page_error != Some(ErrorKind::HttpStatus) {
            return false;
        }
        self.resent = true;
        self.page_error = None;
        self.state = State::Requested;
        true
    }

    /// While waiting to retry or to poll a live feed again: when [`Session::poll_request`] will give the next URL.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            State::Waiting => Some(self.retry_at),
            State::CaughtUp if self.position.is_live() => Some(self.position.wake_at()),
            _ => None,
        }
    }

    /// Consecutive failed attempts of the current page.
    pub fn attempts(&self) -> u32 {
        self.backoff.as_ref().map_or(0, Backoff::attempts)
    }

    /// A batch, when at least [`BATCH_BYTES`] of events, or as many bytes of cursors, were released, or the page has
    /// ended with anything released. (The cursors' bound: with a type filter that drops most events, a page's
    /// checkpoints would otherwise pile up in one batch until its end.)
    pub fn poll_batch(&mut self) -> Option<Batch> {
        let b = &self.builder;
        if self.state == State::Streaming && b.released_bytes() < BATCH_BYTES && b.released_cursor_bytes() < BATCH_BYTES
        {
            return None;
        }
        self.builder.take()
    }

    /// Whether released events or checkpoints wait to be taken.
    pub fn has_released(&self) -> bool {
        self.builder.released_bytes() > 0 || self.builder.has_checkpoints()
    }

    /// Whatever was released so far, regardless of size (for latency, e.g. when the body goes quiet).
    pub fn flush(&mut self) -> Option<Batch> {
        self.builder.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_number_wraps_past_u32_max() {
        // A live feed polling for ever (4e9 pages: 50 days at 1000 pages/s) numbers its pages without overflowing
        // (a panic in a debug build); after u32::MAX comes 1, never 0 (no request yet).
        let mut s = Session::new(SessionConfig::new("http://h/f", CursorSet::first(1)));
        s.page = u32::MAX;
        assert!(s.poll_request(0).is_some());
        assert_eq!(s.page(), 1);
    }
}
