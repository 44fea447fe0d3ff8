"""The demo's Keras scenarios: small Keras models trained on scikit-learn's digits for a few seconds, quantized
with MCT 2.6.1 for Keras and reported with ``xquant_report_keras_experimental`` (through tb-xquant's manifest
wrapper).  Needs TensorFlow 2.15 (MCT 2.6.1 turns Keras off for >= 2.16): run it in ``.venv-keras``

    .venv-keras/bin/python -m demo.keras_demo --out demo_logs [keras_outlier keras_shift_negative]

``python -m demo.generate`` does that for you (demo/keras_env.py finds the interpreter).  Each scenario folder
has the PyTorch scenarios' layout: ``mct_logs/`` (``mct.set_log_folder``) and ``xquant_report/``.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import logging
import os
import shutil
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from demo.keras_env import KERAS_SCENARIOS  # noqa: E402

BATCH = 32
L = tf.keras.layers


class DigitsData:
    """Digits as NHWC (8x8x1) in [0, 1]: the PyTorch demo's split (demo/models.py), same permutation."""

    def __init__(self, seed: int = 0):
        x, y = load_digits(return_X_y=True)
        order = np.random.default_rng(seed).permutation(len(x))
        x = (x[order] / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
        y = y[order].astype(np.int64)
        self.x_train, self.y_train = x[:1300], y[:1300]
        self.x_val, self.y_val = x[1300:], y[1300:]

    def representative(self, n_batches: int = 8, scale: float = 1.0) -> Callable:
        """MCT-style representative dataset: a callable yielding lists of input batches."""
        xs = self.x_train

        def gen():
            for i in range(n_batches):
                yield [xs[i * BATCH:(i + 1) * BATCH] * scale]

        return gen

    def validation(self, n_batches: int = 8) -> Callable:
        xs = self.x_val

        def gen():
            for i in range(n_batches):
                yield [xs[i * BATCH:(i + 1) * BATCH]]

        return gen

    def accuracy(self, model) -> float:
        logits = model(self.x_val, training=False)
        if isinstance(logits, (list, tuple)):
            logits = logits[0]
        return float(np.mean(np.argmax(np.asarray(logits), axis=1) == self.y_val))


def seed(value: int = 0) -> None:
    """The same initialisation and training order every run (bit-identical models on one machine)."""
    tf.keras.utils.set_random_seed(value)
    with contextlib.suppress(Exception):
        tf.config.experimental.enable_op_determinism()


def train(model, data: DigitsData, epochs: int = 12, value: int = 0):
    seed(value)
    model.compile(optimizer=tf.keras.optimizers.Adam(5e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=0, shuffle=True)
    return model


def bn(name: str):
    # PyTorch's BatchNorm momentum (0.1 = Keras 0.9): Keras' default 0.99 leaves the moving statistics far from
    # the trained ones after a few hundred steps.
    return L.BatchNormalization(momentum=0.9, name=name)


def conv_block(h, name: str, filters: int, kernel: int = 3, act: Optional[str] = "relu"):
    h = L.Conv2D(filters, kernel, padding="same", name=name + "_conv")(h)
    h = bn(name + "_bn")(h)
    return L.Activation(act, name=name + "_act")(h) if act else h


def bottleneck_net(width: int = 16):
    """Conv blocks with a linear bottleneck (conv + BN, no activation), as in MobileNetV2 (demo/models.py)."""
    seed(0)
    inp = L.Input((8, 8, 1), name="image")
    h = conv_block(inp, "stem", width)
    h = conv_block(h, "pre1", width)
    h = conv_block(h, "pre2", width)
    h = conv_block(h, "expand", 2 * width, kernel=1)
    h = conv_block(h, "project", 2 * width, kernel=1, act=None)
    h = conv_block(h, "mix", 2 * width)
    h = L.GlobalAveragePooling2D(name="pool")(h)
    return tf.keras.Model(inp, L.Dense(10, name="head")(h), name="BottleneckNet")


def negative_activation_net(width: int = 16):
    """Activations whose outputs go negative, in their Keras forms: an ``Activation('swish')`` layer, a
    ``Conv2D(activation='gelu')`` (MCT splits it into ``mid_conv`` + ``mid_conv_post_activation``), an ``ELU``
    and a ``PReLU`` layer."""
    seed(0)
    inp = L.Input((8, 8, 1), name="image")
    h = conv_block(inp, "stem", width, act="swish")
    h = L.Conv2D(2 * width, 3, padding="same", activation="gelu", name="mid_conv")(h)
    h = L.Conv2D(2 * width, 3, padding="same", name="deep_conv")(h)
    h = L.ELU(name="deep_act")(h)
    h = L.GlobalAveragePooling2D(name="pool")(h)
    h = L.Dense(32, name="fc1")(h)
    h = L.PReLU(name="fc1_act")(h)
    return tf.keras.Model(inp, L.Dense(10, name="head")(h), name="NegActNet")


def build_outlier(data: DigitsData):
    """The outlier scenario's float model (demo/generate.py's, in Keras): one channel of the expansion block
    gets a large offset and spread, so its ReLU output is quantized with a coarse 8-bit step; the same in the
    linear bottleneck, whose own output then carries the outliers; the next convolutions ignore that channel,
    so the float model's accuracy is unchanged."""
    model = train(bottleneck_net(), data)
    for name in ("expand_bn", "project_bn"):
        gamma, beta, mean, var = model.get_layer(name).get_weights()
        gamma[0] *= 10.0
        beta[0] = 150.0
        model.get_layer(name).set_weights([gamma, beta, mean, var])
    for name in ("project_conv", "mix_conv"):
        kernel, bias = model.get_layer(name).get_weights()
        kernel[:, :, 0, :] = 0.0  # (kh, kw, in, out): input channel 0
        model.get_layer(name).set_weights([kernel, bias])
    return model


def build_shift_negative(data: DigitsData):
    return train(negative_activation_net(), data)


def weights_sha1(model) -> str:
    """A fingerprint of the float model's weights (the tests rebuild the model and compare)."""
    h = hashlib.sha1()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return h.hexdigest()


def quantize_and_report(float_model, data: DigitsData, folder: str, *, core_config=None,
                        extra: Optional[dict] = None, model_name: Optional[str] = None):
    """PTQ with MCT for Keras after ``mct.set_log_folder(folder/mct_logs)``, then the XQuant report (and
    tb-xquant's manifest) into ``folder/xquant_report``.  Returns the quantized model."""
    import model_compression_toolkit as mct
    from model_compression_toolkit.xquant import XQuantConfig

    from tb_xquant_plugin.mct_run import xquant_report_keras_with_manifest

    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    mct.set_log_folder(os.path.join(folder, "mct_logs"))
    kwargs = {"core_config": core_config} if core_config is not None else {}
    quantized, _ = mct.ptq.keras_post_training_quantization(float_model, data.representative(), **kwargs)
    cfg = XQuantConfig(report_dir=os.path.join(folder, "xquant_report"))
    xquant_report_keras_with_manifest(float_model, quantized, data.representative(), data.validation(), cfg,
                                      model_name=model_name or float_model.name, evaluate=data.accuracy,
                                      extra=dict(extra or {}, float_weights_sha1=weights_sha1(float_model)))
    return quantized


def run_scenario(name: str, out_root: str, data: DigitsData) -> None:
    import model_compression_toolkit as mct

    folder = os.path.join(out_root, name)
    extra = {"scenario": name, "description": KERAS_SCENARIOS[name], "framework": "keras"}
    if name == "keras_outlier":
        quantize_and_report(build_outlier(data), data, folder, extra=extra)
    elif name == "keras_shift_negative":
        core = mct.core.CoreConfig(mct.core.QuantizationConfig(shift_negative_activation_correction=False))
        quantize_and_report(build_shift_negative(data), data, folder, core_config=core,
                            extra=dict(extra, quantization_config={"shift_negative_activation_correction": False}))
    else:
        raise SystemExit("unknown Keras scenario %r; choose from %s" % (name, ", ".join(KERAS_SCENARIOS)))


def quiet() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)
    tf.get_logger().setLevel(logging.ERROR)


def generate(out_root: str, names: List[str]) -> Dict[str, float]:
    quiet()
    data = DigitsData()
    timings = {}
    for name in names:
        t0 = time.time()
        run_scenario(name, out_root, data)
        timings[name] = time.time() - t0
    return timings


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_logs")
    p.add_argument("scenarios", nargs="*", help="subset of: " + ", ".join(KERAS_SCENARIOS))
    args = p.parse_args(argv)
    unknown = [n for n in args.scenarios if n not in KERAS_SCENARIOS]
    if unknown:
        p.error("unknown Keras scenario(s) %s; choose from %s" % (", ".join(map(repr, unknown)),
                                                                   ", ".join(KERAS_SCENARIOS)))
    sink = io.StringIO()
    verbose = os.environ.get("TB_XQUANT_DEMO_VERBOSE") == "1"
    # MCT's logger prints where its log files go, and its progress bars go to stderr
    with contextlib.redirect_stderr(sink) if not verbose else contextlib.nullcontext(), \
            contextlib.redirect_stdout(sink) if not verbose else contextlib.nullcontext():
        timings = generate(args.out, args.scenarios or list(KERAS_SCENARIOS))
    for n, t in timings.items():
        print("%-18s %5.1fs  %s" % (n, t, KERAS_SCENARIOS[n]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
