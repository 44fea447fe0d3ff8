#!/usr/bin/env bash
# Set up and run the whole test suite: unit, HTTP API, real tensorboard process, manual snippets
# (real MCT PTQ), browser tests (Playwright + Debian chromium) and the frontend bundle check.
#   scripts/test.sh [extra pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
export npm_config_cache="$ROOT/.cache/npm"
# The committed bundle must be what the sources build to.
(cd frontend && npm run build --silent) && git diff --exit-code -- tb_xquant_plugin/static
.venv/bin/python -m pytest -q tests "$@"
