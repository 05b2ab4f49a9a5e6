//! The cursors a partition has passed, remembered (boundedly) to refuse a checkpoint that moves back.
//!
//! A checkpoint that names a cursor the partition already passed would resume before events already delivered, so
//! the session refuses it (`cursor-regressed`). Cursors are opaque, so "passed" can only be known by remembering
//! them, and a never-ending page with a checkpoint after every event would make that memory grow without bound. So
//! only these are remembered, exactly (no hashing false positives, so a legitimate page is never refused):
//!
//! - the cursor the current page started from, always (moving back to it repeats the whole page, and a page that
//!   ends where it started while it had events would be fetched again forever);
//! - the latest [`PASSED_CURSORS`] cursors of the partition (checkpoints and page starts), across pages, so that
//!   cursors cycling over a few pages are caught too, as long as they fit in [`PASSED_CURSOR_BYTES`] (the newest one
//!   is kept whatever its size).
//!
//! A move back to an older cursor than these is not detected. The memory per partition is at most
//! [`PASSED_CURSOR_BYTES`] plus two cursors (each bounded by the maximum line length).

use alloc::collections::VecDeque;
use alloc::string::String;

/// How many of a partition's latest checkpoints are remembered.
pub const PASSED_CURSORS: usize = 64;

/// Most bytes of remembered checkpoints per partition (beyond the newest one); older ones are forgotten first.
pub const PASSED_CURSOR_BYTES: usize = 16 * 1024;

/// One partition's remembered cursors. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct PassedCursors {
    /// The cursor the current page started from.
    start: String,
    /// The latest checkpoints, oldest first, each with its hash so that a lookup compares strings only on a hash
    /// match (a linear scan of 64 integers beats a tree of strings here, and allocates nothing).
    recent: VecDeque<(u64, String)>,
    /// Bytes of the cursors in `recent`.
    bytes: usize,
}

/// FNV-1a, 64 bit: only a filter before the exact comparison, so its quality bounds speed, not correctness.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl PassedCursors {
    /// A page starts from `cursor` (remembered among the latest cursors too, unless it is the newest already).
    pub fn start_page(&mut self, cursor: &str) {
        self.start.clear();
        self.start.push_str(cursor);
        if self.recent.back().map_or(true, |(_, c)| c != cursor) {
            self.push(cursor);
        }
    }

    /// The cursor the current page started from.
    pub fn start(&self) -> &str {
        &self.start
    }

    /// Whether `cursor` is the page's start cursor or one of the remembered checkpoints.
    pub fn contains(&self, cursor: &str) -> bool {
        let h = hash(cursor);
        self.start == cursor || self.recent.iter().any(|(k, c)| *k == h && c == cursor)
    }

    /// Remembers a checkpoint, forgetting the oldest ones beyond the bounds (reusing a forgotten one's buffer).
    pub fn push(&mut self, cursor: &str) {
        let mut slot = if self.recent.len() >= PASSED_CURSORS { self.pop_oldest() } else { None }.unwrap_or_default();
        slot.clear();
        slot.push_str(cursor);
        self.bytes += slot.len();
        self.recent.push_back((hash(cursor), slot));
        while self.bytes > PASSED_CURSOR_BYTES && self.recent.len() > 1 {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) -> Option<String> {
        let (_, c) = self.recent.pop_front()?;
        self.bytes -= c.len();
        Some(c)
    }

    /// Bytes of cursor text remembered.
    pub fn bytes(&self) -> usize {
        self.start.len() + self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn remembers_the_start_and_the_latest_checkpoints_within_bounds() {
        let mut p = PassedCursors::default();
        p.start_page("s");
        assert!(p.contains("s") && !p.contains("c0"));
        for i in 0..1000 {
            p.push(&format!("c{i}"));
        }
        assert!(p.contains("s"), "the start is always remembered");
        assert!(p.contains("c999") && p.contains(&format!("c{}", 1000 - PASSED_CURSORS)));
        assert!(!p.contains(&format!("c{}", 999 - PASSED_CURSORS)), "older ones are forgotten");
        assert_eq!(p.recent.len(), PASSED_CURSORS);
        p.start_page("c999");
        assert!(!p.contains("s") && p.contains("c998"), "checkpoints are remembered across pages");
        assert_eq!(p.recent.len(), PASSED_CURSORS, "a start that is the newest checkpoint is not remembered twice");
        assert!(p.contains(&format!("c{}", 1000 - PASSED_CURSORS)), "so it pushes out nothing");
        p.start_page("x");
        p.start_page("y");
        assert!(p.contains("x") && p.contains("y") && p.contains("c999"), "earlier starts are remembered");
    }

    #[test]
    fn the_documented_bounds_hold() {
        // docs/delivery.md: the latest 64 cursors, up to 16 KiB of cursor text.
        assert_eq!((PASSED_CURSORS, PASSED_CURSOR_BYTES), (64, 16 * 1024));
        let mut p = PassedCursors::default();
        let cursor = |i: usize| format!("{i:0>250}");
        for i in 0..64 {
            p.push(&cursor(i));
        }
        assert!((0..64).all(|i| p.contains(&cursor(i))), "64 cursors of 250 bytes fit");
        assert_eq!(p.bytes(), 64 * 250);
    }

    #[test]
    fn big_cursors_are_bounded_by_bytes_but_the_newest_stays() {
        let mut p = PassedCursors::default();
        let big = |c: &str| c.repeat(PASSED_CURSOR_BYTES / 2);
        p.push(&big("a"));
        p.push(&big("b"));
        assert!(p.contains(&big("a")) && p.bytes() == PASSED_CURSOR_BYTES);
        p.push(&big("c"));
        assert!(!p.contains(&big("a")) && p.contains(&big("b")) && p.contains(&big("c")));
        let huge = "h".repeat(PASSED_CURSOR_BYTES * 2);
        p.push(&huge);
        assert!(p.contains(&huge) && !p.contains(&big("c")));
        assert_eq!(p.bytes(), huge.len());
    }
}
