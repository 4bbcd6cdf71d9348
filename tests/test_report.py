# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn_ptwalk.report: every reference dump's report is written once (one program per dump, shared with the
other tests of the session), loaded from disk by Debian's chromium headless with the network off: every
section is there with no error and the screenshot is not blank; report.json validates against the schema the
package ships and its numbers are the API's (memmap, memtop, filecache). A batch with a good dump and bad lines
(missing, truncated, not a dump, a vmlinux that does not match) writes every row, says why each bad one
failed, and exits non-zero. (A section that fails alone, and the command without matplotlib:
tests/unit/test_report_unit.py.)"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict

import pytest

from drgn_ptwalk.errors import UnsupportedKernelError

ROOT = Path(__file__).resolve().parent.parent
_reports: Dict[str, Any] = {}


@pytest.fixture(scope="session")
def report_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reports")


def _need(module: str, what: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        pytest.fail(f"{module} is missing: {what}", pytrace=False)


def _report(vmcore, root: Path):
    """The report of *vmcore*, written once per session."""
    if vmcore.name not in _reports:
        _need("matplotlib", "pip install 'drgn-ptwalk[report]' (or '.[test]')")
        from drgn_ptwalk.report import write_report

        out = root / vmcore.name.replace(":", "-")
        _reports[vmcore.name] = write_report(vmcore.prog(), out, source={"core": vmcore.core,
                                                                         "vmlinux": vmcore.vmlinux})
    return _reports[vmcore.name]


def _refused(vmcore, section: Dict[str, Any]) -> bool:
    """A section the kernel refuses (the physical side on a big-endian kernel): status unsupported."""
    return section["status"] == "unsupported" and section["name"] in ("memory", "physmap") and \
        UnsupportedKernelError.__name__ in (section["error"] or "")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: apt-get install chromium (setup.sh installs it)", pytrace=False)


def _chromium_run(html: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="ptwalk-chromium-")
    try:
        return subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", *extra, html.as_uri()],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_report_sections(vmcore, report_root):
    res = _report(vmcore, report_root)
    from drgn_ptwalk.report import SECTION_NAMES

    secs = res.report["sections"]
    assert [s["name"] for s in secs] == list(SECTION_NAMES)
    bad = [(s["name"], s["error"]) for s in secs if s["status"] != "ok" and not _refused(vmcore, s)]
    assert not bad, bad
    for s in secs:
        print(f"{vmcore.name}: {s['name']} {s['status']} {s['seconds']:.2f} s")
    machine = secs[0]["data"]
    assert machine["uptime_seconds"] and machine["uptime_seconds"] > 0
    if vmcore.dump == "makedumpfile":
        # the kdump guest crashed itself (sysrq c): the machine section shows the panic
        texts = [m["text"] for m in machine["log_matches"]]
        assert any("Kernel panic" in t for t in texts), texts


def test_report_json_schema(vmcore, report_root):
    res = _report(vmcore, report_root)
    jsonschema = _need("jsonschema", "pip install jsonschema (in the test extra)")
    from drgn_ptwalk.report import SCHEMA_PATH

    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(res.json.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors[:10]]
    # README documents it
    readme = (ROOT / "README.md").read_text()
    assert "drgn_ptwalk/report/schema.json" in readme


def test_report_numbers_equal_api(vmcore, report_root):
    res = _report(vmcore, report_root)
    secs = {s["name"]: s for s in json.loads(res.json.read_text())["sections"]}
    prog = vmcore.prog()
    from drgn_ptwalk.commands.filecache import filecache_json
    from drgn_ptwalk.filecache import filecache
    from drgn_ptwalk.procfs.memtop import memtop

    rows = memtop(prog, sort="rss")
    assert secs["processes"]["data"]["rows"] == [json.loads(json.dumps(r._asdict())) for r in rows]
    if not _refused(vmcore, secs["memory"]):
        from drgn_ptwalk.memmap import memmap

        mm = memmap(prog)
        mem = secs["memory"]["data"]
        assert mem["total_pages"] == mm.total
        assert mem["rows"] == [{"name": r.name, "pages": r.pages, "kernel_counter_pages": r.counter} for r in mm.rows]
        # each node's rows add up to its span less its holes, and are memmap's rows of its PFNs: every row
        # but holes is memmap's less the PFNs no node spans (x86's PFN 0)
        outside = mm.total - sum(n["spanned_pages"] for n in mem["nodes"])
        node_sum: Dict[str, int] = {}
        for n in mem["nodes"]:
            assert sum(v for k, v in n["rows"].items() if k != "hole") <= n["spanned_pages"]
            for k, v in n["rows"].items():
                node_sum[k] = node_sum.get(k, 0) + v
        rows_all = {r.name: r.pages for r in mm.rows}
        short = {k: rows_all[k] - node_sum.get(k, 0) for k in rows_all if k != "hole"}
        assert all(v >= 0 for v in short.values()) and sum(short.values()) <= outside, (repr(short), outside)
    else:
        mm = None
    fc = filecache(prog)
    want = json.loads(json.dumps(filecache_json(fc, mm, limit=50)))
    got = secs["pagecache"]["data"]
    for key in ("files", "super_blocks", "totals", "kernel_counters", "warnings"):
        assert got[key] == want[key], key
    if mm is not None:
        assert got["memmap_rows"] == want["memmap_rows"]


def test_report_in_chromium(vmcore, report_root):
    res = _report(vmcore, report_root)
    from drgn_ptwalk.report import SECTION_NAMES

    text = res.html.read_text()
    # one file, nothing to fetch: no script, no external reference (SVG namespaces are names, not fetched)
    assert "<script" not in text.lower()
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"#][^"]*)"', text)
    assert all(r.startswith("data:") for r in refs), [r[:80] for r in refs if not r.startswith("data:")][:5]
    assert not re.search(r"@import|url\((?!#)", text)
    p = _chromium_run(res.html, "--dump-dom")
    assert p.returncode == 0, p.stderr[-2000:]
    dom = p.stdout
    for name in SECTION_NAMES:
        m = re.search(rf'<section id="{name}" data-status="(\w+)"', dom)
        assert m, f"section {name} not in the DOM chromium loaded"
        assert m.group(1) == "ok" or m.group(1) == "unsupported" and name in ("memory", "physmap"), (name, m.group(1))
    assert "<svg" in dom
    shot = res.html.parent / "screenshot.png"
    p = _chromium_run(res.html, f"--screenshot={shot}", "--window-size=1200,3000", "--hide-scrollbars")
    assert p.returncode == 0 and shot.exists(), p.stderr[-2000:]
    size = shot.stat().st_size
    try:
        from PIL import Image, ImageStat
    except ImportError:  # matplotlib depends on pillow: this is a fallback that is not expected to run
        assert size > 50_000, f"screenshot of {size} bytes: blank?"
        return
    with Image.open(shot) as im:
        assert im.size == (1200, 3000), im.size
        stat = ImageStat.Stat(im.convert("L"))
        colors = len(im.convert("RGB").getcolors(1 << 20) or ())
    print(f"{vmcore.name}: screenshot {size} bytes, luminance variance {stat.var[0]:.0f}, {colors} colors")
    assert stat.var[0] > 500 and colors > 50, (stat.var, colors)


