//! # feedpump (wasm transport)
//!
//! The thin wasm-bindgen shell over [`feedpump_core`]: it binds the global `fetch` (never `window`, so it runs in
//! browsers, workers, Node and workerd), reads the response `ReadableStream` chunk by chunk into the core (whose `Driver` makes every decision), and hands
//! JavaScript one committable batch at a time. Async iteration, cursor stores and entry points live in the TypeScript
//! wrapper (`js/`), which is the public API; this crate's exports are internal.
//!
//! ```no_run
//! // From JavaScript, through the wrapper:
//! //   const feed = openFeed('http://127.0.0.1:8400/feed/v1', { partitionCount: 4 });
//! //   for await (const batch of feed.batches()) { /* batch.events, batch.checkpoints */ }
//! ```

mod backoff;
mod body;
mod convert;
mod error;
mod fetch;
mod options;
mod page;
#[cfg(feature = "probe-sync")]
mod probe;
mod reader;
mod ts;
mod wait;

pub use backoff::{reader_defaults, Backoff};
pub use reader::FeedReader;
