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
    let filtered = data.len() % 3 == 0;
    if filtered {
        use feedpump_core::typefilter::{TypeFilter, TypePattern};
        config.type_field = vec!["type".into()];
        config.type_filter = Some(TypeFilter {
            include: vec![TypePattern::Prefix("a".into()), TypePattern::Exact(String::new())],
            exclude: vec![TypePattern::Exact("ab".into())],
            ignore_case: data.len() % 2 == 0,
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