def test_report_batch(default_vmcore, tmp_path):
    """A batch: the good dump's report complete; a missing core, a truncated one, a file that is not a dump
    and a vmlinux that does not match each fail alone with their reason; exit status 1; the index lists all."""
    v = default_vmcore
    truncated = tmp_path / "truncated.core"
    with open(v.core, "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read(1 << 20))
    notdump = tmp_path / "notes.txt"
    notdump.write_text("not a dump\n")
    wrong_vmlinux = sys.executable  # an ELF without the kernel's debug info
    batch = tmp_path / "batch.txt"
    batch.write_text("\n".join([
        "# the reference dump, then four bad lines",
        f"{v.core} {v.vmlinux}",
        f"{tmp_path}/missing.core {v.vmlinux}",
        f"{truncated} {v.vmlinux}",
        f"{notdump} {v.vmlinux}",
        f"{v.core} {wrong_vmlinux}",
    ]) + "\n")
    out = tmp_path / "out"
    # the batch runs without a program (no -c); each child works out the dump's architecture
    p = subprocess.run([sys.executable, "-m", "drgn_ptwalk", "report", "--batch", str(batch), "-o", str(out),
                        "--jobs", "2"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=1800)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    res = json.loads((out / "batch.json").read_text())
    rows = {r["line"]: r for r in res["dumps"]}
    assert sorted(rows) == [2, 3, 4, 5, 6]
    assert rows[2]["status"] == "ok", rows[2]
    assert json.loads((Path(rows[2]["outdir"]) / "report.json").read_text())["sections"]
    for line in (3, 4, 5, 6):
        assert rows[line]["status"] == "failed" and rows[line]["error"], rows[line]
        print(f"line {line}: {rows[line]['error']}")
    index = (out / "index.html").read_text()
    for r in rows.values():
        assert r["core"] in index
    assert "4 failed" in p.stdout
    dom = _chromium_run(out / "index.html", "--dump-dom")
    assert dom.returncode == 0 and '<section id="dumps" data-status="ok">' in dom.stdout
