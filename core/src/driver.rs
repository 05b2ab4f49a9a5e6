//! Every decision of a reader shell, as a state machine over a [`Session`]: no I/O, no clock, no JavaScript.
//!
//! A shell (the wasm-bindgen `FeedReader`, or a TypeScript loop over a synchronous core) only moves bytes and timers:
//! it fetches the URL it is given, reads the body's chunks, sets the one timer [`Driver::poll_timeout`] asks for and
//! reports what happened through the `handle_*` methods, each with the time `now` in ms (any monotonic clock). After
//! every input it calls [`Driver::poll`] until it gets an [`Action`] that needs I/O. The driver decides the rest:
//!
//! - when released events are handed out before the page ends: at [`BATCH_BYTES`] of them, or `flush_ms` after they
//!   were first released, counted from then so a body that trickles a line every few ms cannot postpone them;
//! - that lines which are neither events nor checkpoints (blank, or ignored: a long-poll's heartbeats) make an empty
//!   output when nothing else is handed out, at most one per piece of body fed: a page that brings only such lines for ever
//!   still reports progress, which a FeedAPI v2 schedule counts against the partition's turn as a batch
//!   ([`crate::schedule::Schedule::handle_batch`]);
//! - when a response is stalled: no head for `idle_ms` after the request, or no body bytes for `idle_ms` while
//!   nothing waits to be handed out;
//! - how a large network chunk is cut: at most [`BATCH_BYTES`] is fed at a time, so batches stay bounded;
//! - what each failure is to the retry policy ([`Fault::failure`]), whether and when to retry (with `Retry-After`);
//! - that a 401 is sent again once with refreshed credentials, when the shell can refresh them;
//! - that a non-2xx status keeps at most [`SNIPPET_BYTES`] of its body for the error;
//! - that on a final failure the events released before it are handed out first, and the error comes after them.
//!
//! ```
//! use feedpump_core::driver::{Action, Driver, DriverOptions};
//! use feedpump_core::{CursorSet, SessionConfig};
//! let config = SessionConfig::new("http://127.0.0.1:1/feed/v1", CursorSet::first(1));
//! let mut d = Driver::new(config, DriverOptions { flush_ms: 10, idle_ms: 60_000, can_refresh: false });
//! assert_eq!(d.poll(0), Action::Fetch { refresh: false });
//! assert_eq!(d.url(), "http://127.0.0.1:1/feed/v1?n=1&cursor0=_first");
//! d.handle_status(200, None);
//! assert_eq!(d.poll(5), Action::Read);
//! assert_eq!(d.poll_timeout(), Some(60_005)); // the idle watchdog
//! d.handle_chunk(7, b"{\"partition\":0,\"data\":1}\n{\"partition\":0,\"cursor\":\"c\"}\n");
//! assert_eq!(d.poll(7), Action::Read);
//! assert_eq!(d.poll_timeout(), Some(17)); // released: handed out 10 ms after they were
//! d.handle_timeout(17);
//! let Action::Batch(out) = d.poll(17) else { panic!() };
//! assert_eq!(out.batch.unwrap().text, b"[1]"); // the events' data; `meta` has their partitions
//! ```

use crate::batch::Batch;
pub use crate::fault::{Fault, Transport};
use crate::retry::{parse_retry_after, Decision};
use crate::session::{Session, SessionConfig, Signal, BATCH_BYTES};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Bytes of a non-2xx body kept for the error (the rest is cancelled).
pub const SNIPPET_BYTES: usize = 512;

/// The shell's own knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverOptions {
    /// Released events wait at most this long (ms) for more while the body is still open.
    pub flush_ms: u64,
    /// A request answered by no response head, or a body that brings no bytes, for this long (ms) is stalled; 0:
    /// never.
    pub idle_ms: u64,
    /// The shell can ask for fresh credentials (a request-headers hook): a 401 is then sent again once.
    pub can_refresh: bool,
}

/// What is handed out: a batch, a signal, the end of a page, or any of them together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The events and checkpoints released (`None`: only a signal or the end of a page).
    pub batch: Option<Batch>,
    /// A change of position, on the batch that ends the page it was found in.
    pub signal: Option<Signal>,
    /// The page (request) the batch came from.
    pub page: u32,
    /// Body bytes of the page read since the previous output.
    pub bytes: u64,
    /// This output empties a page whose body was read to its end.
    pub end: bool,
}

