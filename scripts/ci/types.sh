#!/usr/bin/env bash
# Typecheck fixtures: small consumer projects (tests/types/*/) compiled with `tsc --noEmit` and without skipLibCheck
# against the built dist/*.d.ts, each with the compiler options its kind of project uses: Node (lib ES2023, nodenext,
# @types/node), a Cloudflare Worker (@cloudflare/workers-types, no DOM lib), a browser app (DOM lib, bundler
# resolution), bundler resolution without any runtime types (and the registry's type tests). Each runs with the
# current TypeScript (the repo's) and the oldest supported one (5.4, pinned in tests/types/package.json with the runtimes'
# type packages, installed here by npm ci: its own lock, so its `tsc` never shadows the repo's). Then the code users copy
# (tests/types/docs-examples.mjs): every TSDoc @example of js/src and every ```js/```ts block of README.md and docs/*.md,
# type-checked against dist/*.d.ts, with both TypeScripts (a few seconds each). Needs dist/ (build step).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f dist/index.d.ts ] || { echo "dist/ is missing: run scripts/build.sh first"; exit 1; }
# The fixtures import 'feedpump' as a user does: through a node_modules link to this package (its package.json
# "exports", "types" conditions first); the other packages (@types/node, workers-types) come from the repo's node_modules.
lock=tests/types/package-lock.json
if ! cmp -s "$lock" tests/types/node_modules/.package-lock.installed 2>/dev/null; then
  npm ci --prefix tests/types --no-audit --no-fund
  cp "$lock" tests/types/node_modules/.package-lock.installed
fi
ln -sfn ../../.. tests/types/node_modules/feedpump
fail=0
for tsc in node_modules/typescript/bin/tsc tests/types/node_modules/typescript/bin/tsc; do
  version=$("$tsc" --version)
  for dir in tests/types/*/; do
    [ -f "$dir/tsconfig.json" ] || continue
    name=$(basename "$dir")
    if out=$("$tsc" -p "$dir" 2>&1); then
      printf 'ok     %-8s %s\n' "$name" "$version"
    else
      printf 'FAILED %-8s %s\n%s\n' "$name" "$version" "$out"
      fail=1
    fi
  done
done
node tests/types/docs-examples.mjs || fail=1
node tests/types/docs-examples.mjs tests/types/node_modules/typescript || fail=1
exit $fail
