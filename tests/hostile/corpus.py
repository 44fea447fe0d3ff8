"""Hostile logdirs for issue 14, built in a tmp dir from copies of the real MCT demo output.

``build(demo_logdir, root)`` writes ``root/logdir`` (the logdir served) and ``root/outside`` (files the
logdir links to; every one of them holds :data:`MARKER`, which must never appear in an answer).  The logdir
holds:

* three untouched copies of demo scenarios (:data:`GOOD`, under their demo names): they must keep answering as usual;
* one folder per :class:`Case` (``<case>/xquant_report`` is a copied scenario with one thing made hostile),
  or a few entries at the logdir's root for the cases that are about the logdir itself (symlink loops).

The cases come in the classes of the issue (:data:`CLASSES`).  The hostile *parameters* (URL queries, CLI
flags) are lists here too: :data:`URL_PARAMS`, :data:`URL_OTHER`, :data:`CLI_FLAGS`.

Cases that TensorBoard's Python event multiplexer (``--load_fast=false``) cannot survive carry
``multiplexer=False``: its directory walk follows symbolic links without end (and through all of ``/usr``), it
opens a FIFO and blocks its reload thread, and its reloader thread dies on a folder name that is not UTF-8.  That
is TensorBoard's own code, not the plugin's; the Rust data server (``--load_fast=true``, TensorBoard's default
when installed) survives them all.  ``build(..., for_multiplexer=True)`` leaves them out."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import struct
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

MARKER = "TBXQ-OUTSIDE-9d41c7"  # in every file outside the logdir; no answer may ever contain it
INJECTED = "os.system('echo TBXQ-INJECTED')"  # what an injected name tries to run
PAYLOAD = "\n" + INJECTED + "\n# "  # appended to names: would end a '#' comment and add a runnable line
REPORT = "xquant_report"
CLASSES = ("special_files", "symlinks", "huge_parameters", "blowups", "wrong_types", "injection")
# The untouched copies (folder -> scenario): under the demo's own folder names, so that they answer exactly as the
# demo does (MCT's mct_log.log names the folders it logged for).
GOOD = {"clean": "clean", "outlier": "outlier", "unbalanced_concat": "unbalanced_concat"}
HISTOGRAM_BUCKETS = 1_000_000
MANY_METRICS = 100_000
CONCAT_VALUES = 2000  # distinct concat= values asked for in the memory test


@dataclasses.dataclass
class Case:
    """One hostile logdir entry.

    ``listed``: True when ``<name>/xquant_report`` must be listed (with ``problem`` among its problems when
    given), False when it must never be listed, None for root-level cases (nothing of their own to list).
    ``check``: the name of an extra check in tests/test_hostile_inputs.py (``CHECKS``)."""

    klass: str
    name: str
    what: str
    scenario: Optional[str] = "clean"
    listed: Optional[bool] = True
    problem: Optional[str] = None
    multiplexer: bool = True  # False: TensorBoard's Python multiplexer itself cannot load a logdir holding it
    check: Optional[str] = None
    stage_logs: bool = False  # the case is about the MCT stage logs (kept by build(stage_logs="needed"))
    make: Optional[Callable[["Corpus", Path], None]] = dataclasses.field(default=None, repr=False)

    @property
    def rel(self) -> str:
        return "%s/%s" % (self.name, REPORT)


CASES: List[Case] = []


def case(klass: str, name: str, what: str, **kw):
    assert klass in CLASSES, klass

    def register(fn):
        CASES.append(Case(klass, name, what, make=fn, **kw))
        return fn

    return register


# --------------------------------------------------------------------------------------------
# helpers: files, events
# --------------------------------------------------------------------------------------------
def load(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dump(path: Path, obj: Any) -> None:
    path.unlink(missing_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)  # ensure_ascii: a lone surrogate is written as its \\u escape


def replace_with_fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def replace_with_link(path: Path, target) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    os.symlink(str(target), path)


def event_file(folder: Path) -> Path:
    (p,) = [p for p in folder.iterdir() if "tfevents" in p.name and p.is_file() and not p.is_symlink()]
    return p


def read_events(path: Path) -> list:
    from tensorboard.backend.event_processing import event_file_loader

    return list(event_file_loader.LegacyEventFileLoader(str(path)).Load())


def _masked_crc(data: bytes) -> int:
    try:
        import google_crc32c

        crc = google_crc32c.value(data)
    except ImportError:  # TensorBoard's pure-Python CRC: slow on large records, still correct
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

        return masked_crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_events(path: Path, events: list) -> None:
    """TFRecord framing, as TensorBoard's RecordWriter writes it (length, crc, payload, crc)."""
    with open(path, "wb") as f:
        for ev in events:
            data = ev.SerializeToString()
            header = struct.pack("<Q", len(data))
            f.write(header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data)))


