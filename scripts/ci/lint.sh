#!/usr/bin/env bash
# Clippy for the host and for wasm32, and a check that the core stays sans-IO: built for wasm32 it must import
# nothing from the host (quinn's no-`env` check).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --target wasm32-unknown-unknown -- -D warnings
# The shipped build: without the default `std` feature, the `no_std` module (scripts/build.sh).
cargo clippy -p feedpump --lib --target wasm32-unknown-unknown --no-default-features -- -D warnings
# The fuzz crate (its own workspace; core-test runs its replay tests).
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings
cargo tree -p feedpump-core -e normal --prefix none | grep -Eq '^(wasm-bindgen|js-sys|web-sys) ' \
  && { echo "feedpump-core must not depend on wasm-bindgen/js-sys/web-sys"; exit 1; }
echo "feedpump-core depends on: $(cargo tree -p feedpump-core -e normal --prefix none --depth 1 | tr '\n' ' ')"
