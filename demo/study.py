"""A study on demo models: tb-xquant tries the countermeasures its verdicts propose (``mct_study``).

    python -m demo.study --out demo_logs/studies [--scenarios outlier mixed_precision ...] [--max-attempts N]

Each scenario's study goes to ``<out>/<scenario>_study/`` (``study.json`` and one report folder per attempt);
with ``--out`` inside the logdir of ``tensorboard --logdir`` the XQuant tab lists it under "Studies"."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional

from demo import generate as G
from demo import models as M


def study_args(name: str, data: "M.DigitsData"):
    """(float_model, core_config, target_resource_utilization, repr_scale) of a demo scenario, as
    ``demo.generate`` quantizes it."""
    import model_compression_toolkit as mct

    if name == "outlier":
        return G.build_outlier(data), None, None, 1.0
    if name == "shift_negative":
        core = mct.core.CoreConfig(mct.core.QuantizationConfig(shift_negative_activation_correction=False))
        return G.build_shift_negative(data), core, None, 1.0
    if name == "mixed_precision":
        model = G.build_mixed_precision(data)
        core = mct.core.CoreConfig(mixed_precision_config=mct.core.MixedPrecisionQuantizationConfig())
        return model, core, mct.core.ResourceUtilization(weights_memory=G._tight_weights_memory(model)), 1.0
    if name == "majority_degraded":
        return G.build_clean(data), None, None, 1.0 / 16.0
    if name == "unbalanced_concat":
        return G.build_unbalanced(data), None, None, 1.0
    raise SystemExit("no study for scenario %r" % name)


STUDY_SCENARIOS = ("outlier", "mixed_precision", "shift_negative", "majority_degraded", "unbalanced_concat")


def run_study(name: str, out_root: str, data: Optional["M.DigitsData"] = None, max_attempts: int = 6,
              time_budget_s: float = 600.0, progress=print):
    from model_compression_toolkit.xquant import XQuantConfig

    from tb_xquant_plugin.mct_study import try_countermeasures

    G._quiet()
    data = data or M.DigitsData()
    model, core, ru, scale = study_args(name, data)
    folder = os.path.join(out_root, "%s_study" % name)
    # the majority-degraded mistake is in the representative set; the general path offers the right one
    more = data.representative() if scale != 1.0 else None
    return try_countermeasures(
        model, data.representative(scale=scale), data.validation(), XQuantConfig(report_dir=folder),
        out_dir=folder, evaluate=data.accuracy, core_config=core, target_resource_utilization=ru,
        more_representative_data_gen=more, max_attempts=max_attempts, time_budget_s=time_budget_s,
        gptq_epochs=1, model_name="%s (%s)" % (type(model).__name__, name), progress=progress)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--scenarios", nargs="*", default=["outlier"], choices=STUDY_SCENARIOS)
    p.add_argument("--max-attempts", type=int, default=6)
    p.add_argument("--time-budget", type=float, default=600.0)
    args = p.parse_args(argv)
    data = M.DigitsData()
    for name in args.scenarios:
        t0 = time.time()
        s = run_study(name, args.out, data, args.max_attempts, args.time_budget)
        best = next((a for a in s["attempts"] if a["id"] == s["best"]), None)
        print("%-18s %5.1fs  best: %s" % (name, time.time() - t0, best["label"] if best else "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
