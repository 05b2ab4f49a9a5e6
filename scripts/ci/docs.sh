#!/usr/bin/env bash
# The API reference, generated from the TSDoc of the public API (typedoc.json: js/src/index.ts → docs/api/). Any
# typedoc warning fails the step (treatWarningsAsErrors): a broken {@link}, an undocumented public member, a type the
# public API uses but does not export. Needs the wasm bindings' types (js/src/wasm/, made by the build step).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f js/src/wasm/feedpump.d.ts ] || { echo "js/src/wasm/ is missing: run scripts/build.sh first"; exit 1; }
rm -rf docs/api
timeout 300 npm run --silent docs
test -f docs/api/index.html
echo "API reference: docs/api/index.html ($(find docs/api -name '*.html' | wc -l) pages)"
