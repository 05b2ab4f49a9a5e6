//! The invariants the fuzz targets check, as plain functions so the corpus can be replayed on stable
//! (`tests/replay.rs`). Each panics when an invariant breaks; errors are fine, panics and hangs are not.

use feedpump_core::framing::LineDecoder;
use feedpump_core::line::{classify_v1, classify_v2, LineKind};
use feedpump_core::passed::{PASSED_CURSORS, PASSED_CURSOR_BYTES};
use feedpump_core::typefield::{type_at, TypeAt};
use feedpump_core::{CursorSet, Decision, ErrorKind, Failure, RetryPolicy, Session, SessionConfig};
use std::fmt::Write;

/// Splits `data` at points derived from its first byte, so the fuzzer explores chunk boundaries too.
fn split_points(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((&k, rest)) => (usize::from(k % 17) + 1, rest),
        None => (1, data),
    }
}

/// Framing: fed in pieces or whole, the decoder yields the same lines (or the same error), never a line with `\n`
/// inside or longer than the limit.
pub fn framing(data: &[u8]) {
    let (step, body) = split_points(data);
    let run = |piece: usize| {
        let mut d = LineDecoder::with_max_line(64);
        let mut lines = Vec::new();
        for chunk in body.chunks(piece.max(1)) {
            let r = d.handle_chunk(chunk, |l| {
                assert!(!l.bytes.contains(&b'\n') && l.bytes.len() <= 64);
                lines.push((l.bytes.to_vec(), l.number, l.offset));
                Ok(())
            });
            if let Err(e) = r {
                return (lines, Some((e.kind, e.line, e.offset)));
            }
        }
        let end = d.finish().err().map(|e| (e.kind, e.line, e.offset));
        (lines, end)
    };
    assert_eq!(run(step), run(body.len()));
}

/// Line scanner: never panics; a checkpoint's partition is below n; event spans lie inside the line. FeedAPI v2
/// (`classify_v2`): the same for one partition, with no headers (an unknown field there), and a line that v1 takes
/// is taken by v2 as the same kind (v2's rule only drops v1's `partition` and `headers`). The scanner's block pass
/// skips a container exactly as the byte-at-a-time scan does, from every bracket (of the first KiB: quadratic).
pub fn line(data: &[u8]) {
    feedpump_core::blocks::differential::check(&data[..data.len().min(1024)]);
    let v1 = classify_v1(data, 4);
    if let Ok(kind) = &v1 {
        match kind {
            LineKind::Event { partition, data: d, headers } => {
                assert!(*partition < 4 && d.end <= data.len() && headers.as_ref().is_none_or(|h| h.end <= data.len()));
            }
            LineKind::Checkpoint { partition, cursor } => assert!(*partition < 4 && !cursor.is_empty()),
            LineKind::Ignored => {}
        }
    }
    let v2 = classify_v2(data);
    if let Ok(k1) = &v1 {
        // v1 took the line, so its envelope is sound: v2 takes it too, as the same kind.
        match (k1, &v2) {
            (LineKind::Event { data: d1, .. }, Ok(LineKind::Event { partition: 0, data: d2, headers: None })) => {
                assert_eq!(d1, d2);
            }
            (LineKind::Checkpoint { cursor: c1, .. }, Ok(LineKind::Checkpoint { partition: 0, cursor: c2 })) => {
                assert_eq!(c1, c2);
            }
            (LineKind::Ignored, Ok(LineKind::Ignored)) => {}
            (k, r) => panic!("v1 {k:?} but v2 {r:?}"),
        }
    }
    if let Ok(LineKind::Event { data: d, headers, .. }) = v2 {
        assert!(d.end <= data.len() && headers.is_none());
        // The type reader on any data the scanner took: never panics; a type lies inside the data, between quotes,
        // with no escape in it.
        let value = &data[d];
        for path in [&["type".to_string()][..], &["meta".to_string(), "type".to_string()][..]] {
            if let TypeAt::At(r) = type_at(value, path) {
                assert!(r.start >= 1 && r.end < value.len() && r.start <= r.end);
                assert!(value[r.start - 1] == b'"' && value[r.end] == b'"' && !value[r.clone()].contains(&b'\\'));
            }
        }
    }
}

/// A page of event and checkpoint lines synthesized from the fuzz data, so that the fuzzer explores checkpoints
/// that move back, repeat, cycle and pile up without having to find valid JSON: each byte is an event of partition
/// `b & 1` (`b < 0x40`) or a checkpoint of partition `b & 1` whose cursor is one of 96 (some long ones).
fn synthesized_page(data: &[u8]) -> Vec<u8> {
    let mut body = String::new();
    for (i, &b) in data.iter().enumerate() {
        let p = b & 1;
        if b < 0x40 {
            writeln!(body, "{{\"partition\":{p},\"data\":{i}}}").unwrap_or(());
        } else {
            let c = (b >> 1) - 0x20;
            let pad = if c % 16 == 15 { "x".repeat(600) } else { String::new() };
            writeln!(body, "{{\"partition\":{p},\"cursor\":\"c{c}{pad}\"}}").unwrap_or(());
        }
    }
    body.into_bytes()
}

