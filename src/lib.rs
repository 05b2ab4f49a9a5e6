//! # feedpump (wasm core)
//!
//! The synchronous wasm-bindgen surface over [`feedpump_core`]: [`Core`] wraps the core's `Driver`, which makes every
//! decision of a reader, [`Backoff`] its retry policy and URL choice, and [`Schedule`] its FeedAPI v2 schedule (which
//! partition a feed reads next). The I/O shell that drives them (`fetch`, the body reader, timers, the caller's
//! callbacks) is TypeScript (js/src/reader/, js/src/source/), as are async iteration, cursor stores and entry points
//! (`js/`, the public API); this crate's exports are internal. Nothing here is async, and nothing
//! here calls out to JavaScript: every method returns before any caller code can run.
//!
//! ```no_run
//! // From JavaScript, through the wrapper:
//! //   const feed = openFeed('http://127.0.0.1:8400/feed/v1', { partitionCount: 4 });
//! //   for await (const batch of feed.batches()) { /* batch.events, batch.checkpoints */ }
//! ```

// The shipped module is `no_std`: built without the default `std` feature (Cargo.toml, scripts/build.sh).
#![cfg_attr(all(target_arch = "wasm32", not(feature = "std")), no_std)]
extern crate alloc;

mod backoff;
mod convert;
mod core;
mod discovery;
mod error;
mod options;
mod schedule;

pub use crate::core::{code, Core};
pub use backoff::{reader_defaults, Backoff};
pub use convert::Decoder;
pub use discovery::{discovery_error, parse_discovery};
pub use error::caller_error;
pub use options::option_error;
pub use schedule::{partition_scope, Schedule};

/// The module's allocator: Talc, which grows the wasm memory as it needs, like the default dlmalloc, in a smaller
/// module and at the same speed (Cargo.toml says how much). Single-threaded: the module is built without atomics.
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// A panic (a bug: the core's inputs are checked, its errors are values) traps at once, as std's `panic = "abort"`
/// does, without std's panic machinery and the message formatting it keeps in the module (0.55 KB brotli). The
/// shell sees the same `WebAssembly.RuntimeError` either way.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &::core::panic::PanicInfo) -> ! {
    ::core::arch::wasm32::unreachable()
}
