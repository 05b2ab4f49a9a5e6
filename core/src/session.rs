//! The page loop of a v1 feed as a state machine: no I/O, no clock.
//!
//! The transport drives it: [`Session::poll_request`] says which URL to GET, [`Session::handle_status`],
//! [`Session::handle_chunk`] and [`Session::handle_eof`] feed it the response, and [`Session::poll_batch`] hands out
//! committable batches. ZEH's usual "caught up" signal is a page with zero events (fewer than `pagesizehint` is *not*
//! one, says the SPEC), so the session ends there.

use crate::batch::{Batch, BatchBuilder};
use crate::cursor::CursorSet;
use crate::error::{ErrorKind, ProtocolError};
use crate::failover::Failover;
use crate::framing::{Line, LineDecoder, DEFAULT_MAX_LINE};
use crate::line::classify_v2;
use crate::line::{classify_v1, LineKind};
use crate::passed::PassedCursors;
use crate::request::{v1_url, v2_url, V1Options, V2Options};
use crate::retry::{Backoff, Decision, Failure, RetryPolicy, MAX_TIMER_MS};
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

/// Everything a session needs to start.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The feed URL (the full URL: the protocol defines no path).
    pub url: String,
    /// Where to start, one cursor per partition; its length is `n`.
    pub cursors: CursorSet,
    /// `pagesizehint` and `headers`.
    pub options: V1Options,
    /// Maximum line length in bytes.
    pub max_line: usize,
    /// Most bytes of events a page may hold back waiting for their partitions' checkpoints (all partitions together);
    /// more is a [`ErrorKind::NoProgress`] error. Bounds memory when a server sends long runs without checkpoints.
    pub max_held: usize,
    /// How failed pages are retried; `None` makes every failure final.
    pub retry: Option<RetryPolicy>,
    /// Seed of the retry jitter.
    pub seed: u64,
    /// Keep polling after catching up (`None`: end there).
    pub live: Option<LivePolicy>,
    /// Speak FeedAPI v2 for one partition (then `cursors` holds that partition's cursor only) instead of v1.
    pub v2: Option<V2Options>,
    /// More base URLs of the same feed (replicas sharing its cursors), tried after `url` (see [`crate::failover`]).
    /// A v2 session keeps to `url` and does not retry when there are any (see [`Session::new`]).
    pub replicas: Vec<String>,
    /// How long a URL whose request failed is skipped, ms.
    pub failover_cooldown_ms: u64,
    /// The path in each event's `data` of its type, read into [`Batch::types`] for a type filter; empty: not read.
    pub type_field: Vec<String>,
}

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

