"""Tests of the troubleshooting manual (tb_xquant_plugin.manual).

The structural tests need only the standard library and ``markdown``.
The snippet tests execute every ```python block of every entry against a tiny
PyTorch CNN (1x8x8 inputs, briefly trained on sklearn's digits) with MCT 2.6.1,
and the first "What to change" snippet of each judgeable entry against the float
model of its demo scenario (demo/generate.py), checking that MCT's result changed
the way the entry says.  They are skipped when MCT is not installed (they fail
instead under TB_XQUANT_REQUIRE_ALL=1, see conftest.py).
"""

import copy
import glob
import math
import os
import re
import subprocess
import sys
import time

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from mct_test_utils import mct_logging_restored, stage_nodes  # noqa: E402
from tb_xquant_plugin import manual  # noqa: E402

REQUIRED_JUDGEABLE = {
    "outlier-removal": "outlier_removal",
    "shift-negative-activation": "shift_negative_activation",
    "unbalanced-concatenation": "unbalanced_concatenation",
    "mixed-precision-model-output-loss": "mixed_precision_with_model_output_loss_objective",
}
REQUIRED_GENERAL = [
    "general-troubleshooting",
    "representative-dataset-size",
    "representative-dataset-mismatch",
    "bias-correction",
    "network-editor-16bit",
    "mixed-precision-resource-target",
    "gptq",
    "torch-fx-errors",
    "other-tools-techniques",
]
GENERAL_REASONS = [
    "no_degraded_layers",
    "degraded_ratio_over_limit",
    "no_judge_applies",
    "countermeasure_did_not_improve",
]
ALLOWED_FREE_NAMES = {"mct", "float_model", "representative_data_gen"}


def _all_ids():
    return [e["id"] for e in manual.list_entries()]


# --------------------------------------------------------------------------- structure


def test_required_entries_exist_with_right_kind_and_judge():
    entries = {e["id"]: e for e in manual.list_entries()}
    for entry_id, judge in REQUIRED_JUDGEABLE.items():
        assert entry_id in entries, entry_id
        assert entries[entry_id]["kind"] == "judgeable"
        assert entries[entry_id]["judge"] == judge
    for entry_id in REQUIRED_GENERAL:
        assert entry_id in entries, entry_id
        assert entries[entry_id]["kind"] == "general"
        assert entries[entry_id]["judge"] is None
    assert set(manual.MANUAL_IDS) == set(entries)
    assert len(entries) == len(manual.list_entries())  # no duplicates


def test_list_entries_shape():
    for e in manual.list_entries():
        assert set(e) == {"id", "title", "kind", "judge"}
        assert e["title"].strip()


@pytest.mark.parametrize("entry_id", _all_ids())
def test_entry_parses_and_has_all_sections(entry_id):
    entry = manual.get_entry(entry_id)
    assert entry is not None
    assert set(entry) >= {"id", "title", "kind", "judge", "markdown", "html", "snippets"}
    md = entry["markdown"]
    assert not md.startswith("---"), "front matter must not leak into the body"
    headings = manual.sections(md)
    positions = []
    for section in manual.REQUIRED_SECTIONS:
        assert section in headings, f"{entry_id}: missing section {section!r}"
        positions.append(headings.index(section))
    assert positions == sorted(positions), f"{entry_id}: sections out of order"
    # every required section has some text
    chunks = md.split("\n## ")
    for chunk in chunks[1:]:
        title, _, body = chunk.partition("\n")
        if title.strip() in manual.REQUIRED_SECTIONS:
            assert body.strip(), f"{entry_id}: empty section {title!r}"
    # at least one python snippet, and one inside "What to change"
    assert entry["snippets"], f"{entry_id}: no python snippet"
    change = md.split("## What to change", 1)[1].split("\n## ", 1)[0]
    assert "```python" in change, f"{entry_id}: no python snippet in 'What to change'"


@pytest.mark.parametrize("entry_id", _all_ids())
def test_entry_html(entry_id):
    entry = manual.get_entry(entry_id)
    html = entry["html"]
    assert "<h2" in html
    assert "<code" in html and "language-python" in html  # fenced_code is on
    assert "```" not in html
    assert "## " not in html