/// What the shell does next. [`Driver::poll`] gives them in this order of priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Cancel the body (and drop a read in flight and the bytes not yet fed): the page ended early.
    Cancel,
    /// Tell the caller a retry comes (`attempt` is 1-based) in `delay_ms`, then poll again.
    Retry {
        /// Why the page failed.
        fault: Fault,
        /// The page that failed.
        page: u32,
        /// Consecutive failures so far.
        attempt: u32,
        /// Until the retry, ms.
        delay_ms: u64,
    },
    /// Hand this out.
    Batch(Output),
    /// The feed ended with this error (given again by every later poll).
    #[allow(missing_docs)] // as in `Retry`
    Fail { fault: Fault, page: u32 },
    /// Pass the rest of the last chunk to [`Driver::handle_chunk`].
    Feed,
    /// Read the body's next chunk (or keep awaiting the read in flight), under the timer of
    /// [`Driver::poll_timeout`].
    Read,
    /// GET [`Driver::url`], then [`Driver::handle_status`], open the body ([`Driver::handle_eof`] if none) and poll.
    Fetch {
        /// The credentials were refused (401): ask for fresh ones.
        refresh: bool,
    },
    /// Nothing to do before the time of [`Driver::poll_timeout`] (or an input).
    Wait,
    /// The feed is done: caught up, not live, everything handed out.
    Done,
}

#[derive(Debug)]
enum Phase {
    /// Between pages: the session says what comes next.
    Idle,
    /// A request is out.
    Fetching,
    /// A 401 is to be sent again with fresh credentials.
    Refresh,
    /// Reading a 2xx body.
    Body,
    /// Reading the start of a non-2xx body (into `snippet`) for the error.
    ErrorBody { status: u16, retry_after: Option<u64> },
    /// A final fault ended the feed.
    Failed(Fault, u32),
}

/// The core of a reader shell. See the module docs.
#[derive(Debug)]
pub struct Driver {
    session: Session,
    options: DriverOptions,
    phase: Phase,
    /// The URL of the current page's request (sent again after a 401).
    url: String,
    /// Bytes of the last chunk the shell still holds (it was fed in [`BATCH_BYTES`] slices).
    unfed: usize,
    /// When released events first waited to be handed out; the flush deadline counts from here.
    released_since: Option<u64>,
    /// The session's [`Session::skipped_lines`] when the last output was made (0 from each request on).
    skipped: u64,
    /// When the current request or read started; the idle deadline counts from here.
    read_since: u64,
    /// The flush deadline passed: hand out what was released, whatever its size.
    flush_now: bool,
    /// The current page's body was read to its end: the output that empties it says so, even an empty one.
    page_done: bool,
    /// The page and body position the last output reached.
    reported: (u32, u64),
    /// The body is to be cancelled.
    cancel: bool,
    /// A retry to report.
    retry: Option<Action>,
    /// Events released before a final fault, handed out before it.
    held: Option<Batch>,
    /// The start of a non-2xx body.
    snippet: Vec<u8>,
}

impl Driver {
    /// A driver that has not requested anything yet.
    pub fn new(config: SessionConfig, options: DriverOptions) -> Self {
        Driver {
            session: Session::new(config),
            options,
            phase: Phase::Idle,
            url: String::new(),
            unfed: 0,
            released_since: None,
            skipped: 0,
            read_since: 0,
            flush_now: false,
            page_done: false,
            reported: (0, 0),
            cancel: false,
            retry: None,
            held: None,
            snippet: Vec::new(),
        }
    }

    /// The session (page number, cursors, counters).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The URL of the request to send ([`Action::Fetch`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether a final fault ended the feed (the shell releases its resources; the fault may still wait behind
    /// released events).
    pub fn has_failed(&self) -> bool {
        matches!(self.phase, Phase::Failed(..))
    }

