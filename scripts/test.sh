#!/usr/bin/env bash
# Set up and run the whole test suite: unit, HTTP API, real tensorboard process, manual snippets
# (real MCT PTQ), browser tests (Playwright + Debian chromium) and the frontend bundle check.
#   scripts/test.sh [extra pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
export npm_config_cache="$ROOT/.cache/npm"
# A test that would be skipped because MCT, torch, Playwright or chromium is missing fails instead (tests/conftest.py).
export TB_XQUANT_REQUIRE_ALL=1
# The committed bundle must be what the sources build to: no changed, deleted or new (untracked) file in static/.
(cd frontend && npm run build --silent)
STALE="$(git status --porcelain -- tb_xquant_plugin/static)"
if [ -n "$STALE" ]; then
  echo "tb_xquant_plugin/static differs from what 'npm run build' in frontend/ produces:" >&2
  echo "$STALE" >&2
  echo "rebuild (cd frontend && npm run build) and commit tb_xquant_plugin/static with the sources." >&2
  exit 1
fi
.venv/bin/python -m pytest -q tests "$@"
