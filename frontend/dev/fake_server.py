#!/usr/bin/env python3
"""Fake tb-xquant backend for frontend development (stdlib only).

Serves canned data following docs/api.md under <prefix>/data/plugin/xquant/, the bundle from
tb_xquant_plugin/static/, and a TensorBoard-like iframe entry page with TensorBoard's CSP, so that CSP
violations show up during development:

    python3 frontend/dev/fake_server.py --port 6099 [--path_prefix /foo]
    open http://localhost:6099/foo/data/plugin_entry.html?name=xquant

Reports: two small demo reports (baseline / after a countermeasure) and synthetic big graphs
(5,000 and 20,000 nodes) for performance work.
"""
import argparse
import base64
import hashlib
import json
import math
import os
import random
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATIC = os.path.join(os.path.dirname(__file__), "..", "..", "tb_xquant_plugin", "static")
METRICS = ["mse", "cs", "sqnr"]
DEF_THR = {"mse": 0.1, "cs": 0.1, "sqnr": 0.1}
DEF_UNDER = {"mse": False, "cs": True, "sqnr": True}


def enc(x):
    if isinstance(x, float):
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
    if isinstance(x, dict):
        return {k: enc(v) for k, v in x.items()}
    if isinstance(x, list):
        return [enc(v) for v in x]
    return x


def small_model(fixed):
    """A small CNN with name scopes, like MCT's pytorch graphs."""
    spec = [
        ("Input/x", "Input", []),
        ("Net/Conv_0/conv1", "Conv2d", ["Input/x"]),
        ("Net/Conv_0/bn1", "BatchNorm2d", ["Net/Conv_0/conv1"]),
        ("Net/Conv_0/relu1", "ReLU", ["Net/Conv_0/bn1"]),
        ("Net/Block_1/conv2", "Conv2d", ["Net/Conv_0/relu1"]),
        ("Net/Block_1/silu2", "SiLU", ["Net/Block_1/conv2"]),
        ("Net/Block_1/conv3", "Conv2d", ["Net/Conv_0/relu1"]),
        ("Net/Block_1/cat", "cat", ["Net/Block_1/silu2", "Net/Block_1/conv3"]),
        ("Net/Block_2/conv4", "Conv2d", ["Net/Block_1/cat"]),
        ("Net/Block_2/hswish", "Hardswish", ["Net/Block_2/conv4"]),
        ("Net/Head/pool", "AdaptiveAvgPool2d", ["Net/Block_2/hswish"]),
        ("Net/Head/flatten", "flatten", ["Net/Head/pool"]),
        ("Net/Head/fc1", "Linear", ["Net/Head/flatten"]),
        ("Net/Head/fc2", "Linear", ["Net/Head/fc1"]),
    ]
    rnd = random.Random(7)
    layers = []
    for i, (nid, op, _) in enumerate(spec[1:]):
        name = nid.split("/")[-1]
        base_mse = rnd.uniform(0.005, 0.06)
        if name in ("silu2", "fc1") and not fixed:
            base_mse = 0.35 if name == "silu2" else 0.22
        if name == "fc1" and fixed:
            base_mse = 0.04
        if name == "silu2" and fixed:
            base_mse = 0.3  # countermeasure did not help this one
        vals = {}
        for ds, f in (("repr", 1.0), ("val", 1.15)):
            mse = base_mse * f
            vals[ds] = {"mse": mse, "cs": max(0.0, 1 - mse * 0.8), "sqnr": 10 * math.log10(1 / max(mse, 1e-6))}
        layers.append({"name": name, "node": nid, "op": op, "index": i, **vals})
    return spec, layers