/// Session: a body in pieces (raw, or synthesized by [`synthesized_page`] when the first byte's top bit is set), with
/// failures of every class injected by the data, never panics, never hands out more events than it read, and every
/// batch's text is a JSON array whose event count matches its table. Cursors only move forward: a committed
/// checkpoint never names a cursor the partition passed before (exact history, while it is within what the core
/// remembers), and a `cursor-regressed` always names one it did pass. The remembered cursors stay bounded, and the
/// run ends (no page is fetched forever) even though the retry policy never gives up.
pub fn session(data: &[u8]) {
    const MAX_LINE: usize = 4096;
    let synthesized;
    let (step, body) = match data.split_first() {
        Some((&k, rest)) if k & 0x80 != 0 => {
            synthesized = synthesized_page(rest);
            (usize::from(k % 61) + 1, &synthesized[..])
        }
        _ => split_points(data),
    };
    let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(2));
    config.retry = Some(RetryPolicy { max_attempts: None, ..RetryPolicy::default() });
    config.max_line = MAX_LINE;
    // A third of the inputs go through the core's type filter: it drops events (only counting them) but never a
    // checkpoint, so every invariant below holds the same.
    let filtered = data.len().is_multiple_of(3);
    if filtered {
        use feedpump_core::typefilter::{TypeFilter, TypePattern};
        config.type_field = vec!["type".into()];
        config.type_filter = Some(TypeFilter {
            include: vec![TypePattern::Prefix("a".into()), TypePattern::Exact(String::new())],
            exclude: vec![TypePattern::Exact("ab".into())],
            ignore_case: data.len().is_multiple_of(2),
        });
    }
    let mut s = Session::new(config);
    // Per partition, every cursor passed (in order), as an independent exact model.
    let mut history: Vec<Vec<String>> = vec![vec!["_first".to_string()]; 2];
    let mut now = 0u64;
    let check_batches = |s: &mut Session, history: &mut Vec<Vec<String>>| {
        while let Some(b) = s.flush() {
            assert!(b.text.starts_with(b"[") && b.text.ends_with(b"]"));
            assert!(b.wide.starts_with(b"[") && b.wide.ends_with(b"]"));
            // Escapes off (raw mode, the default): an event with text outside ASCII is in the wide text, which is
            // valid UTF-8 (the lines outside ASCII were checked; the texts are not checked again on the way out).
            assert!(b.text.is_ascii() && b.ascii);
            assert!(core::str::from_utf8(&b.wide).is_ok());
            assert_eq!(b.meta.len() % feedpump_core::batch::META_STRIDE, 0);
            // Dropped events are counted per partition released, only with a checkpoint of it in the batch.
            assert!(filtered || b.dropped.is_empty());
            for d in b.dropped.chunks(2) {
                assert!(
                    d.len() == 2 && d[1] > 0 && b.checkpoints.iter().any(|c| c.partition == d[0]),
                    "{:?}",
                    b.dropped
                );
            }
            for c in &b.checkpoints {
                let h = &mut history[c.partition as usize];
                let bytes: usize = h.iter().map(String::len).sum();
                if h.len() < PASSED_CURSORS && bytes < PASSED_CURSOR_BYTES {
                    assert!(!h.contains(&c.cursor), "committed {:?} again after {h:?}", c.cursor);
                }
                h.push(c.cursor.clone());
            }
        }
    };
    // Where in `body` the current page began (error offsets are relative to it).
    let mut page_start = 0usize;
    for (i, chunk) in body.chunks(step.max(1)).enumerate() {
        if s.poll_request(now).is_some() {
            page_start = i * step.max(1);
            let _ = s.handle_status(if chunk.first() == Some(&b'5') { 503 } else { 200 });
        }
        let fault = i % 7 == 6 && chunk.first() == Some(&b'!');
        let result = s.handle_chunk(chunk);
        if let Err(e) = result {
            if e.kind == ErrorKind::CursorRegressed {
                check_batches(&mut s, &mut history);
                let p = e.partition.expect("a regression names its partition") as usize;
                let rest = &body[page_start + e.offset as usize..];
                let line = rest.split(|&b| b == b'\n').next().unwrap_or(rest);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let Ok(LineKind::Checkpoint { cursor, .. }) = classify_v1(line, 2) {
                    assert!(history[p].contains(&cursor), "{cursor:?} was never passed: {:?}", history[p]);
                } else {
                    panic!("cursor-regressed at a line that is no checkpoint: {:?}", String::from_utf8_lossy(line));
                }
            }
        }
        check_batches(&mut s, &mut history);
        assert!(s.passed_cursor_bytes() <= 2 * (PASSED_CURSOR_BYTES + 2 * MAX_LINE), "{}", s.passed_cursor_bytes());
        if result.is_err() || fault {
            let failure = match chunk.last().copied().unwrap_or(0) % 4 {
                0 => Failure::Truncated,
                1 => Failure::Status(503),
                2 => Failure::Stalled,
                _ => Failure::Protocol,
            };
            if chunk.len() % 5 == 0 {
                let _ = s.handle_retry_same_page();
            }
            match s.handle_failure(now, failure, None) {
                Decision::RetryAt(t) => now = t,
                Decision::GiveUp => break,
            }
        }
    }
    let _ = s.handle_eof();
    check_batches(&mut s, &mut history);
}

