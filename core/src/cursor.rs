//! Cursors: the latest checkpoint per partition.
//!
//! ZEH SPEC: "The client persists this cursor; passing it back as `cursor<partition>` resumes right after everything
//! that preceded it." The set only moves on a checkpoint line; events never move it.

use crate::error::{ErrorKind, ProtocolError};
use alloc::string::String;
use alloc::vec::Vec;

/// Start from the beginning of time.
pub const FIRST: &str = "_first";
/// Start "at an arbitrary point around now".
pub const LAST: &str = "_last";

/// The latest cursor of every partition `0..n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorSet {
    cursors: Vec<String>,
}

impl CursorSet {
    /// `n` partitions, all starting at [`FIRST`].
    pub fn first(n: u32) -> Self {
        CursorSet { cursors: (0..n).map(|_| String::from(FIRST)).collect() }
    }

    /// From one cursor per partition. Errors when empty or when a cursor is `""` (servers ignore `cursorN=`).
    pub fn new(cursors: Vec<String>) -> Result<Self, ProtocolError> {
        if cursors.is_empty() || cursors.len() > u32::MAX as usize {
            return Err(ProtocolError::new(ErrorKind::BadOptions, "partition count must be at least 1"));
        }
        if let Some(p) = cursors.iter().position(String::is_empty) {
            return Err(ProtocolError::new(ErrorKind::BadOptions, "a start cursor is empty").in_partition(p as u32));
        }
        Ok(CursorSet { cursors })
    }

    /// Number of partitions.
    pub fn len(&self) -> u32 {
        self.cursors.len() as u32
    }

    /// Whether the set has no partition (only `first(0)` makes one; [`CursorSet::new`] refuses it).
    pub fn is_empty(&self) -> bool {
        self.cursors.is_empty()
    }

    /// The cursor of `partition`.
    pub fn cursor(&self, partition: u32) -> Option<&str> {
        self.cursors.get(partition as usize).map(String::as_str)
    }

    /// All cursors, by partition.
    pub fn as_slice(&self) -> &[String] {
        &self.cursors
    }

    /// Records a checkpoint.
    pub fn handle_checkpoint(&mut self, partition: u32, cursor: &str) {
        if let Some(c) = self.cursors.get_mut(partition as usize) {
            c.clear();
            c.push_str(cursor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn sets_have_partitions_and_move_on_checkpoints() {
        assert!(CursorSet::first(0).is_empty() && !CursorSet::first(2).is_empty());
        assert!(CursorSet::new(vec![]).is_err() && CursorSet::new(vec![String::new()]).is_err());
        let mut c = CursorSet::new(vec!["a".into(), "b".into()]).unwrap();
        c.handle_checkpoint(1, "b2");
        c.handle_checkpoint(7, "ignored");
        assert_eq!((c.len(), c.cursor(0), c.cursor(1), c.cursor(2)), (2, Some("a"), Some("b2"), None));
    }
}