def _renamed(last: str, mapping: Dict[str, str]) -> str:
    """A graph node's last name component with a layer renamed (``x``, ``x_layer``, ``x_layer.weights``...)."""
    for old, new in mapping.items():
        for tail in ("", "_layer"):
            if last == old + tail or last.startswith(old + tail + "."):
                return new + last[len(old):]
    return last


def _rename_in_event_file(path: Path, mapping: Dict[str, str]) -> None:
    """Rename layers in the graphs (node names and inputs) and summary tags of one event file."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    events = read_events(path)
    for ev in events:
        if ev.HasField("graph_def"):
            g = GraphDef.FromString(ev.graph_def)
            ids = {}
            for n in g.node:
                head, sep, last = n.name.rpartition("/")
                new = head + sep + _renamed(last, mapping)
                ids[n.name], n.name = new, new
            for n in g.node:
                fixed = []
                for i in n.input:
                    ctrl = "^" if i.startswith("^") else ""
                    base, colon, port = i.lstrip("^").partition(":")
                    fixed.append(ctrl + ids.get(base, base) + colon + port)
                del n.input[:]
                n.input.extend(fixed)
            ev.graph_def = g.SerializeToString()
        elif ev.HasField("summary"):
            for v in ev.summary.value:
                if v.tag in mapping:
                    v.tag = mapping[v.tag]
    write_events(path, events)


def rename_layers(rd: Path, mapping: Dict[str, str], troubleshoot: bool = True) -> None:
    """Rename layers everywhere the case's folder names them, as a model with those module names would have
    them: the XQuant graph and every MCT stage graph (nodes and inputs), the histogram tags, quant_report.json,
    troubleshoot_report.json and the manifest's per-layer bits."""
    for path in sorted(rd.parent.rglob("*tfevents*")):
        if path.is_file() and not path.is_symlink():
            _rename_in_event_file(path, mapping)
    qr = load(rd / "quant_report.json")
    for key in ("intermediate_similarity_metrics_repr", "intermediate_similarity_metrics_val"):
        qr[key] = {mapping.get(k, k): v for k, v in qr[key].items()}
    dump(rd / "quant_report.json", qr)
    ts_path = rd / "troubleshoot_report.json"
    if troubleshoot and ts_path.is_file():
        def sub(x):
            if isinstance(x, str):
                return mapping.get(x, x)
            if isinstance(x, list):
                return [sub(i) for i in x]
            return x
        dump(ts_path, {k: sub(v) for k, v in load(ts_path).items()})
    man_path = rd / "tb_xquant_manifest.json"
    if man_path.is_file():
        m = load(man_path)
        layers = m.get("bit_widths", {}).get("layers", {})
        m.setdefault("bit_widths", {})["layers"] = {mapping.get(k, k): v for k, v in layers.items()}
        dump(man_path, m)


def set_manifest(rd: Path, fn: Callable[[dict], Any]) -> None:
    m = load(rd / "tb_xquant_manifest.json")
    out = fn(m)
    dump(rd / "tb_xquant_manifest.json", m if out is None else out)


def set_manifest_raw(rd: Path, field: str, literal: str) -> None:
    """Set ``xquant_config[field]`` to a raw JSON literal (``1e400``, ``Infinity``, a 400-digit number)."""
    m = load(rd / "tb_xquant_manifest.json")
    m["xquant_config"][field] = "@@RAW@@"
    text = json.dumps(m, indent=2).replace('"@@RAW@@"', literal)
    (rd / "tb_xquant_manifest.json").write_text(text)


BITS_FIELD = "threshold_bitwidth_mixed_precision_with_model_output_loss_objective"


def _mct_logs(case_dir: Path) -> List[Path]:
    return sorted(case_dir.rglob("mct_log.log"))


# --------------------------------------------------------------------------------------------
# special files
# --------------------------------------------------------------------------------------------
@case("special_files", "fifo_quant_report", "quant_report.json is a FIFO", problem="not a regular file")
def _(c, rd):
    replace_with_fifo(rd / "quant_report.json")