/// The fuzz data read as a script, a byte (or more) at a time; zeros once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    fn u64(&mut self) -> u64 {
        self.bytes(8).iter().fold(0, |v, &b| v << 8 | u64::from(b))
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.byte()) % from.len()]
    }
}

/// Counts the values of a JSON array (the batch text: values copied verbatim from lines the scanner took).
fn array_len(text: &[u8]) -> usize {
    let (mut depth, mut in_string, mut escaped, mut commas, mut any) = (0usize, false, false, 0usize, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b',' if depth == 1 => commas += 1,
            _ => {}
        }
        any |= depth >= 1 && !matches!(b, b'[' | b' ' | b'\t' | b'\r' | b'\n') || depth >= 2;
    }
    if any {
        commas + 1
    } else {
        0
    }
}

/// The driver's model of a shell: what it holds and what it has seen.
struct Shell {
    d: feedpump_core::driver::Driver,
    now: u64,
    /// The rest of the last chunk (the driver asks for it with `Feed`).
    unfed: Vec<u8>,
    /// A request is out (its answer will come: `Wait` without a timer is then no hang).
    fetching: bool,
    /// The cursors handed out so far, per partition: where every request must start.
    delivered: CursorSet,
    failed: bool,
    fetches: u32,
    /// The fault a transport error the driver took (`handle_transport_error` returned true) must come out as.
    expect: Option<core::mem::Discriminant<feedpump_core::driver::Fault>>,
    /// The protocol and its options, to build the URL every request must have.
    protocol: feedpump_core::Protocol,
    max_held: usize,
    max_line: usize,
    /// The session's skipped lines (blank or ignored) of the page at the last output.
    skipped: u64,
}

impl Shell {
    /// Polls until the driver asks for I/O (or ends), checking everything it hands out on the way.
    fn drain(&mut self) -> feedpump_core::driver::Action {
        use feedpump_core::driver::{Action, Fault, SNIPPET_BYTES};
        for _ in 0..64 {
            let action = self.d.poll(self.now);
            match &action {
                Action::Batch(out) => {
                    assert!(!self.failed, "an output after the final fault");
                    self.skipped = self.d.session().skipped_lines();
                    if let Some(b) = &out.batch {
                        self.check_batch(b);
                    }
                }
                Action::Cancel => {
                    self.unfed.clear();
                    self.fetching = false;
                }
                Action::Retry { delay_ms, attempt, fault, .. } => {
                    assert!(self.expect.take().is_none_or(|e| e == core::mem::discriminant(fault)), "{fault:?}");
                    assert!(!self.failed && *attempt >= 1);
                    assert!(*delay_ms <= feedpump_core::MAX_TIMER_MS, "retry in {delay_ms} ms");
                }
                Action::Fail { fault, .. } => {
                    assert!(self.expect.take().is_none_or(|e| e == core::mem::discriminant(fault)), "{fault:?}");
                    self.failed = true;
                    assert!(self.d.has_failed());
                    if let Fault::Status { snippet, .. } = fault {
                        assert!(snippet.len() <= 3 * SNIPPET_BYTES);
                    }
                    return action;
                }
                Action::Fetch { .. } => {
                    assert!(!self.failed, "fetched after the final fault");
                    assert!(self.expect.is_none(), "a transport error the driver took did not come out");
                    let want = match &self.protocol {
                        feedpump_core::Protocol::V1(o) => feedpump_core::request::v1_url(URL, &self.delivered, o),
                        feedpump_core::Protocol::V2(o) => {
                            feedpump_core::request::v2_url(URL, o, self.delivered.cursor(0).unwrap_or("_first"))
                        }
                    };
                    assert_eq!(self.d.url(), want, "a page must start where the delivered checkpoints end");
                    self.fetching = true;
                    self.fetches += 1;
                    self.skipped = 0;
                    self.unfed.clear();
                    return action;
                }
                Action::Wait => {
                    // No busy spin: a wait with nothing in flight has a timer in the future.
                    if !self.fetching {
                        let at = self.d.poll_timeout().expect("a wait with nothing in flight and no timer: a hang");
                        assert!(at > self.now, "a wait whose time already came: {at} <= {}", self.now);
                    }
                    return action;
                }
                Action::Done => {
                    assert!(!self.failed);
                    return action;
                }
                Action::Read | Action::Feed => {
                    // A page that brings only lines to skip (a long-poll's heartbeats, blank lines) still makes
                    // outputs, one per chunk at least: a FeedAPI v2 turn counts them, so such a page cannot hold a
                    // turn for ever.
                    let session = self.d.session();
                    assert!(
                        session.has_released() || session.skipped_lines() == self.skipped,
                        "lines skipped with no output"
                    );
                    return action;
                }
            }
        }
        panic!("64 polls without asking for I/O");
    }

