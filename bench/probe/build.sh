#!/usr/bin/env bash
# Bench only: builds the shell probe's wasm (feature `probe-sync`, see src/probe.rs) into bench/probe/out/
# (gitignored), the same way scripts/build.sh builds the shipped one (release, simd128, --target web, wasm-opt -Oz),
# in a target dir of its own so the shipped build's artifacts are never replaced by a probe build.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}/probe"
cargo build -p feedpump --features probe-sync --target wasm32-unknown-unknown --release --target-dir "$target"
rm -rf bench/probe/out
wasm-bindgen --target web --encode-into always --out-dir bench/probe/out --out-name feedpump \
  "$target/wasm32-unknown-unknown/release/feedpump.wasm"
node_modules/.bin/wasm-opt -Oz \
  --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-reference-types --enable-mutable-globals --enable-multivalue \
  -o bench/probe/out/feedpump_bg.wasm bench/probe/out/feedpump_bg.wasm
ls -l bench/probe/out/feedpump_bg.wasm
