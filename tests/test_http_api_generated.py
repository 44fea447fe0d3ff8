"""Every route of docs/api.md on logdirs that bench/mct_format.py writes in MCT 2.6.1's on-disk format: the
torch-free counterpart of test_http_api.py (which runs on the real-MCT demo).  The plugin is mounted in
TensorBoard's WSGI router without a data provider (files read directly) and driven by werkzeug's test client;
the expected answers come from the files (quant_report.json and MCT's detection rule, conftest.mct_degraded_layers).
"""
from __future__ import annotations

import json
import math
import shutil
import struct
import threading
import zlib

import pytest

JUDGES = {"outlier_removal", "shift_negative_activation", "unbalanced_concatenation",
          "mixed_precision_with_model_output_loss_objective"}
MODELS = ("model_60", "model_200")
ANALYSIS_ROUTES = ("report", "layers", "verdicts", "graph")


def strict(text: str):
    """json.loads refusing bare NaN / Infinity tokens (the API encodes them as strings)."""
    def bad(tok):
        raise AssertionError("bare %s token in JSON" % tok)
    return json.loads(text, parse_constant=bad)


def assert_error(resp, codes):
    assert resp.status_code in codes, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/json"
    body = strict(resp.get_data(as_text=True))
    assert set(body) == {"error", "hint"} and body["error"]
    return body


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid grey PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def api(generated_api):
    return generated_api


@pytest.fixture(scope="module")
def ids(api):
    return api.report_ids()


@pytest.fixture(scope="module")
def models(generated_models):
    return generated_models


def rid(ids, model):
    return ids["%s/xquant_report" % model]


def copy_model(models, name, dst):
    """A copy of one generated model (report and stage logs) at ``dst/<name>``; returns the copy's report dir."""
    shutil.copytree(models[name].logdir / name, dst / name, ignore=shutil.ignore_patterns(".bench_done"))
    return dst / name / "xquant_report"


def edit_quant_report(report_dir, fn):
    path = report_dir / "quant_report.json"
    qr = json.loads(path.read_text())
    fn(qr)
    path.write_text(json.dumps(qr, indent=4))  # Python writes NaN / Infinity as bare tokens, as MCT does


# --------------------------------------------------------------------------------------------
# reports, plugins_listing
# --------------------------------------------------------------------------------------------
def test_reports_lists_each_model(api, models, mct_format_logdir):
    body = api.json("reports")
    assert body["logdir"] == str(mct_format_logdir)
    names = [r["name"] for r in body["reports"]]
    assert names == sorted(names) == sorted(m.rel for m in models.values())
    for r in body["reports"]:
        m = next(m for m in models.values() if m.rel == r["name"])
        assert r["path"] == m.rel and r["problems"] == []
        assert r["has_quant_report"] and r["has_troubleshoot_report"] and r["has_graph"] and r["has_histograms"]
        assert r["layer_count"] == len(m.quant_report["intermediate_similarity_metrics_repr"]) == m.layers
        assert (mct_format_logdir / r["stage_logs"]).is_dir()
        assert r["stage_logs"].startswith(m.name + "/mct_logs/")
        assert r["model_name"] == ("SyntheticNet" if m.manifest else None)
        assert (r["manifest"] is not None) == (m.manifest is not None)


def test_report_ids_are_stable(api, mct_format_logdir, make_api):
    assert make_api(str(mct_format_logdir)).report_ids() == api.report_ids()


def test_plugins_listing(api, make_api, tmp_path):
    listing = json.loads(api.client.get("/data/plugins_listing").get_data(as_text=True))
    assert listing["xquant"]["enabled"] is True and listing["xquant"]["tab_name"] == "XQuant"
    assert listing["xquant"]["loading_mechanism"]["type"] == "IFRAME"
    empty = make_api(str(tmp_path))
    body = empty.json("reports")
    assert body["reports"] == [] and body["hint"]
    listing = json.loads(empty.client.get("/data/plugins_listing").get_data(as_text=True))
    assert listing["xquant"]["enabled"] is False


