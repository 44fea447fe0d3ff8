"""A study folder (``tb_xquant_plugin.mct_study``'s layout) built from real report dirs, without running a study.

    from testkit.studies import write_demo_study
    study = write_demo_study(demo_logdir, logdir / "my_study")

copies the demo's ``outlier`` scenario as the baseline and ``outlier_fixed`` (the same model re-quantized with the
z_threshold the outlier verdict proposes) as the attempt that applied it, and writes ``study.json``
(``model.study.SCHEMA``) whose accuracy, model-output SQNR / MSE and degraded layers are read from those reports
(manifest, ``quant_report.json``, the plugin's own analysis); a third attempt failed (no report), with a label and
an error that look like HTML.  Times, memory and sizes are made up (no report records them)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, Optional

REPORT = "xquant_report"
BASELINE = "baseline"
FIXED = "01_z_threshold_3_62"
FAILED = "02_html_label"
HTML_LABEL = "<img src=x onerror=window.__pwned=1> bias off"
HTML_ERROR = "RuntimeError: <script>window.__pwned=2</script> could not quantize\n  File \"x.py\", line 2, in <b>f</b>"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def attempt_numbers(report_dir: Path) -> Dict[str, Any]:
    """What the study records of one report: accuracy (manifest), output SQNR / MSE on the validation set
    (quant_report.json) and the degraded layers (the plugin's analysis, MCT's rule)."""
    from tb_xquant_plugin.api import analyse_report_dir

    man = _json(report_dir / "tb_xquant_manifest.json")
    qr = _json(report_dir / "quant_report.json")
    val = qr.get("output_similarity_metrics_val") or qr.get("output_similarity_metrics_repr") or {}
    a = analyse_report_dir(str(report_dir))
    acc = man.get("accuracy") or {}
    return {"accuracy": acc.get("quantized"), "float_accuracy": acc.get("float"), "output_sqnr": val.get("sqnr"),
            "output_mse": val.get("mse"), "degraded": list(a.degraded), "degraded_count": len(a.degraded),
            "_analysis": a}


def write_demo_study(demo_logdir: Path, study_dir: Path, model_name: Optional[str] = None) -> Dict[str, Any]:
    """Build the study folder (module docstring); returns the study.json object written."""
    from tb_xquant_plugin.model import study as S

    demo_logdir, study_dir = Path(demo_logdir), Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(demo_logdir / "outlier", study_dir / BASELINE)
    shutil.copytree(demo_logdir / "outlier_fixed", study_dir / FIXED)
    base = attempt_numbers(study_dir / BASELINE / REPORT)
    fixed = attempt_numbers(study_dir / FIXED / REPORT)
    verdict = next(v for v in base.pop("_analysis").verdicts if v.judge == "outlier_removal" and v.source == "computed")
    fixed.pop("_analysis")
    from tb_xquant_plugin.model import countermeasure as C

    cm = verdict.countermeasure  # what outlier_fixed applied (demo.generate)
    declared = _json(study_dir / FIXED / REPORT / "tb_xquant_manifest.json")["extra"]["countermeasure"]
    if cm is None or cm["fields"] != declared:
        raise ValueError("outlier_fixed did not apply the outlier verdict's countermeasure: %r vs %r" % (cm, declared))
    attempts = [
        dict(base, id=BASELINE, dir=BASELINE, report=BASELINE + "/" + REPORT, parent=None, countermeasure=None,
             label="baseline", source="baseline", verdict=None, status=S.OK, error=None, time_s=4.08,
             peak_rss_mb=1080.0, size_bytes=15824.0),
        dict(fixed, id=FIXED, dir=FIXED, report=FIXED + "/" + REPORT, parent=BASELINE, countermeasure=cm,
             label=C.describe(cm), source="verdict",
             verdict={"judge": verdict.judge, "layers": list(verdict.layers), "message": verdict.message[:500]},
             status=S.OK, error=None, time_s=2.81, peak_rss_mb=1084.7, size_bytes=15824.0, helped=True),
        {"id": FAILED, "dir": FAILED, "report": FAILED + "/" + REPORT, "parent": BASELINE,
         "countermeasure": {"kind": "general", "step": "bias_correction_off"}, "label": HTML_LABEL,
         "source": "general", "verdict": None, "status": S.FAILED, "error": HTML_ERROR, "time_s": 0.1,
         "peak_rss_mb": 1084.7, "helped": False},
    ]
    study = {"schema": S.SCHEMA, "model_name": model_name or "BottleneckNet (outlier)", "toolchain": "mct-pytorch",
             "created": "2026-01-01T00:00:00+00:00", "status": S.DONE, "attempts": attempts, "best": FIXED,
             "winning_countermeasure": cm, "winning_snippet": verdict.snippet, "stopped_by": None,
             "general_path": [], "elapsed_s": 7.0, "float_model_untouched": True}
    (study_dir / S.FILENAME).write_text(json.dumps(study, indent=1), encoding="utf-8")
    return study