@pytest.mark.parametrize("entry_id", _all_ids())
def test_snippets_compile_and_use_only_allowed_free_names(entry_id):
    import ast
    import builtins

    for code in manual.get_entry(entry_id)["snippets"]:
        tree = ast.parse(code)
        compile(tree, entry_id, "exec")
        # names loaded but never bound in the snippet must be builtins or the allowed three
        bound, loaded = set(), set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded).add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bound.add((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bound.add(node.name)
        free = loaded - bound - set(dir(builtins))
        assert free <= ALLOWED_FREE_NAMES, f"{entry_id}: unexpected free names {free - ALLOWED_FREE_NAMES}"


def test_judge_and_reason_maps_point_at_existing_entries():
    ids = set(_all_ids())
    assert manual.JUDGE_TO_MANUAL == {judge: entry for entry, judge in REQUIRED_JUDGEABLE.items()}
    for target in manual.JUDGE_TO_MANUAL.values():
        assert target in ids
    assert set(manual.GENERAL_REASON_TO_MANUAL) == set(GENERAL_REASONS)
    for target in manual.GENERAL_REASON_TO_MANUAL.values():
        assert target in ids
        assert manual.get_entry(target)["kind"] == "general"
    assert manual.manual_for_judge("general") == "general-troubleshooting"
    assert manual.manual_for_reason("something-new") == "general-troubleshooting"


def test_get_entry_unknown_is_none():
    assert manual.get_entry("no-such-entry") is None
    with pytest.raises(KeyError):
        manual.entry_text("no-such-entry")


def test_entry_text_is_plain():
    text = manual.entry_text("outlier-removal")
    assert text.startswith("Outlier removal\n")
    assert "What to change" in text and "z_threshold" in text
    assert "```" not in text and "## " not in text


def test_cli_list(capsys):
    assert manual.cli_main([]) == 0
    out = capsys.readouterr().out
    for entry_id in _all_ids():
        assert entry_id in out


def test_cli_one_entry(capsys):
    assert manual.cli_main(["gptq"]) == 0
    out = capsys.readouterr().out
    assert "get_pytorch_gptq_config" in out
    # judge names are accepted as aliases
    assert manual.cli_main(["outlier_removal"]) == 0
    assert "z_threshold" in capsys.readouterr().out


def test_cli_unknown_id(capsys):
    assert manual.cli_main(["does-not-exist"]) == 2
    captured = capsys.readouterr()
    assert "does-not-exist" in captured.err
    assert captured.out == ""


def test_manual_does_not_import_torch_or_mct():
    code = (
        "import sys\n"
        "import tb_xquant_plugin.manual as m\n"
        "[m.get_entry(e['id']) for e in m.list_entries()]\n"
        "m.cli_main(['outlier-removal'])\n"
        "bad = [k for k in ('torch', 'model_compression_toolkit') if k in sys.modules]\n"
        "sys.exit(1 if bad else 0)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", code], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- snippets


def _snippet_cases():
    cases = []
    for e in manual.list_entries():
        for index, _ in enumerate(manual.get_entry(e["id"])["snippets"]):
            cases.append(pytest.param(e["id"], index, id=f"{e['id']}-{index}"))
    return cases


@pytest.fixture(scope="module")
def tiny_setup():
    pytest.importorskip("model_compression_toolkit")
    pytest.importorskip("sklearn")
    import torch
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    class TinyCNN(torch.nn.Module):
        """conv+BN (folded), SiLU (negative values), concat of two branches, linear head."""

        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
            self.bn1 = torch.nn.BatchNorm2d(8)
            self.act1 = torch.nn.SiLU()
            self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.act2 = torch.nn.ReLU()
            self.conv3 = torch.nn.Conv2d(8, 8, 1)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(16, 10)

        def forward(self, x):
            x = self.act1(self.bn1(self.conv1(x)))
            y = self.act2(self.conv2(x))
            z = self.conv3(y)
            x = torch.cat([y, z], dim=1)
            x = torch.flatten(self.pool(x), 1)
            return self.fc(x)

    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)  # N x 1 x 8 x 8
    labels = torch.tensor(digits.target, dtype=torch.long)

    model = TinyCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        idx = torch.randint(0, len(images), (64,), generator=generator)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images[idx]), labels[idx])
        loss.backward()
        optimizer.step()
    model.eval()

    calibration = images[:32]

    def representative_data_gen():
        # MCT style: a callable returning an iterable of lists of input batches
        for start in range(0, 32, 8):
            yield [calibration[start:start + 8]]

    return model, representative_data_gen


