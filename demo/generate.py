"""Generate the demo logdir: real MCT 2.6.1 PTQ + XQuant troubleshooting runs, one folder per scenario.

    python -m demo.generate --out demo_logs            # all scenarios
    python -m demo.generate --out demo_logs clean mixed_precision   # a subset

Each scenario folder holds ``mct_logs/`` (from ``mct.set_log_folder``: the stage graphs under
``logs_<time>/tensorboard_logs/<stage>/``) and ``xquant_report/`` (MCT's report dir with
``xquant/`` events, ``quant_report.json``, ``troubleshoot_report.json``, PNGs, and our manifest).  The Keras
scenarios run in their own interpreter (demo/keras_env.py); the ONNX ones (demo/onnx_demo.py) run here after the
PyTorch ones, each folder holding ``models/`` (float and QDQ ``.onnx``) and ``xquant_report/``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional

import torch

from demo import models as M
from demo.keras_env import KERAS_SCENARIOS, keras_python, start_keras_scenarios
from demo.onnx_demo import ONNX_SCENARIOS

SCENARIOS: Dict[str, str] = {
    "clean": "ReLU ConvNet at 8 bits: no degraded layer, general troubleshoots apply",
    "outlier": "one channel in two blocks carries large offset values: activation outliers beyond the z-score threshold",
    "outlier_fixed": "the outlier model re-quantized with the z_threshold its verdict proposes",
    "shift_negative": "SiLU / GELU / Hardswish / PReLU / ELU, quantized without shift-negative correction",
    "unbalanced_concat": "a stem whose convolution output range dwarfs its input range, and a concatenation of branches ~40x apart in range",
    "mixed_precision": "mixed precision under a tight weights-memory target: the classifier ends at 2 bits",
    "majority_degraded": "representative data normalised twice (preprocessing mismatch): most layers degrade",
    # MCT for Keras (demo/keras_demo.py, run in the TensorFlow 2.15 venv that demo/keras_env.py finds)
    **KERAS_SCENARIOS,
    # QDQ ONNX models from ONNX Runtime, AMD Quark and a PPQ-style export (demo/onnx_demo.py, the [onnx] extra)
    **ONNX_SCENARIOS,
}

ORDER = list(SCENARIOS)


def _quiet():
    """MCT prints a lot; keep the demo output readable."""
    warnings.filterwarnings("ignore")
    logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)


class Scenario:
    def __init__(self, name: str, out_root: str, data: M.DigitsData):
        self.name = name
        self.dir = os.path.join(out_root, name)
        self.data = data

    def run(self, float_model: torch.nn.Module, *, core_config=None, resource_utilization=None,
            repr_scale: float = 1.0, xquant_kwargs: Optional[dict] = None, extra: Optional[dict] = None):
        import model_compression_toolkit as mct
        from model_compression_toolkit.xquant import XQuantConfig

        from tb_xquant_plugin.mct_run import xquant_report_with_manifest

        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        mct.set_log_folder(os.path.join(self.dir, "mct_logs"))
        repr_gen = self.data.representative(scale=repr_scale)
        kwargs = {}
        if core_config is not None:
            kwargs["core_config"] = core_config
        if resource_utilization is not None:
            kwargs["target_resource_utilization"] = resource_utilization
        quantized, _ = mct.ptq.pytorch_post_training_quantization(float_model, repr_gen, **kwargs)
        cfg = XQuantConfig(report_dir=os.path.join(self.dir, "xquant_report"), **(xquant_kwargs or {}))
        result, manifest = xquant_report_with_manifest(
            float_model, quantized, self.data.representative(), self.data.validation(), cfg,
            model_name=type(float_model).__name__, evaluate=self.data.accuracy,
            extra=dict(extra or {}, scenario=self.name, description=SCENARIOS[self.name]),
        )
        return quantized, result


def build_clean(data):
    return M.trained("ConvNet", lambda: M.ConvNet(), data)


def build_outlier(data):
    model = M.trained("BottleneckNet", lambda: M.BottleneckNet(), data)
    with torch.no_grad():
        # One channel of the expansion block gets a large offset and spread (1 channel in 32 far
        # from the others): its ReLU output is quantized with a coarse 8-bit step.
        model.expand_bn.bias[0] = 150.0
        model.expand_bn.weight[0] *= 10.0
        model.project_conv.weight[:, 0] = 0.0
        # The same in the linear bottleneck (conv + BN, no activation): the layer degrades because
        # its input is coarse, and its own output carries the outliers the judge looks for.
        model.project_bn.bias[0] = 150.0
        model.project_bn.weight[0] *= 10.0
        # The next convolution ignores that channel, so the float model's accuracy is unchanged.
        model.mix_conv.weight[:, 0] = 0.0
    return model


def build_shift_negative(data):
    return M.train(M.seeded(lambda: M.NegActNet()), data)


def build_unbalanced(data, r: float = 16.0):
    model = M.train(M.seeded(lambda: M.BranchNet()), data)
    stem_conv, stem_bn = model.stem[0], model.stem[1]
    with torch.no_grad():
        # Scale the stem convolution and its BN statistics together: the folded layer computes the
        # same function, but the convolution's output range is ~40x wider than its input range
        # (what MCT 2.6.1's judge measures for a degraded '<conv>_bn' layer).
        k = 40.0
        stem_conv.weight.mul_(k)
        stem_conv.bias.mul_(k)
        stem_bn.running_mean.mul_(k)
        stem_bn.running_var.mul_(k * k)
        # Widen the folded stem output too (next layers scaled down to match) so its 8-bit step is
        # coarse and the stem degrades.
        g = 150.0
        stem_bn.weight.mul_(g)
        stem_bn.bias.mul_(g)
        model.left[0].weight.div_(g)
        # The right branch comes out r times larger than it was trained (the fuse convolution divides
        # its channels by r again), so the concatenation joins inputs whose ranges differ by far more
        # than threshold_ratio_unbalanced_concatenation (16): ~40x in the float histograms, 2 against
        # 64 in MCT's activation thresholds.  The narrow left branch carries a quarter of the
        # channels, so its coarse share of the joined range costs little and the fuse, residual and
        # head layers stay under the MSE threshold (judges skip when half the layers degrade).
        model.right[0].weight.div_(g / r)
        model.right[0].bias.mul_(r)
        model.fuse[0].weight[:, model.left[0].out_channels:].div_(r)
    return model


def build_mixed_precision(data):
    return M.train(M.seeded(lambda: M.WideHeadNet()), data)


def generate(out_root: str, names: List[str]) -> Dict[str, float]:
    _quiet()
    import model_compression_toolkit as mct

    from tb_xquant_plugin.mct_study import core_config_with

    data = M.DigitsData()
    timings = {}
    keras = [n for n in names if n in KERAS_SCENARIOS]
    # The Keras scenarios run in their own interpreter (TensorFlow 2.15), alongside the PyTorch ones.
    keras_proc = start_keras_scenarios(out_root, keras) if keras else None
    onnx = [n for n in names if n in ONNX_SCENARIOS]
    for name in (n for n in names if n not in KERAS_SCENARIOS and n not in ONNX_SCENARIOS):
        t0 = time.time()
        sc = Scenario(name, out_root, data)
        if name == "clean":
            sc.run(build_clean(data))
        elif name == "outlier":
            sc.run(build_outlier(data))
        elif name == "outlier_fixed":
            cm = _proposed_countermeasure(os.path.join(out_root, "outlier", "xquant_report"))
            sc.run(build_outlier(data), core_config=core_config_with(cm),
                   extra={"countermeasure": dict(cm["fields"]), "compare_to": "outlier/xquant_report"})
        elif name == "shift_negative":
            core = mct.core.CoreConfig(mct.core.QuantizationConfig(shift_negative_activation_correction=False))
            sc.run(build_shift_negative(data), core_config=core,
                   extra={"quantization_config": {"shift_negative_activation_correction": False}})
        elif name == "unbalanced_concat":
            sc.run(build_unbalanced(data))
        elif name == "mixed_precision":
            model = build_mixed_precision(data)
            ru = _tight_weights_memory(model)
            core = mct.core.CoreConfig(mixed_precision_config=mct.core.MixedPrecisionQuantizationConfig())
            sc.run(model, core_config=core, resource_utilization=mct.core.ResourceUtilization(weights_memory=ru),
                   extra={"resource_utilization": {"weights_memory": ru}})
        elif name == "majority_degraded":
            sc.run(build_clean(data), repr_scale=1.0 / 16.0,
                   extra={"mistake": "representative images divided by 16 a second time"})
        else:
            raise SystemExit("unknown scenario %r; choose from %s" % (name, ", ".join(ORDER)))
        timings[name] = time.time() - t0
    if onnx:
        from demo import onnx_demo

        # Quark prints its whole configuration on stdout; keep the demo's own lines readable
        with contextlib.redirect_stdout(io.StringIO()) if os.environ.get("TB_XQUANT_DEMO_VERBOSE") != "1" \
                else contextlib.nullcontext():
            timings.update(onnx_demo.generate(out_root, onnx, data))
    if keras_proc is not None:
        timings.update(_keras_timings(keras_proc, keras))
    return timings


def _keras_timings(proc, names: List[str]) -> Dict[str, float]:
    """Wait for the Keras scenarios (demo/keras_demo.py); their timings."""
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit("the Keras scenarios failed (rc=%s):\n%s\n%s" % (proc.returncode, stdout[-3000:],
                                                                          stderr[-6000:]))
    timings = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in names and parts[1].endswith("s"):
            try:
                timings[parts[0]] = float(parts[1][:-1])
            except ValueError:
                pass
    return timings


def _tight_weights_memory(model: torch.nn.Module) -> float:
    """Bytes for every layer at 8 bits except the classifier at 2 bits."""
    total = 0.0
    for mod_name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            bits = 2 if mod_name == "head" else 8
            total += mod.weight.numel() * bits / 8.0
    return total


def _proposed_countermeasure(report_dir: str) -> dict:
    """The countermeasure of the 'outlier' report's outlier-removal verdict (the smallest z_threshold proposed):
    a QuantizationConfig z_threshold, or the same z on the outlier layers only (network editor)."""
    from tb_xquant_plugin.api import analyse_report_dir

    analysis = analyse_report_dir(report_dir)
    cms = [v.countermeasure for v in analysis.verdicts
           if v.judge == "outlier_removal" and v.source == "computed" and v.countermeasure]
    if not cms:
        raise SystemExit("the outlier scenario produced no actionable outlier-removal verdict; cannot build "
                         "outlier_fixed")
    return min(cms, key=lambda cm: cm["fields"]["z_threshold"])


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_logs", help="logdir to (re)create scenario folders in")
    p.add_argument("scenarios", nargs="*", help="subset of: " + ", ".join(ORDER))
    args = p.parse_args(argv)
    unknown = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown:  # before any scenario runs: a typo must not cost a minute of MCT runs first
        p.error("unknown scenario(s) %s; choose from %s" % (", ".join(map(repr, unknown)), ", ".join(ORDER)))
    names = args.scenarios or ORDER
    if not args.scenarios and keras_python() is None:
        print("Keras scenarios left out (%s): no interpreter with tensorflow 2.15 + MCT 2.6.1; run "
              "scripts/setup_keras.sh or set TB_XQUANT_KERAS_PYTHON" % ", ".join(KERAS_SCENARIOS))
        names = [n for n in names if n not in KERAS_SCENARIOS]
    if not args.scenarios:
        from demo.onnx_demo import available

        missing = {n: why for n, why in available().items() if why}
        if missing:
            print("ONNX scenarios left out: %s" % "; ".join("%s %s" % (n, why) for n, why in missing.items()))
            names = [n for n in names if n not in missing]
    if "outlier_fixed" in names and "outlier" not in names and not os.path.isdir(
            os.path.join(args.out, "outlier", "xquant_report")):
        names = ["outlier"] + names
    t0 = time.time()
    sink = io.StringIO()
    with contextlib.redirect_stderr(sink) if os.environ.get("TB_XQUANT_DEMO_VERBOSE") != "1" else contextlib.nullcontext():
        timings = generate(args.out, names)
    for n, t in timings.items():
        print("%-18s %5.1fs  %s" % (n, t, SCENARIOS[n]))
    print("demo logdir: %s (%.0fs)" % (os.path.abspath(args.out), time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
