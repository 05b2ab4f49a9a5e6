//! The transport suite in a dedicated worker: proves nothing depends on `window`.
#![cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);
mod common;