@pytest.fixture
def isolated_mct(tmp_path, monkeypatch):
    """Run a snippet in a scratch directory and undo MCT's global logger state afterwards."""
    mct = pytest.importorskip("model_compression_toolkit")
    monkeypatch.chdir(tmp_path)
    calls = []
    real_ptq = mct.ptq.pytorch_post_training_quantization
    real_gptq = mct.gptq.pytorch_gradient_post_training_quantization

    def spy(real):
        def wrapper(*args, **kwargs):
            model = args[0] if args else kwargs.get("in_module", kwargs.get("model"))
            calls.append(model)
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(mct.ptq, "pytorch_post_training_quantization", spy(real_ptq))
    monkeypatch.setattr(mct.gptq, "pytorch_gradient_post_training_quantization", spy(real_gptq))
    # MCT 2.6.1 uses one shared CoreConfig() as the default argument; a mixed-precision call without
    # core_config flags it and breaks every later call in the process. Snippets must not do that.
    shared_defaults = [d for f in (real_ptq, real_gptq) for d in (f.__defaults__ or ())
                       if isinstance(d, mct.core.CoreConfig)]
    with mct_logging_restored():
        try:
            yield mct, calls
            polluted = [d for d in shared_defaults if d.is_mixed_precision_enabled]
            assert not polluted, "snippet ran mixed precision without an explicit core_config"
        finally:
            for d in shared_defaults:
                d.mixed_precision_config._is_mixed_precision_enabled = False


@pytest.mark.parametrize("entry_id,index", _snippet_cases())
def test_snippet_executes(entry_id, index, tiny_setup, isolated_mct):
    mct, calls = isolated_mct
    model, representative_data_gen = tiny_setup
    float_model = copy.deepcopy(model)
    code = manual.get_entry(entry_id)["snippets"][index]
    namespace = {"mct": mct, "float_model": float_model,
                 "representative_data_gen": representative_data_gen, "__name__": "__snippet__"}
    started = time.monotonic()
    exec(compile(code, f"<{entry_id} snippet {index}>", "exec"), namespace)
    assert time.monotonic() - started < 60, f"{entry_id} snippet {index} is too slow for the test budget"


# --------------------------------------------------------------------------- judgeable entries on the demo's models

# Each judgeable entry is about one demo scenario (demo/generate.py); its "What to change" snippet runs on that
# scenario's float model, built and trained as the demo does, and must change MCT's result the way it says.
JUDGEABLE_SCENARIO = {
    "outlier-removal": "outlier",
    "shift-negative-activation": "shift_negative",
    "unbalanced-concatenation": "unbalanced_concat",
    "mixed-precision-model-output-loss": "mixed_precision",
}


@pytest.fixture(scope="module")
def demo_models():
    """``(model(scenario) -> a fresh copy of the scenario's float model, DigitsData)``"""
    pytest.importorskip("model_compression_toolkit")
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")
    from demo import generate, models

    data = models.DigitsData()
    builders = {"outlier": generate.build_outlier, "shift_negative": generate.build_shift_negative,
                "unbalanced_concat": generate.build_unbalanced, "mixed_precision": generate.build_mixed_precision}
    assert set(builders) == set(JUDGEABLE_SCENARIO.values())
    built = {}

    def model(scenario):
        if scenario not in built:
            built[scenario] = builders[scenario](data)
        return copy.deepcopy(built[scenario])

    return model, data


def change_snippet(entry_id):
    md = manual.get_entry(entry_id)["markdown"]
    change = md.split("## What to change", 1)[1].split("\n## ", 1)[0]
    return manual.extract_snippets(change)[0]


def run_change_snippet(entry_id, mct, calls, float_model, representative_data_gen):
    """Execute the entry's first 'What to change' snippet; it must quantize float_model and bind quantized_model."""
    namespace = {"mct": mct, "float_model": float_model,
                 "representative_data_gen": representative_data_gen, "__name__": "__snippet__"}
    exec(compile(change_snippet(entry_id), f"<{entry_id} change snippet>", "exec"), namespace)
    assert any(m is float_model for m in calls), f"{entry_id}: PTQ was not run on float_model"
    assert namespace.get("quantized_model") is not None, f"{entry_id}: snippet should bind quantized_model"
    return namespace


