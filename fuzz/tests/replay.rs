//! Replays every file of `corpus/<target>/` (and the core's fixtures) through the fuzz invariants, on stable.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<_> = std::fs::read_dir(root.join("corpus").join(target))
        .map(|d| d.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    inputs.extend(
        std::fs::read_dir(root.join("../core/tests/fixtures"))
            .expect("fixtures")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "ndjson")),
    );
    for path in &inputs {
        let data = std::fs::read(path).expect("read");
        check(&data);
        for line in data.split(|&b| b == b'\n') {
            check(line);
        }
    }
    inputs.len()
}

#[test]
fn corpus_framing() {
    assert!(replay("framing", feedpump_fuzz::framing) >= 15);
}

#[test]
fn corpus_line() {
    assert!(replay("line", feedpump_fuzz::line) >= 15);
}

#[test]
fn corpus_session() {
    assert!(replay("session", feedpump_fuzz::session) >= 15);
}

#[test]
fn corpus_driver() {
    assert!(replay("driver", feedpump_fuzz::driver) >= 15);
}

#[test]
fn corpus_schedule() {
    assert!(replay("schedule", feedpump_fuzz::schedule) >= 15);
}