    /// The next thing to do at `now`.
    pub fn poll(&mut self, now: u64) -> Action {
        if core::mem::take(&mut self.cancel) {
            return Action::Cancel;
        }
        if let Some(retry) = self.retry.take() {
            return retry;
        }
        if let Some(batch) = self.held.take() {
            return self.output(Some(batch), None, false);
        }
        if let Phase::Failed(fault, page) = &self.phase {
            return Action::Fail { fault: fault.clone(), page: *page };
        }
        let batch = if core::mem::take(&mut self.flush_now) { self.session.flush() } else { self.session.poll_batch() };
        let signal = self.session.poll_signal();
        let end = self.page_done && !self.session.has_released();
        // Lines of the page skipped since the last output, and nothing released that a flush will hand out: an empty
        // output, so that a page of heartbeats is seen to go on (a v2 turn counts it as a batch). (Also once after a
        // failed page whose last lines were skipped, before its retry: harmless, and a check of the phase costs
        // wasm bytes.)
        let skipped = self.session.skipped_lines();
        let idle = skipped != self.skipped && !self.session.has_released();
        if batch.is_some() || signal.is_some() || end || idle {
            self.skipped = skipped;
            self.released_since = None;
            self.page_done &= !end;
            return self.output(batch, signal, end);
        }
        match self.phase {
            Phase::Body if self.unfed > 0 => Action::Feed,
            Phase::Body | Phase::ErrorBody { .. } => {
                if matches!(self.phase, Phase::Body) && self.session.has_released() {
                    // Checked before every read, not only by the timer: while chunks keep coming, a read that has
                    // already settled wins every race and the timer would never fire.
                    let since = *self.released_since.get_or_insert(now);
                    if now >= since.saturating_add(self.options.flush_ms) {
                        self.flush_now = true;
                        return self.poll(now);
                    }
                }
                self.read_since = now;
                Action::Read
            }
            Phase::Refresh => {
                self.phase = Phase::Fetching;
                self.read_since = now;
                Action::Fetch { refresh: true }
            }
            Phase::Fetching => Action::Wait,
            _ if self.session.is_caught_up() => Action::Done,
            _ => {
                if let Some(url) = self.session.poll_request(now) {
                    self.url = url;
                    self.skipped = 0;
                    self.phase = Phase::Fetching;
                    self.read_since = now;
                    Action::Fetch { refresh: false }
                } else if self.session.poll_timeout().is_some() {
                    Action::Wait
                } else {
                    self.fail(now, Fault::Stuck, None);
                    self.poll(now)
                }
            }
        }
    }

