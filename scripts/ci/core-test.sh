#!/usr/bin/env bash
# Native tests of the workspace: the core's unit, fixture and doc tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test --workspace
# The fuzz corpus (and the fixtures) replayed through the fuzz invariants, on stable.
cargo test --manifest-path fuzz/Cargo.toml
