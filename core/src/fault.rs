//! What ends a page: a failure the shell saw ([`Transport`]), the fault the driver reports ([`Fault`]), and how the
//! retry policy sees each fault ([`Fault::failure`]). The driver ([`crate::driver`]) maps one to the other; the shell
//! turns a fault into its error, keeping its own error value where the fault is one it reported.

use crate::error::{ErrorKind, ProtocolError};
use crate::retry::Failure;
use alloc::string::String;

/// What went wrong with a page, as the shell turns it into an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The body broke the protocol (found by the core).
    Protocol(ProtocolError),
    /// A non-2xx status, with the start of its body (lossy UTF-8, trimmed, at most [`crate::driver::SNIPPET_BYTES`] bytes read).
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        snippet: String,
    },
    /// The response brought no bytes for `idle_ms` (no head after the request, or no more of the body after `offset`
    /// bytes).
    Stalled {
        /// The idle limit, ms.
        idle_ms: u64,
        /// Body bytes read before it went quiet.
        offset: u64,
    },
    /// The connection ended before the body was complete, after `offset` bytes ([`Transport::Cut`]).
    Cut {
        /// Body bytes read before the cut.
        offset: u64,
    },
    /// [`Transport::Network`]: the shell's error is the error.
    Network,
    /// [`Transport::Caller`]: the shell's error is the error.
    Caller,
    /// [`Transport::Aborted`].
    Aborted,
    /// The session can go no further (a state a correct shell never reaches).
    Stuck,
}

impl Fault {
    /// How the retry policy sees this fault.
    pub fn failure(&self) -> Failure {
        match self {
            Fault::Protocol(e) if e.kind == ErrorKind::TruncatedBody => Failure::Truncated,
            Fault::Status { status, .. } => Failure::Status(*status),
            Fault::Stalled { .. } => Failure::Stalled,
            Fault::Cut { .. } => Failure::Truncated,
            Fault::Network => Failure::Network,
            Fault::Aborted => Failure::Aborted,
            Fault::Protocol(_) | Fault::Caller | Fault::Stuck => Failure::Protocol,
        }
    }
}

/// A failure the shell saw; the shell keeps its own error value to show with the [`Fault`] it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The request failed before a response.
    Network,
    /// A body read failed (the connection was cut).
    Cut,
    /// The caller's code or objects failed: their hook threw, their `fetch` gave no response, their body is not a
    /// stream or a chunk is not bytes, the URL is invalid. Retrying gives the same.
    Caller,
    /// The reader was aborted.
    Aborted,
}