impl SessionConfig {
    /// A config reading every partition of `cursors` from `url`, with defaults for the rest.
    pub fn new(url: impl Into<String>, cursors: CursorSet) -> Self {
        SessionConfig {
            url: url.into(),
            cursors,
            options: V1Options::default(),
            max_line: DEFAULT_MAX_LINE,
            max_held: DEFAULT_MAX_HELD,
            retry: Some(RetryPolicy::default()),
            seed: 1,
            live: None,
            v2: None,
            replicas: Vec::new(),
            failover_cooldown_ms: crate::failover::DEFAULT_COOLDOWN_MS,
            type_field: Vec::new(),
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

/// Counters of the current page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Events read (released or held).
    pub events: u64,
    /// Events released in batches.
    pub released: u64,
    /// Checkpoint lines read.
    pub checkpoints: u64,
    /// Lines of no known kind, ignored.
    pub ignored: u64,
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
/// assert_eq!(batch.text, r#"[{"partition":0,"data":{"a":1}}]"#);
/// assert_eq!(s.cursors().cursor(0), Some("7"));
/// assert_eq!(s.poll_request(0).unwrap(), "http://127.0.0.1:1/feed/v1?n=1&cursor0=7");
/// ```
#[derive(Debug)]
pub struct Session {
    url: String,
    /// More base URLs of the feed; `failover` picks among `url` (0) and these (1..).
    replicas: Vec<String>,
    failover: Failover,
    options: V1Options,
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
    /// FeedAPI v2 request options, when speaking v2.
    v2: Option<V2Options>,
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
        if config.v2.is_some() && !config.replicas.is_empty() {
            config.replicas.clear();
            config.retry = None;
        }
        Session {
            failover: Failover::new(1 + config.replicas.len(), config.failover_cooldown_ms),
            url: config.url,
            replicas: config.replicas,
            options: config.options,
            cursors: config.cursors,
            decoder: LineDecoder::with_max_line(config.max_line),
            builder: {
                let mut b = match &config.v2 {
                    Some(v2) => BatchBuilder::with_ids([v2.partition]),
                    None => BatchBuilder::new(n),
                };
                b.set_max_held(config.max_held);
                b.set_type_field(config.type_field);
                b
            },
            state: State::Ready,
            page: 0,
            stats: PageStats::default(),
            backoff: config.retry.map(|p| Backoff::new(p, config.seed)),
            retry_at: 0,
            interval_ms: config.live.as_ref().map_or(0, |l| l.min_ms.min(MAX_TIMER_MS)),
            live: config.live.map(|mut l| {
                l.min_ms = l.min_ms.min(MAX_TIMER_MS);
                l.max_ms = l.max_ms.clamp(l.min_ms, MAX_TIMER_MS);
                l
            }),
            requested_at: 0,
            caught_up: false,
            signalled_caught_up: false,
            busy_pages: 0,
            signal: None,
            passed: (0..n).map(|_| PassedCursors::default()).collect(),
            page_error: None,
            resent: false,
            stuck: 0,
            v2: config.v2,
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

    /// Whether the feed has ended: it caught up (a page brought no events), is not live, and every batch was taken.
    pub fn is_caught_up(&self) -> bool {
        self.state == State::CaughtUp && self.live.is_none() && self.builder.released_bytes() == 0
    }

    /// The latest change of position, once (see [`Signal`]).
    pub fn poll_signal(&mut self) -> Option<Signal> {
        self.signal.take()
    }

    /// The URL of the next page to GET at `now_ms`, once per page; `None` while a page is in flight, while waiting
    /// to retry (see [`Session::poll_timeout`]), after catching up, after a final error, or while released batches
    /// wait to be taken.
    pub fn poll_request(&mut self, now_ms: u64) -> Option<String> {
        let ready = match self.state {
            State::Ready => true,
            State::Waiting => now_ms >= self.retry_at,
            State::CaughtUp => self.live.is_some() && now_ms >= self.wake_at(),
            _ => false,
        };
        if !ready || self.builder.released_bytes() > 0 {
            return None;
        }
        let long_poll = match (&self.live, self.state) {
            (Some(LivePolicy { long_poll_param: Some(name), .. }), State::CaughtUp) => {
                Some((name.clone(), self.interval_ms))
            }
            _ => None,
        };
        self.requested_at = now_ms;
        self.state = State::Requested;
        self.page += 1;
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
        let mut url = match &self.v2 {
            Some(v2) => v2_url(base, v2, self.cursors.cursor(0).unwrap_or(crate::cursor::FIRST)),
            None => v1_url(base, &self.cursors, &self.options),
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

    fn wake_at(&self) -> u64 {
        self.requested_at.saturating_add(self.interval_ms)
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
        let Session { decoder, builder, cursors, stats, passed, options, v2, .. } = self;
        let n = if v2.is_some() { 0 } else { cursors.len() };
        let result = decoder.handle_chunk(chunk, |line| handle_line(line, n, options, builder, cursors, stats, passed));
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
        let moved = self.v2.is_some() && self.moved();
        if self.stats.events == 0 && !moved {
            if !self.caught_up {
                self.signal = Some(Signal::CaughtUp);
                self.signalled_caught_up = true;
            } else if let Some(live) = &self.live {
                // Another empty page: poll less often.
                self.interval_ms = (self.interval_ms.saturating_mul(2)).clamp(live.min_ms, live.max_ms);
            }
            self.caught_up = true;
            self.busy_pages = 0;
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
            self.busy_pages += 1;
            if let Some(live) = &self.live {
                self.interval_ms = live.min_ms;
            }
            // Position signals of a feed that has caught up once. With a page size hint, a full page means behind
            // and, once behind, a page short of the hint reached the head again: a steady live flow keeps every
            // page busy but short, so it never reads as behind. Without a hint only runs of busy pages can tell.
            match self.options.page_size_hint.filter(|&h| h > 0) {
                Some(hint) if self.stats.events >= u64::from(hint) => {
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
            State::CaughtUp if self.live.is_some() => Some(self.wake_at()),
            _ => None,
        }
    }

    /// Consecutive failed attempts of the current page.
    pub fn attempts(&self) -> u32 {
        self.backoff.as_ref().map_or(0, Backoff::attempts)
    }

    /// A batch, when at least [`BATCH_BYTES`] of events were released or the page has ended with anything released.
    pub fn poll_batch(&mut self) -> Option<Batch> {
        if self.state == State::Streaming && self.builder.released_bytes() < BATCH_BYTES {
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

fn handle_line(
    line: Line<'_>,
    n: u32,
    options: &V1Options,
    builder: &mut BatchBuilder,
    cursors: &mut CursorSet,
    stats: &mut PageStats,
    passed: &mut [PassedCursors],
) -> Result<(), ProtocolError> {
    let text = core::str::from_utf8(line.bytes).map_err(|e| {
        ProtocolError::new(ErrorKind::InvalidUtf8, "line is not valid UTF-8")
            .at(line.number, line.offset + e.valid_up_to() as u64)
    })?;
    // n == 0: FeedAPI v2, one partition per request and no `partition` on the lines.
    let kind = if n == 0 { classify_v2(line.bytes) } else { classify_v1(line.bytes, n) }
        .map_err(|e| ProtocolError { line: line.number, offset: line.offset, ..e })?;
    if let LineKind::Event { partition, .. } | LineKind::Checkpoint { partition, .. } = &kind {
        if !options.reads(*partition) {
            return Err(ProtocolError::new(ErrorKind::BadPartition, "line is for a partition that was not requested")
                .at(line.number, line.offset)
                .in_partition(*partition));
        }
    }
    match kind {
        LineKind::Event { partition, data, headers } => {
            stats.events += 1;
            // The scanner's spans end at ASCII delimiters, so they are char boundaries; `get` keeps str slicing's
            // panic path (and its formatting code) out of the wasm all the same.
            let span = |r| {
                text.get(r)
                    .ok_or_else(|| ProtocolError::new(ErrorKind::BadLine, "bad span").at(line.number, line.offset))
            };
            let headers = headers.map(span).transpose()?;
            builder.handle_event(partition, line.number, line.offset, headers, span(data)?);
            if builder.over_held_limit() {
                return Err(ProtocolError::new(
                    ErrorKind::NoProgress,
                    "the events held back waiting for a checkpoint exceed maxHeldBytes (they cannot be delivered without one)",
                )
                .at(line.number, line.offset)
                .in_partition(partition));
            }
        }
        LineKind::Checkpoint { partition, cursor } => {
            stats.checkpoints += 1;
            let held = builder.held_events(partition);
            let seen = &mut passed[partition as usize];
            // A checkpoint that repeats the current cursor with no new events changes nothing: no batch for it
            // (FeedAPI v2 sends a cursor in every response, also when there is nothing new).
            if held == 0 && cursors.cursor(partition) == Some(cursor.as_str()) {
                return Ok(());
            }
            // Any other cursor already passed moves the feed back, with or without events held: committing it would
            // resume before events already delivered (or, with events held, before these).
            if seen.contains(&cursor) {
                return Err(ProtocolError::new(
                    ErrorKind::CursorRegressed,
                    "checkpoint moves back to a cursor already passed",
                )
                .at(line.number, line.offset)
                .in_partition(partition));
            }
            seen.push(&cursor);
            stats.released += held as u64;
            cursors.handle_checkpoint(partition, &cursor);
            builder.handle_checkpoint(partition, cursor);
        }
        LineKind::Ignored => stats.ignored += 1,
    }
    Ok(())
}
