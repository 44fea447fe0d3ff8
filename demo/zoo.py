"""Real MCT 2.6.1 reports of stock torchvision architectures (``weights=None``), trained briefly on digits.

    python -m demo.zoo --out zoo_logs                         # every architecture
    python -m demo.zoo --out zoo_logs resnet18 densenet121    # a subset

No pretrained weights (nothing can be downloaded here): each model is built with ``weights=None`` and
``num_classes=10``, trained for a few hundred steps on scikit-learn's digits upscaled to 64x64 RGB, quantized
with MCT PTQ after ``mct.set_log_folder`` and reported with ``xquant_report_troubleshoot_pytorch_experimental``
through tb-xquant's manifest wrapper.  The folder layout is the demo's: ``<arch>/mct_logs`` and
``<arch>/xquant_report``.  A run whose XQuant re-trace fails (MCT's torch.fx tracing) is kept as it is -- that is
a real outcome users meet -- and its error is written to ``<arch>/xquant_error.txt``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import traceback
import warnings
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SIDE = 64
BATCH = 32


def _arch(name: str) -> Callable[[], nn.Module]:
    import torchvision.models as tvm

    makers = {
        "mobilenet_v2": lambda: tvm.mobilenet_v2(weights=None, num_classes=10),
        "mobilenet_v3_small": lambda: tvm.mobilenet_v3_small(weights=None, num_classes=10),
        "resnet18": lambda: tvm.resnet18(weights=None, num_classes=10),
        "squeezenet1_1": lambda: tvm.squeezenet1_1(weights=None, num_classes=10),
        "shufflenet_v2_x0_5": lambda: tvm.shufflenet_v2_x0_5(weights=None, num_classes=10),
        "densenet121": lambda: tvm.densenet121(weights=None, num_classes=10),
        "efficientnet_b0": lambda: tvm.efficientnet_b0(weights=None, num_classes=10),
        "googlenet": lambda: tvm.googlenet(weights=None, num_classes=10, aux_logits=False, init_weights=True),
        "regnet_x_400mf": lambda: tvm.regnet_x_400mf(weights=None, num_classes=10),
    }
    return makers[name]


ARCHITECTURES = ("mobilenet_v2", "mobilenet_v3_small", "resnet18", "squeezenet1_1", "shufflenet_v2_x0_5",
                 "densenet121", "efficientnet_b0", "googlenet", "regnet_x_400mf")


class Digits64:
    """Digits as 3 x 64 x 64 images in [0, 1] (nearest upscaling of the 8 x 8 originals)."""

    def __init__(self, seed: int = 0):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        order = np.random.default_rng(seed).permutation(len(x))
        x = torch.from_numpy((x[order] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8))
        x = F.interpolate(x, size=(SIDE, SIDE), mode="nearest").repeat(1, 3, 1, 1)
        y = torch.from_numpy(y[order].astype(np.int64))
        self.x_train, self.y_train = x[:1300], y[:1300]
        self.x_val, self.y_val = x[1300:], y[1300:]

    def batches(self, xs: torch.Tensor, n: int):
        def gen():
            for i in range(n):
                yield [xs[i * BATCH:(i + 1) * BATCH]]
        return gen

    def representative(self, n: int = 4):
        return self.batches(self.x_train, n)

    def validation(self, n: int = 4):
        return self.batches(self.x_val, n)

    def accuracy(self, model: nn.Module) -> float:
        model.eval()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.no_grad():
            pred = torch.cat([model(self.x_val[i:i + 128].to(device)).argmax(1).cpu()
                              for i in range(0, len(self.x_val), 128)])
        return float((pred == self.y_val).float().mean())


def train(model: nn.Module, data: Digits64, steps: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    n = len(data.x_train)
    for step in range(steps):
        idx = torch.randint(0, n, (BATCH,))
        opt.zero_grad()
        F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
    model.eval()
    return model


def recalibrate_bn(model: nn.Module, data: Digits64, images: int = 640) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics over training images (a cumulative average, no gradient).
    A few hundred steps are too few for the running averages to settle (torchvision's MobileNetV3 and
    EfficientNet use a momentum of 0.01): without this their eval-mode accuracy stays near chance although the
    training batches are classified well."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, min(images, len(data.x_train)), 64):
            model(data.x_train[i:i + 64])
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.eval()
    return model


def train_well(model: nn.Module, data: Digits64, steps: int, seed: int = 0, lr: float = 2e-3) -> nn.Module:
    """``train`` with a one-cycle learning-rate schedule and the BatchNorm statistics re-estimated at the end:
    well above chance in a few hundred steps on every architecture here (the advice benchmark needs accuracies
    that mean something)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps), pct_start=0.15)
    model.train()
    n = len(data.x_train)
    for _ in range(steps):
        idx = torch.randint(0, n, (BATCH,))
        opt.zero_grad()
        F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
        sched.step()
    return recalibrate_bn(model, data)


def run_one(name: str, out_root: str, data: Digits64, steps: int) -> Dict[str, object]:
    import model_compression_toolkit as mct
    from model_compression_toolkit.xquant import XQuantConfig

    from tb_xquant_plugin.mct_run import xquant_report_with_manifest

    folder = os.path.join(out_root, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    torch.manual_seed(0)
    t0 = time.time()
    model = train(_arch(name)(), data, steps)
    trained = time.time() - t0
    mct.set_log_folder(os.path.join(folder, "mct_logs"))
    quantized, _ = mct.ptq.pytorch_post_training_quantization(model, data.representative())
    cfg = XQuantConfig(report_dir=os.path.join(folder, "xquant_report"))
    status = {"arch": name, "train_s": round(trained, 1), "float_acc": data.accuracy(model)}
    try:
        xquant_report_with_manifest(model, quantized, data.representative(), data.validation(), cfg,
                                    model_name=name, evaluate=data.accuracy, extra={"zoo": name, "steps": steps})
        status["xquant"] = "ok"
    except Exception as e:  # noqa: BLE001 - a failed re-trace is a real outcome: keep what MCT wrote
        status["xquant"] = "failed: %s: %s" % (type(e).__name__, str(e)[:300])
        with open(os.path.join(folder, "xquant_error.txt"), "w", encoding="utf-8") as f:
            f.write(traceback.format_exc())
    status["total_s"] = round(time.time() - t0, 1)
    return status


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=150, help="training steps per model (batch %d)" % BATCH)
    p.add_argument("names", nargs="*", help="architectures (default: all of %s)" % ", ".join(ARCHITECTURES))
    args = p.parse_args(argv)
    names = args.names or list(ARCHITECTURES)
    unknown = [n for n in names if n not in ARCHITECTURES]
    if unknown:
        print("unknown architecture(s): %s; choose from %s" % (", ".join(unknown), ", ".join(ARCHITECTURES)),
              file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")
    logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)
    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    os.makedirs(args.out, exist_ok=True)
    data = Digits64()
    results = []
    for name in names:
        st = run_one(name, args.out, data, args.steps)
        results.append(st)
        print(json.dumps(st), flush=True)
    with open(os.path.join(args.out, "zoo_status.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
