//! The transport suite under Node.
#![cfg(target_arch = "wasm32")]
mod common;
