#!/usr/bin/env bash
# .venv-keras/: MCT 2.6.1 for Keras (extra [keras]: tensorflow 2.15.1, scikit-learn) and the plugin (editable), for
# the Keras demo scenarios and tests/test_keras.py.  A venv of its own: tensorflow 2.15.1 pins tensorboard < 2.16
# while the viewer's .venv has tensorboard 2.21, and MCT 2.6.1 turns its Keras path off for tensorflow >= 2.16.
# The viewer's .venv stays free of TensorFlow (docs/keras.md).  About 2 GB; a few minutes the first time.
# TB_XQUANT_SKIP_KERAS=1 leaves it out (the Keras scenarios and tests are then skipped, or fail under
# TB_XQUANT_REQUIRE_ALL=1).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ "${TB_XQUANT_SKIP_KERAS:-0}" = "1" ]; then
  exit 0
fi
export PIP_CACHE_DIR="$ROOT/.cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1
PY="${PYTHON:-python3}"
if [ ! -x .venv-keras/bin/python ]; then
  "$PY" -m venv .venv-keras
fi
STAMP=.venv-keras/.tb-xquant-installed
if [ ! -f "$STAMP" ] || [ setup.py -nt "$STAMP" ]; then
  .venv-keras/bin/pip install -q --upgrade pip
  .venv-keras/bin/pip install -q -e ".[keras]"
  touch "$STAMP"
fi
