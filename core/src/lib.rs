//! # feedpump-core
//!
//! The sans-IO core of feedpump, a client of ZeroEventHub (FeedAPI v1) and FeedAPI v2 feeds. **Bytes in; lines,
//! batches, cursor decisions and requests out.** No sockets, no clock, no JavaScript: the npm package's TypeScript shell
//! does the I/O and drives this core through the thin synchronous wasm crate `feedpump`, the way quinn drives
//! quinn-proto. It builds and tests natively and never names wasm-bindgen.
//!
//! Data flows one way: body chunks → [`framing::LineDecoder`] (whole lines, any split) → [`line::classify_v1`] /
//! [`line::classify_v2`] (event or checkpoint, without a JSON tree) → [`batch::BatchBuilder`] (committable batches of
//! one JSON text each, without the events a [`typefilter::TypeFilter`] drops) and [`cursor::CursorSet`] (latest checkpoint per partition) → [`request::v1_url`] /
//! [`request::v2_url`] (the next page). A FeedAPI v2 session reads one partition; which one, and for how long, is
//! [`schedule::Schedule`]'s; the discovery request is the TypeScript wrapper's (js/src/source/).
//! [`session::Session`] runs the page loop; [`driver::Driver`] adds every decision of the shell around it (when to
//! hand out a batch, when a body is stalled, what a failure is, the 401 resent once), so the shell only moves bytes
//! and timers.
//!
//! ```
//! use feedpump_core::{CursorSet, Session, SessionConfig};
//! let mut session = Session::new(SessionConfig::new("http://127.0.0.1:8400/feed/v1", CursorSet::first(2)));
//! let url = session.poll_request(0).unwrap();
//! assert!(url.ends_with("?n=2&cursor0=_first&cursor1=_first"));
//! session.handle_status(200).unwrap();
//! session.handle_chunk(b"{\"partition\": 1, \"data\": \"e1\"}\n{\"cursor\": \"c1\", \"partition\": 1}\n").unwrap();
//! session.handle_eof().unwrap();
//! let batch = session.poll_batch().unwrap();
//! assert_eq!(batch.text, br#"["e1"]"#); // each event's data (after its headers, if any)
//! assert_eq!(batch.meta[2], 1); // its partition (see `Batch::meta`)
//! assert_eq!(batch.checkpoints[0].cursor, "c1");
//! ```
#![no_std]

extern crate alloc;

pub mod batch;
#[doc(hidden)]
pub mod blocks;
pub mod cursor;
pub mod driver;
pub mod error;
pub mod failover;
pub mod fault;
pub mod framing;
pub mod line;
mod page;
pub mod passed;
mod position;
pub mod request;
pub mod retry;
pub mod schedule;
pub mod session;
pub mod typefield;
pub mod typefilter;

pub use batch::{Batch, Checkpoint};
pub use cursor::CursorSet;
pub use error::{ErrorKind, ProtocolError};
pub use retry::{Decision, Failure, RetryPolicy, MAX_TIMER_MS};
pub use session::{LivePolicy, Protocol, Session, SessionConfig, Signal, DEFAULT_MAX_HELD};