@case("special_files", "fifo_troubleshoot", "troubleshoot_report.json is a FIFO", scenario="outlier",
      problem="not a regular file")
def _(c, rd):
    replace_with_fifo(rd / "troubleshoot_report.json")


@case("special_files", "fifo_manifest", "tb_xquant_manifest.json is a FIFO", problem="not a regular file")
def _(c, rd):
    replace_with_fifo(rd / "tb_xquant_manifest.json")


@case("special_files", "fifo_mct_log", "every mct_log.log (the one mixed-precision widths are read from) is a FIFO",
      scenario="mixed_precision", stage_logs=True)
def _(c, rd):
    logs = _mct_logs(rd.parent)
    assert logs
    for p in logs:
        replace_with_fifo(p)


@case("special_files", "fifo_event", "a FIFO named like an event file in xquant/", problem="not a regular file",
      multiplexer=False)  # TensorBoard's Python loader opens it and blocks its reload thread for good
def _(c, rd):
    os.mkfifo(rd / "xquant" / "events.out.tfevents.1999999999.fifo.1.1")


@case("special_files", "socket_manifest", "tb_xquant_manifest.json is a UNIX socket", problem="not a regular file")
def _(c, rd):
    (rd / "tb_xquant_manifest.json").unlink()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(str(rd / "tb_xquant_manifest.json"))
    except OSError:  # a path too long for sun_path: a FIFO instead
        os.mkfifo(rd / "tb_xquant_manifest.json")
    finally:
        s.close()


@case("special_files", "dir_quant_report", "quant_report.json is a folder", problem="not a regular file")
def _(c, rd):
    (rd / "quant_report.json").unlink()
    (rd / "quant_report.json").mkdir()
    (rd / "quant_report.json" / "x.json").write_text("{}")


@case("special_files", "zero_png", "a similarity chart PNG is a symlink to /dev/zero", check="png_not_listed")
def _(c, rd):
    replace_with_link(rd / "quant_loss_mse_repr.png", "/dev/zero")


@case("special_files", "urandom_png", "the outlier histogram PNG is a symlink to /dev/urandom", scenario="outlier",
      check="png_not_listed")
def _(c, rd):
    replace_with_link(rd / "outlier_histgrams" / "project_conv_bn.png", "/dev/urandom")


@case("special_files", "zero_quant_report", "quant_report.json is a symlink to /dev/zero",
      problem="not a regular file")
def _(c, rd):
    replace_with_link(rd / "quant_report.json", "/dev/zero")


@case("special_files", "urandom_quant_report", "quant_report.json is a symlink to /dev/urandom",
      problem="not a regular file")
def _(c, rd):
    replace_with_link(rd / "quant_report.json", "/dev/urandom")


@case("special_files", "zero_manifest", "the manifest is a symlink to /dev/zero", problem="not a regular file")
def _(c, rd):
    replace_with_link(rd / "tb_xquant_manifest.json", "/dev/zero")


@case("special_files", "urandom_manifest", "the manifest is a symlink to /dev/urandom", problem="not a regular file")
def _(c, rd):
    replace_with_link(rd / "tb_xquant_manifest.json", "/dev/urandom")


@case("special_files", "zero_troubleshoot", "troubleshoot_report.json is a symlink to /dev/zero", scenario="outlier",
      problem="not a regular file")
def _(c, rd):
    replace_with_link(rd / "troubleshoot_report.json", "/dev/zero")


@case("special_files", "sparse_quant_report", "quant_report.json is an 80 MB sparse file (over the JSON limit)",
      problem="larger than")
def _(c, rd):
    p = rd / "quant_report.json"
    with open(p, "r+b") as f:
        f.truncate(80 * 1024 * 1024)


# --------------------------------------------------------------------------------------------
# symbolic links: loops and escapes
# --------------------------------------------------------------------------------------------
@case("symlinks", "loops", "a -> ., b -> . and loop -> . at the logdir's root", scenario=None, listed=None,
      multiplexer=False)  # TensorBoard's Python walk follows links: with two loops it never ends
def _(c, root):
    for name in ("a", "b", "loop"):
        os.symlink(".", c.logdir / name)


@case("symlinks", "usr", "usr -> /usr at the logdir's root", scenario=None, listed=None,
      multiplexer=False)  # TensorBoard's Python walk follows it through all of /usr
def _(c, root):
    os.symlink("/usr", c.logdir / "usr")


@case("symlinks", "alias_inside", "alias -> clean (a link inside the logdir): listed once, by its real path",
      scenario=None, listed=None)
