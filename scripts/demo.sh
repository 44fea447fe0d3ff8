#!/usr/bin/env bash
# Set up, generate the demo logdir (real MCT runs, ~1-2 min on a CPU) and start TensorBoard on it.
#   scripts/demo.sh [PORT]
# TensorBoard listens on 127.0.0.1 only (this machine).  To share it on purpose, name the address to listen on:
#   TB_XQUANT_HOST=0.0.0.0 scripts/demo.sh      (every interface: anyone who can reach this machine sees the logs)
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
HOST="${TB_XQUANT_HOST:-127.0.0.1}"
echo
if [ "$HOST" = "127.0.0.1" ] || [ "$HOST" = "localhost" ]; then
  echo "XQuant tab: http://localhost:${PORT}/#xquant (this machine only; TB_XQUANT_HOST=0.0.0.0 shares it)"
else
  echo "XQuant tab: http://${HOST}:${PORT}/#xquant (listening on ${HOST}: reachable from other machines)"
fi
exec .venv/bin/tensorboard --logdir demo_logs --host "$HOST" --port "$PORT"
