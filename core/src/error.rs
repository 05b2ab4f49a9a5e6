//! Protocol errors: a small `Copy` type with static messages and a stable code.
//!
//! Every error says *what* went wrong (`kind` + `detail`) and *where* (`line` and `offset` in the page body, and the
//! partition when one is known). Nothing here allocates, so errors are cheap to build on the hot path and safe to
//! carry across the wasm boundary.

use core::fmt;

/// What went wrong. Each kind maps to one stable kebab-case [`ErrorKind::code`] that the JS wrapper exposes as
/// `FeedError.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A line is not a JSON object of the shape the protocol allows.
    BadLine,
    /// A line's `partition` is missing, not a non-negative integer, or not below the partition count.
    BadPartition,
    /// A line's `cursor` is not a string, or is empty.
    BadCursor,
    /// A line is longer than the configured maximum.
    LineTooLong,
    /// A line is not valid UTF-8.
    InvalidUtf8,
    /// The body ended inside a line (no terminating newline), or the connection was cut.
    TruncatedBody,
    /// A page brought events but no checkpoint, so the feed cannot move forward.
    NoProgress,
    /// A checkpoint moved a partition back to a cursor it had already passed (the page's start cursor or an earlier
    /// checkpoint), with or without events between: resuming from it would deliver events again.
    CursorRegressed,
    /// The server answered with a status that is not a success.
    HttpStatus,
    /// The caller's options are invalid.
    BadOptions,
}

impl ErrorKind {
    /// The stable code, as JavaScript sees it in `FeedError.code`.
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::BadLine => "bad-line",
            ErrorKind::BadPartition => "bad-partition",
            ErrorKind::BadCursor => "bad-cursor",
            ErrorKind::LineTooLong => "line-too-long",
            ErrorKind::InvalidUtf8 => "invalid-utf8",
            ErrorKind::TruncatedBody => "truncated-body",
            ErrorKind::NoProgress => "no-progress",
            ErrorKind::CursorRegressed => "cursor-regressed",
            ErrorKind::HttpStatus => "http-status",
            ErrorKind::BadOptions => "bad-options",
        }
    }
}

/// A protocol error with its location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// A short static explanation, e.g. `"partition is not below n"`.
    pub detail: &'static str,
    /// 1-based line number in the page body (0 when not tied to a line).
    pub line: u64,
    /// Byte offset in the page body where the line (or the fault) starts.
    pub offset: u64,
    /// The partition the line named, when known.
    pub partition: Option<u32>,
}

impl ProtocolError {
    /// An error not yet tied to a place; [`ProtocolError::at`] adds one.
    pub const fn new(kind: ErrorKind, detail: &'static str) -> Self {
        ProtocolError { kind, detail, line: 0, offset: 0, partition: None }
    }

    /// The same error, located at `line` / `offset`.
    pub const fn at(mut self, line: u64, offset: u64) -> Self {
        self.line = line;
        self.offset = offset;
        self
    }

    /// The same error, naming a partition.
    pub const fn in_partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// The stable code of the kind.
    pub const fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.detail)?;
        if self.line > 0 {
            write!(f, " (line {}, byte {}", self.line, self.offset)?;
            if let Some(p) = self.partition {
                write!(f, ", partition {p}")?;
            }
            f.write_str(")")?;
        } else if let Some(p) = self.partition {
            write!(f, " (partition {p})")?;
        }
        Ok(())
    }
}

impl core::error::Error for ProtocolError {}