def _(c, root):
    os.symlink("clean", c.logdir / "alias")


@case("symlinks", "escape_dir", "a report folder that is a symlink to a report outside the logdir", scenario=None,
      listed=False)
def _(c, root):
    os.symlink(str(c.outside / "report_home"), c.logdir / "escape_dir")


@case("symlinks", "escape_png", "a chart PNG symlinked to a PNG outside the logdir", check="png_not_listed")
def _(c, rd):
    replace_with_link(rd / "quant_loss_mse_repr.png", c.outside / "marker.png")


@case("symlinks", "escape_manifest", "the manifest symlinked to a JSON file outside the logdir",
      problem="outside the logdir")
def _(c, rd):
    replace_with_link(rd / "tb_xquant_manifest.json", c.outside / "manifest.json")


@case("symlinks", "escape_quant_report", "quant_report.json symlinked to one outside the logdir",
      problem="outside the logdir")
def _(c, rd):
    replace_with_link(rd / "quant_report.json", c.outside / "quant_report.json")


@case("symlinks", "escape_troubleshoot", "troubleshoot_report.json symlinked outside the logdir", scenario="outlier",
      problem="outside the logdir")
def _(c, rd):
    replace_with_link(rd / "troubleshoot_report.json", c.outside / "troubleshoot_report.json")


@case("symlinks", "escape_mct_log", "every mct_log.log symlinked to a log outside the logdir",
      scenario="mixed_precision", stage_logs=True)
def _(c, rd):
    for p in _mct_logs(rd.parent):
        replace_with_link(p, c.outside / "mct_log.log")


@case("symlinks", "escape_event", "an extra event file in xquant/ symlinked to an XQuant run outside the logdir",
      problem="outside the logdir")
def _(c, rd):
    os.symlink(str(c.outside / "events.out.tfevents.1999999999.outside"),
               rd / "xquant" / "events.out.tfevents.1999999999.outside")


@case("symlinks", "escape_stage_logs", "the manifest's stage_logs climbs out of the logdir",
      problem="matches no folder")
def _(c, rd):
    set_manifest(rd, lambda m: m.update(stage_logs="../../../outside/stage_copy/tensorboard_logs"))


@case("symlinks", "dangling", "quant_report.json is a symlink to a file that does not exist",
      problem="does not exist")
def _(c, rd):
    replace_with_link(rd / "quant_report.json", "/nonexistent/tbxq/quant_report.json")


# --------------------------------------------------------------------------------------------
# infinite and huge parameters in the manifest (the URL and CLI ones are URL_PARAMS / CLI_FLAGS)
# --------------------------------------------------------------------------------------------
for _lit, _label in (("1e400", "1e400"), ("Infinity", "Infinity"), ('"inf"', "the string inf"),
                     ("9" * 400, "a 400-digit number"), ("-Infinity", "-Infinity"), ("NaN", "NaN"),
                     ("2.5", "2.5"), ("0", "0"), ("33", "33"), ("true", "true")):
    def _make(c, rd, _lit=_lit):
        set_manifest_raw(rd, BITS_FIELD, _lit)

    CASES.append(Case("huge_parameters", "manifest_bits_%s" % "".join(ch if ch.isalnum() else "_"
                                                                   for ch in _label.replace(" ", "_"))[:24],
                      "the manifest's bits threshold is %s" % _label, scenario="mixed_precision",
                      problem="refused", check="default_bits", make=_make))


@case("huge_parameters", "manifest_all_nonfinite", "every manifest threshold non-finite or absurd",
      problem="refused", check="default_thresholds")
def _(c, rd):
    text = json.dumps(dict(load(rd / "tb_xquant_manifest.json"), xquant_config="@@CFG@@"))
    cfg = ('{"threshold_quantize_error": {"mse": Infinity, "cs": NaN, "sqnr": 1e400}, '
           '"is_detect_under_threshold_quantize_error": {"mse": false, "cs": true, "sqnr": true}, '
           '"threshold_degrade_layer_ratio": 1e400, "threshold_zscore_outlier_removal": -Infinity, '
           '"threshold_ratio_unbalanced_concatenation": %s, "%s": %s}' % ("9" * 400, BITS_FIELD, "1" + "0" * 399))
    p = rd / "tb_xquant_manifest.json"
    p.write_text(text.replace('"@@CFG@@"', cfg))


