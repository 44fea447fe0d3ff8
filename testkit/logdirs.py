"""Logdirs in MCT 2.6.1's on-disk format written by ``bench/mct_format.py`` (numpy + TensorBoard only: no torch,
no MCT), reused while nothing that shaped them changed."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from typing import Any, Dict, Tuple

DONE_MARKER = ".bench_done"  # written into model_<N>/ once a generation finished


def generator_key(n: int, seed: int = 0, bins: int = None, troubleshoot: bool = True,
                  manifest: bool = False) -> Dict[str, Any]:
    """What decides the files of one generated model: its parameters and the generator's source."""
    from bench import mct_format

    with open(mct_format.__file__, "rb") as f:
        source = hashlib.sha1(f.read()).hexdigest()
    return {"n": int(n), "seed": int(seed), "bins": int(mct_format.DEFAULT_BINS if bins is None else bins),
            "troubleshoot": bool(troubleshoot), "manifest": bool(manifest), "generator": source}


def ensure_model_logdir(out: str, n: int, seed: int = 0, *, bins: int = None, troubleshoot: bool = True,
                        manifest: bool = False, regenerate: bool = False) -> Tuple[str, float]:
    """``OUT/model_<N>/`` (its ``xquant_report/`` is the report), written by
    ``bench.mct_format.write_model_logdir`` unless a finished one with the same parameters and generator source
    is there.  Returns (model dir, seconds spent generating: 0.0 when reused)."""
    from bench import mct_format

    key = generator_key(n, seed, bins, troubleshoot, manifest)
    model_dir = os.path.join(str(out), "model_%d" % key["n"])
    marker = os.path.join(model_dir, DONE_MARKER)
    if not regenerate:
        try:
            with open(marker) as f:
                done = json.load(f)
            if {k: done.get(k) for k in key} == key:
                return model_dir, 0.0
        except (OSError, ValueError):
            pass
    if os.path.isdir(model_dir):
        shutil.rmtree(model_dir)
    t0 = time.perf_counter()
    mct_format.write_model_logdir(str(out), key["n"], seed=key["seed"], bins=key["bins"], troubleshoot=troubleshoot,
                                  manifest=manifest)
    seconds = time.perf_counter() - t0
    with open(marker, "w") as f:
        json.dump(dict(key, seconds=round(seconds, 3)), f)
    return model_dir, seconds