def big_model(n):
    rnd = random.Random(n)
    spec = [("Input/x", "Input", [])]
    layers = []
    prev = "Input/x"
    blocks = max(1, n // 50)
    i = 0
    for b in range(blocks):
        stage = b // 10
        for j in range(5):
            sub = f"Model/Stage_{stage}/Block_{b}/Sub_{j}"
            branch_in = prev
            for k in range(10):
                if len(spec) >= n:
                    break
                nid = f"{sub}/op{k}"
                op = rnd.choice(["Conv2d", "ReLU", "BatchNorm2d", "Linear", "add", "SiLU"])
                ins = [prev]
                if k == 9 and rnd.random() < 0.5:
                    ins.append(branch_in)
                spec.append((nid, op, ins))
                prev = nid
                mse = rnd.random() ** 6 * 0.5
                layers.append({"name": f"b{b}s{j}op{k}", "node": nid, "op": op, "index": i,
                               "repr": {"mse": mse, "cs": 1 - mse, "sqnr": 10 * math.log10(1 / max(mse, 1e-9))},
                               "val": {"mse": mse * 1.1, "cs": 1 - mse * 1.1, "sqnr": 10 * math.log10(1 / max(mse * 1.1, 1e-9))}})
                i += 1
    return spec, layers


REPORTS = {}


def add_report(rid, name, spec, layers, kind):
    REPORTS[rid] = {"id": rid, "name": name, "spec": spec, "layers": layers, "kind": kind}


def build():
    s, l = small_model(False)
    add_report("r0", "demo/baseline/xquant_report", s, l, "demo")
    s, l = small_model(True)
    add_report("r1", "demo/outlier_fixed/xquant_report", s, l, "demo_fixed")
    if os.environ.get("FAKE_NO_BIG") != "1":
        for n in (5000, 20000):
            s, l = big_model(n)
            add_report(f"big{n}", f"synthetic/big_{n}/xquant_report", s, l, "big")


def thresholds(q):
    thr = dict(DEF_THR)
    under = dict(DEF_UNDER)
    for m in METRICS:
        if f"thr.{m}" in q:
            thr[m] = float(q[f"thr.{m}"])
        if f"under.{m}" in q:
            under[m] = q[f"under.{m}"] == "1"
    return {"quantize_error": thr, "detect_under": under,
            "degrade_layer_ratio": float(q.get("ratio", 0.5)), "zscore_outlier_removal": float(q.get("z", 5.0)),
            "ratio_unbalanced_concatenation": float(q.get("concat", 16.0)),
            "bitwidth_mixed_precision_with_model_output_loss_objective": int(float(q.get("bits", 2)))}


def evaluate(rep, t):
    out = []
    for l in rep["layers"]:
        flags = {}
        worst = None
        for m in METRICS:
            for ds in ("repr", "val"):
                v = l[ds][m]
                thr = t["quantize_error"][m]
                bad = v < thr if t["detect_under"][m] else v > thr
                # cs/sqnr thresholds of 0.1 as MCT defaults: "under" for cs means similarity below thr
                flags[f"{m}.{ds}"] = bad
                if bad:
                    sev = abs(v - thr) / (abs(thr) or 1)
                    if worst is None or sev > worst[0]:
                        worst = (sev, {"metric": m, "dataset": ds, "value": v})
        out.append({**l, "flags": flags, "degraded": any(flags.values()), "worst": worst[1] if worst else None})
    return out


def verdicts(rep, t, rows):
    deg = [r for r in rows if r["degraded"]]
    ratio = len(deg) / max(1, len(rows))
    vs, gen = [], []
    if not deg:
        gen.append({"judge": "general", "source": "computed", "layers": [], "numbers": {"reason": "no_degraded_layers"},
                    "manual": "general-quantization-error", "message": "No layer exceeds the thresholds.", "snippet": None})
        return vs, gen, False
    if ratio > t["degrade_layer_ratio"]:
        gen.append({"judge": "general", "source": "computed", "layers": [r["name"] for r in deg][:20],
                    "numbers": {"reason": "degraded_ratio_over_limit", "ratio": ratio, "limit": t["degrade_layer_ratio"]},
                    "manual": "general-many-degraded", "message": f"{len(deg)} of {len(rows)} layers are degraded.",
                    "snippet": "core_config = mct.core.CoreConfig(mixed_precision_config=mct.core.MixedPrecisionQuantizationConfig())"})
        return vs, gen, True
    for r in deg:
        if r["op"] in ("SiLU", "Hardswish"):
            vs.append({"judge": "shift_negative_activation", "source": "computed", "layers": [r["name"]],
                       "numbers": {"activation": r["op"], "min_value": -0.278}, "manual": "shift-negative-activation",
                       "message": f"{r['name']} ({r['op']}) has negative outputs quantized with an unsigned range.",
                       "snippet": "core_config = mct.core.CoreConfig(\n    quantization_config=mct.core.QuantizationConfig(shift_negative_activation_correction=True))"})
        elif r["op"] == "Linear":
            z = t["zscore_outlier_removal"]
            vs.append({"judge": "outlier_removal", "source": "computed", "layers": [r["name"]],
                       "numbers": {"max_zscore": 9.1, "z_threshold": 3.9, "threshold": z, "layer": r["name"]},
                       "manual": "outlier-removal",
                       "message": f"Activation of {r['name']} has outliers (max z-score 9.1 > {z}).",
                       "snippet": "core_config = mct.core.CoreConfig(\n    quantization_config=mct.core.QuantizationConfig(z_threshold=3.9))"})
    if not vs:
        gen.append({"judge": "general", "source": "computed", "layers": [r["name"] for r in deg],
                    "numbers": {"reason": "no_judge_applies"}, "manual": "general-quantization-error",
                    "message": "None of the judges applies.", "snippet": None})
    return vs, gen, False


def graph_nodes(rep, rows, vs):
    by_node = {r["node"]: r for r in rows}
    judges = {}
    for v in vs:
        for l in v["layers"]:
            judges.setdefault(l, []).append(v["judge"])
    nodes = []
    for nid, op, ins in rep["spec"]:
        r = by_node.get(nid)
        parts = nid.split("/")
        nodes.append({"id": nid, "name": parts[-1], "op": op, "group": "/".join(parts[:-1]), "inputs": ins,
                      "output_shape": [[-1, 64]], "layer": r["name"] if r else None,
                      "degraded": bool(r and r["degraded"]), "worst": r["worst"] if r else None,
                      "judges": judges.get(r["name"], []) if r else []})
    return nodes


MANUAL = {
    "outlier-removal": ("Outlier removal", "judgeable", "outlier_removal",
                        "<p>Activations with large outliers waste quantization range. Set <code>z_threshold</code> in "
                        "<code>QuantizationConfig</code> to clip values beyond <em>z</em> standard deviations.</p>"
                        "<pre><code>mct.core.QuantizationConfig(z_threshold=...)</code></pre>"),
    "shift-negative-activation": ("Shift negative activation", "judgeable", "shift_negative_activation",
                                  "<p>Activation functions such as SiLU/Hardswish have small negative outputs. Enable "
                                  "<code>shift_negative_activation_correction</code>.</p>"),
    "general-quantization-error": ("General quantization error", "general", None,
                                   "<p>Try mixed precision, GPTQ, or a larger representative dataset.</p>"),
    "general-many-degraded": ("Many degraded layers", "general", None,
                              "<p>When many layers degrade, use mixed precision or GPTQ rather than per-layer fixes.</p>"),
    "general-did-not-improve": ("Countermeasure did not improve", "general", None,
                                "<p>The applied countermeasure did not help: try GPTQ (<code>mct.gptq</code>) or mixed precision.</p>"),
}


def route(path, q):
    if path == "reports":
        return 200, {"logdir": "/fake/logdir", "reports": [
            {"id": r["id"], "name": r["name"], "path": r["name"], "has_quant_report": True, "has_troubleshoot_report": True,
             "has_graph": True, "has_histograms": r["kind"] != "big", "stage_logs": None, "manifest": None,
             "problems": [] if r["kind"] != "big" else [{"what": "No histograms for synthetic report", "hint": "n/a"}]}
            for r in sorted(REPORTS.values(), key=lambda r: r["name"])]}
    if path == "manual":
        if "id" not in q:
            return 200, {"entries": [{"id": k, "title": v[0], "kind": v[1], "judge": v[2]} for k, v in MANUAL.items()]}
        if q["id"] not in MANUAL:
            return 404, {"error": f"unknown manual entry {q['id']}", "hint": "GET manual lists the entries"}
        v = MANUAL[q["id"]]
        return 200, {"id": q["id"], "title": v[0], "kind": v[1], "judge": v[2], "markdown": "", "html": v[3], "snippets": []}
    try:
        t = thresholds(q)
    except ValueError as e:
        return 400, {"error": f"bad threshold: {e}", "hint": "thresholds must be numbers"}
    if path == "compare":
        a, b = REPORTS.get(q.get("a")), REPORTS.get(q.get("b"))
        if not a or not b:
            return 404, {"error": "unknown report", "hint": "GET reports lists report ids"}
        ra, rb = {r["name"]: r for r in evaluate(a, t)}, {r["name"]: r for r in evaluate(b, t)}
        layers, summ = [], {"improved": 0, "worse": 0, "unchanged": 0}
        for name in list(ra) + [n for n in rb if n not in ra]:
            la, lb = ra.get(name), rb.get(name)
            if la and lb:
                delta = {f"{m}.{ds}": lb[ds][m] - la[ds][m] for m in METRICS for ds in ("repr", "val")}
                d = delta["mse.repr"]
                st = "improved" if d < -0.01 else "worse" if d > 0.01 else "unchanged"
                summ[st] += 1
            else:
                delta, st = {}, "only_a" if la else "only_b"
            layers.append({"name": name, "a": {ds: la[ds] for ds in ("repr", "val")} if la else None,
                           "b": {ds: lb[ds] for ds in ("repr", "val")} if lb else None, "delta": delta, "status": st,
                           "degraded_a": bool(la and la["degraded"]), "degraded_b": bool(lb and lb["degraded"])})
        summ["degraded_a"] = sum(r["degraded"] for r in ra.values())
        summ["degraded_b"] = sum(r["degraded"] for r in rb.values())
        gen = []
        still = [l["name"] for l in layers if l["degraded_a"] and l["degraded_b"]]
        if still:
            gen.append({"judge": "general", "source": "computed", "layers": still,
                        "numbers": {"reason": "countermeasure_did_not_improve"}, "manual": "general-did-not-improve",
                        "message": f"{len(still)} layer(s) stayed degraded after the countermeasure.",
                        "snippet": "from model_compression_toolkit.gptq import get_pytorch_gptq_config\ngptq_config = get_pytorch_gptq_config(n_epochs=5)"})
        return 200, enc({"a": a["id"], "b": b["id"], "metrics": METRICS, "layers": layers, "summary": summ, "general": gen})
    rep = REPORTS.get(q.get("report"))
    if not rep:
        return 404, {"error": f"unknown report {q.get('report')!r}", "hint": "GET reports lists report ids; press Reload"}
    rows = evaluate(rep, t)
    vs, gen, skipped = verdicts(rep, t, rows)
    jl = {}
    for v in vs:
        for l in v["layers"]:
            jl.setdefault(l, []).append(v["judge"])
    for r in rows:
        r["judges"] = jl.get(r["name"], [])
    if path == "report":
        deg = [r["name"] for r in rows if r["degraded"]]
        return 200, enc({"id": rep["id"], "name": rep["name"], "thresholds": t, "metrics": METRICS,
                         "output_metrics": {"repr": {"mse": 0.02, "cs": 0.97, "sqnr": 17.0}, "val": {"mse": 0.025, "cs": 0.96, "sqnr": 16.0}},
                         "layer_count": len(rows), "degraded_layers": deg, "degraded_ratio": len(deg) / max(1, len(rows)),
                         "judges_skipped": skipped, "verdicts": vs, "general": gen,
                         "artifacts": [] if rep["kind"] == "big" else [{"id": "a0", "kind": "similarity_chart", "name": "quant_loss_mse_repr.png", "metric": "mse", "dataset": "repr", "layer": None}],
                         "manifest": None, "problems": []})
    if path == "layers":
        return 200, enc({"metrics": METRICS, "datasets": ["repr", "val"],
                         "layers": [{k: r[k] for k in ("name", "node", "op", "index", "repr", "val", "flags", "degraded", "worst", "judges")} for r in rows]})
    if path == "verdicts":
        return 200, enc({"verdicts": vs, "general": gen, "judges_skipped": skipped})
    if path == "graph":
        return 200, enc({"nodes": graph_nodes(rep, rows, vs), "problems": []})
    if path == "layer":
        r = next((r for r in rows if r["name"] == q.get("layer")), None)
        if not r:
            return 404, {"error": f"unknown layer {q.get('layer')!r}", "hint": "GET layers lists the layer names"}
        rnd = random.Random(r["name"])
        mu, sigma = 0.1, 1.2
        bins = [-4 + i * 0.5 for i in range(31)]
        counts = [int(1000 * math.exp(-((b + 0.25 - mu) ** 2) / (2 * sigma ** 2))) + rnd.randint(0, 5) for b in bins[:-1]]
        counts[-1] += 3
        return 200, enc({"name": r["name"], "node": r["node"], "op": r["op"], "output_shape": [[-1, 64]],
                         "repr": r["repr"], "val": r["val"], "flags": r["flags"], "degraded": r["degraded"],
                         "quant": {"weights_nbits": 8, "activation_nbits": 8, "activation_threshold": 4.0, "signed": True,
                                   "z_threshold": float("inf"), "shift_negative_activation_correction": False, "stage": "final"},
                         "histogram": {"bins": bins, "counts": counts, "mu": mu, "sigma": sigma, "max_zscore": 9.1,
                                       "suggested_z_threshold": 3.9} if rep["kind"] != "big" else None,
                         "verdicts": [v for v in vs + gen if r["name"] in v["layers"]]})
    if path == "artifact":
        png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
        return 200, png
    return 404, {"error": f"unknown route {path}", "hint": ""}


class Handler(BaseHTTPRequestHandler):
    prefix = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def send(self, code, body, ctype, csp=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if csp:
            self.send_header("Content-Security-Policy", csp)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        path = u.path
        if path.endswith("/favicon.ico"):
            return self.send(204, b"", "image/x-icon")
        if not path.startswith(self.prefix + "/"):
            return self.send(404, b"not found", "text/plain")
        path = path[len(self.prefix):]
        q = dict(urllib.parse.parse_qsl(u.query))
        if path == "/favicon.ico":
            return self.send(204, b"", "image/x-icon")
        if path == "/data/plugin_entry.html":
            script = 'import("./static/index.js").then((m) => void m.render());'
            sha = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            html = f'<!DOCTYPE html>\n<head><base href="plugin/{q.get("name", "xquant")}/" /></head>\n<body><script type="module">{script}</script></body>\n'
            csp = ("default-src 'self';font-src 'self' data:;frame-src 'self';img-src 'self' data: blob:;object-src 'none';"
                   f"style-src 'self' data: 'unsafe-inline';connect-src 'self';script-src 'self' 'unsafe-eval' 'sha256-{sha}'")
            return self.send(200, html.encode(), "text/html; charset=utf-8", csp)
        pre = "/data/plugin/xquant/"
        if not path.startswith(pre):
            return self.send(404, b"not found", "text/plain")
        rest = path[len(pre):]
        if rest.startswith("static/"):
            fn = os.path.normpath(os.path.join(STATIC, rest[len("static/"):]))
            if not fn.startswith(os.path.normpath(STATIC)) or not os.path.isfile(fn):
                return self.send(404, b"not found", "text/plain")
            ctype = {"js": "text/javascript", "css": "text/css"}.get(fn.rsplit(".", 1)[-1], "application/octet-stream")
            with open(fn, "rb") as f:
                return self.send(200, f.read(), ctype)
        code, body = route(rest, q)
        if isinstance(body, bytes):
            return self.send(code, body, "image/png")
        return self.send(code, json.dumps(body).encode(), "application/json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=6099)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--path_prefix", default="")
    a = ap.parse_args()
    build()
    Handler.prefix = a.path_prefix.rstrip("/")
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    print(f"fake xquant backend on http://{a.host}:{a.port}{Handler.prefix}/data/plugin_entry.html?name=xquant", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
