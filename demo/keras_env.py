"""Where the demo's Keras scenarios run: an interpreter with TensorFlow 2.15 and MCT 2.6.1.

MCT 2.6.1 turns its Keras path off for TensorFlow >= 2.16, and tensorflow 2.15.1 pins tensorboard < 2.16,
so the Keras scenarios run in their own venv (``.venv-keras``, scripts/setup_keras.sh; docs/keras.md) while
the rest of the demo and the viewer stay in ``.venv``.  This module imports nothing heavy: demo/generate.py
and the tests use it to find that interpreter and to run the scenarios there (demo/keras_demo.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
KERAS_VENV = REPO / ".venv-keras"
ENV_PYTHON = "TB_XQUANT_KERAS_PYTHON"  # an interpreter with tensorflow 2.15 + MCT 2.6.1, instead of .venv-keras

# name -> description (demo/keras_demo.py runs them, in this order)
KERAS_SCENARIOS: Dict[str, str] = {
    "keras_outlier": "Keras: one channel of the expansion block carries large offset values (activation outliers); "
                     "MCT has no troubleshooting for Keras, tb-xquant's judges find them",
    "keras_shift_negative": "Keras: swish / gelu (inside Conv2D) / PReLU / ELU quantized without shift-negative "
                            "correction",
}


def _tensorflow_here() -> bool:
    """This interpreter has TensorFlow < 2.16 and MCT (without importing either)."""
    try:
        from importlib.metadata import version

        major, minor = (int(p) for p in version("tensorflow").split(".")[:2])
        version("model-compression-toolkit")
    except Exception:  # noqa: BLE001 - not installed, or an odd version string
        return False
    return (major, minor) < (2, 16)


def keras_python() -> Optional[str]:
    """The interpreter for the Keras scenarios: ``$TB_XQUANT_KERAS_PYTHON``, this one when it has TensorFlow
    2.15 and MCT, else ``.venv-keras/bin/python``; None when there is none."""
    env = os.environ.get(ENV_PYTHON)
    if env:
        return env if os.access(env, os.X_OK) else None
    if _tensorflow_here():
        return sys.executable
    py = KERAS_VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return str(py) if py.exists() else None


def keras_env() -> Dict[str, str]:
    """The environment of a Keras subprocess: the repository importable, TensorFlow's C++ log quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def start_keras_scenarios(out_root: str, names: List[str]) -> subprocess.Popen:
    """Start ``python -m demo.keras_demo --out OUT NAMES`` in the Keras interpreter (RuntimeError without one);
    ``.communicate()`` waits for it.  demo/generate.py starts it first and runs the PyTorch scenarios meanwhile."""
    py = keras_python()
    if py is None:
        raise RuntimeError("no interpreter with tensorflow 2.15 + MCT 2.6.1 for the Keras scenarios: run "
                           "scripts/setup_keras.sh (creates .venv-keras) or set %s" % ENV_PYTHON)
    return subprocess.Popen([py, "-m", "demo.keras_demo", "--out", str(out_root), *names], cwd=str(REPO),
                            env=keras_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
