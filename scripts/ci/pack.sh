#!/usr/bin/env bash
# The packed tarball, installed into an empty project, imported in Node, bundled for browsers, run in workerd.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 600 npm run --silent test:pack
