#!/usr/bin/env bash
# Resilience: 1,000+ faults injected by a proxy in front of the reference server, the bad-input catalogue and the
# security checks, all over real HTTP on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 900 node --test --test-concurrency=1 --test-timeout=600000 --test-force-exit tests/fault/
