"""Where the demo's PPQ-family scenario is quantized: an interpreter with esp-ppq 1.3.12.

esp-ppq pins onnx < 1.20 and AMD Quark (in ``.venv``) pins onnx >= 1.21, so esp-ppq lives in ``.venv-ppq``
(scripts/setup_ppq.sh), which borrows torch from ``.venv``.  Only the quantization runs there
(demo/ppq_quantize.py); the report is written in ``.venv`` like every ONNX report.  This module imports nothing
heavy."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict, Optional

REPO = Path(__file__).resolve().parents[1]
PPQ_VENV = REPO / ".venv-ppq"
ENV_PYTHON = "TB_XQUANT_PPQ_PYTHON"  # an interpreter with esp-ppq 1.3.12, instead of .venv-ppq
TIMEOUT = 600.0


def ppq_python() -> Optional[str]:
    """``$TB_XQUANT_PPQ_PYTHON``, else ``.venv-ppq/bin/python``; None when there is none."""
    env = os.environ.get(ENV_PYTHON)
    if env:
        return env if os.access(env, os.X_OK) else None
    py = PPQ_VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return str(py) if py.exists() else None


def why_unavailable() -> Optional[str]:
    if ppq_python() is None:
        return "no interpreter with esp-ppq 1.3.12 (run scripts/setup_ppq.sh or set %s)" % ENV_PYTHON
    return None


def ppq_quantize(float_path: str, calib_npy: str, out_path: str, platform: str = "TRT_INT8",
                 steps: int = 32) -> Dict[str, object]:
    """Quantize with esp-ppq in its own interpreter; returns what demo/ppq_quantize.py reports.  RuntimeError with
    the tail of its output when it fails."""
    py = ppq_python()
    if py is None:
        raise RuntimeError(why_unavailable())
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([py, "-m", "demo.ppq_quantize", float_path, calib_npy, out_path, "--platform", platform,
                           "--steps", str(steps)], cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("TB_XQUANT_PPQ ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError("esp-ppq quantization failed (rc=%s):\n%s\n%s"
                           % (proc.returncode, proc.stdout[-2000:], proc.stderr[-4000:]))
    return json.loads(line[len("TB_XQUANT_PPQ "):])