    fn check_batch(&mut self, b: &feedpump_core::Batch) {
        use feedpump_core::batch::{META_STRIDE, WIDE};
        use feedpump_core::session::BATCH_BYTES;
        assert_eq!(b.meta.len() % META_STRIDE, 0);
        let events = b.meta.len() / META_STRIDE;
        assert!(
            b.text.starts_with(b"[") && b.text.ends_with(b"]") && b.wide.starts_with(b"[") && b.wide.ends_with(b"]")
        );
        assert_eq!(array_len(&b.text) + array_len(&b.wide), events, "the meta table does not count the events");
        // Bounded by the limits: what was held, what was released before the last chunk, and that chunk.
        assert!(b.text.len() + b.wide.len() <= self.max_held + 4 * BATCH_BYTES + 4, "a batch of {}", b.text.len());
        // Every batch ends at a checkpoint: each event's partition has one in the batch.
        for m in b.meta.chunks(META_STRIDE) {
            let (start, end) = (m[0], m[1]);
            let len = if start >= WIDE { b.wide.len() } else { b.text.len() } as u32;
            assert!(start & !WIDE <= end & !WIDE && end & !WIDE < len);
            assert!(b.checkpoints.iter().any(|c| c.partition == m[2]), "an event of {} without its checkpoint", m[2]);
        }
        assert!(events == 0 || !b.checkpoints.is_empty());
        for c in &b.checkpoints {
            assert!(c.partition < self.delivered.len() && !c.cursor.is_empty() && c.cursor.len() <= self.max_line);
            self.delivered.handle_checkpoint(c.partition, &c.cursor);
        }
    }
}

const URL: &str = "http://127.0.0.1:1/f";

/// The lines of a body, from the script: events and checkpoints of two partitions (cursors that repeat and move
/// back), huge lines, lines cut anywhere, garbage.
fn body_chunk(s: &mut Script, serial: &mut u64, v2: bool) -> Vec<u8> {
    let mut out = Vec::new();
    // FeedAPI v2 lines name no partition.
    let part = |p: u8| if v2 { String::new() } else { format!("\"partition\":{p},") };
    match s.byte() % 8 {
        0 => out.extend_from_slice(s.bytes(usize::from(s.0.first().copied().unwrap_or(0)))),
        1 => {
            // A huge line: an event (or checkpoint) of up to 256 KiB.
            let len = 1usize << (s.byte() % 19);
            let p = s.byte() & 1;
            let fill = "x".repeat(len);
            if s.byte() & 1 == 0 {
                out.extend_from_slice(format!("{{{}\"data\":\"{fill}\"}}\n", part(p)).as_bytes());
            } else {
                out.extend_from_slice(format!("{{{}\"cursor\":\"{fill}\"}}\n", part(p)).as_bytes());
            }
        }
        _ => {
            for _ in 0..s.byte() % 24 {
                let b = s.byte();
                let p = part(b & 1);
                *serial += 1;
                let line = match b >> 1 {
                    0..=63 => format!("{{{p}\"data\":{serial}}}\n"),
                    64..=95 => format!("{{{p}\"cursor\":\"c{}\"}}\n", b >> 1 & 31),
                    96..=119 => format!("{{{p}\"cursor\":\"s{serial}\"}}\n"),
                    120..=123 => format!("{{{p}\"data\":{{\"a\":[1,\"]\"]}}}}\r\n"),
                    124 => "{\"partition\":7,\"data\":1}\n".to_string(),
                    125 => "{\"partition\":0,\"data\":\"\u{e9}\"}\n".to_string(),
                    126 => "\n".to_string(),
                    _ => "{\"partition\":0,\"da".to_string(),
                };
                out.extend_from_slice(line.as_bytes());
            }
        }
    }
    out
}