# --------------------------------------------------------------------------------------------
# report, layers, graph, verdicts
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_report_summary_follows_mct(name, api, ids, models):
    m = models[name]
    s = api.json("report", report=rid(ids, name))
    assert s["id"] == rid(ids, name) and s["name"] == m.rel and s["problems"] == []
    assert s["degraded_layers"] == m.mct_degraded and m.mct_degraded  # every model has some
    assert s["layer_count"] == m.layers
    assert s["degraded_ratio"] == pytest.approx(len(m.mct_degraded) / m.layers)
    assert s["judges_skipped"] is False  # a few percent degraded: far under MCT's 0.5
    cfg = m.xquant_config
    assert s["thresholds"]["quantize_error"] == cfg["threshold_quantize_error"]
    assert s["thresholds"]["detect_under"] == cfg["is_detect_under_threshold_quantize_error"]
    assert s["metrics"] == list(m.quant_report["output_similarity_metrics_repr"])
    for ds in ("repr", "val"):
        want = m.quant_report["output_similarity_metrics_" + ds]
        assert s["output_metrics"][ds] == pytest.approx(want)
    assert s["verdict_groups"] and {g["judge"] for g in s["verdict_groups"]} <= JUDGES
    assert all(g["judge"] == "general" and g["numbers"]["reason"] for g in s["general"])
    # MCT's own verdicts come from troubleshoot_report.json
    mct_judges = {g["judge"] for g in s["verdict_groups"] if g["source"] == "mct"}
    assert mct_judges == {k for k, v in m.troubleshoot.items() if v and k in JUDGES}


@pytest.mark.parametrize("name", MODELS)
def test_layers_route(name, api, ids, models):
    m = models[name]
    body = api.json("layers", report=rid(ids, name))
    assert body["datasets"] == ["repr", "val"]
    qr = m.quant_report
    cfg = m.xquant_config
    thr, under = cfg["threshold_quantize_error"], cfg["is_detect_under_threshold_quantize_error"]
    assert [l["name"] for l in body["layers"]] == list(qr["intermediate_similarity_metrics_repr"])
    nodes = {n["id"]: n for n in api.json("graph", report=rid(ids, name))["nodes"]}
    for i, l in enumerate(body["layers"]):
        assert l["index"] == i
        for ds in ("repr", "val"):
            assert l[ds] == pytest.approx(qr["intermediate_similarity_metrics_" + ds][l["name"]])
            for metric, value in l[ds].items():
                hit = value <= thr[metric] if under[metric] else value >= thr[metric]
                assert l["flags"]["%s.%s" % (metric, ds)] is hit
        assert l["degraded"] is (l["name"] in m.mct_degraded) is any(l["flags"].values())
        assert (l["worst"] is None) is (not l["degraded"])
        assert l["node"] in nodes and nodes[l["node"]]["layer"] == l["name"]
    for v in body["verdict_nodes"]:
        assert v["node"] is None or v["node"] in nodes
        assert v["judges"] and set(v["judges"]) <= JUDGES


@pytest.mark.parametrize("name", MODELS)
def test_graph_route(name, api, ids, models):
    m = models[name]
    g = api.json("graph", report=rid(ids, name))
    nodes = g["nodes"]
    by_id = {n["id"]: n for n in nodes}
    assert len(by_id) == len(nodes) >= m.layers
    for n in nodes:
        assert set(n["inputs"]) <= set(by_id), n["id"]
        assert isinstance(n["group"], str) and not n["group"].startswith("/")
        assert n["degraded"] is (n["layer"] in m.mct_degraded)
    assert {n["layer"] for n in nodes if n["layer"]} == set(m.quant_report["intermediate_similarity_metrics_repr"])
    # module scopes recovered from the fx names: the stem, the blocks and the classifier
    tops = {n["group"].split("/")[0] for n in nodes if n["group"]}
    assert {"stem", "classifier"} <= tops and any(t.startswith("blocks") for t in tops), tops
    judged = {x for n in nodes for x in n["judges"]}
    assert judged and judged <= JUDGES


