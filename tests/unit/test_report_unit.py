# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn_ptwalk.report without a dump: a section that raises is recorded with its error and the others are
written; without matplotlib the command says what to install."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _need(module: str, what: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        pytest.fail(f"{module} is missing: {what}", pytrace=False)


def test_report_section_fails_alone(tmp_path, monkeypatch):
    """A section that raises (a corrupt structure) is recorded with its error and where, in both files; the
    sections before and after it are written."""
    _need("matplotlib", "pip install 'drgn-ptwalk[report]' (or '.[test]')")
    from drgn import FaultError

    import drgn_ptwalk.report.sections as sections
    from drgn_ptwalk.report import write_report

    def ok(ctx):
        return {"fine": True}, "<p>fine</p>"

    def broken(ctx):
        raise FaultError("could not read memory", 0xdead000)

    fake = tuple(sections.SectionDef(s.name, s.title, broken if s.name == "physmap" else ok)
                 for s in sections.SECTIONS)
    monkeypatch.setattr(sections, "SECTIONS", fake)
    res = write_report(None, tmp_path)  # type: ignore[arg-type]
    secs = {s["name"]: s for s in res.report["sections"]}
    assert res.failed == ["physmap"]
    assert secs["physmap"]["status"] == "error" and secs["physmap"]["data"] is None
    assert "FaultError" in secs["physmap"]["error"] and "0xdead000" in secs["physmap"]["error"]
    assert "test_report_unit.py" in secs["physmap"]["error"]  # where it was raised
    assert all(s["status"] == "ok" and s["data"] == {"fine": True} for n, s in secs.items() if n != "physmap")
    assert json.loads(res.json.read_text()) == json.loads(json.dumps(res.report))
    text = res.html.read_text()
    assert '<section id="physmap" data-status="error">' in text and "0xdead000" in text
    assert text.count("<p>fine</p>") == len(fake) - 1


def test_report_needs_matplotlib(tmp_path):
    """Without matplotlib the command fails in one line saying what to install (before opening any dump)."""
    code = ("import sys; sys.modules['matplotlib'] = None; from drgn_ptwalk.cli import main; "
            f"sys.exit(main(['-c', '/nonexistent', 'report', '-o', {str(tmp_path)!r}]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 2, p
    assert p.stderr.count("\n") == 1 and "pip install 'drgn-ptwalk[report]'" in p.stderr, p.stderr
