//! Incremental NDJSON framing: chunks in, whole lines out.
//!
//! The contract (tokio-util's `LinesCodec` and httparse's `Status::Partial` are the models):
//! - chunks may split anywhere, also inside a UTF-8 sequence; "need more bytes" is a normal state;
//! - only complete lines come out, `\n` being the only separator (ZEH clients stopped splitting on `\r`, U+0085 and
//!   U+2028; see PROTOCOL.md 1.3); surrounding whitespace (so a CRLF's `\r`) is trimmed and blank lines are skipped;
//! - a line longer than the maximum is an error as soon as it is known to be too long, so memory stays bounded;
//! - at end of body, a partial last line is an error ([`ErrorKind::TruncatedBody`]): it never ends a page silently,
//!   which is the bug of the Go ZEH client.

use crate::blocks::newline;
use crate::error::{ErrorKind, ProtocolError};
use alloc::vec::Vec;

/// Default maximum line length: 16 MiB.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024 * 1024;

/// One complete, trimmed, non-blank line.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The line's bytes without the newline and surrounding whitespace. Valid UTF-8 is *not* checked here.
    pub bytes: &'a [u8],
    /// 1-based line number in the body (blank lines count).
    pub number: u64,
    /// Byte offset of the line's first non-blank byte in the body.
    pub offset: u64,
    /// Whether every byte of the line is ASCII (so it is valid UTF-8), found by the search for its newline.
    pub ascii: bool,
}

