//! Every fixture must give the same batches, checkpoints and errors however the body is split: whole, byte by byte,
//! in 2 KiB chunks (as Go's server sends them, splitting UTF-8 sequences) and at seeded random points. The result is
//! compared with a reviewed golden transcript (`NAME.expected`; `BLESS=1` rewrites them) and, for bodies that parse,
//! with an independent oracle built on serde_json from the raw lines.

#![allow(clippy::unwrap_used)] // a test panics on what it did not expect

use feedpump_core::{CursorSet, Session, SessionConfig};
use serde_json::Value;
use std::fmt::Write;
use std::path::{Path, PathBuf};

mod support;

const PARTITIONS: u32 = 3;

fn config(name: &str, escape: bool) -> SessionConfig {
    let mut c = SessionConfig::new("http://127.0.0.1:1/feed/v1", CursorSet::first(PARTITIONS));
    c.escape = escape;
    if name.starts_with("overlong") {
        c.max_line = 256;
    }
    c
}

/// Runs one page through a session, fed at the given split points; returns a transcript of everything it produced.
fn run(name: &str, body: &[u8], splits: &[usize]) -> String {
    run_with(name, body, splits, false)
}

/// [`run`], with the batch text's escapes on or off (`SessionConfig::escape`).
fn run_with(name: &str, body: &[u8], splits: &[usize], escape: bool) -> String {
    let mut s = Session::new(config(name, escape));
    s.poll_request(0).expect("first request");
    s.handle_status(200).expect("status");
    let mut out = String::new();
    let drain = |s: &mut Session, out: &mut String, end: bool| {
        while let Some(b) = if end { s.flush() } else { s.poll_batch() } {
            writeln!(out, "batch ascii={}", b.text.is_ascii()).unwrap();
            for e in support::events(&b) {
                // Printed as the event object JavaScript makes of it.
                writeln!(out, "  event p={} line={} offset={} {}", e.partition, e.line, e.offset, support::object(&e))
                    .unwrap();
            }
            for c in &b.checkpoints {
                writeln!(out, "  checkpoint {} {:?}", c.partition, c.cursor).unwrap();
            }
        }
    };
    let mut start = 0;
    for &end in splits.iter().chain(std::iter::once(&body.len())) {
        if let Err(e) = s.handle_chunk(&body[start..end]) {
            drain(&mut s, &mut out, true);
            writeln!(out, "error {} line={} offset={} partition={:?}: {}", e.code(), e.line, e.offset, e.partition, e)
                .unwrap();
            return out;
        }
        drain(&mut s, &mut out, false);
        start = end;
    }
    match s.handle_eof() {
        Ok(()) => {
            drain(&mut s, &mut out, true);
            let state = if s.is_caught_up() { "caught-up" } else { "next-page" };
            writeln!(out, "end {state} cursors={:?}", s.cursors().as_slice()).unwrap();
        }
        Err(e) => {
            drain(&mut s, &mut out, true);
            writeln!(out, "error {} line={} offset={} partition={:?}: {}", e.code(), e.line, e.offset, e.partition, e)
                .unwrap();
        }
    }
    out
}

/// A small deterministic generator (xorshift64*), so random splits are the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn split_plans(len: usize) -> Vec<(String, Vec<usize>)> {
    let mut plans = vec![
        ("whole".to_string(), vec![]),
        ("bytes".to_string(), (1..len).collect()),
        ("2KiB".to_string(), (1..).map(|k| k * 2048).take_while(|&k| k < len).collect()),
    ];
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut points: Vec<usize> =
            (0..(rng.next() % 12)).map(|_| (rng.next() % (len.max(1) as u64)) as usize).collect();
        points.sort_unstable();
        points.dedup();
        plans.push((format!("seed{seed}"), points));
    }
    plans
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    v.sort();
    assert!(v.len() >= 15, "fixtures missing from {dir:?}");
    v
}

/// The oracle: events (partition, data) and checkpoints per the documented rule, from serde_json, with the
/// committable rule applied (events of a partition released at its checkpoint, the rest dropped at page end).
/// Events as (partition, data) and checkpoints as (partition, cursor).
type Outcome = (Vec<(u64, Value)>, Vec<(u64, String)>);

