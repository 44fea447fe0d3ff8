#!/usr/bin/env bash
# Set up, generate the demo logdir (real MCT runs, ~1-2 min on a CPU) and start TensorBoard on it.
#   scripts/demo.sh [PORT]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# The demo needs no browser: only the tests install Debian's chromium.
TB_XQUANT_SKIP_BROWSER=1 "$ROOT/scripts/setup.sh"
PORT="${1:-6006}"
if [ ! -f demo_logs/.complete ]; then
  .venv/bin/python -m demo.generate --out demo_logs
  touch demo_logs/.complete
fi
echo
echo "XQuant tab: http://localhost:${PORT}/#xquant"
exec .venv/bin/tensorboard --logdir demo_logs --port "$PORT" --bind_all
