#!/usr/bin/env bash
# Builds the npm package into dist/: the wasm crate (release, simd128), its --target web bindings, wasm-opt -Oz from
# the pinned npm binaryen (never Debian's v108: its output fails to load, see TOOLCHAIN.md), then the TypeScript
# wrapper and the CLI. Output: dist/*.js + .d.ts, dist/entrypoints/*.js, dist/cli/*.js, dist/wasm/feedpump{.js,.d.ts,_bg.wasm}.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '== build: %s\n' "$*"; }

step "cargo build (wasm32, release; simd128 from .cargo/config.toml)"
cargo build -p feedpump --target wasm32-unknown-unknown --release

step "wasm-bindgen --target web"
rm -rf js/src/wasm
wasm-bindgen --target web --out-dir js/src/wasm --out-name feedpump \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/feedpump.wasm"

# The features rustc enables for wasm32-unknown-unknown (1.82+: bulk memory, sign-ext, mutable globals, non-trapping
# float-to-int, multivalue, reference types) plus simd128 from RUSTFLAGS. wasm-opt must be told about each one it
# meets or it refuses the module; none of them is added by wasm-opt itself.
step "wasm-opt -Oz"
node_modules/.bin/wasm-opt -Oz \
  --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-reference-types --enable-mutable-globals --enable-multivalue \
  -o js/src/wasm/feedpump_bg.wasm js/src/wasm/feedpump_bg.wasm

step "tsc -p js"
rm -rf dist
node_modules/.bin/tsc -p js

step "tsc -p js/tsconfig.cli.json (the CLI, against the package's own types)"
node_modules/.bin/tsc -p js/tsconfig.cli.json
chmod +x dist/cli/main.js

step "copy the bindings to dist/wasm"
mkdir -p dist/wasm
cp js/src/wasm/feedpump.js js/src/wasm/feedpump.d.ts js/src/wasm/feedpump_bg.wasm dist/wasm/

ls -l dist/wasm/feedpump_bg.wasm
