#!/usr/bin/env bash
# Publishing from a fresh clone of the committed tree: `npm publish --dry-run` (its prepack hook builds dist/ from
# scratch), the tarball's file list against scripts/ci/package-files.txt, `cargo publish --dry-run -p feedpump-core`,
# then `cargo package -p feedpump-core -p feedpump`, which packages both and verifies feedpump against the packaged
# core through cargo's local overlay of the workspace (feedpump-core 0.1.0 is not on crates.io yet, so
# `cargo package -p feedpump` alone cannot resolve it until the core is published).
# For speed the clone shares this checkout's node_modules (installed by `npm ci` from the same lock) and has a cargo
# target directory of its own, kept between runs under this checkout's target/ (sharing target/ itself would leave
# the clone's build in target/wasm32-unknown-unknown/release/feedpump.wasm, which cargo does not copy again for this
# checkout's next build if its own fingerprints are unchanged: a stale module in the next dist/). Everything else
# (sources, generated bindings, dist/) comes from the clone alone. Uncommitted changes are not in the clone: commit
# first.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q --no-local "$root" "$tmp/feedpump"
cd "$tmp/feedpump"
ln -s "$root/node_modules" node_modules
export CARGO_TARGET_DIR="$root/target/publish"
[ ! -e dist ] || { echo "the clone already has dist/: it must be built by prepack"; exit 1; }

printf '== publish: npm publish --dry-run (prepack builds dist/)\n'
timeout 600 npm publish --dry-run --ignore-scripts=false 2>&1 | tail -n 25
test -f dist/wasm/feedpump_bg.wasm || { echo "prepack did not build dist/"; exit 1; }

printf '== publish: the tarball file list against scripts/ci/package-files.txt\n'
npm pack --dry-run --json --ignore-scripts | node -e '
  const fs = require("node:fs");
  const [packed] = JSON.parse(fs.readFileSync(0, "utf8"));
  const got = packed.files.map((f) => f.path).sort();
  const want = fs.readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l && !l.startsWith("#")).sort();
  const extra = got.filter((f) => !want.includes(f)), missing = want.filter((f) => !got.includes(f));
  if (extra.length || missing.length) {
    console.error(`tarball differs from the expected list:\n  not expected: ${extra.join(" ") || "-"}\n  missing: ${missing.join(" ") || "-"}`);
    process.exit(1);
  }
  console.log(`${got.length} files as expected, ${packed.size} bytes packed, ${packed.unpackedSize} unpacked`);
' "$root/scripts/ci/package-files.txt"

printf '== publish: cargo publish --dry-run -p feedpump-core\n'
timeout 600 cargo publish --dry-run -p feedpump-core
printf '== publish: cargo package -p feedpump-core -p feedpump (feedpump verified against the packaged core)\n'
# The verification builds feedpump against the freshly packaged core from cargo's overlay registry. Cargo takes a
# registry crate of a name and version it has built before as unchanged, so an earlier run's build of feedpump-core
# 0.1.0 (older code) in the shared target directory would be linked instead: drop the core's artifacts first.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/feedpump-core-* \
  "$CARGO_TARGET_DIR"/debug/.fingerprint/feedpump-core-* "$CARGO_TARGET_DIR"/debug/deps/*feedpump_core-*
timeout 600 cargo package -p feedpump-core -p feedpump
