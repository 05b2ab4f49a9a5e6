//! The core's type filter ([`feedpump_core::typefilter`]) on whole pages: generated bodies full of the shapes that make
//! a type hard to read without parsing, fed whole, byte by byte and at seeded random splits, against an oracle built on
//! serde_json that applies the wrapper's filter semantics to every event. Every checkpoint is released as without the
//! filter; every event is either delivered or counted as dropped; only events whose type needs a parse are delivered
//! beyond the ones the filter keeps.

#![allow(clippy::unwrap_used)] // a test panics on what it did not expect

use feedpump_core::batch::{TYPE_STRIDE, TYPE_UNKNOWN};
use feedpump_core::typefilter::{TypeFilter, TypePattern};
use feedpump_core::{CursorSet, Session, SessionConfig};
use serde_json::Value;

mod support;

const PARTITIONS: u32 = 3;
const TYPES: [&str; 9] = ["Order.Created", "Order.Paid", "order.created", "Refund", "é-type", "😀", "", "A\"B", "K"];

/// xorshift64*, so a failure names its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// The raw JSON of one event's `data`, in one of many shapes.
fn data(r: &mut Rng, i: u64) -> String {
    let t = TYPES[r.next(TYPES.len() as u64) as usize];
    let q = serde_json::to_string(t).unwrap();
    match r.next(12) {
        0 => format!(r#"{{"type":{q},"id":{i}}}"#),
        1 => format!(r#"{{"id":{i},"note":"é😀 \"type\": x","type":{q}}}"#),
        2 => format!(r#"{{"type":"Refund","id":{i},"type":{q}}}"#),
        3 => format!(r#"{{"t\u0079pe":{q},"id":{i}}}"#),
        4 => format!(r#"{{"type":"\u0052efund","id":{i}}}"#),
        5 => {
            serde_json::to_string(&serde_json::to_string(&serde_json::json!({ "type": t, "id": i })).unwrap()).unwrap()
        }
        6 => format!("[{q},{i}]"),
        7 => format!(r#"{{"type":{i}}}"#),
        8 => "null".into(),
        9 => format!(r#"{{ "id" : {i} , "type" : {q} , "x" : {{ "type" : "nested" }} }}"#),
        10 => format!(r#"{{"type":"\u212A","id":{i}}}"#), // the Kelvin sign, escaped
        _ => format!(r#"{{"id":{i},"type":"{}"}}"#, if r.next(2) == 0 { "\u{212A}" } else { "ORDER.PAID" }),
    }
}

/// A page body: events over 3 partitions with checkpoints now and then, and a checkpoint of each partition at the end
/// but for some seeds (then the events after the last checkpoint of a partition are dropped at the page's end).
fn body(seed: u64, count: u64) -> String {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut lines = Vec::new();
    for i in 0..count {
        lines.push(format!(r#"{{"partition":{},"data":{}}}"#, r.next(3), data(&mut r, i)));
        if r.next(6) == 0 {
            lines.push(format!(r#"{{"partition":{},"cursor":"c{i}"}}"#, r.next(3)));
        }
    }
    for p in 0..PARTITIONS {
        if seed % 4 != 0 || p != 1 {
            lines.push(format!(r#"{{"partition":{p},"cursor":"end{p}"}}"#));
        }
    }
    lines.join("\n") + "\n"
}

fn filters() -> Vec<TypeFilter> {
    use TypePattern::{Exact, Prefix};
    vec![
        TypeFilter { include: vec![Exact("Order.Created".into()), Exact("Refund".into())], ..TypeFilter::default() },
        TypeFilter { include: vec![Prefix("order.".into()), Exact("k".into())], exclude: vec![], ignore_case: true },
        TypeFilter {
            exclude: vec![Exact("Refund".into()), Exact("".into()), Exact("A\"B".into())],
            ..Default::default()
        },
        TypeFilter { include: vec![Exact("😀".into()), Exact("é-type".into())], ..TypeFilter::default() },
        TypeFilter { exclude: vec![Prefix("Order".into())], ..TypeFilter::default() },
        TypeFilter { include: vec![Exact("NoSuchType".into())], ..TypeFilter::default() },
        TypeFilter::default(),
    ]
}

/// The wrapper's `typeReader({ field: 'type' })` on the parsed `data`, then its `match`.
fn oracle_keeps(f: &TypeFilter, data: &Value) -> bool {
    let v = match data {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) if s.trim_start().starts_with('{') => v,
            _ => Value::Null,
        },
        v => v.clone(),
    };
    let Some(t) = v.get("type").and_then(Value::as_str) else {
        return f.include.is_empty();
    };
    // JavaScript's toLowerCase; Rust's agrees on these types (the Kelvin sign lowercases to "k" in both).
    let t = if f.ignore_case { t.to_lowercase() } else { t.to_string() };
    let test = |p: &TypePattern| match p {
        TypePattern::Exact(p) => &t == p,
        TypePattern::Prefix(p) => t.starts_with(p.as_str()),
    };
    (f.include.is_empty() || f.include.iter().any(test)) && !f.exclude.iter().any(test)
}

/// Per partition, what a run delivered: the events (`data`, and its type as the core read it: `None` when it left the
/// type to a parse), the dropped count and the checkpoints, with the end state.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Vec<(Value, Option<String>)>>,
    dropped: Vec<u64>,
    checkpoints: Vec<(u32, String)>,
    end: String,
}

fn run(body: &[u8], filter: Option<&TypeFilter>, splits: &[usize]) -> Outcome {
    run_with(body, filter, splits, false)
}

/// [`run`], with the batch text's escapes on or off (`SessionConfig::escape`).
fn run_with(body: &[u8], filter: Option<&TypeFilter>, splits: &[usize], escape: bool) -> Outcome {
    let mut config = SessionConfig::new("http://127.0.0.1:1/feed/v1", CursorSet::first(PARTITIONS));
    config.type_field = vec!["type".into()];
    config.type_filter = filter.cloned();
    config.escape = escape;
    let mut s = Session::new(config);
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    let mut out = Outcome {
        events: vec![Vec::new(); PARTITIONS as usize],
        dropped: vec![0; PARTITIONS as usize],
        checkpoints: Vec::new(),
        end: String::new(),
    };
    let drain = |s: &mut Session, out: &mut Outcome, end: bool| {
        while let Some(b) = if end { s.flush() } else { s.poll_batch() } {
            for (e, t) in support::events(&b).into_iter().zip(b.types.chunks(TYPE_STRIDE)) {
                let t = (t[0] != TYPE_UNKNOWN).then(|| support::text_at(&b, t[0], t[1]));
                out.events[e.partition as usize].push((serde_json::from_str(&e.data).unwrap(), t));
            }
            assert_eq!(b.types.len() / TYPE_STRIDE, b.len());
            for d in b.dropped.chunks(2) {
                assert!(d[1] > 0);
                out.dropped[d[0] as usize] += u64::from(d[1]);
            }
            out.checkpoints.extend(b.checkpoints.iter().map(|c| (c.partition, c.cursor.clone())));
        }
    };
    let mut start = 0;
    for &end in splits.iter().chain(std::iter::once(&body.len())) {
        s.handle_chunk(&body[start..end]).unwrap();
        drain(&mut s, &mut out, false);
        start = end;
    }
    out.end = match s.handle_eof() {
        Ok(()) => format!("ok {:?} {:?}", s.stats(), s.cursors().as_slice()),
        Err(e) => format!("error {e}"),
    };
    drain(&mut s, &mut out, true);
    out
}

#[test]
fn the_core_drops_what_the_filter_drops_however_split() {
    for seed in 1..=8u64 {
        let body = body(seed, 300);
        let bytes = body.as_bytes();
        let all = run(bytes, None, &[]);
        assert!(all.dropped.iter().all(|&d| d == 0));
        for f in filters() {
            let reference = run(bytes, Some(&f), &[]);
            assert_eq!(reference.checkpoints, all.checkpoints, "seed {seed}: every checkpoint, as without the filter");
            assert_eq!(reference.end, all.end, "seed {seed}: the same page stats and cursors");
            for p in 0..PARTITIONS as usize {
                let every = &all.events[p];
                let kept: Vec<&Value> = every.iter().map(|(d, _)| d).filter(|d| oracle_keeps(&f, d)).collect();
                let got = &reference.events[p];
                assert_eq!(got.len() as u64 + reference.dropped[p], every.len() as u64, "seed {seed} p{p}: counted");
                // Delivered: the kept events, in order, and among them only events the core cannot decide: left to a
                // parse, or with `ignore_case` a non-ASCII type (JavaScript's filter decides them).
                let mut kept_iter = kept.iter().peekable();
                for (d, t) in got {
                    if kept_iter.peek() == Some(&&d) {
                        kept_iter.next();
                    } else {
                        let undecided = t.as_ref().is_none_or(|t| f.ignore_case && !t.is_ascii());
                        assert!(undecided, "seed {seed} p{p} {f:?}: {d} delivered though the filter drops it");
                    }
                }
                assert!(kept_iter.next().is_none(), "seed {seed} p{p} {f:?}: a kept event is missing");
            }
            let mut r = Rng(seed);
            let mut plans = vec![(1..bytes.len()).collect::<Vec<_>>()];
            for _ in 0..10 {
                let mut points: Vec<usize> = (0..r.next(20)).map(|_| r.next(bytes.len() as u64) as usize).collect();
                points.sort_unstable();
                points.dedup();
                plans.push(points);
            }
            for splits in &plans {
                assert_eq!(run(bytes, Some(&f), splits), reference, "seed {seed} {f:?}: split at {splits:?}");
            }
            // With escapes (parsed mode), the same: the filter reads the wire's bytes, not the batch text. Only an
            // escaped event's type is left to a parse, as the wrapper then reads it from the parsed data.
            for splits in std::iter::once(&Vec::new()).chain(&plans[..3]) {
                let escaped = run_with(bytes, Some(&f), splits, true);
                let (e, r) = (&escaped, &reference);
                assert_eq!((&e.dropped, &e.checkpoints, &e.end), (&r.dropped, &r.checkpoints, &r.end), "seed {seed}");
                for (got, want) in escaped.events.iter().flatten().zip(reference.events.iter().flatten()) {
                    assert_eq!(got.0, want.0, "seed {seed} {f:?}: escaped, the same values");
                    let escaped_type = got.1.is_none() && !want.0.to_string().is_ascii();
                    assert!(got.1 == want.1 || escaped_type, "seed {seed} {f:?}: {} typed {:?}", want.0, got.1);
                }
                assert_eq!(
                    escaped.events.iter().map(Vec::len).sum::<usize>(),
                    r.events.iter().map(Vec::len).sum::<usize>()
                );
            }
        }
    }
}

/// A filter that drops every event still hands out every checkpoint, in batches of bounded size while the body
/// streams (not all at the page's end).
#[test]
fn checkpoints_of_dropped_events_are_handed_out_in_bounded_batches() {
    let mut config = SessionConfig::new("http://127.0.0.1:1/feed/v1", CursorSet::first(1));
    config.type_field = vec!["type".into()];
    config.type_filter = Some(TypeFilter { include: vec![TypePattern::Exact("none".into())], ..TypeFilter::default() });
    let mut s = Session::new(config);
    s.poll_request(0).unwrap();
    s.handle_status(200).unwrap();
    let (mut batches, mut checkpoints, mut dropped) = (0, 0, 0);
    for i in 0..20_000 {
        let cursor = format!("{i:0>20}");
        s.handle_chunk(
            format!("{{\"partition\":0,\"data\":{{\"type\":\"x\"}}}}\n{{\"partition\":0,\"cursor\":\"{cursor}\"}}\n")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(s.stats().released, i + 1);
        if let Some(b) = s.poll_batch() {
            assert!(b.is_empty() && b.text == b"[]");
            let bytes: usize = b.checkpoints.iter().map(|c| c.cursor.len()).sum();
            assert!(bytes <= 64 * 1024 + 20, "{bytes}");
            batches += 1;
            checkpoints += b.checkpoints.len();
            dropped += b.dropped.chunks(2).map(|d| d[1]).sum::<u32>();
        }
    }
    assert!(batches >= 6, "{batches} batches before the page's end");
    s.handle_eof().unwrap();
    let last = s.flush().unwrap();
    assert_eq!(checkpoints + last.checkpoints.len(), 20_000);
    assert_eq!(dropped + last.dropped.chunks(2).map(|d| d[1]).sum::<u32>(), 20_000);
    assert_eq!(s.cursors().cursor(0), Some(format!("{:0>20}", 19_999).as_str()));
}

/// Invalid UTF-8 in an event the filter drops is never decoded, as its JSON is never parsed: the event is only
/// counted. Anywhere else (a kept event, a checkpoint, an event without a filter, a line that is also malformed) it
/// is still `invalid-utf8`; a dropped event of a partition that was not asked for is still `bad-partition`.
#[test]
fn invalid_utf8_in_a_dropped_event_is_not_decoded_and_everywhere_else_it_fails() {
    let keep_a = TypeFilter { include: vec![TypePattern::Exact("a".into())], ..TypeFilter::default() };
    let page = |filter: Option<&TypeFilter>, lines: &[&[u8]]| {
        let mut config = SessionConfig::new("http://127.0.0.1:1/feed/v1", CursorSet::first(2));
        config.type_field = vec!["type".into()];
        config.type_filter = filter.cloned();
        let mut s = Session::new(config);
        s.poll_request(0).unwrap();
        s.handle_status(200).unwrap();
        let body: Vec<u8> = lines.iter().flat_map(|l| [*l, b"\n"].concat()).collect();
        let (mut events, mut dropped) = (0, 0);
        let result = s.handle_chunk(&body).and_then(|()| s.handle_eof());
        while let Some(b) = s.flush() {
            events += b.len();
            dropped += b.dropped.chunks(2).map(|d| d[1]).sum::<u32>();
        }
        (result.map_err(|e| (e.kind, e.line)), events, dropped)
    };
    let dropped_bad: &[u8] = b"{\"partition\":0,\"data\":{\"type\":\"b\",\"note\":\"\xff\xfe\"}}";
    let kept_bad: &[u8] = b"{\"partition\":0,\"data\":{\"type\":\"a\",\"note\":\"\xff\"}}";
    let kept: &[u8] = b"{\"partition\":0,\"data\":{\"type\":\"a\"}}";
    let checkpoint: &[u8] = b"{\"partition\":0,\"cursor\":\"c1\"}";
    let ok = |events, dropped| (Ok(()), events, dropped);
    let failed = |kind, line| (Err((kind, line)), 0, 0);
    use feedpump_core::ErrorKind::{BadLine, BadPartition, InvalidUtf8};
    assert_eq!(page(Some(&keep_a), &[kept, dropped_bad, checkpoint]), ok(1, 1));
    assert_eq!(page(Some(&keep_a), &[kept, kept_bad, checkpoint]), failed(InvalidUtf8, 2));
    assert_eq!(page(None, &[kept, dropped_bad, checkpoint]), failed(InvalidUtf8, 2));
    assert_eq!(page(Some(&keep_a), &[kept, b"{\"partition\":0,\"cursor\":\"\xff\"}"]), failed(InvalidUtf8, 2));
    assert_eq!(
        page(Some(&keep_a), &[kept, b"{\"partition\":0,\"cursor\":\"c\",\"x\":\"\xff\"}"]),
        failed(InvalidUtf8, 2)
    );
    // Malformed as well as invalid UTF-8 (an unterminated envelope; a wrong partition): invalid UTF-8 first, as
    // before; malformed alone is a bad line.
    assert_eq!(page(Some(&keep_a), &[b"{\"partition\":0,\"data\":\"\xff\""]), failed(InvalidUtf8, 1));
    assert_eq!(page(Some(&keep_a), &[b"{\"partition\":0,\"data\":\"x\""]), failed(BadLine, 1));
    for t in ["a", "b"] {
        let line = [format!("{{\"partition\":5,\"data\":{{\"type\":\"{t}\",\"n\":\"").as_bytes(), b"\xff\"}}"].concat();
        assert_eq!(page(Some(&keep_a), &[&line]), failed(InvalidUtf8, 1), "type {t}");
    }
    assert_eq!(page(Some(&keep_a), &[b"{\"partition\":5,\"data\":{\"type\":\"b\"}}"]), failed(BadPartition, 1));
}
