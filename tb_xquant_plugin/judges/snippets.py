"""Code to paste, built from values: names only inside string literals made by ``repr()``, numbers only as
formatted numbers, comments never hold a model-derived string.  A name with a newline or a quote
therefore stays a string; ``tests/test_snippets_hostile.py`` parses every snippet of a hostile report."""
from __future__ import annotations

import math
from typing import Any, Optional

from tb_xquant_plugin.model.report import MCT_KERAS, MCT_PYTORCH

# MCT's post-training quantization entry point per toolchain; a toolchain not listed gets no MCT snippet.
PTQ_FUNCTION = {MCT_PYTORCH: "pytorch_post_training_quantization", MCT_KERAS: "keras_post_training_quantization"}


def ptq_call(toolchain: str) -> Optional[str]:
    """``mct.ptq.<function>`` for the toolchain, or None when MCT does not quantize it."""
    fn = PTQ_FUNCTION.get(toolchain)
    return "mct.ptq.%s" % fn if fn else None


def py_str(value: Any) -> str:
    """A Python string literal of ``value``."""
    return repr(str(value))


def py_num(value: Any) -> str:
    """A Python number literal (bools as True / False); ValueError for anything else or a non-finite number."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float) and math.isfinite(value):
        return repr(float(value))
    raise ValueError("not a finite number: %r" % (value,))


def quantization_config_args(**fields: Any) -> str:
    """``name=value, ...`` of QuantizationConfig fields (the names are this module's callers' own)."""
    for k in fields:
        if not k.isidentifier():
            raise ValueError("not a field name: %r" % k)
    return ", ".join("%s=%s" % (k, py_num(v)) for k, v in fields.items())


def core_config_snippet(toolchain: str, **fields: Any) -> Optional[str]:
    """A runnable MCT 2.6.1 snippet that re-quantizes with the given QuantizationConfig fields (None when the
    toolchain is not MCT's)."""
    call = ptq_call(toolchain)
    if call is None:
        return None
    return (
        "import model_compression_toolkit as mct\n\n"
        "core_config = mct.core.CoreConfig(mct.core.QuantizationConfig(%s))\n"
        "quantized_model, quantization_info = %s(\n"
        "    float_model, representative_data_gen, core_config=core_config)\n" % (quantization_config_args(**fields), call)
    )