/// Driver: a hostile shell and server, step by step from the script (FeedAPI v1 or v2; statuses with any
/// `Retry-After`, chunks of lines and garbage, huge lines, a chunk or a prefix of one where the driver wants the rest,
/// EOF, transport errors, timers fired early or late, time jumps to near `u64::MAX`, every call out of order). Never
/// panics nor overflows; every batch ends at a checkpoint, its meta table counts its events and its size is bounded
/// by the limits; every request starts from the delivered cursors; a transport error the driver takes comes out as
/// its fault (the next `Retry` or `Fail`); lines skipped (blank or of no known kind) with nothing released make an
/// output before the next read (a v2 turn counts it); nothing is handed out nor fetched after the final fault; a `Wait` with
/// nothing in flight has a timer in the future, and handling each timer at its deadline makes progress within a few.
/// Then a well-behaved server answers every request: although the retry policy never gives up, the run ends (or,
/// live, keeps fetching).
pub fn driver(data: &[u8]) {
    use feedpump_core::driver::{Action, Driver, DriverOptions, Transport};
    use feedpump_core::LivePolicy;
    let mut s = Script(data);
    let max_line = 64usize << (s.byte() % 12);
    let max_held = 256usize << (s.byte() % 16);
    let options = DriverOptions {
        flush_ms: s.pick(&[0, 1, 10, 1_000, u64::MAX]),
        idle_ms: s.pick(&[0, 1, 1_000, 60_000, u64::MAX]),
        can_refresh: s.byte() & 1 == 1,
    };
    let policy = RetryPolicy {
        initial_ms: s.pick(&[0, 1, 100, u64::MAX]),
        max_ms: s.pick(&[0, 30_000, u64::MAX]),
        multiplier: s.pick(&[0.0, 1.0, 2.0, 1e300]),
        max_attempts: None,
        deadline_ms: None,
    };
    let live = match s.byte() % 4 {
        0 => Some(LivePolicy {
            min_ms: s.pick(&[0, 1, 250, u64::MAX]),
            max_ms: s.pick(&[0, 5_000, u64::MAX]),
            long_poll_param: None,
        }),
        _ => None,
    };
    let v2 = s.byte() % 3 == 0;
    let hint = s.pick(&[None, Some(0), Some(1), Some(3)]);
    let n = if v2 { 1 } else { 2 };
    let mut config = SessionConfig::new(URL, CursorSet::first(n));
    config.protocol = if v2 {
        feedpump_core::Protocol::V2(feedpump_core::request::V2Options {
            token: "t".into(),
            partition: 0,
            page_size_hint: hint,
            event_types: Default::default(),
        })
    } else {
        feedpump_core::Protocol::V1(feedpump_core::request::V1Options { page_size_hint: hint, ..Default::default() })
    };
    config.retry = Some(policy);
    config.max_line = max_line;
    config.max_held = max_held;
    config.live = live.clone();
    config.seed = u64::from(s.byte());
    let config_protocol = config.protocol.clone();
    let mut sh = Shell {
        d: Driver::new(config, options),
        now: 0,
        unfed: Vec::new(),
        fetching: false,
        delivered: CursorSet::first(n),
        failed: false,
        fetches: 0,
        expect: None,
        protocol: config_protocol,
        max_held,
        max_line,
        skipped: 0,
    };
    let mut serial = 0u64;
    let mut last = sh.drain();
    while !s.0.is_empty() {
        match s.byte() % 10 {
            0 | 1 => last = sh.drain(),
            2 => {
                let status = s.pick(&[200, 200, 204, 299, 401, 401, 429, 503, 500, 408, 301, 304, 0, 404, 100, 65535]);
                let retry_after = match s.byte() % 4 {
                    0 => None,
                    1 => Some(
                        s.pick(&["1", "0", "999999999", "18446744073709551615", " 3 ", "-1", "1e3", "", "\u{e9}"])
                            .to_string(),
                    ),
                    _ => Some(
                        String::from_utf8_lossy(s.bytes(usize::from(s.0.first().copied().unwrap_or(0) % 12)))
                            .into_owned(),
                    ),
                };
                sh.d.handle_status(status, retry_after.as_deref());
                sh.fetching = false;
            }
            3 | 4 => {
                // On `Feed` the shell owes the rest of its chunk: it passes it (or a prefix of it, or a new chunk).
                let chunk = if last == Action::Feed && s.byte() % 4 != 0 {
                    let rest = core::mem::take(&mut sh.unfed);
                    let n = if s.byte() % 4 == 0 { usize::from(s.byte()) } else { rest.len() };
                    rest[..n.min(rest.len())].to_vec()
                } else {
                    body_chunk(&mut s, &mut serial, v2)
                };
                let taken = sh.d.handle_chunk(sh.now, &chunk);
                assert!(taken <= chunk.len());
                sh.unfed = chunk[taken..].to_vec();
            }
            5 => sh.d.handle_eof(sh.now),
            6 => {
                use feedpump_core::driver::Fault;
                let kind = s.pick(&[Transport::Network, Transport::Cut, Transport::Caller, Transport::Aborted]);
                let offset = sh.d.session().body_position();
                if sh.d.handle_transport_error(sh.now, kind) {
                    let fault = match kind {
                        Transport::Network => Fault::Network,
                        Transport::Cut => Fault::Cut { offset },
                        Transport::Caller => Fault::Caller,
                        Transport::Aborted => Fault::Aborted,
                    };
                    sh.expect = Some(core::mem::discriminant(&fault));
                }
                sh.fetching = false;
            }
            7 => {
                sh.now = match s.byte() % 4 {
                    0 => sh.now.saturating_add(u64::from(s.byte())),
                    1 => sh.now.saturating_add(1 << (s.byte() % 64)),
                    2 => sh.now.max(u64::MAX - u64::from(s.byte())),
                    _ => sh.now.max(s.u64()),
                }
            }
            8 => {
                // A timer fired: early, at its deadline or late (the clock never goes back).
                let timer = sh.d.poll_timeout();
                if let Some(at) = timer {
                    let k = u64::from(s.byte());
                    sh.now = sh.now.max(match s.byte() % 3 {
                        0 => at.saturating_sub(k),
                        1 => at,
                        _ => at.saturating_add(k),
                    });
                }
                sh.d.handle_timeout(sh.now);
                // A timer while fetching is the watchdog's: the request is given up.
                sh.fetching &= timer.is_none();
            }
            _ => {
                // Every timer handled at its deadline: progress (a fetch, an end, a batch) within a few.
                let mut progressed = false;
                for _ in 0..4 {
                    let Some(at) = sh.d.poll_timeout() else { break };
                    sh.now = sh.now.max(at);
                    let before = sh.fetches;
                    sh.d.handle_timeout(sh.now);
                    sh.fetching = false;
                    last = sh.drain();
                    if sh.fetches > before || !matches!(last, Action::Read | Action::Wait) {
                        progressed = true;
                        break;
                    }
                }
                assert!(progressed || sh.d.poll_timeout().is_none(), "timers at their deadlines make no progress");
            }
        }
        assert!(sh.d.session().passed_cursor_bytes() <= 2 * (PASSED_CURSOR_BYTES + 2 * max_line));
    }
    // A well-behaved server from here on: every request is answered with an empty page at once.
    let fetches = sh.fetches;
    for _ in 0..400 {
        match sh.drain() {
            Action::Done | Action::Fail { .. } => return,
            Action::Fetch { .. } => {
                if live.is_some() && sh.fetches >= fetches + 8 {
                    return;
                }
                sh.d.handle_status(200, None);
                sh.fetching = false;
            }
            Action::Feed => {
                let rest = core::mem::take(&mut sh.unfed);
                let taken = sh.d.handle_chunk(sh.now, &rest);
                sh.unfed = rest[taken..].to_vec();
            }
            Action::Read => sh.d.handle_eof(sh.now),
            Action::Wait if sh.fetching => {
                sh.d.handle_status(200, None);
                sh.fetching = false;
            }
            Action::Wait => {
                let at = sh.d.poll_timeout().expect("a wait with nothing in flight and no timer: a hang");
                sh.now = sh.now.max(at);
                sh.d.handle_timeout(sh.now);
            }
            other => panic!("{other:?}"),
        }
    }
    panic!("a well-behaved server, and the feed neither ends nor keeps fetching");
}

