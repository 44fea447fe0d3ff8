"""Tests of the troubleshooting manual (tb_xquant_plugin.manual).

The structural tests need only the standard library and ``markdown``.
The snippet tests execute every ```python block of every entry against a tiny
PyTorch CNN (1x8x8 inputs, briefly trained on sklearn's digits) with MCT 2.6.1;
they are skipped when MCT is not installed.
"""

import copy
import logging
import os
import subprocess
import sys
import time

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

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
    from model_compression_toolkit.logger import Logger

    monkeypatch.chdir(tmp_path)
    logger = logging.getLogger("Model Compression Toolkit")
    handlers_before = list(logger.handlers)
    log_path_before = Logger.LOG_PATH

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
    try:
        yield mct, calls
        polluted = [d for d in shared_defaults if d.is_mixed_precision_enabled]
        assert not polluted, "snippet ran mixed precision without an explicit core_config"
    finally:
        for d in shared_defaults:
            d.mixed_precision_config._is_mixed_precision_enabled = False
        for handler in list(logger.handlers):
            if handler not in handlers_before:
                logger.removeHandler(handler)
                handler.close()
        Logger.LOG_PATH = log_path_before
        try:
            import matplotlib.pyplot as plt
            plt.close("all")
        except Exception:  # pragma: no cover
            pass


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


@pytest.mark.parametrize("entry_id", list(REQUIRED_JUDGEABLE))
def test_judgeable_change_snippet_runs_ptq_on_the_model(entry_id, tiny_setup, isolated_mct):
    """The first snippet of 'What to change' must quantize the given float_model."""
    mct, calls = isolated_mct
    model, representative_data_gen = tiny_setup
    md = manual.get_entry(entry_id)["markdown"]
    change = md.split("## What to change", 1)[1].split("\n## ", 1)[0]
    code = manual.extract_snippets(change)[0]
    float_model = copy.deepcopy(model)
    namespace = {"mct": mct, "float_model": float_model,
                 "representative_data_gen": representative_data_gen, "__name__": "__snippet__"}
    exec(compile(code, f"<{entry_id} change snippet>", "exec"), namespace)
    assert any(m is float_model for m in calls), f"{entry_id}: PTQ was not run on float_model"
    quantized = namespace.get("quantized_model")
    assert quantized is not None, f"{entry_id}: snippet should bind quantized_model"
    import torch
    x = next(iter(representative_data_gen()))[0]
    device = next(quantized.parameters()).device
    with torch.no_grad():
        out = quantized(x.to(device))
    assert tuple(out.shape) == (x.shape[0], 10)
    assert torch.isfinite(out).all()