# --------------------------------------------------------------------------------------------
# algorithmic blow-ups
# --------------------------------------------------------------------------------------------
@case("blowups", "metrics_100k", "quant_report.json names 100,000 metrics", problem="more than")
def _(c, rd):
    qr = load(rd / "quant_report.json")
    many = {"m%05d" % i: 0.5 for i in range(MANY_METRICS)}
    qr["output_similarity_metrics_repr"].update(many)
    first = next(iter(qr["intermediate_similarity_metrics_repr"]))
    qr["intermediate_similarity_metrics_repr"][first].update(many)
    dump(rd / "quant_report.json", qr)


@case("blowups", "histogram_1e6", "the degraded layer's float histogram has 10^6 buckets (every other one empty)",
      scenario="outlier", check="big_histogram")
def _(c, rd):
    from tensorboard.compat.proto import summary_pb2

    path = event_file(rd / "xquant")
    events = read_events(path)
    n = HISTOGRAM_BUCKETS
    limits = [-1.0 + 2.0 * i / n for i in range(n)]
    counts = [float((i % 2 == 0) * (1 + i % 7)) for i in range(n)]
    counts[-2] = 3.0  # a far tail after a long stretch
    for i in range(n - 1000, n - 2):
        counts[i] = 0.0
    hit = False
    for ev in events:
        if ev.HasField("summary"):
            for v in ev.summary.value:
                if v.tag == "project_conv_bn" and v.HasField("histo"):
                    v.histo.CopyFrom(summary_pb2.HistogramProto(
                        min=-1.0, max=1.0, num=sum(counts), sum=0.0, sum_squares=float(n),
                        bucket_limit=limits, bucket=counts))
                    hit = True
    assert hit
    write_events(path, events)


@case("blowups", "ts_long_string", "a troubleshoot value that is one 8 MB string", scenario="outlier",
      problem="not a list")
def _(c, rd):
    dump(rd / "troubleshoot_report.json", {"outlier_removal": "x" * (8 * 1024 * 1024)})


@case("blowups", "ts_many_entries", "a troubleshoot list of 300,000 entries", scenario="outlier", problem="the first")
def _(c, rd):
    dump(rd / "troubleshoot_report.json", {"outlier_removal": [["project_conv_bn", "p.png"]] * 300_000})


@case("blowups", "ts_long_formula", "an unbalanced-concatenation formula of 300,000 digits and no number at its end",
      scenario="unbalanced_concat")
def _(c, rd):
    dump(rd / "troubleshoot_report.json", {"unbalanced_concatenation": [
        ["stem.0", "stem.1", "1" * 300_000 + "x"], ["stem.0", "stem.1", "first layer * " + "9" * 300_000],
        ["stem.0", "stem.1", "1." + "0" * 300_000 + "e"]]})


@case("blowups", "deep_json", "quant_report.json nested 200,000 levels deep", problem="not valid JSON")
def _(c, rd):
    (rd / "quant_report.json").write_text("[" * 200_000 + "]" * 200_000)