/// A discovery list from the script: a few partitions with small ids (some repeated, some large), closed or not,
/// `startsAfterPartition` anywhere (cycles, unlisted or open parents), `cursorFromPartitions`.
fn discovery(s: &mut Script) -> Vec<feedpump_core::schedule::Partition> {
    use feedpump_core::schedule::Partition;
    let id = |b: u8| {
        if b >= 0xf8 {
            [32767, 65535, 1000, 64, 63, 200, 5000, 12][usize::from(b & 7)]
        } else {
            u16::from(b % 10)
        }
    };
    (0..s.byte() % 9)
        .map(|_| {
            let (a, b, c) = (s.byte(), s.byte(), s.byte());
            Partition {
                id: id(a),
                closed: b & 1 == 1,
                starts_after: (b & 6 != 0).then(|| id(c)),
                cursor_from: if b & 8 != 0 { vec![id(c ^ 3)] } else { Vec::new() },
            }
        })
        .collect()
}

/// Schedule: a script of discoveries (and 409 re-plans at any time), turns of any number of batches over pages that
/// advance or never end, turns that end caught up or not, calls out of order and time jumps. Never panics; every
/// wait is within 0..=2^31-1 ms; a partition read is listed, in the filter's scope, and not one finished (closed
/// and read to its end, still listed closed); a turn ends after [`PAGES_PER_TURN`] pages, or after
/// [`BATCHES_PER_TURN`] batches while another partition waits; no partition starves: one that is due (it has data,
/// or it became startable: no parent in scope, or its closed parent was read to its end) is read within as many
/// turns as there are partitions listed; caught up is reported only with no partition due, and the feed does not end
/// (nor fail as blocked) while one is; the first turn after a plan goes to the partition due (in list order) at the
/// schedule's start position plus the turns so far, modulo the partitions due.
///
/// [`PAGES_PER_TURN`]: feedpump_core::schedule::PAGES_PER_TURN
/// [`BATCHES_PER_TURN`]: feedpump_core::schedule::BATCHES_PER_TURN
pub fn schedule(data: &[u8]) {
    use feedpump_core::schedule::{partition_scope, Ids, Schedule, Step, BATCHES_PER_TURN, PAGES_PER_TURN};
    use std::collections::{BTreeMap, BTreeSet, VecDeque};
    let mut s = Script(data);
    let filter: Option<Vec<u16>> =
        (s.byte() & 1 == 1).then(|| (0..s.byte() % 4).map(|_| u16::from(s.byte() % 10)).collect());
    let live = match s.byte() % 3 {
        0 => Some(s.pick(&[0, 1, 250, feedpump_core::MAX_TIMER_MS, 1 << 31, u64::MAX])),
        _ => None,
    };
    // The start position from the script's length, not from a byte of it: the stored corpus's scripts keep meaning
    // what they did (spread over u32, so the wrap at u32::MAX comes up too).
    let start = (data.len() as u32).wrapping_mul(0x9e37_79b9);
    let mut sch = Schedule::new(filter.as_deref().map(Ids::new), live, start);
    // The partition the first turn after a plan goes to (its position).
    let mut first: Option<usize> = None;
    // The model: the list planned, its scope, the partitions finished (ids), those caught up while open (ids: live,
    // until when they rest; not live, u64::MAX), those due (index: the read count when they became due), those
    // resting (index, until when: in the order they rested, a re-plan putting them in list order), and the turn open
    // (index).
    let mut list = Vec::new();
    let mut scope = Vec::new();
    let mut finished: BTreeSet<u16> = BTreeSet::new();
    let mut caught: BTreeMap<u16, u64> = BTreeMap::new();
    let mut due: BTreeMap<usize, u64> = BTreeMap::new();
    let mut resting: VecDeque<(usize, u64)> = VecDeque::new();
    let mut turn: Option<usize> = None;
    let mut reads = 0u64;
    let mut now = 0u64;
    let mut page = 0u32;
    // The parent a partition waits for (its position), if in scope: its `startsAfterPartition`; without one, the
    // first of its `cursorFromPartitions` listed closed (not itself: it takes that ancestor's cursor).
    let parent_of = |list: &[feedpump_core::schedule::Partition], scope: &[bool], i: usize| {
        let at = |a: u16| list.iter().position(|e| e.id == a);
        match list[i].starts_after {
            Some(p) => at(p),
            None => list[i].cursor_from.iter().filter_map(|&a| at(a)).find(|&j| j != i && list[j].closed),
        }
        .filter(|&j| scope[j])
    };
    // Whether index `i` may start: no parent in scope, or a parent finished; and not blocked (an ancestor in scope
    // that is not closed, or a cycle: the document is illegal and those never start).
    let startable =
        |list: &[feedpump_core::schedule::Partition], scope: &[bool], finished: &BTreeSet<u16>, i: usize| {
            let parent = |i: usize| parent_of(list, scope, i);
            let (mut at, mut steps) = (i, 0);
            while let Some(p) = parent(at) {
                steps += 1;
                if !list[p].closed || steps > list.len() {
                    return false;
                }
                at = p;
            }
            parent(i).is_none_or(|p| finished.contains(&list[p].id))
        };
    while !s.0.is_empty() {
        match s.byte() % 6 {
            0 => {
                // A (re)discovery: a new list, or the same one again.
                let new = if s.byte() & 1 == 0 || list.is_empty() { discovery(&mut s) } else { list.clone() };
                let twice = new.iter().enumerate().any(|(i, p)| new[..i].iter().any(|q| q.id == p.id));
                match sch.plan(&new) {
                    Err(e) => {
                        assert!(twice, "{e}");
                        continue;
                    }
                    Ok(()) => assert!(!twice),
                }
                list = new;
                scope = match &filter {
                    Some(f) => partition_scope(&list, &Ids::new(f)),
                    None => vec![true; list.len()],
                };
                assert_eq!(scope.len(), list.len());
                if let Some(f) = &filter {
                    // The scope's rule: in the filter, or a `cursorFromPartitions` ancestor in it, or a
                    // `startsAfterPartition` parent in scope (listed) or in the filter (unlisted); nothing else.
                    for (i, p) in list.iter().enumerate() {
                        let parent = p.starts_after.map(|a| match list.iter().position(|q| q.id == a) {
                            Some(j) => scope[j],
                            None => f.contains(&a),
                        });
                        let why =
                            f.contains(&p.id) || p.cursor_from.iter().any(|a| f.contains(a)) || parent == Some(true);
                        assert_eq!(scope[i], why, "scope of {p:?} in {list:?}");
                    }
                }
                finished.retain(|id| list.iter().zip(&scope).any(|(p, &sc)| p.id == *id && p.closed && sc));
                due.clear();
                resting.clear();
                turn = None;
                let before = std::mem::take(&mut caught);
                for i in 0..list.len() {
                    if scope[i] && !finished.contains(&list[i].id) && startable(&list, &scope, &finished, i) {
                        // Caught up while open and still listed open: stays caught up (resting, live).
                        match before.get(&list[i].id).filter(|_| !list[i].closed) {
                            Some(&until) => {
                                caught.insert(list[i].id, until);
                                if live.is_some() {
                                    resting.push_back((i, until));
                                }
                            }
                            None => {
                                due.insert(i, reads);
                            }
                        }
                    }
                }
                let at = start.wrapping_add(reads as u32) as usize;
                first = due.keys().nth(at.checked_rem(due.len()).unwrap_or(0)).copied();
            }
            1 => {
                now = match s.byte() % 3 {
                    0 => now.saturating_add(u64::from(s.byte()) << (s.byte() % 40)),
                    1 => now.max(u64::MAX - u64::from(s.byte())),
                    _ => now,
                }
            }
            2 if turn.is_none() => {
                // Out of order: a batch with no turn, a turn end with no turn; neither changes anything.
                assert!(!sch.handle_batch(s.byte().into(), s.byte() & 1 == 0));
                sch.handle_turn_end(s.byte() & 1 == 0, now);
            }
            _ => {
                let Some(at) = turn else {
                    while let Some(&(i, until)) = resting.front() {
                        if until > now {
                            break;
                        }
                        resting.pop_front();
                        caught.remove(&list[i].id);
                        due.insert(i, reads);
                    }
                    let step = sch.poll(now);
                    match step {
                        Ok(Step::Read { id, index }) => {
                            assert!(index < list.len() && list[index].id == id && scope[index], "read {id} at {index}");
                            assert!(!finished.contains(&id), "read {id} again after it finished");
                            assert!(startable(&list, &scope, &finished, index), "{id} read before its parent finished");
                            if let Some(want) = first.take() {
                                assert_eq!(index, want, "the first turn of the plan");
                            }
                            for (&i, &since) in &due {
                                assert!(
                                    reads - since <= list.len() as u64,
                                    "{} starved: {} turns",
                                    list[i].id,
                                    reads - since
                                );
                            }
                            assert!(!caught.contains_key(&id), "read {id} while caught up");
                            due.remove(&index);
                            reads += 1;
                            turn = Some(index);
                        }
                        Ok(Step::Wait { ms, rediscover }) => {
                            assert!(due.is_empty(), "a wait while {due:?} are due");
                            assert!(live.is_some() && ms <= feedpump_core::MAX_TIMER_MS, "a wait of {ms} ms");
                            let _ = rediscover;
                            if s.byte() & 1 == 0 {
                                now = now.saturating_add(ms);
                            }
                        }
                        Ok(Step::CaughtUp) | Ok(Step::End) | Err(_) => {
                            assert!(due.is_empty(), "{step:?} while {due:?} are due");
                            assert!(live.is_some() || resting.is_empty());
                            if step == Ok(Step::End) {
                                assert!(live.is_none());
                            }
                        }
                    }
                    continue;
                };
                // The turn: batches over pages that advance (or one page that never ends), with events or not.
                let others = !due.is_empty() || !resting.is_empty();
                let (mut first, mut batches, mut over) = (None, 0u32, false);
                for _ in 0..1 + u32::from(s.byte()) {
                    let b = s.byte();
                    page = page.wrapping_add(u32::from(b & 1));
                    batches += 1;
                    let start = *first.get_or_insert(page);
                    over = sch.handle_batch(page, b & 2 == 0);
                    let must = page.wrapping_sub(start) >= PAGES_PER_TURN || (others && batches > BATCHES_PER_TURN);
                    if must || over {
                        assert!(over, "a turn past its pages or batches goes on");
                        break;
                    }
                }
                let caught_up = !over && s.byte() & 1 == 0;
                sch.handle_turn_end(caught_up, now);
                turn = None;
                if !caught_up {
                    due.insert(at, reads);
                } else if list[at].closed {
                    finished.insert(list[at].id);
                    for i in 0..list.len() {
                        let child = scope[i] && parent_of(&list, &scope, i) == Some(at);
                        if child && !finished.contains(&list[i].id) && startable(&list, &scope, &finished, i) {
                            due.insert(i, reads);
                        }
                    }
                } else {
                    // (The core takes at most MAX_TIMER_MS of an interval.)
                    let until = live.map_or(u64::MAX, |ms| now.saturating_add(ms.min(feedpump_core::MAX_TIMER_MS)));
                    // (0: the core's "not caught up"; only at time 0 with an interval of 0, due at once anyway.)
                    if until != 0 {
                        caught.insert(list[at].id, until);
                    }
                    if live.is_some() {
                        resting.push_back((at, until));
                    }
                }
            }
        }
    }
}
