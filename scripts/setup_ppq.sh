#!/usr/bin/env bash
# .venv-ppq/: esp-ppq 1.3.12 (the PPQ family: SpacemiT's XQuant is built on PPQ) for the demo's PPQ scenario and
# its test (demo/ppq_env.py, demo/ppq_quantize.py).  A venv of its own: esp-ppq pins onnx < 1.20 while AMD Quark in
# .venv pins onnx >= 1.21.  torch is not installed twice: a .pth file puts .venv's site-packages after this venv's
# own, so esp-ppq's onnx 1.19 comes first and torch (5 GB) comes from .venv.  pip leaves .venv alone ("outside
# environment").  A few seconds with a warm pip cache.  TB_XQUANT_SKIP_PPQ=1 leaves it out (the PPQ scenario and
# its test are then skipped, or fail under TB_XQUANT_REQUIRE_ALL=1).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ "${TB_XQUANT_SKIP_PPQ:-0}" = "1" ]; then
  exit 0
fi
export PIP_CACHE_DIR="$ROOT/.cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "scripts/setup_ppq.sh: .venv is missing (run scripts/setup.sh)" >&2
  exit 1
fi
if [ ! -x .venv-ppq/bin/python ]; then
  "$PY" -m venv .venv-ppq
fi
STAMP=.venv-ppq/.tb-xquant-installed
if [ ! -f "$STAMP" ] || [ "$0" -nt "$STAMP" ]; then
  MAIN_SITE="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  PPQ_SITE="$(.venv-ppq/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$MAIN_SITE" > "$PPQ_SITE/zz_tb_xquant_main_venv.pth"  # "zz": read after everything of .venv-ppq's own
  .venv-ppq/bin/pip install -q "esp-ppq==1.3.12" "onnx==1.19.1" 2>&1 \
    | grep -v "dependency resolver does not currently take into account\|amd-quark .* requires onnx" || true
  .venv-ppq/bin/python -c "import esp_ppq, onnx, torch; assert onnx.__version__.startswith('1.19'), onnx.__version__" \
    >/dev/null
  touch "$STAMP"
fi
