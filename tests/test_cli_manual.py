"""``tb-xquant manual`` through the installed console script, in a subprocess (what a user types)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tb_xquant_plugin import manual


def console_script() -> str:
    """The ``tb-xquant`` entry point installed next to the test interpreter (setup.py console_scripts)."""
    script = Path(sys.executable).with_name("tb-xquant")
    if script.is_file():
        return str(script)
    found = shutil.which("tb-xquant")
    assert found, "the tb-xquant console script is not installed (pip install -e . in the test environment)"
    return found


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([console_script(), "manual", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=str(Path(__file__).resolve().parent))


def test_manual_lists_every_entry():
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    for e in manual.list_entries():
        row = [l for l in lines if l.split()[:1] == [e["id"]]]
        assert len(row) == 1, e["id"]
        assert e["title"] in row[0]
        if e["judge"]:
            assert "[%s]" % e["judge"] in row[0]
    # listed in the manual's order
    order = [l.split()[0] for l in lines if l.startswith("  ")]
    assert order == [e["id"] for e in manual.list_entries()]


@pytest.mark.parametrize("entry_id", ["gptq", "outlier-removal"])
def test_manual_prints_one_entry(entry_id):
    proc = run(entry_id)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    entry = manual.get_entry(entry_id)
    assert proc.stdout == manual.entry_text(entry_id)
    assert proc.stdout.splitlines()[0] == entry["title"]
    # the code to paste is printed as is, every line of every snippet
    for snippet in entry["snippets"]:
        for line in snippet.splitlines():
            if line.strip():
                assert line in proc.stdout, line


def test_manual_accepts_a_judge_name():
    judge, entry_id = next(iter(manual.JUDGE_TO_MANUAL.items()))
    proc = run(judge)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == manual.entry_text(entry_id)


def test_manual_unknown_id_exits_2_with_a_message():
    proc = run("no-such-entry")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "unknown entry 'no-such-entry'" in proc.stderr
    for e in manual.list_entries():  # and says which ones exist
        assert e["id"] in proc.stderr


def test_manual_two_ids_is_a_usage_error():
    proc = run("gptq", "outlier-removal")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "usage: tb-xquant" in proc.stderr and "outlier-removal" in proc.stderr  # the extra argument is named