    /// When to call [`Driver::handle_timeout`] (or poll again, after a [`Action::Wait`]), if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.phase {
            Phase::Body if self.session.has_released() => {
                self.released_since.map(|since| since.saturating_add(self.options.flush_ms))
            }
            Phase::Body | Phase::ErrorBody { .. } | Phase::Fetching => {
                (self.options.idle_ms > 0).then(|| self.read_since.saturating_add(self.options.idle_ms))
            }
            Phase::Idle => self.session.poll_timeout(),
            _ => None,
        }
    }

    /// The timer set for [`Driver::poll_timeout`] fired, at `now`: flush released events, or end a stalled request or
    /// body.
    /// The deadline counts as reached whatever `now` says (timers may fire a ms early by another clock; a read
    /// deadline is not moved, or a body could stall for ever). A `Wait`'s deadline needs no call: poll again.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.poll_timeout().is_none() {
            return;
        }
        match self.phase {
            Phase::Body if self.session.has_released() => self.flush_now = true,
            // No head yet: the offset is 0 (the session's body position starts again with each request).
            Phase::Body | Phase::Fetching => {
                let fault = Fault::Stalled { idle_ms: self.options.idle_ms, offset: self.session.body_position() };
                self.fail(now, fault, None);
            }
            Phase::ErrorBody { .. } => self.finish_status(now),
            _ => {}
        }
    }

    /// The response's status, and its `Retry-After` header if any.
    pub fn handle_status(&mut self, status: u16, retry_after: Option<&str>) {
        if !matches!(self.phase, Phase::Fetching) {
            return;
        }
        // While fetching, the session waits for this status: its only error is the status's.
        match self.session.handle_status(status) {
            Ok(()) => self.phase = Phase::Body,
            // A 401 asks for fresh credentials, once: the session allows one resend per page.
            Err(_) if status == 401 && self.options.can_refresh && self.session.handle_retry_same_page() => {
                self.cancel = true;
                self.phase = Phase::Refresh;
            }
            Err(_) => {
                let retry_after = retry_after.and_then(parse_retry_after);
                self.snippet.clear();
                self.phase = Phase::ErrorBody { status, retry_after };
            }
        }
    }

    /// A chunk of the body at `now`. Returns how many bytes were taken: at most [`BATCH_BYTES`] of a 2xx body, so
    /// the batches stay bounded. The shell keeps the rest and passes it again on [`Action::Feed`].
    pub fn handle_chunk(&mut self, now: u64, bytes: &[u8]) -> usize {
        match self.phase {
            Phase::Body => {
                let n = bytes.len().min(BATCH_BYTES);
                match self.session.handle_chunk(&bytes[..n]) {
                    Ok(()) => {
                        self.unfed = bytes.len() - n;
                        return n;
                    }
                    Err(e) => self.fail(now, Fault::Protocol(e), None),
                }
            }
            Phase::ErrorBody { .. } => {
                let room = SNIPPET_BYTES - self.snippet.len();
                self.snippet.extend_from_slice(&bytes[..bytes.len().min(room)]);
                if self.snippet.len() == SNIPPET_BYTES {
                    self.finish_status(now);
                }
            }
            _ => {}
        }
        bytes.len()
    }

    /// The body ended (or there was none).
    pub fn handle_eof(&mut self, now: u64) {
        match self.phase {
            Phase::Body => match self.session.handle_eof() {
                Ok(()) => {
                    self.page_done = true;
                    self.phase = Phase::Idle;
                }
                Err(e) => self.fail(now, Fault::Protocol(e), None),
            },
            Phase::ErrorBody { .. } => self.finish_status(now),
            _ => {}
        }
    }

    /// The shell failed to fetch or read. Returns whether the fault that follows is this one (then the shell keeps
    /// its error value for it); a failure while reading an error body only ends that body, and one after the feed
    /// ended or while a 401 is resent changes nothing.
    pub fn handle_transport_error(&mut self, now: u64, error: Transport) -> bool {
        let fault = match (&self.phase, error) {
            (Phase::Failed(..), _) => return false,
            (_, Transport::Aborted) => Fault::Aborted,
            (Phase::ErrorBody { .. }, _) => {
                self.finish_status(now);
                return false;
            }
            (Phase::Refresh, _) => return false,
            (_, Transport::Cut) => Fault::Cut { offset: self.session.body_position() },
            (_, Transport::Network) => Fault::Network,
            (_, Transport::Caller) => Fault::Caller,
        };
        self.fail(now, fault, None);
        true
    }

    /// The error body is read (or abandoned): the page fails with its status.
    fn finish_status(&mut self, now: u64) {
        if let Phase::ErrorBody { status, retry_after } = self.phase {
            let snippet = String::from_utf8_lossy(&self.snippet).trim().to_string();
            self.fail(now, Fault::Status { status, snippet }, retry_after);
        }
    }

    /// A page failed: retry it as the policy says, or end the feed once what was released is handed out.
    fn fail(&mut self, now: u64, fault: Fault, retry_after: Option<u64>) {
        let page = self.session.page();
        self.cancel = true;
        self.unfed = 0;
        self.phase = Phase::Idle;
        // An abort is final by the retry policy (`Failure::Aborted` is never retried).
        if let Decision::RetryAt(at) = self.session.handle_failure(now, fault.failure(), retry_after) {
            let attempt = self.session.attempts();
            self.retry = Some(Action::Retry { fault, page, attempt, delay_ms: at.saturating_sub(now) });
            return;
        }
        // A final fault supersedes a retry not yet announced (an abort right after a network error).
        self.retry = None;
        self.held = self.session.flush();
        self.session.handle_transport_error();
        self.phase = Phase::Failed(fault, page);
    }

    fn output(&mut self, batch: Option<Batch>, signal: Option<Signal>, end: bool) -> Action {
        let (page, position) = (self.session.page(), self.session.body_position());
        let since = if self.reported.0 == page { self.reported.1 } else { 0 };
        self.reported = (page, position);
        Action::Batch(Output { batch, signal, page, bytes: position.saturating_sub(since), end })
    }
}