def ptq(mct, model, representative_data_gen, core_config=None, **kwargs):
    quantized, _ = mct.ptq.pytorch_post_training_quantization(
        model, representative_data_gen, core_config=core_config or mct.core.CoreConfig(), **kwargs)
    return quantized


def child_names(model):
    return [name for name, _ in model.named_children()]


def activation_thresholds(quantized):
    """layer -> the threshold of its activation quantizer in an MCT-quantized model."""
    suffix = "_activation_holder_quantizer"
    return {name[: -len(suffix)]: float(mod.activation_holder_quantizer.threshold_np)
            for name, mod in quantized.named_children()
            if name.endswith(suffix) and getattr(mod.activation_holder_quantizer, "threshold_np", None) is not None}


def stage_graph_nodes(log_root, stage):
    """short node name -> NodeDef of an MCT stage graph written under ``mct.set_log_folder(log_root)``."""
    paths = glob.glob(os.path.join(str(log_root), "*", "tensorboard_logs", stage, "*tfevents*"))
    assert paths, f"MCT wrote no {stage} stage log under {log_root}"
    return stage_nodes(paths)


def test_outlier_removal_change_sets_z_threshold(demo_models, isolated_mct, tmp_path):
    mct, calls = isolated_mct
    model, data = demo_models
    float_model = model(JUDGEABLE_SCENARIO["outlier-removal"])
    before = activation_thresholds(ptq(mct, copy.deepcopy(float_model), data.representative()))
    mct.set_log_folder(str(tmp_path / "mct_logs"))
    ns = run_change_snippet("outlier-removal", mct, calls, float_model, data.representative())
    z = ns["core_config"].quantization_config.z_threshold
    assert math.isfinite(z)
    # MCT's stage graph records the z_threshold for the activations it quantized
    nodes = stage_graph_nodes(tmp_path / "mct_logs", "after_statistics_correction")
    zs = [n.attr["z_threshold"].f for name, n in nodes.items() if name.endswith(".activation")]
    assert zs and all(v == pytest.approx(z, rel=1e-6) for v in zs), zs
    # and the outliers were cut: a narrower range for some activation, a wider one for none
    after = activation_thresholds(ns["quantized_model"])
    assert set(after) == set(before)
    assert [n for n in after if after[n] < before[n]], (before, after)
    assert all(after[n] <= before[n] for n in after), (before, after)


def test_shift_negative_change_inserts_the_shift(demo_models, isolated_mct):
    mct, calls = isolated_mct
    torch = pytest.importorskip("torch")
    model, data = demo_models
    float_model = model(JUDGEABLE_SCENARIO["shift-negative-activation"])
    negative = {name for name, m in float_model.named_modules()
                if isinstance(m, (torch.nn.SiLU, torch.nn.GELU, torch.nn.Hardswish, torch.nn.PReLU, torch.nn.ELU))}
    # the scenario as the demo quantizes it: correction off, nothing shifted
    off = mct.core.CoreConfig(mct.core.QuantizationConfig(shift_negative_activation_correction=False))
    assert not [n for n in child_names(ptq(mct, copy.deepcopy(float_model), data.representative(), off))
                if "_post_add" in n]
    ns = run_change_snippet("shift-negative-activation", mct, calls, float_model, data.representative())
    assert ns["core_config"].quantization_config.shift_negative_activation_correction is True
    shifted = [n for n in child_names(ns["quantized_model"]) if "_post_add" in n]
    assert shifted and ns["shifted"] == shifted
    assert {n.split("_post_add", 1)[0] for n in shifted} <= negative


def shift_negative_ptq(mct, data, float_model, **config):
    core = mct.core.CoreConfig(mct.core.QuantizationConfig(**config))
    return ptq(mct, copy.deepcopy(float_model), data.representative(), core)


