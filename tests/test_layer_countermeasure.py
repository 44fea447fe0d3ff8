"""The per-layer countermeasure (``layer_activation``: activation quantization fields set on named layers through
MCT's network editor): the snippet a user pastes and the configuration the study applies are the same rules, names
stay string literals, and the outlier judge proposes it only when the global z_threshold would move other layers."""
from __future__ import annotations

import ast
import types

import pytest

from tb_xquant_plugin.judges import snippets
from tb_xquant_plugin.model import countermeasure as C
from tb_xquant_plugin.model.report import MCT_KERAS, MCT_PYTORCH, ONNX_ORT

HOSTILE = ["a'b", 'c"\nimport os; os.system("x")', "features_7_0_block_3_0_bn"]


def _rules(core_config):
    """(node name, {field: value}) of each network-editor rule of an MCT CoreConfig."""
    out = []
    for rule in core_config.debug_config.network_editor:
        assert type(rule.filter).__name__ == "NodeNameFilter"
        assert type(rule.action).__name__ == "ChangeCandidatesActivationQuantConfigAttr"
        out.append((rule.filter.node_name, dict(rule.action.kwargs)))
    return out


def _run_snippet(code):
    """Executes a snippet with the real MCT, the PTQ call replaced by one that records its core_config."""
    import model_compression_toolkit as mct

    seen = {}

    def ptq(model, data, core_config=None, **kw):
        seen["core_config"], seen["kw"] = core_config, kw
        return "quantized", None

    fake_ptq = types.SimpleNamespace(pytorch_post_training_quantization=ptq, keras_post_training_quantization=ptq)
    fake = types.SimpleNamespace(core=mct.core, ptq=fake_ptq)
    ns = {"mct": fake, "float_model": object(), "representative_data_gen": lambda: iter(())}
    exec(compile(code.replace("import model_compression_toolkit as mct\n", ""), "<snippet>", "exec"), ns)
    return seen


@pytest.mark.parametrize("toolchain", [MCT_PYTORCH, MCT_KERAS])
def test_snippet_and_study_set_the_same_rules(toolchain):
    from tb_xquant_plugin.mct_study import core_config_with

    cm = C.layer_activation(HOSTILE, z_threshold=3.62)
    code = snippets.render(cm, toolchain)
    ast.parse(code)  # names with quotes and newlines stay string literals
    assert "os.system" not in code.replace(repr(HOSTILE[1]), "")
    pasted = _run_snippet(code)["core_config"]
    applied = core_config_with(cm)
    expected = [(name, {"z_threshold": 3.62}) for name in HOSTILE]
    assert _rules(pasted) == expected and _rules(applied) == expected
    # the rest of the configuration is MCT's default in both: only these layers change
    assert pasted.quantization_config.z_threshold == applied.quantization_config.z_threshold == float("inf")


def test_combined_with_a_pin_and_a_global_field():
    from tb_xquant_plugin.mct_study import core_config_with

    cm = C.combine([C.layer_activation(["x"], z_threshold=4.0),
                    C.quantization_config(shift_negative_activation_correction=True)])
    assert C.describe(cm) == "shift_negative_activation_correction=True + z_threshold=4.0 on x"
    seen = _run_snippet(snippets.render(cm, MCT_PYTORCH))["core_config"]
    applied = core_config_with(cm)
    for core in (seen, applied):
        assert _rules(core) == [("x", {"z_threshold": 4.0})]
        assert core.quantization_config.shift_negative_activation_correction is True


def test_invalid_layer_countermeasures_are_refused():
    with pytest.raises(ValueError):
        C.layer_activation([], z_threshold=3.0)
    with pytest.raises(ValueError):
        C.layer_activation(["x"], z_threshold=float("nan"))
    with pytest.raises(ValueError):
        C.layer_activation(["x"], **{"z threshold": 3.0})
    assert snippets.render(C.layer_activation(["x"], z_threshold=3.0), ONNX_ORT) is None  # no MCT run to edit


def test_outlier_judge_scopes_its_z_threshold(demo_reports):
    """On the demo, the outlier verdict's global z_threshold would move three healthy activations: the
    countermeasure is the same z on the outlier layers; MCT's own verdict keeps the global one and says so."""
    from tb_xquant_plugin.judges.run import analyse

    a = analyse(demo_reports["outlier"])
    (v,) = [v for v in a.verdicts if v.judge == "outlier_removal" and v.source == "computed"]
    side = v.numbers["side_effects"]
    assert side["changed"] >= 1 and v.countermeasure["kind"] == C.LAYER_ACTIVATION
    assert v.layers[0] in v.countermeasure["layers"]
    assert not set(side["layers"]) & set(v.countermeasure["layers"])
    assert v.snippet == snippets.render(v.countermeasure, MCT_PYTORCH)
    (m,) = [m for m in a.verdicts if m.judge == "outlier_removal" and m.source == "mct"]
    assert "tb-xquant's verdict sets it on %s only" % ", ".join(v.countermeasure["layers"]) in m.message


def test_a_far_tail_on_a_starved_body_is_real():
    """The classification behind the outlier verdicts: a clip that cuts a starved body's threshold three halvings
    or more is a real outlier tail even when the gain measured inside the z window stays under MIN_GAIN_DB (the
    EfficientNet-B0 300x channel: 2048 -> 256, 15.4 -> 20.2 dB); one halving with the same gain is a normal tail
    (its squeeze-excitation products)."""
    from tb_xquant_plugin.judges import activation_noise as AN

    def effect(t0, t1, body0_db, body1_db, total_ratio=50.0, tail=0.0003):
        power = 1.0
        n0 = AN.Noise(t0, True, 1e-2, power / 10 ** (body0_db / 10), 0.0)
        n1 = AN.Noise(t1, True, 1e-2 * total_ratio, power / 10 ** (body1_db / 10), 1.0)
        return AN.ZEffect(18.0, 8, "MSE", n0, n1, tail, power)

    assert AN.classify(effect(2048.0, 256.0, 15.4, 20.2), 1.0) == AN.REAL_OUTLIER
    assert AN.classify(effect(8.0, 4.0, 20.3, 26.3), 1.0) == AN.NORMAL_TAIL
    assert AN.classify(effect(2048.0, 256.0, 31.0, 33.0), 1.0) == AN.NORMAL_TAIL  # not starved: nothing to gain
    assert AN.classify(effect(2048.0, 256.0, 15.4, 20.2, tail=0.2), 1.0) == AN.NORMAL_TAIL  # not a tail
    assert AN.classify(effect(256.0, 8.0, 6.0, 28.7), 1.0) == AN.REAL_OUTLIER  # the gain alone (ResNet18's)
