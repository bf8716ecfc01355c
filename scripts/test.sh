#!/usr/bin/env bash
# The project's test command: builds the host binary, runs deno lint,
# deno fmt --check and the JSDoc examples, then every *_test.ts under deno
# test and bun test (end-to-end tests under bun test only), then the
# benchmark smoke test (tests/bench/smoke.ts) as its own step, and ends with
# `tests: N passed, N failed`.
# The work is done by scripts/test.ts (see there); this wrapper only finds
# the repository and the project's own Bun.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bun="$root/node_modules/.bin/bun"
if [ ! -x "$bun" ]; then
  echo "Cannot run the tests: node_modules/.bin/bun is missing (run npm ci first)" >&2
  echo "tests: 0 passed, 1 failed"
  exit 1
fi
exec "$bun" "$root/scripts/test.ts" "$@"
