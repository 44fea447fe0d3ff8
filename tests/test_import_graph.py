"""Imports flow one way: readers -> model -> producers -> judges -> api -> server / cli / plugin, and only readers/
opens files.  Read from the package's source with ast, so a new back edge or a stray open() fails here."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "tb_xquant_plugin"

# Lower number = lower layer; a module may import its own layer and the ones below.
LAYERS = {"__init__": 0, "readers": 0, "model": 1, "manual": 1, "producers": 2, "judges": 3, "api": 4, "mct_study": 4,
          "server": 5, "cli": 5, "export": 5, "plugin": 6, "mct_run": 2, "onnx_run": 2}
# Where file I/O is allowed besides readers/: the manual's own package data, and mct_run (run in the user's
# training script, it writes the manifest), onnx_run (the same for ONNX models: it writes the report folder) and
# mct_study (it writes the study folder).
IO_ALLOWED = {"readers", "manual", "mct_run", "onnx_run", "mct_study"}
IO_CALLS = {"open", "listdir", "scandir", "walk", "stat", "GFile", "exists", "isdir", "isfile", "remove", "makedirs"}


def layer_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else module


def modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        yield ".".join(rel.parts), path


def package_imports(tree: ast.AST):
    """Imports of tb_xquant_plugin modules, skipping those under ``if TYPE_CHECKING:``."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tb_xquant_plugin"):
            if node.module == "tb_xquant_plugin":
                for alias in node.names:
                    yield "tb_xquant_plugin." + alias.name, node.lineno
            else:
                yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tb_xquant_plugin."):
                    yield alias.name, node.lineno


def test_every_module_belongs_to_a_layer():
    for module, _path in modules():
        if module.count(".") >= 1:
            assert layer_of(module) in LAYERS, "%s is in no layer of tests/test_import_graph.py" % module


def test_no_import_goes_back_up():
    back = []
    for module, path in modules():
        if module.count(".") < 1:
            continue
        mine = LAYERS[layer_of(module)]
        for target, line in package_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if target.count(".") >= 1 and LAYERS[layer_of(target)] > mine:
                back.append("%s:%d imports %s" % (path.relative_to(PKG.parent), line, target))
    assert not back, "imports against the layer order:\n" + "\n".join(back)


def test_only_readers_touch_files():
    found = []
    for module, path in modules():
        if module.count(".") < 1 or layer_of(module) in IO_ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                owner = ast.unparse(f.value) if isinstance(f, ast.Attribute) else ""
                if name in IO_CALLS and (name == "open" and isinstance(f, ast.Name) or
                                         owner.startswith(("os", "gf", "tf.io", "gfile", "shutil"))):
                    found.append("%s:%d %s" % (path.relative_to(PKG.parent), node.lineno, ast.unparse(f)))
    assert not found, "file I/O outside readers/:\n" + "\n".join(found)


def test_the_checker_sees_a_back_edge():
    tree = ast.parse("from tb_xquant_plugin.server.store import ReportStore\n")
    assert [t for t, _ in package_imports(tree)] == ["tb_xquant_plugin.server.store"]
    assert LAYERS[layer_of("tb_xquant_plugin.server.store")] > LAYERS["readers"]
