"""``tb-xquant report --format md``: rendered with Python-Markdown (tables + fenced code) and read back as HTML.

The tables must have the right rows and columns, values past a threshold must be marked, every snippet must come
back verbatim from its code block, and no model-derived string (layer, metric or model names with ``|``,
``<script>``, new lines, backticks, emphasis or link syntax) may create a cell, a tag or a line of its own."""
from __future__ import annotations

import html.parser
import json
import math
from typing import Dict, List

import markdown as md_lib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_cli_gates import tbx
from tb_xquant_plugin.export import markdown as mdx

EXTENSIONS = ["tables", "fenced_code"]
WARN = "\u26a0"


class Html(html.parser.HTMLParser):
    """Tables (rows of cells: text and the tags inside), code blocks, every tag, and the text of the document."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: List[List[List[Dict]]] = []
        self.codes: List[Dict] = []
        self.tags: List[str] = []
        self._cell = None
        self._code = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = {"kind": tag, "text": "", "tags": []}
            self.tables[-1][-1].append(self._cell)
        elif self._cell is not None:
            self._cell["tags"].append(tag)
        if tag == "code":
            self._code = {"class": dict(attrs).get("class"), "text": ""}
            self.codes.append(self._code)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "code":
            self._code = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._code is not None:
            self._code["text"] += data


def render(text: str) -> Html:
    h = Html()
    h.feed(md_lib.markdown(text, extensions=EXTENSIONS))
    h.close()
    return h


def table_after(text: str, heading: str, start: int = 0) -> str:
    """The Markdown table that follows ``heading`` (from character ``start``)."""
    i = text.index(heading, start)
    lines = text[i:].split("\n")
    out, seen = [], False
    for line in lines[1:]:
        if line.startswith("|"):
            out.append(line)
            seen = True
        elif seen:
            break
    return "\n".join(out)


def past(value, thr, under) -> bool:
    return (value <= thr) if under else (value >= thr)


# ------------------------------------------------------------------------------------------------------------
def test_generated_report_renders_every_layer(mct_format_logdir, generated_models):
    p = tbx("report", str(mct_format_logdir), "--format", "md")
    assert p.returncode == 0, p.stderr
    text = p.stdout
    doc = render(text)
    reports = {r["name"]: r for r in json.loads(tbx("report", str(mct_format_logdir), "--json").stdout)}
    assert "script" not in doc.tags
    for m in generated_models.values():
        r = reports[m.rel]
        start = text.index("## " + mdx.text(m.rel))
        metrics = list(m.quant_report["output_similarity_metrics_repr"])
        layers = list(m.quant_report["intermediate_similarity_metrics_repr"])
        rows = render(table_after(text, "### Layers", start)).tables[0]
        assert len(rows) == 1 + len(layers)
        width = 5 + 2 * len(metrics) + 1
        assert all(len(row) == width for row in rows), {len(row) for row in rows}
        header = [c["text"] for c in rows[0]]
        assert header[:5] == ["#", "layer", "op", "W bits", "A bits"] and header[-1] == "degraded"
        assert header[5:-1] == ["%s (%s)" % (k, ds) for ds in ("repr", "val") for k in metrics]
        thr = m.xquant_config["threshold_quantize_error"]
        under = m.xquant_config["is_detect_under_threshold_quantize_error"]
        for row, name in zip(rows[1:], layers):
            assert row[1]["text"] == name
            marks = 0
            for k, (ds, metric) in enumerate((ds, k) for ds in ("repr", "val") for k in metrics):
                value = m.quant_report["intermediate_similarity_metrics_" + ds][name][metric]
                cell = row[5 + k]
                assert math.isclose(float(cell["text"].replace(WARN, "").strip()), value, rel_tol=1e-3), cell
                flagged = past(value, thr[metric], under.get(metric, False))
                assert (WARN in cell["text"]) == flagged and ("strong" in cell["tags"]) == flagged, (name, metric)
                marks += flagged
            assert (row[-1]["text"] == "yes") == (name in m.mct_degraded) == (marks > 0)
        # output metrics: one row per metric, both datasets
        out_rows = render(table_after(text, "### Output metrics", start)).tables[0]
        assert [c["text"] for c in out_rows[0]] == ["metric", "repr", "val"]
        assert [row[0]["text"] for row in out_rows[1:]] == metrics
        # the verdicts: each numbered, each snippet verbatim in a python code block
        section = text[start:text.index("\n## ", start + 3) if "\n## " in text[start + 3:] else len(text)]
        sdoc = render(section)
        snippets = [v["snippet"] for v in r["verdicts"] if v["snippet"]]
        assert [c["text"].rstrip("\n") for c in sdoc.codes if c["class"] == "language-python"] == \
            [s.rstrip("\n") for s in snippets]
        for i, v in enumerate(r["verdicts"], 1):
            assert "**%d. %s, " % (i, mdx.text(v["judge"])) in section


def test_weight_and_activation_bits_appear(mct_format_logdir):
    """model_200 has tb-xquant's manifest (every layer's bits) and stage logs: the bit columns are filled."""
    text = tbx("report", str(mct_format_logdir / "model_200"), "--format", "md").stdout
    rows = render(table_after(text, "### Layers")).tables[0][1:]
    assert all(r[3]["text"].isdigit() for r in rows)
    assert all(r[4]["text"].isdigit() or r[4]["text"] in ("fused", "float", "preserved") for r in rows)


# ------------------------------------------------------------------------------------------------------------
HOSTILE_LAYERS = [
    "conv|with|pipes", "<script>alert(1)</script>", "line\nbreak\r\nagain", "tick`s``and```fences",
    "**bold** _it_ ~~gone~~", "[link](http://example.com) ![img](x.png)", "# heading", "1. listed", "- bullet",
    "&lt;entity&gt; &amp;", "ctrl\x02chars\x03", "$math$ and \\backslash\\", "    indented", "<img src=x onerror=alert(1)>",
    "> quote", "|",
]
HOSTILE_METRIC = "evil|<b>metric</b>"


def hostile_logdir(root):
    rd = root / "evil|<i>dir</i>" / "xquant_report"
    rd.mkdir(parents=True)
    metrics = lambda k: {"mse": 0.05 * (k % 3), "cs": 0.99 - 0.5 * (k % 2), "sqnr": 10.0 + k, HOSTILE_METRIC: 1.0 * k}
    layers = {name: metrics(k) for k, name in enumerate(HOSTILE_LAYERS)}
    qr = {"output_similarity_metrics_repr": {"mse": 0.1, "cs": 0.9, "sqnr": 5.0, HOSTILE_METRIC: 1.0},
          "output_similarity_metrics_val": {"mse": 0.2, "cs": 0.8, "sqnr": 4.0, HOSTILE_METRIC: 2.0},
          "intermediate_similarity_metrics_repr": layers, "intermediate_similarity_metrics_val": layers}
    (rd / "quant_report.json").write_text(json.dumps(qr))
    (rd / "tb_xquant_manifest.json").write_text(json.dumps({
        "schema": 1, "model_name": "Net|<script>x</script>\n# not a heading `code`",
        "accuracy": {"float": 0.9, "quantized": 0.8}}))
    return root


def test_hostile_names_never_make_cells_or_tags(tmp_path):
    logdir = hostile_logdir(tmp_path)
    p = tbx("report", str(logdir), "--format", "md")
    assert p.returncode == 0, p.stderr
    text = p.stdout
    doc = render(text)
    # only the tags the layout itself makes
    assert set(doc.tags) <= {"h1", "h2", "h3", "p", "strong", "table", "thead", "tbody", "tr", "th", "td", "ul",
                             "li", "code"}, set(doc.tags)
    assert doc.tags.count("h2") == 1 and doc.tags.count("h1") == 1
    assert "script" not in doc.tags and "img" not in doc.tags and "a" not in doc.tags
    # the layers table: one row per layer, every row as wide as the header
    rows = render(table_after(text, "### Layers")).tables[0]
    assert len(rows) == 1 + len(HOSTILE_LAYERS)
    assert {len(r) for r in rows} == {5 + 2 * 4 + 1}
    header = [c["text"] for c in rows[0]]
    assert header[5:9] == ["mse (repr)", "cs (repr)", "sqnr (repr)", "%s (repr)" % HOSTILE_METRIC]
    for row, name in zip(rows[1:], HOSTILE_LAYERS):
        expected = " ".join(name.replace("\r\n", "\n").split("\n")).strip().replace("\x02", "\ufffd").replace(
            "\x03", "\ufffd")
        assert row[1]["text"] == expected, (row[1], name)
        assert row[1]["tags"] == []  # no emphasis, link, code span or HTML inside the name's cell
    # the hostile metric name in the output-metrics table too
    out_rows = render(table_after(text, "### Output metrics")).tables[0]
    assert [r[0]["text"] for r in out_rows[1:]] == ["mse", "cs", "sqnr", HOSTILE_METRIC]
    assert {len(r) for r in out_rows} == {3}
    # the accuracy table
    acc = render(table_after(text, "### Accuracy")).tables[0]
    assert [c["text"] for c in acc[1]] == ["0.9", "0.8", "10"]


def test_snippet_fence_is_longer_than_any_backtick_run():
    code = "x = '```'\ny = '````'  # ``````\n```python\n"
    lines = mdx.code_block(code)
    assert lines[0] == "`" * 7 + "python" and lines[-1] == "`" * 7
    doc = render("before\n\n" + "\n".join(lines) + "\n\nafter")
    assert [c["text"].rstrip("\n") for c in doc.codes] == [code.rstrip("\n")]
    assert mdx.fence_for("no ticks") == "```"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_string_is_one_plain_cell(s):
    """Whatever a name holds, text() makes it exactly one table cell with no markup inside, reading as the name."""
    doc = render("| a | b |\n| --- | --- |\n| x | %s |\n" % mdx.text(s))
    assert len(doc.tables) == 1 and [len(r) for r in doc.tables[0]] == [2, 2]
    cell = doc.tables[0][1][1]
    assert cell["tags"] == []
    expected = mdx._clean(s).strip().replace("\t", " ")
    assert cell["text"].strip() == expected.strip()
    # and as a paragraph of its own (messages, problems) it stays one paragraph
    para = render("intro\n\n%s\n\nend" % mdx.text(s))
    assert para.tables == [] and set(para.tags) <= {"p"}


# ------------------------------------------------------------------------------------------------------------
@pytest.mark.mct
def test_demo_markdown(demo_logdir, scenarios):
    p = tbx("report", str(demo_logdir), "--format", "md")
    assert p.returncode == 0, p.stderr
    text = p.stdout
    for sc in scenarios.values():
        start = text.index("## " + mdx.text(sc.rel))
        layers = list(sc.quant_report["intermediate_similarity_metrics_repr"])
        if sc.keras:  # quant_report.json names the wrappers; the report shows the Keras layers (tests/test_keras.py)
            layers = [l.name for l in sc.report().layers]
        rows = render(table_after(text, "### Layers", start)).tables[0]
        assert [r[1]["text"] for r in rows[1:]] == layers
        marked = {r[1]["text"] for r in rows[1:] if r[-1]["text"] == "yes"}
        assert marked == set(sc.mct_degraded)
        acc = render(table_after(text, "### Accuracy", start)).tables[0]
        assert float(acc[1][0]["text"]) == pytest.approx(sc.manifest["accuracy"]["float"], rel=1e-3)
        assert float(acc[1][1]["text"]) == pytest.approx(sc.manifest["accuracy"]["quantized"], rel=1e-3)