/// Splits a byte stream into lines. See the module docs for the contract.
#[derive(Debug)]
pub struct LineDecoder {
    /// Bytes of a line that started in an earlier chunk and has not ended yet. Lines that start and end inside one
    /// chunk are never copied here.
    partial: Vec<u8>,
    max_line: usize,
    /// Lines completed so far (blank ones included), i.e. the number of the last line handed out.
    lines: u64,
    /// Body offset of the first byte not yet part of a completed line (the start of `partial`).
    offset: u64,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_ws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

impl Default for LineDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl LineDecoder {
    /// A decoder with the default maximum line length.
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_LINE)
    }

    /// A decoder that rejects lines longer than `max_line` bytes (the newline not counted).
    pub fn with_max_line(max_line: usize) -> Self {
        LineDecoder { partial: Vec::new(), max_line: max_line.max(1), lines: 0, offset: 0 }
    }

    /// Forgets everything: the next byte is the start of a new body.
    pub fn reset(&mut self) {
        self.partial.clear();
        self.lines = 0;
        self.offset = 0;
    }

    /// Lines of the body completed so far, blank ones included.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes of the body consumed so far (including any partial line held).
    pub fn position(&self) -> u64 {
        self.offset + self.partial.len() as u64
    }

    fn too_long(&self) -> ProtocolError {
        ProtocolError::new(ErrorKind::LineTooLong, "line is longer than the maximum line length")
            .at(self.lines + 1, self.offset)
    }

    /// Feeds one chunk; calls `on_line` for each complete non-blank line, in order. Stops at the first error, from
    /// the decoder or from `on_line`.
    pub fn handle_chunk<F>(&mut self, chunk: &[u8], mut on_line: F) -> Result<(), ProtocolError>
    where
        F: FnMut(Line<'_>) -> Result<(), ProtocolError>,
    {
        let mut rest = chunk;
        if !self.partial.is_empty() {
            let (i, _) = newline(rest);
            if self.partial.len() + i > self.max_line {
                return Err(self.too_long());
            }
            self.partial.extend_from_slice(&rest[..i]);
            if i == rest.len() {
                return Ok(());
            }
            rest = &rest[i + 1..];
            let partial = core::mem::take(&mut self.partial);
            // One more pass over a line that came in pieces (one per chunk at most).
            let result = self.emit(&partial, partial.is_ascii(), &mut on_line);
            // Keep the allocation for the next partial line.
            self.partial = partial;
            self.partial.clear();
            result?;
        }
        loop {
            let (i, ascii) = newline(rest);
            if i > self.max_line {
                return Err(self.too_long());
            }
            if i == rest.len() {
                self.partial.extend_from_slice(rest);
                return Ok(());
            }
            self.emit(&rest[..i], ascii, &mut on_line)?;
            rest = &rest[i + 1..];
        }
    }

    /// Emits one raw line (without its `\n`) and moves the position past it.
    fn emit<F>(&mut self, raw: &[u8], ascii: bool, on_line: &mut F) -> Result<(), ProtocolError>
    where
        F: FnMut(Line<'_>) -> Result<(), ProtocolError>,
    {
        self.lines += 1;
        let bytes = trim(raw);
        let lead = bytes.as_ptr() as usize - raw.as_ptr() as usize;
        let offset = self.offset + lead as u64;
        self.offset += raw.len() as u64 + 1;
        if bytes.is_empty() {
            return Ok(());
        }
        on_line(Line { bytes, number: self.lines, offset, ascii })
    }

    /// Ends the body. A leftover partial line (anything but whitespace after the last `\n`) is an error.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        let leftover = !trim(&self.partial).is_empty();
        let err = ProtocolError::new(ErrorKind::TruncatedBody, "body ended inside a line (no final newline)")
            .at(self.lines + 1, self.offset);
        self.partial.clear();
        if leftover {
            Err(err)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn the_default_maximum_is_16_mib_and_the_position_counts_partial_lines() {
        let mut d = LineDecoder::new();
        let mut long = vec![b'x'; DEFAULT_MAX_LINE];
        let mut seen = 0;
        d.handle_chunk(&long[..10], |_| Ok(())).unwrap();
        assert_eq!(d.position(), 10, "a partial line counts as consumed");
        d.handle_chunk(&long[10..], |_| Ok(())).unwrap();
        d.handle_chunk(b"\n", |l| {
            seen = l.bytes.len();
            Ok(())
        })
        .unwrap();
        assert_eq!((seen, d.position()), (16 * 1024 * 1024, 16 * 1024 * 1024 + 1), "a 16 MiB line is accepted");
        long.push(b'x');
        assert_eq!(d.handle_chunk(&long, |_| Ok(())).unwrap_err().kind, ErrorKind::LineTooLong, "one byte more is not");
    }

    #[test]
    fn the_limit_is_exact_on_every_path() {
        let max = 8;
        let ok = |chunks: &[&[u8]]| {
            let mut d = LineDecoder::with_max_line(max);
            chunks.iter().try_for_each(|c| d.handle_chunk(c, |_| Ok(()))).map_err(|e| e.kind)
        };
        // Whole in one chunk, left over at a chunk's end, and grown across chunks with and without a newline.
        assert_eq!(ok(&[b"12345678\n"]), Ok(()));
        assert_eq!(ok(&[b"123456789\n"]), Err(ErrorKind::LineTooLong));
        assert_eq!(ok(&[b"12345678", b"\n"]), Ok(()));
        assert_eq!(ok(&[b"123456789"]), Err(ErrorKind::LineTooLong));
        assert_eq!(ok(&[b"1", b"2345678", b"\n"]), Ok(()));
        assert_eq!(ok(&[b"1", b"23456789"]), Err(ErrorKind::LineTooLong), "1 + 8 bytes, no newline yet");
        assert_eq!(ok(&[b"1", b"23456789\n"]), Err(ErrorKind::LineTooLong));
        assert_eq!(ok(&[b"12", b"3456789\n"]), Err(ErrorKind::LineTooLong));
    }

    #[test]
    fn reset_starts_a_new_body() {
        let mut d = LineDecoder::with_max_line(64);
        let mut lines = vec![];
        d.handle_chunk(b"a\nb\nc", |l| {
            lines.push((l.number, l.offset));
            Ok(())
        })
        .unwrap();
        assert_eq!((lines.clone(), d.position()), (vec![(1, 0), (2, 2)], 5));
        d.reset();
        assert_eq!(d.position(), 0);
        d.handle_chunk(b" d\n", |l| {
            lines.push((l.number, l.offset));
            Ok(())
        })
        .unwrap();
        assert_eq!(lines[2], (1, 1), "numbers and offsets restart, and the partial line is gone");
        assert!(d.finish().is_ok());
    }
}
