"""Quantize a float ONNX model with esp-ppq (the PPQ family) and export it as a QDQ ONNX model.

Runs in the interpreter of ``.venv-ppq`` (scripts/setup_ppq.sh; demo/ppq_env.py finds it and starts this):

    .venv-ppq/bin/python -m demo.ppq_quantize FLOAT.onnx CALIB.npy OUT.onnx [--platform TRT_INT8] [--steps 32]

The calibration file holds the samples of the model's single input, first axis = samples.  PPQ's
``quantize_onnx_model`` calibrates one sample per step on the CPU; the QDQ export is ``export_ppq_graph`` with
the ONNX Runtime platform, with ``FORMATTER_FUSE_SWISH`` off (fused Swish ops are not something onnxruntime
loads).  Prints one JSON line: the output path, the platform and esp-ppq's version."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def quantize(float_path: str, calib_path: str, out_path: str, platform: str = "TRT_INT8", steps: int = 32) -> dict:
    import numpy as np
    import torch
    from importlib.metadata import version

    import esp_ppq.api.interface as ppq_interface
    from esp_ppq.api import export_ppq_graph, quantize_onnx_model
    from esp_ppq.core import TargetPlatform

    ppq_interface.FORMATTER_FUSE_SWISH = False
    x = np.load(calib_path).astype(np.float32)
    n = min(steps, len(x))
    samples = [torch.tensor(x[i:i + 1]) for i in range(n)]
    graph = quantize_onnx_model(float_path, samples, calib_steps=n, input_shape=list(samples[0].shape),
                                platform=TargetPlatform[platform], collate_fn=lambda b: b, device="cpu")
    export_ppq_graph(graph, platform=TargetPlatform.ONNXRUNTIME, graph_save_to=out_path)
    return {"out": out_path, "platform": platform, "esp_ppq": version("esp-ppq"), "samples": n}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("float_model")
    p.add_argument("calibration", help=".npy of input samples")
    p.add_argument("out")
    p.add_argument("--platform", default="TRT_INT8", help="an esp_ppq.core.TargetPlatform name (default TRT_INT8)")
    p.add_argument("--steps", type=int, default=32, help="calibration samples (default 32)")
    a = p.parse_args(argv)
    info = quantize(a.float_model, a.calibration, a.out, a.platform, a.steps)
    sys.stdout.write("TB_XQUANT_PPQ " + json.dumps(info) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