def test_shift_negative_threshold_recalculation_claim(demo_models, isolated_mct):
    """The entry says recalculation stops MCT 2.6.1 with an AssertionError whenever the shift is applied."""
    mct, _ = isolated_mct
    md = manual.get_entry("shift-negative-activation")["markdown"]
    row = next(line for line in md.splitlines() if line.startswith("| `shift_negative_threshold_recalculation`"))
    assert "AssertionError" in row and "whenever the shift was actually applied" in row
    model, data = demo_models
    float_model = model(JUDGEABLE_SCENARIO["shift-negative-activation"])
    # with the default ratio MCT shifts an activation of this model ...
    assert [n for n in child_names(shift_negative_ptq(mct, data, float_model)) if "_post_add" in n]
    # ... and then recalculation fails with a bare AssertionError
    with pytest.raises(AssertionError):
        shift_negative_ptq(mct, data, float_model, shift_negative_threshold_recalculation=True)
    # with a ratio so small that nothing is shifted, recalculation has nothing to do and passes
    quiet = shift_negative_ptq(mct, data, float_model, shift_negative_ratio=0.01,
                               shift_negative_threshold_recalculation=True)
    assert not [n for n in child_names(quiet) if "_post_add" in n]


def test_shift_negative_ratio_valueerror_claim(demo_models, isolated_mct):
    """The entry warns that a raised shift_negative_ratio fails MCT 2.6.1's graph check on such a model."""
    mct, _ = isolated_mct
    md = manual.get_entry("shift-negative-activation")["markdown"]
    assert "is not\na valid linear chain" in md or "is not a valid linear chain" in md
    ratio = float(re.search(r"from\s+`shift_negative_ratio=([0-9.]+)` on", md).group(1))
    model, data = demo_models
    with pytest.raises(ValueError, match="not a valid linear chain"):
        shift_negative_ptq(mct, data, model(JUDGEABLE_SCENARIO["shift-negative-activation"]),
                           shift_negative_ratio=ratio)


def test_unbalanced_concatenation_change_keeps_layers_apart(demo_models, isolated_mct):
    mct, calls = isolated_mct
    model, data = demo_models
    float_model = model(JUDGEABLE_SCENARIO["unbalanced-concatenation"])
    default = child_names(ptq(mct, copy.deepcopy(float_model), data.representative()))
    assert [n for n in default if n.endswith("_collapsed")], "the demo model has a layer MCT collapses by default"
    ns = run_change_snippet("unbalanced-concatenation", mct, calls, float_model, data.representative())
    separate = child_names(ns["quantized_model"])
    assert not [n for n in separate if "_collapsed" in n], separate
    # the layers kept apart each quantize their own output
    holders = [n for n in separate if n.endswith("_activation_holder_quantizer")]
    assert len(holders) > len([n for n in default if n.endswith("_activation_holder_quantizer")])


def weights_bytes(quantized):
    return sum(m.layer.weight.numel() * q.num_bits / 8.0 for _, m in quantized.named_children()
               for attr, q in (getattr(m, "weights_quantizers", None) or {}).items() if attr == "weight")


def test_mixed_precision_change_lifts_the_last_layer(demo_models, isolated_mct, tmp_path):
    mct, calls = isolated_mct
    from model_compression_toolkit.xquant import XQuantConfig

    from tb_xquant_plugin.mct_run import quantized_bit_widths

    limit = XQuantConfig(report_dir=str(tmp_path)).threshold_bitwidth_mixed_precision_with_model_output_loss_objective
    model, data = demo_models
    float_model = model(JUDGEABLE_SCENARIO["mixed-precision-model-output-loss"])
    ns = run_change_snippet("mixed-precision-model-output-loss", mct, calls, float_model, data.representative())
    # before: the target the snippet starts from, with MCT's default search, ends in the judge's verdict
    before = ptq(mct, copy.deepcopy(float_model), data.representative(),
                 mct.core.CoreConfig(mixed_precision_config=mct.core.MixedPrecisionQuantizationConfig()),
                 target_resource_utilization=mct.core.ResourceUtilization(weights_memory=ns["old_target"]))
    last_before = quantized_bit_widths(before)["last_layer"]
    assert last_before["name"] == ns["last_layer"]
    assert last_before["weights_nbits"] <= limit
    # after: the last layer keeps more bits, within the new target
    last_after = quantized_bit_widths(ns["quantized_model"])["last_layer"]
    assert last_after["name"] == ns["last_layer"]
    assert last_after["weights_nbits"] > limit
    pinned = ns["bit_width_config"].manual_weights_bit_width_selection_list[0].bit_width
    assert last_after["weights_nbits"] == pinned
    assert weights_bytes(ns["quantized_model"]) <= ns["new_target"]