fn oracle(body: &[u8]) -> Option<Outcome> {
    let text = std::str::from_utf8(body).ok()?;
    let mut held: Vec<Vec<(u64, Value)>> = vec![Vec::new(); PARTITIONS as usize];
    let (mut events, mut checkpoints) = (Vec::new(), Vec::new());
    for line in text.split('\n') {
        let line = line.trim_matches([' ', '\t', '\r']);
        if line.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).ok()?;
        let p = v.get("partition").and_then(Value::as_u64);
        match (v.get("cursor").filter(|c| !c.is_null()), v.get("data")) {
            (Some(c), None) => {
                let p = p?;
                events.append(&mut held[p as usize]);
                checkpoints.push((p, c.as_str()?.to_string()));
            }
            (None, Some(d)) => held[p? as usize].push((p?, d.clone())),
            _ => {}
        }
    }
    Some((events, checkpoints))
}

fn events_of(transcript: &str) -> Outcome {
    let (mut events, mut checkpoints) = (Vec::new(), Vec::new());
    for line in transcript.lines() {
        if let Some(rest) = line.strip_prefix("  event ") {
            let json = &rest[rest.find('{').unwrap()..];
            let v: Value = serde_json::from_str(json).unwrap();
            events.push((v["partition"].as_u64().unwrap(), v["data"].clone()));
        } else if let Some(rest) = line.strip_prefix("  checkpoint ") {
            let (p, c) = rest.split_once(' ').unwrap();
            checkpoints.push((p.parse().unwrap(), serde_json::from_str::<String>(c).unwrap()));
        }
    }
    (events, checkpoints)
}

#[test]
fn fixtures_give_the_same_result_however_split() {
    let bless = std::env::var_os("BLESS").is_some();
    for path in fixtures() {
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let body = std::fs::read(&path).unwrap();
        let reference = run(&name, &body, &[]);
        for (plan, splits) in split_plans(body.len()) {
            let got = run(&name, &body, &splits);
            assert_eq!(got, reference, "{name}: split plan {plan} {splits:?} differs from whole");
        }
        let golden = path.with_extension("expected");
        if bless {
            std::fs::write(&golden, &reference).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|_| panic!("{golden:?} missing (BLESS=1)"));
        assert_eq!(reference, expected, "{name}: transcript differs from {golden:?}");
        if !reference.contains("\nerror ") && !reference.starts_with("error ") {
            let (events, checkpoints) = oracle(&body).unwrap_or_else(|| panic!("{name}: oracle cannot parse"));
            assert_eq!(events_of(&reference), (events, checkpoints), "{name}: differs from the serde_json oracle");
        }
    }
}

/// Every event object of a transcript (partition, headers, data), parsed: escapes and spacing do not count.
fn objects_of(transcript: &str) -> Vec<Value> {
    let event = |rest: &str| serde_json::from_str(&rest[rest.find('{').unwrap()..]).unwrap();
    transcript.lines().filter_map(|l| l.strip_prefix("  event ")).map(event).collect()
}

/// The transcript without its events and batch lines: checkpoints, and the error or end of the page.
fn rest_of(transcript: &str) -> Vec<&str> {
    transcript.lines().filter(|l| !l.starts_with("  event ") && !l.starts_with("batch ")).collect()
}

/// Parsed mode writes the characters outside ASCII as `\u` escapes (`SessionConfig::escape`; while such events are
/// few): every fixture, whole and however split, gives the verbatim run's events value for value (headers too), its
/// checkpoints and its error or end; each event is escaped (ASCII) or as it came.
#[test]
fn escaped_text_gives_the_same_events_however_split() {
    let mut escaped_events = 0;
    for path in fixtures() {
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let body = std::fs::read(&path).unwrap();
        let verbatim = run(&name, &body, &[]);
        for (plan, splits) in std::iter::once((String::from("whole"), Vec::new())).chain(split_plans(body.len())) {
            let got = run_with(&name, &body, &splits, true);
            assert_eq!(objects_of(&got), objects_of(&verbatim), "{name}: {plan} {splits:?}: the events' values");
            assert_eq!(rest_of(&got), rest_of(&verbatim), "{name}: {plan}: checkpoints, error or end");
            for line in got.lines().filter(|l| l.starts_with("  event ")) {
                assert!(line.is_ascii() || verbatim.contains(line), "{name}: {plan}: {line}");
                escaped_events += usize::from(line.contains("\\u") && !verbatim.contains(line));
            }
        }
    }
    assert!(escaped_events > 0, "some fixture has text outside ASCII to escape");
}