@pytest.mark.parametrize("name", MODELS)
def test_verdicts_route_matches_report(name, api, ids):
    s = api.json("report", report=rid(ids, name))
    v = api.json("verdicts", report=rid(ids, name))
    assert len(v["verdicts"]) == s["verdict_count"] and v["general"] == s["general"]
    assert sum(g["count"] for g in s["verdict_groups"]) == len(v["verdicts"])
    assert v["judges_skipped"] == s["judges_skipped"]
    assert v["concat_agreement"] == s["concat_agreement"]
    checks = v["concat_checks"]
    assert checks and s["concat_summary"]["joins"] == len(checks)
    limit = s["thresholds"]["ratio_unbalanced_concatenation"]
    for c in checks:
        assert c["kind"] in ("concatenation", "add") and len(c["inputs"]) >= 2
        if c["ratio"] is None:
            assert c["flagged"] is False
        else:
            assert c["ratio"] >= 1.0 and c["flagged"] is (c["ratio"] >= limit)
    flagged = {c["node"] for c in checks if c["flagged"]}
    computed = {x["numbers"]["node"] for x in v["verdicts"]
                if x["judge"] == "unbalanced_concatenation" and x["source"] == "computed"}
    assert computed == flagged


def test_layer_route(api, ids, models):
    r = rid(ids, "model_60")
    layers = api.json("layers", report=r)["layers"]
    degraded = [l for l in layers if l["degraded"]]
    with_hist = None
    for l in degraded + layers:
        d = api.json("layer", report=r, layer=l["name"])
        assert d["name"] == l["name"] and d["node"] == l["node"] and d["degraded"] == l["degraded"]
        assert d["repr"] == l["repr"] and d["flags"] == l["flags"]
        assert d["quant"] is not None and d["quant"]["op"] == l["op"]
        if d["histogram"] and with_hist is None:
            with_hist = d
    assert with_hist is not None, "no layer with a histogram"
    h = with_hist["histogram"]
    assert len(h["counts"]) == len(h["zscore"]) and len(h["bins"]) in (len(h["counts"]), len(h["counts"]) + 1)
    assert h["sigma"] > 0 and h["max_zscore"] >= 0
    # the outlier judge fires where MCT's troubleshoot report says so
    outliers = [x[0] if isinstance(x, (list, tuple)) else x for x in models["model_60"].troubleshoot["outlier_removal"]]
    for name in outliers:
        d = api.json("layer", report=r, layer=name)
        assert "outlier_removal" in {v["judge"] for v in d["verdicts"]}
    # by index (for names too long for a URL) gives the same answer
    assert api.json("layer", report=r, index=str(layers[3]["index"])) == api.json("layer", report=r,
                                                                                     layer=layers[3]["name"])


def test_layer_errors(api, ids):
    r = rid(ids, "model_60")
    assert_error(api.get("layer", report=r), (400,))
    assert_error(api.get("layer", report=r, layer="no_such_layer"), (404,))
    assert_error(api.get("layer", report=r, index="100000"), (400, 404))
    assert_error(api.get("layer", report=r, index="abc"), (400,))


@pytest.mark.parametrize("route", ANALYSIS_ROUTES)
def test_missing_and_unknown_report(route, api):
    assert_error(api.get(route), (400,))
    assert_error(api.get(route, report="r000000000000"), (404,))
    assert_error(api.get(route, report="../model_60"), (404,))