def test_mixed_precision_verdict_snippet_runs_and_lifts_the_last_layer(demo_models, isolated_mct, demo_reports):
    """The snippet the panel pastes beside the computed verdict, filled with the demo report's numbers (layer,
    weights_memory, width to pin), runs on the scenario's model and keeps the last layer above the threshold."""
    mct, calls = isolated_mct
    from tb_xquant_plugin.judges.run import analyse
    from tb_xquant_plugin.mct_run import quantized_bit_widths

    report = demo_reports[JUDGEABLE_SCENARIO["mixed-precision-model-output-loss"]]
    verdict = next(v for v in analyse(report).verdicts
                   if v.judge == "mixed_precision_with_model_output_loss_objective" and v.source == "computed")
    code = verdict.snippet
    assert "WEIGHTS_MEMORY_BYTES" not in code, "the demo manifest records the weights_memory target"
    model, data = demo_models
    float_model = model(JUDGEABLE_SCENARIO["mixed-precision-model-output-loss"])
    namespace = {"float_model": float_model, "representative_data_gen": data.representative(), "__name__": "__v__"}
    exec(compile(code, "<mixed precision verdict snippet>", "exec"), namespace)
    assert any(m is float_model for m in calls)
    last = quantized_bit_widths(namespace["quantized_model"])["last_layer"]
    assert last["name"] == verdict.layers[0]
    assert last["weights_nbits"] == verdict.numbers["pin_bits"] > verdict.numbers["threshold"]
    assert weights_bytes(namespace["quantized_model"]) <= namespace["new_target"]


def test_mixed_precision_inline_edit_rule(demo_models, isolated_mct):
    """The network-editor alternative the entry writes inline (not as a snippet) pins the last layer too."""
    mct, _ = isolated_mct
    from tb_xquant_plugin.mct_run import quantized_bit_widths

    md = manual.get_entry("mixed-precision-model-output-loss")["markdown"]
    code = re.search(r"`(EditRule\([^`]*\))`", md).group(1)
    assert "DebugConfig(network_editor=[...])" in md
    editor = mct.core.network_editor
    model, data = demo_models
    float_model = model(JUDGEABLE_SCENARIO["mixed-precision-model-output-loss"])
    import torch

    last_layer = [name for name, m in float_model.named_modules()
                  if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))][-1].replace(".", "_")
    rule = eval(code, {"EditRule": editor.EditRule, "NodeNameFilter": editor.NodeNameFilter,
                       "ChangeCandidatesWeightsQuantConfigAttr": editor.ChangeCandidatesWeightsQuantConfigAttr,
                       "last_layer": last_layer})
    bits = rule.action.kwargs["weights_n_bits"]
    # a target with room for the whole last layer at that width, but not for every layer at 8 bits
    budget = mct.core.pytorch_resource_utilization_data(float_model, data.representative()).weights_memory
    target = mct.core.ResourceUtilization(weights_memory=0.95 * budget)

    def last_bits(debug_config):
        core = mct.core.CoreConfig(mixed_precision_config=mct.core.MixedPrecisionQuantizationConfig(),
                                   debug_config=debug_config)
        q = ptq(mct, copy.deepcopy(float_model), data.representative(), core, target_resource_utilization=target)
        return quantized_bit_widths(q)["last_layer"]["weights_nbits"]

    assert last_bits(mct.core.DebugConfig()) != bits  # the search alone gives it another width here
    assert last_bits(mct.core.DebugConfig(network_editor=[rule])) == bits


def test_torch_fx_snippet_really_fails_to_trace(tiny_setup, isolated_mct, capsys):
    """The entry's untraceable model must still fail in MCT (the snippet raises if it is quantized)."""
    mct, _ = isolated_mct
    model, representative_data_gen = tiny_setup
    code = change_snippet("torch-fx-errors")
    namespace = {"mct": mct, "float_model": copy.deepcopy(model),
                 "representative_data_gen": representative_data_gen, "__name__": "__snippet__"}
    exec(compile(code, "<torch-fx-errors change snippet>", "exec"), namespace)
    out = capsys.readouterr().out
    assert "as expected: Error parsing model with torch.fx" in out, out
    assert namespace.get("quantized_model") is not None  # the rewritten model quantizes