@case("blowups", "long_names", "layer names of 100,000 characters", check="long_names")
def _(c, rd):
    qr = load(rd / "quant_report.json")
    for key in ("intermediate_similarity_metrics_repr", "intermediate_similarity_metrics_val"):
        qr[key] = {(k * (100_000 // len(k) + 1))[:100_000] if i == 0 else k: v
                   for i, (k, v) in enumerate(qr[key].items())}
    dump(rd / "quant_report.json", qr)


# --------------------------------------------------------------------------------------------
# wrong types
# --------------------------------------------------------------------------------------------
for _judge, _value, _label, _scenario in (
        ("outlier_removal", 5, "int", "outlier"),
        ("shift_negative_activation", True, "bool", "shift_negative"),
        ("unbalanced_concatenation", 1.5, "float", "unbalanced_concat"),
        ("mixed_precision_with_model_output_loss_objective", {"head": 2}, "object", "mixed_precision"),
        ("outlier_removal", None, "null", "outlier")):
    def _make(c, rd, _judge=_judge, _value=_value):
        dump(rd / "troubleshoot_report.json", {_judge: _value})

    CASES.append(Case("wrong_types", "ts_%s" % _label, "troubleshoot_report.json: %s is a %s" % (_judge, _label),
                      scenario=_scenario, problem=None if _value is None else "not a list", make=_make))


@case("wrong_types", "ts_list", "troubleshoot_report.json is a list", scenario="outlier", problem="not a JSON object")
def _(c, rd):
    dump(rd / "troubleshoot_report.json", [1, 2, 3])


@case("wrong_types", "ts_junk_items", "troubleshoot entries of every JSON type", scenario="outlier")
def _(c, rd):
    junk = [None, 5, 1.5, True, {}, [], [1.5], [["nested"]], ["x", {"a": 1}], {"a": [1]}, "\ud800", [None, None]]
    dump(rd / "troubleshoot_report.json", {"outlier_removal": junk, "shift_negative_activation": junk,
                                           "unbalanced_concatenation": junk,
                                           "mixed_precision_with_model_output_loss_objective": junk})


@case("wrong_types", "qr_wrong_types", "quant_report.json values of the wrong types", problem="not metric objects")
def _(c, rd):
    qr = load(rd / "quant_report.json")
    inter = qr["intermediate_similarity_metrics_repr"]
    names = list(inter)
    inter[names[0]] = [1, 2]
    inter[names[1]] = {"mse": "0.5", "cs": None, "sqnr": [1], "x": True, "y": {"a": 1}}
    inter[names[2]] = None
    qr["output_similarity_metrics_val"] = "high"
    dump(rd / "quant_report.json", qr)


@case("wrong_types", "manifest_false_strings", "the manifest's detect-under flags are the strings \"false\"",
      check="under_false")
def _(c, rd):
    set_manifest(rd, lambda m: m["xquant_config"].update(
        is_detect_under_threshold_quantize_error={"mse": "false", "cs": "false", "sqnr": "False"}))


@case("wrong_types", "manifest_bad_bool", "a detect-under flag that is neither true nor false", problem="refused")
def _(c, rd):
    set_manifest(rd, lambda m: m["xquant_config"].update(
        is_detect_under_threshold_quantize_error={"mse": "maybe", "cs": [True], "sqnr": 2}))


@case("wrong_types", "manifest_wrong_shapes", "every manifest field of the wrong type", scenario="mixed_precision")
def _(c, rd):
    set_manifest(rd, lambda m: m.update(
        xquant_config=[1, 2], bit_widths="8", accuracy="high", stage_logs=5, model_name={"a": 1},
        custom_metrics=7, extra=[], versions=None, schema="one"))


@case("wrong_types", "manifest_wrong_last_layer", "the manifest's last layer with a numeric name and string bits",
      scenario="mixed_precision")
def _(c, rd):
    set_manifest(rd, lambda m: m["bit_widths"].update(
        last_layer={"name": 17, "weights_nbits": "2", "activation_nbits": [8]}))


@case("wrong_types", "surrogate_names", "layer, metric and model names holding lone surrogates (\\ud800)",
      check="surrogates")
def _(c, rd):
    qr = load(rd / "quant_report.json")
    for key in ("intermediate_similarity_metrics_repr", "intermediate_similarity_metrics_val"):
        qr[key] = {("\ud800" + k if i == 0 else k): (dict(v, **{"\udfffm": 0.5}) if i == 1 else v)
                   for i, (k, v) in enumerate(qr[key].items())}
    dump(rd / "quant_report.json", qr)
    set_manifest(rd, lambda m: m.update(model_name="Net\ud800\udc00\udfff"))


BYTES_FOLDER = os.fsdecode(b"bytes_\xff\xfe_name")  # not UTF-8: os.listdir gives it back with surrogateescape


@case("wrong_types", BYTES_FOLDER, "a report folder whose name is not valid UTF-8",
      multiplexer=False)  # TensorBoard's Python reloader thread dies on it (gfile encodes paths as UTF-8)
def _(c, rd):
    pass


# --------------------------------------------------------------------------------------------
# code injection into snippets
# --------------------------------------------------------------------------------------------
def injected(name: str) -> str:
    return name + PAYLOAD


def _inject_last_layer(rd: Path, name: str, weights: Any = 2) -> None:
    set_manifest(rd, lambda m: m.setdefault("bit_widths", {}).update(
        last_layer={"name": injected(name), "weights_nbits": weights, "activation_name": injected("act"),
                    "activation_nbits": 8}))


@case("injection", "inject_concat", "join, input and last-layer names with a newline + os.system(...)",
      scenario="unbalanced_concat", check="injection", stage_logs=True)
def _(c, rd):
    rename_layers(rd, {n: injected(n) for n in ("cat", "left_1", "right_1", "left_0", "right_0")})
    _inject_last_layer(rd, "head")


@case("injection", "inject_mixed_precision", "the manifest's last-layer name with a newline + os.system(...)",
      scenario="mixed_precision", check="injection", stage_logs=True)
def _(c, rd):
    rename_layers(rd, {"head": injected("head")})
    set_manifest(rd, lambda m: m["bit_widths"]["last_layer"].update(name=injected("head")))


@case("injection", "inject_outlier", "the degraded layer's name with a newline + os.system(...)",
      scenario="outlier", check="injection", stage_logs=True)
def _(c, rd):
    rename_layers(rd, {"project_conv_bn": injected("project_conv_bn")})


@case("injection", "inject_shift_negative", "activation names with a newline + os.system(...)",
      scenario="shift_negative", check="injection", stage_logs=True)
def _(c, rd):
    rename_layers(rd, {n: injected(n) for n in ("stem_act", "mid_act", "elu")})


# --------------------------------------------------------------------------------------------
# hostile query parameters and CLI flags
# --------------------------------------------------------------------------------------------
HUGE = "9" * 400
SURROGATE_Q = "%ED%A0%80"  # the UTF-8-style bytes of "\ud800" in a URL (werkzeug decodes them as U+FFFD)


def _qs(params: Dict[str, str]) -> str:
    return urllib.parse.urlencode(params)


# (query string, expected status: 400, or None for "200 or 400") of threshold parameters, asked on every route
URL_PARAMS: List[Tuple[str, Optional[int]]] = (
    [(_qs({"bits": v}), 400) for v in ("inf", "Infinity", "-inf", "1e400", HUGE, "-" + HUGE, "nan", "2.5", "0", "33",
                                       "-1", "", "abc", "0x10", "8" * 65, "1e-400")]
    + [(_qs({"bits": v}), None) for v in ("1_0", "\u0668", " 8 ")]  # Python's float() reads these as 10, 8, 8
    + [(_qs({"ratio": v}), 400) for v in ("1e400", "nan", "-0.1", "1.5", "inf")]
    + [(_qs({"z": v}), 400) for v in ("inf", "1001", "-1", "nan", HUGE)]
    + [(_qs({"concat": v}), 400) for v in ("0.5", "1e10", "inf", "nan", HUGE)]
    + [(_qs({"thr.mse": v}), 400) for v in ("inf", "nan", "1e400", "-1e400", HUGE)]
    + [(_qs({"under.cs": v}), 400) for v in ("maybe", "2", "", "truee")]
    + [(_qs({"thr." + "m" * 300: "0.1"}), 400), (_qs({"thr.": "0.1"}), 400), (_qs({"under.": "1"}), 400),
       (_qs({"thr.m%d" % i: "0.1" for i in range(300)}), 400), ("thr.%s=0.1" % SURROGATE_Q, None),
       (_qs({"bits": "inf", "ratio": "nan", "z": "inf", "concat": "inf"}), 400)]
)
# (route, query string) beyond the thresholds: ids, names and indexes the API never hands out.  Every answer is a
# 4xx JSON error.  "{good}" is replaced by the id of a good report.
URL_OTHER: List[Tuple[str, str]] = [
    ("report", _qs({"report": "../../etc/passwd"})), ("report", _qs({"report": "r" * 10_000})),
    ("report", "report="), ("report", "report=" + SURROGATE_Q), ("graph", _qs({"report": "/etc/passwd\x00"})),
    ("layer", "report={good}&layer=" + SURROGATE_Q), ("layer", "report={good}&" + _qs({"layer": "x" * 20_000})),
    ("layer", "report={good}&index=-1"), ("layer", "report={good}&index=1e400"),
    ("layer", "report={good}&index=" + HUGE), ("layer", "report={good}&index=x"), ("layer", "report={good}"),
    ("artifact", "report={good}&" + _qs({"id": "../quant_report.json"})),
    ("artifact", "report={good}&" + _qs({"id": "/etc/passwd"})), ("artifact", "report={good}&id=" + "a" * 5000),
    ("artifact", "report={good}"), ("static/..%2f..%2fsetup.py", ""), ("static/.index.js", ""),
    ("manual", _qs({"id": "../../etc/passwd"})), ("compare", "a={good}&" + _qs({"b": "../x"})),
    ("compare", "a={good}&b=" + SURROGATE_Q),
]
CLI_FLAGS: List[List[str]] = (
    [["--bits", v] for v in ("inf", "Infinity", "1e400", HUGE, "nan", "2.5", "0", "33", "-1", "abc")]
    + [["--ratio", "nan"], ["--ratio", "1e400"], ["--z", "-1"], ["--z", "inf"], ["--concat", "0"],
       ["--concat", HUGE], ["--threshold", "mse=inf"], ["--threshold", "mse=" + HUGE], ["--threshold", "noequals"],
       ["--under", "mse=maybe"], ["--under", "noequals"], ["--threshold", "=0.1"]]
)


# --------------------------------------------------------------------------------------------
# the builder
# --------------------------------------------------------------------------------------------
class Corpus:
    def __init__(self, demo_logdir: Path, root: Path, cases: List[Case], stage_logs: str = "all"):
        self.demo = Path(demo_logdir)
        self.root = Path(root)
        self.logdir = self.root / "logdir"
        self.outside = self.root / "outside"
        self.cases = cases
        self.stage_logs = stage_logs

    def by_name(self) -> Dict[str, Case]:
        return {c.name: c for c in self.cases}

    def listed(self) -> List[Case]:
        return [c for c in self.cases if c.listed]

    def count_inputs(self) -> int:
        """Distinct hostile inputs in this corpus (cases + URL queries + other URLs + CLI flag sets)."""
        return len(self.cases) + len(URL_PARAMS) + len(URL_OTHER) + len(CLI_FLAGS)

    # ------------------------------------------------------------------------------------------
    def write_outside(self) -> None:
        """Files outside the logdir that cases link to; each holds MARKER."""
        out = self.outside
        out.mkdir(parents=True)
        (out / "marker.png").write_bytes(b"\x89PNG\r\n\x1a\n" + MARKER.encode() * 64)
        m = load(self.demo / "clean" / REPORT / "tb_xquant_manifest.json")
        m.update(model_name=MARKER, extra={"note": MARKER})
        dump(out / "manifest.json", m)
        qr = load(self.demo / "clean" / REPORT / "quant_report.json")
        for key in ("intermediate_similarity_metrics_repr", "intermediate_similarity_metrics_val"):
            qr[key] = {MARKER + k: v for k, v in qr[key].items()}
        dump(out / "quant_report.json", qr)
        dump(out / "troubleshoot_report.json", {"outlier_removal": [[MARKER, MARKER + ".png"]],
                                                "shift_negative_activation": [MARKER]})
        (out / "mct_log.log").write_text("To use Tensorboard, please run: tensorboard --logdir %s\n"
                                         "Final weights bit-width configuration: [8, 8, 8]\n" % MARKER)
        # a whole report outside, its layers named with the marker
        shutil.copytree(self.demo / "clean", out / "report_home")
        rename_layers(out / "report_home" / REPORT, {k: MARKER + k for k in load(
            self.demo / "clean" / REPORT / "quant_report.json")["intermediate_similarity_metrics_repr"]})
        ev = event_file(out / "report_home" / REPORT / "xquant")
        shutil.copy2(ev, out / "events.out.tfevents.1999999999.outside")
        shutil.copytree(self.demo / "clean" / "mct_logs", out / "stage_copy")

    def write(self) -> "Corpus":
        self.logdir.mkdir(parents=True)
        self.write_outside()
        for name, scenario in GOOD.items():
            shutil.copytree(self.demo / scenario, self.logdir / name)
        for c in self.cases:
            if c.scenario is None:
                c.make(self, self.logdir)
                continue
            shutil.copytree(self.demo / c.scenario, self.logdir / c.name)
            if self.stage_logs == "needed" and not c.stage_logs:
                for p in (self.logdir / c.name).glob("mct_logs*"):
                    shutil.rmtree(p)
            c.make(self, self.logdir / c.name / REPORT)
        return self


def build(demo_logdir, root, classes=CLASSES, for_multiplexer: bool = False,
          names: Optional[List[str]] = None, stage_logs: str = "all") -> Corpus:
    """Write the corpus under ``root`` (which must not exist yet); returns it.

    ``for_multiplexer``: leave out the cases TensorBoard's Python multiplexer cannot survive.  ``stage_logs="needed"``:
    copy the MCT stage logs (two dozen runs per scenario) only for the good reports and the cases about them, so
    that a real tensorboard loads the logdir in seconds."""
    cases = [c for c in CASES if c.klass in classes and (c.multiplexer or not for_multiplexer)
             and (names is None or c.name in names)]
    return Corpus(Path(demo_logdir), Path(root), cases, stage_logs).write()