# --------------------------------------------------------------------------------------------
# threshold overrides
# --------------------------------------------------------------------------------------------
def test_threshold_overrides_follow_mct_rule(api, ids, models, mct_rule):
    m = models["model_200"]
    r = rid(ids, "model_200")
    mse = sorted(v["mse"] for v in m.quant_report["intermediate_similarity_metrics_repr"].values())
    for thr_mse in (mse[len(mse) // 2], mse[-1], mse[-1] * 2):
        cfg = json.loads(json.dumps(m.xquant_config))
        cfg["threshold_quantize_error"]["mse"] = thr_mse
        s = api.json("report", report=r, **{"thr.mse": repr(thr_mse)})
        assert s["thresholds"]["quantize_error"]["mse"] == thr_mse
        assert s["degraded_layers"] == mct_rule(m.quant_report, cfg)
        layers = api.json("layers", report=r, **{"thr.mse": repr(thr_mse)})["layers"]
        assert [l["name"] for l in layers if l["degraded"]] == sorted(s["degraded_layers"], key=[
            l["name"] for l in layers].index)
    # direction: "under" for mse flags nearly everything (every mse is under a big threshold)
    cfg = json.loads(json.dumps(m.xquant_config))
    cfg["threshold_quantize_error"]["mse"] = 1.0
    cfg["is_detect_under_threshold_quantize_error"]["mse"] = True
    s = api.json("report", report=r, **{"thr.mse": "1.0", "under.mse": "1"})
    assert s["degraded_layers"] == mct_rule(m.quant_report, cfg)
    # more than the ratio degraded: the judges are skipped with the general reason
    assert s["judges_skipped"] is True
    assert "degraded_ratio_over_limit" in {g["numbers"]["reason"] for g in s["general"]}
    # a ratio limit under the current ratio skips them as well
    s = api.json("report", report=r, ratio="0.001")
    assert s["judges_skipped"] is True and s["thresholds"]["degrade_layer_ratio"] == 0.001
    th = api.json("report", report=r, bits="3", z="4.5", concat="8")["thresholds"]
    assert th["bitwidth_mixed_precision_with_model_output_loss_objective"] == 3
    assert th["zscore_outlier_removal"] == 4.5 and th["ratio_unbalanced_concatenation"] == 8.0


@pytest.mark.parametrize("params", [{"thr.mse": "abc"}, {"thr.mse": "nan"}, {"under.cs": "maybe"}, {"ratio": "-1"},
                                    {"ratio": "x"}, {"z": "inf"}, {"bits": "2.5"}, {"concat": ""}])
@pytest.mark.parametrize("route", ANALYSIS_ROUTES)
def test_bad_threshold_values_are_400(route, params, api, ids):
    assert_error(api.get(route, report=rid(ids, "model_60"), **params), (400,))


# --------------------------------------------------------------------------------------------
# artifacts (MCT's PNG charts: bench/mct_format.py writes none, so a copy gets some)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def with_pngs(models, tmp_path_factory, make_api):
    root = tmp_path_factory.mktemp("pngs")
    rd = copy_model(models, "model_60", root)
    files = {"quant_loss_mse_repr.png": png(3, 2), "quant_loss_cs_val.png": png(2, 3)}
    for fname, data in files.items():
        (rd / fname).write_bytes(data)
    api = make_api(str(root))
    (r,) = api.json("reports")["reports"]
    return api, r["id"], files


def test_artifacts_serve_the_pngs(with_pngs):
    api, r, files = with_pngs
    arts = {a["name"]: a for a in api.json("report", report=r)["artifacts"]}
    assert set(arts) == set(files)
    assert arts["quant_loss_mse_repr.png"]["kind"] == "similarity_chart"
    assert (arts["quant_loss_mse_repr.png"]["metric"], arts["quant_loss_mse_repr.png"]["dataset"]) == ("mse", "repr")
    for name, a in arts.items():
        resp = api.get("artifact", report=r, id=a["id"])
        assert resp.status_code == 200 and resp.mimetype == "image/png"
        assert resp.get_data() == files[name]


@pytest.mark.parametrize("aid", ["../quant_report.json", "quant_report.json", "quant_loss_mse_repr.png",
                                 "/etc/passwd", "..%2Fquant_report.json", "", "a" * 3000, "\x00", "a0000000000"])
def test_artifact_never_serves_client_paths(aid, with_pngs):
    api, r, _ = with_pngs
    resp = api.get("artifact", report=r, id=aid)
    assert_error(resp, (400, 404))
    assert b"PNG" not in resp.get_data() and b"intermediate_similarity" not in resp.get_data()


def test_artifact_errors(with_pngs, api, ids):
    papi, r, _ = with_pngs
    aid = papi.json("report", report=r)["artifacts"][0]["id"]
    assert_error(papi.get("artifact", report=r), (400,))
    assert_error(papi.get("artifact", id=aid), (400,))
    assert_error(papi.get("artifact", report="r000000000000", id=aid), (404,))
    # an artifact id belongs to its report only
    assert_error(api.get("artifact", report=rid(ids, "model_60"), id=aid), (404,))


# --------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def before_after(models, tmp_path_factory, make_api):
    """The same model twice; in ``after`` every degraded layer got the metrics of a healthy one."""
    root = tmp_path_factory.mktemp("compare")
    copy_model(models, "model_60", root / "before")
    after = copy_model(models, "model_60", root / "after")
    degraded = models["model_60"].mct_degraded

    def heal(qr):
        for ds in ("repr", "val"):
            rows = qr["intermediate_similarity_metrics_" + ds]
            healthy = next(v for k, v in rows.items() if k not in degraded)
            for name in degraded:
                rows[name] = dict(healthy)

    edit_quant_report(after, heal)
    api = make_api(str(root))
    ids = api.report_ids()
    return api, ids["before/model_60/xquant_report"], ids["after/model_60/xquant_report"], degraded


def test_compare_before_and_after(before_after, models):
    api, a, b, degraded = before_after
    c = api.json("compare", a=a, b=b)
    assert (c["a"], c["b"]) == (a, b)
    names = list(models["model_60"].quant_report["intermediate_similarity_metrics_repr"])
    assert [row["name"] for row in c["layers"]] == names
    summary = c["summary"]
    assert summary["degraded_a"] == len(degraded) and summary["degraded_b"] == 0
    assert summary["improved"] == len(degraded) and summary["worse"] == 0
    assert sum(summary[k] for k in ("improved", "worse", "unchanged", "only_a", "only_b")) == len(names)
    for row in c["layers"]:
        assert row["degraded_a"] is (row["name"] in degraded) and row["degraded_b"] is False
        assert row["status"] == ("improved" if row["name"] in degraded else "unchanged")
    # same stage graphs and no manifest: nothing says a countermeasure was applied
    assert c["countermeasure"]["applied"] is False
    assert "countermeasure_did_not_improve" not in {g["numbers"]["reason"] for g in c["general"]}


def test_compare_same_and_different_models(api, ids, models):
    same = api.json("compare", a=rid(ids, "model_60"), b=rid(ids, "model_60"))
    assert same["summary"]["unchanged"] == models["model_60"].layers
    assert same["summary"]["improved"] == same["summary"]["worse"] == 0
    other = api.json("compare", a=rid(ids, "model_60"), b=rid(ids, "model_200"))
    statuses = {row["status"] for row in other["layers"]}
    assert "only_b" in statuses


def test_compare_errors(api, ids):
    assert_error(api.get("compare", a=rid(ids, "model_60")), (400,))
    assert_error(api.get("compare", b=rid(ids, "model_60")), (400,))
    assert_error(api.get("compare", a=rid(ids, "model_60"), b="r000000000000"), (404,))
    assert_error(api.get("compare", a=rid(ids, "model_60"), b=rid(ids, "model_200"), ratio="x"), (400,))


# --------------------------------------------------------------------------------------------
# manual, static, unknown routes
# --------------------------------------------------------------------------------------------
def test_manual_entries_and_verdict_links(api, ids):
    entries = api.json("manual")["entries"]
    by_id = {e["id"]: e for e in entries}
    assert {e["judge"] for e in entries if e["kind"] == "judgeable"} == JUDGES
    used = set()
    for name in MODELS:
        s = api.json("report", report=rid(ids, name))
        used |= {v["manual"] for v in api.json("verdicts", report=rid(ids, name))["verdicts"] + s["general"]}
        used |= {g["manual"] for g in s["verdict_groups"]}
    assert used and used <= set(by_id)
    for mid in by_id:
        e = api.json("manual", id=mid)
        assert e["id"] == mid and e["title"] == by_id[mid]["title"] and e["markdown"] and e["html"]
        assert isinstance(e["snippets"], list)
    assert_error(api.get("manual", id="../../setup"), (404,))
    assert_error(api.get("manual", id="no-such-entry"), (404,))


def test_static_bundle_and_traversal(api):
    resp = api.get("static/index.js")
    assert resp.status_code == 200 and resp.mimetype == "text/javascript" and resp.get_data()
    for path in ("static/../plugin.py", "static/..%2fplugin.py", "static/.hidden", "static/nope.js",
                 "static/%2e%2e/plugin.py"):
        r = api.client.get(api.PREFIX + path)
        assert r.status_code in (400, 404), path
        assert b"XQuantPlugin" not in r.get_data()


def test_unknown_route_is_404(api):
    assert api.get("no_such_route").status_code == 404


# --------------------------------------------------------------------------------------------
# NaN / Infinity, file paths, concurrency
# --------------------------------------------------------------------------------------------
def test_nan_and_infinity_encoded_as_strings(models, tmp_path, make_api):
    rd = copy_model(models, "model_60", tmp_path)
    first, second = list(models["model_60"].quant_report["intermediate_similarity_metrics_repr"])[:2]

    def poison(qr):
        qr["intermediate_similarity_metrics_repr"][first]["cs"] = math.nan
        qr["intermediate_similarity_metrics_val"][first]["sqnr"] = math.inf
        qr["intermediate_similarity_metrics_repr"][second]["mse"] = -math.inf
        qr["output_similarity_metrics_val"]["mse"] = math.nan

    edit_quant_report(rd, poison)
    api = make_api(str(tmp_path))
    (r,) = api.json("reports")["reports"]
    for route in ANALYSIS_ROUTES:
        resp = api.get(route, report=r["id"])
        assert resp.status_code == 200
        strict(resp.get_data(as_text=True))
    strict(api.get("layer", report=r["id"], layer=first).get_data(as_text=True))
    layers = strict(api.get("layers", report=r["id"]).get_data(as_text=True))["layers"]
    assert layers[0]["repr"]["cs"] == "NaN" and layers[0]["val"]["sqnr"] == "Infinity"
    assert layers[1]["repr"]["mse"] == "-Infinity"
    assert layers[0]["flags"]["cs.repr"] is False  # NaN never degrades
    s = api.json("report", report=r["id"])
    assert s["output_metrics"]["val"]["mse"] == "NaN"
    assert any("NaN" in p["what"] for p in s["problems"])


def test_no_file_path_in_any_answer(api, ids, mct_format_logdir):
    root = str(mct_format_logdir)
    for name in MODELS:
        r = rid(ids, name)
        s = api.json("report", report=r)
        bodies = [api.get(route, report=r).get_data(as_text=True) for route in ANALYSIS_ROUTES]
        bodies += [api.get("layer", report=r, layer=l).get_data(as_text=True) for l in s["degraded_layers"]]
        for b in bodies:
            assert root not in b and "/tmp/" not in b


def test_concurrent_requests_on_cold_caches(mct_format_logdir, make_api):
    from werkzeug.test import Client

    reference = make_api(str(mct_format_logdir))
    ids = sorted(reference.report_ids().values())
    urls = ["reports", "manual", "static/index.js", "compare?a=%s&b=%s" % (ids[0], ids[1])]
    for i in ids:
        urls += ["%s?report=%s" % (route, i) for route in ANALYSIS_ROUTES]
        urls += ["report?report=%s&thr.mse=0.01" % i, "layers?report=%s&ratio=0.9" % i]
    want = {u: reference.client.get(reference.PREFIX + u).get_data() for u in urls if u.startswith("report?")}
    api = make_api(str(mct_format_logdir))  # cold: the reports are built while 8 threads ask
    errors, done = [], [0] * 8

    def worker(k):
        client = Client(api.app)
        try:
            for n in range(3):
                for u in (urls[k % 3::2] if n % 2 else urls[::-1]):
                    resp = client.get(api.PREFIX + u)
                    if resp.status_code != 200:
                        errors.append((u, resp.status_code, resp.get_data(as_text=True)[:200]))
                    elif u in want and resp.get_data() != want[u]:
                        errors.append((u, "differs from the single-threaded answer"))
                    else:
                        done[k] += 1
        except Exception as e:  # noqa: BLE001
            errors.append(("exception", repr(e)))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "requests hung"
    assert not errors, errors[:5]
    assert sum(done) > 8 * len(urls)
