#!/usr/bin/env bash
# Set up everything tb-xquant's demo and tests need, on a fresh machine with Python 3.11 and Node 20:
#   .venv/ with the plugin (editable) + MCT 2.6.1 / torch / torchvision (extra [mct]), the ONNX quantizers (extra
#   [onnx]) + test tools (extra [test]); .venv-keras/ (TensorFlow 2.15) and .venv-ppq/ (esp-ppq) beside it;
#   Debian's chromium for the browser tests, and the frontend's npm packages (from package-lock.json).
# Caches live inside the clone (.cache/), so nothing outside the project folder is written but the apt package.
# TB_XQUANT_SKIP_BROWSER=1 leaves chromium out (scripts/demo.sh sets it: only the browser tests need it).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PIP_CACHE_DIR="$ROOT/.cache/pip" npm_config_cache="$ROOT/.cache/npm" PIP_DISABLE_PIP_VERSION_CHECK=1
PY="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
STAMP=.venv/.tb-xquant-installed
if [ ! -f "$STAMP" ] || [ setup.py -nt "$STAMP" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[mct,onnx,test]"
  touch "$STAMP"
fi
"$ROOT/scripts/setup_keras.sh"  # .venv-keras: MCT 2.6.1 for Keras on tensorflow 2.15.1 (docs/keras.md)
"$ROOT/scripts/setup_ppq.sh"    # .venv-ppq: esp-ppq 1.3.12 (onnx 1.19), torch borrowed from .venv (docs/onnx.md)

if [ "${TB_XQUANT_SKIP_BROWSER:-0}" != "1" ] && [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [ ! -d frontend/node_modules ] || [ frontend/package-lock.json -nt frontend/node_modules ]; then
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
fi
