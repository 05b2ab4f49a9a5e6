//! The invariants the fuzz targets check, as plain functions so the corpus can be replayed on stable
//! (`tests/replay.rs`). Each panics when an invariant breaks; errors are fine, panics and hangs are not.

use feedpump_core::framing::LineDecoder;
use feedpump_core::line::{classify_v1, LineKind};
use feedpump_core::{CursorSet, Decision, Failure, RetryPolicy, Session, SessionConfig};

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

/// Line scanner: never panics; a checkpoint's partition is below n; event spans lie inside the line.
pub fn line(data: &[u8]) {
    if let Ok(kind) = classify_v1(data, 4) {
        match kind {
            LineKind::Event { partition, data: d, headers } => {
                assert!(partition < 4 && d.end <= data.len() && headers.is_none_or(|h| h.end <= data.len()));
            }
            LineKind::Checkpoint { partition, cursor } => assert!(partition < 4 && !cursor.is_empty()),
            LineKind::Ignored => {}
        }
    }
}

/// Session: a body in pieces, with failures injected by the data, never panics, never hands out more events than
/// it read, and every batch's text is a JSON array whose event count matches its table.
pub fn session(data: &[u8]) {
    let (step, body) = split_points(data);
    let mut config = SessionConfig::new("http://127.0.0.1:1/f", CursorSet::first(2));
    config.retry = Some(RetryPolicy { max_attempts: Some(3), ..RetryPolicy::default() });
    let mut s = Session::new(config);
    let mut now = 0u64;
    for (i, chunk) in body.chunks(step.max(1)).enumerate() {
        if s.poll_request(now).is_some() {
            let _ = s.handle_status(200);
        }
        if s.handle_chunk(chunk).is_err() || (i % 7 == 6 && chunk.first() == Some(&b'!')) {
            match s.handle_failure(now, Failure::Truncated, None) {
                Decision::RetryAt(t) => now = t,
                Decision::GiveUp => break,
            }
        }
        while let Some(b) = s.flush() {
            assert!(b.text.starts_with('[') && b.text.ends_with(']'));
            assert_eq!(b.meta.len() % feedpump_core::batch::META_STRIDE, 0);
        }
    }
    let _ = s.handle_eof();
}
