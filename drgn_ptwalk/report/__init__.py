# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Where did the memory go, at a glance: :func:`write_report` writes ``DIR/index.html`` (one self-contained
file: inline CSS, inline SVG pictures made by matplotlib, no script, nothing fetched) and ``DIR/report.json``
(the same numbers, :data:`SCHEMA_PATH` describes it) for one program; :func:`run_batch` runs it for many
dumps, one process each, and writes a page comparing them.

Sections (:data:`~drgn_ptwalk.report.sections.SECTIONS`): the machine, where all the RAM went (memmap's
rows per node beside the kernel's counters), processes (memtop, address-space pictures of the largest),
the physical memory map (every PFN colored by kind), free memory by buddy order, the page cache by file,
swap, huge page pools. Each section is timed; one that fails records its error (in both files) and the
others are still written.
"""

import datetime
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, TextIO, Tuple

from drgn import Program

from drgn_ptwalk.errors import ArgumentError

__all__ = (
    "BatchResult",
    "BatchRow",
    "ReportResult",
    "SCHEMA_PATH",
    "SECTION_NAMES",
    "read_batch",
    "run_batch",
    "write_report",
)

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.json"
"""The JSON Schema (draft 2020-12) of ``report.json``."""

SCHEMA_VERSION = 1

SECTION_NAMES = ("machine", "memory", "processes", "physmap", "buddy", "pagecache", "swap", "hugetlb")
"""The sections, in the page's order."""


class ReportResult(NamedTuple):
    """What :func:`write_report` wrote."""

    html: Path
    json: Path
    report: Dict[str, Any]
    """the contents of report.json"""

    @property
    def failed(self) -> List[str]:
        """The sections that failed."""
        return [s["name"] for s in self.report["sections"] if s["status"] == "error"]


def _progress(total: int, desc: str, stream: Optional[TextIO]) -> Any:
    """A tqdm bar on *stream* when it is a terminal (and tqdm is installed), else ``None``."""
    if stream is None or not stream.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, file=stream, leave=False, unit="section")


def write_report(prog: Program, outdir: "str | os.PathLike[str]", *, top: int = 15, address_spaces: int = 3,
                 source: Optional[Dict[str, str]] = None, progress: Optional[TextIO] = None) -> ReportResult:
    """
    Write ``index.html`` and ``report.json`` of *prog* into *outdir* (created if missing).

    :param outdir: the directory to write into
    :param top: processes and files in the pictures
    :param address_spaces: processes whose address space is drawn (the largest by RSS)
    :param source: what the program was opened from (``core``, ``vmlinux``), recorded in both files
    :param progress: a stream for a progress bar (drawn only when it is a terminal)
    :raises MissingDependencyError: without matplotlib or numpy
    :return: the two files and the report's contents
    """
    from drgn_ptwalk.report import charts
    from drgn_ptwalk.report.page import page, section_html
    from drgn_ptwalk.report.sections import SECTIONS, Context

    charts.ensure()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(prog, top=top, address_spaces=address_spaces)
    bar = _progress(len(SECTIONS), "report", progress)
    sections: List[Dict[str, Any]] = []
    bodies: List[str] = []
    t_all = time.monotonic()
    for sec in SECTIONS:
        if bar is not None:
            bar.set_postfix_str(sec.name)
        t0 = time.monotonic()
        status, error, data, body = "ok", None, None, ""
        try:
            data, body = sec.run(ctx)
        except Exception as e:  # the section says what failed; the report goes on
            from drgn_ptwalk.errors import UnsupportedKernelError

            status = "unsupported" if isinstance(e, UnsupportedKernelError) else "error"
            error = f"{type(e).__name__}: {e}"
            tb = traceback.extract_tb(e.__traceback__)
            if tb and status == "error":
                error += f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno} in {tb[-1].name})"
        seconds = time.monotonic() - t0
        sections.append({"name": sec.name, "title": sec.title, "status": status, "seconds": round(seconds, 3),
                         "error": error, "data": data})
        bodies.append(section_html(sec.name, sec.title, status, seconds, error or "", body))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    machine = next((s["data"] for s in sections if s["name"] == "machine" and s["data"]), None) or {}
    report = {
        "schema_version": SCHEMA_VERSION,
        "generator": "drgn-ptwalk report",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "source": dict(source or {}),
        "kernel": machine.get("release"),
        "arch": machine.get("arch"),
        "seconds": round(time.monotonic() - t_all, 3),
        "sections": sections,
    }
    title = f"Memory report: {machine.get('nodename', '?')} ({machine.get('release', 'unknown kernel')})"
    pairs: List[Tuple[str, str]] = [
        ("core", (source or {}).get("core", "")),
        ("vmlinux", (source or {}).get("vmlinux", "")),
        ("written", str(report["created"])),
        ("took", f"{time.monotonic() - t_all:.1f} s"),
        ("sections failed", ", ".join(s["name"] for s in sections if s["status"] == "error") or "none"),
    ]
    header = [(k, v) for k, v in pairs if v]
    html_path, json_path = out / "index.html", out / "report.json"
    _atomic_write(json_path, json.dumps(report, indent=1, default=_json_default) + "\n")
    _atomic_write(html_path, page(title, header, sections, bodies))
    return ReportResult(html_path, json_path, report)


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, bytes):
        return o.decode("utf-8", "surrogateescape")
    raise TypeError(f"not JSON: {type(o).__name__}")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------
# batches


class BatchRow(NamedTuple):
    line: int
    core: str
    vmlinux: str
    outdir: str
    status: str
    """``ok``, ``sections-failed`` (the report is written, some sections have errors) or ``failed``"""
    seconds: float
    error: Optional[str]


class BatchResult(NamedTuple):
    """What :func:`run_batch` wrote: the index, batch.json and one row per report."""

    html: Path
    json: Path
    rows: List[BatchRow]

    @property
    def failed(self) -> List[BatchRow]:
        return [r for r in self.rows if r.status == "failed"]


def read_batch(path: "str | os.PathLike[str]") -> List[Tuple[str, str, str]]:
    """The lines of a batch file: ``CORE VMLINUX`` each (blank lines and ``#`` comments skipped).

    :param path: the batch file
    :return: ``(line number, core, vmlinux)`` of each line
    :raises ArgumentError: for a line that is not two fields
    """
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ArgumentError(f"{path}:{n}: want 'CORE VMLINUX', got {line!r}")
        out.append((str(n), parts[0], parts[1]))
    return out


def _run_one(n: str, core: str, vmlinux: str, outdir: Path, timeout: Optional[float]) -> BatchRow:
    import subprocess

    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "drgn_ptwalk", "-c", core, "-s", vmlinux, "report", "-o", str(outdir)]
    env = dict(os.environ)
    # the child imports this very drgn_ptwalk, wherever it was imported from
    pkg_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout, env=env)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        rc, err = -1, f"timed out after {timeout} s"
    seconds = round(time.monotonic() - t0, 3)
    report = outdir / "report.json"
    if rc != 0 or not report.exists():
        lines = [x for x in (err or "").strip().splitlines() if x.strip()]
        why = lines[-1] if lines else f"exit status {rc}"
        return BatchRow(int(n), core, vmlinux, str(outdir), "failed", seconds, why)
    try:
        data = json.loads(report.read_text())
    except ValueError as e:
        return BatchRow(int(n), core, vmlinux, str(outdir), "failed", seconds, f"report.json unreadable: {e}")
    bad = [s["name"] for s in data.get("sections", []) if s.get("status") == "error"]
    return BatchRow(int(n), core, vmlinux, str(outdir), "sections-failed" if bad else "ok", seconds,
                    ("sections failed: " + ", ".join(bad)) if bad else None)


def run_batch(batch_file: "str | os.PathLike[str]", outdir: "str | os.PathLike[str]", jobs: int = 1,
              timeout: Optional[float] = None, progress: Optional[TextIO] = None) -> BatchResult:
    """
    A report per line of *batch_file* (``CORE VMLINUX``), each in its own process (a dump that cannot be
    opened, or crashes the reader, costs only its own row), into ``OUTDIR/NNN-NAME/``; then
    ``OUTDIR/index.html`` comparing them and ``OUTDIR/batch.json``.

    :param batch_file: the batch file (:func:`read_batch`)
    :param outdir: the directory to write into (created if missing)
    :param jobs: reports run side by side
    :param timeout: seconds one report may take (``None``: no limit)
    :param progress: a stream for a line per finished report, if any
    :return: the index, batch.json and one row per report (its status, time and reason)
    :raises MissingDependencyError: without matplotlib or numpy
    :raises ArgumentError: for a malformed batch file
    """
    from concurrent.futures import ThreadPoolExecutor

    from drgn_ptwalk.report import charts

    charts.ensure()
    if jobs < 1:
        raise ArgumentError("--jobs takes a positive number")
    lines = read_batch(batch_file)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress is not None and progress.isatty():
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(lines), desc="reports", file=progress, unit="dump")
        except ImportError:
            bar = None
    rows: List[BatchRow] = []

    def one(item: Sequence[str]) -> BatchRow:
        n, core, vmlinux = item
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(core).name)[:60]
        row = _run_one(n, core, vmlinux, out / f"{int(n):03d}-{name}", timeout)
        if bar is not None:
            bar.update(1)
        return row

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(one, lines))
    if bar is not None:
        bar.close()
    html_path, json_path = out / "index.html", out / "batch.json"
    _atomic_write(json_path, json.dumps({"schema_version": SCHEMA_VERSION, "dumps": [r._asdict() for r in rows]},
                                        indent=1) + "\n")
    _atomic_write(html_path, _batch_page(rows, out))
    return BatchResult(html_path, json_path, rows)


def _batch_page(rows: List[BatchRow], out: Path) -> str:
    from drgn_ptwalk.report import charts
    from drgn_ptwalk.report.page import page, section_html
    from drgn_ptwalk.report.sections import esc, figure, table

    ram = []
    trows = []
    for r in rows:
        kernel = ram_mib = top = ""
        data: Dict[str, Any] = {}
        if r.status != "failed":
            try:
                data = json.loads((Path(r.outdir) / "report.json").read_text())
            except (OSError, ValueError):
                data = {}
        secs = {s["name"]: s for s in data.get("sections", [])}
        m = (secs.get("machine") or {}).get("data") or {}
        if m:
            kernel = f"{m.get('release')} {m.get('arch')}"
            ram_mib = f"{m.get('present_pages', 0) * m.get('page_size', 0) / (1 << 20):,.0f}"
        p = (secs.get("processes") or {}).get("data") or {}
        if p.get("rows"):
            t = p["rows"][0]
            top = f"{t['pid']} {t['comm']} ({t['rss_kb'] / 1024:,.0f} MiB RSS)"
        mem = (secs.get("memory") or {}).get("data") or {}
        label = f"{r.line}: {Path(r.core).parent.name}/{Path(r.core).name}"
        if mem.get("rows"):
            ram.append((label, {x["name"]: x["pages"] for x in mem["rows"]}, mem["page_size"]))
        rel = os.path.relpath(Path(r.outdir) / "index.html", out)
        link = f'<a href="{esc(rel)}">report</a>' if r.status != "failed" else ""
        trows.append((r.line, r.core, kernel, ram_mib, top, r.status, f"{r.seconds:.1f}", r.error or "", link))
    body = ""
    if ram:
        body += figure(charts.batch_ram(ram), "RAM by kind per dump (memmap's rows; holes left out).")
    # the link column holds HTML: the table is built with it unescaped
    tab = table(("line", "core", "kernel", "RAM MiB", "largest process", "status", "seconds", "error", ""),
                [(*t[:-1], f"@@LINK{i}@@") for i, t in enumerate(trows)])
    for i, t in enumerate(trows):
        tab = tab.replace(esc(f"@@LINK{i}@@"), str(t[-1]))
    body += tab
    failed = [r for r in rows if r.status == "failed"]
    seconds = sum(r.seconds for r in rows)  # the reports' own times (side by side: more than the batch's)
    sections: List[Dict[str, Any]] = [{"name": "dumps", "title": "Dumps", "status": "ok", "seconds": seconds}]
    html_body = section_html("dumps", "Dumps", "ok", seconds, "", body)
    return page(f"Memory reports of {len(rows)} dumps ({len(failed)} failed)",
                [("dumps", str(len(rows))), ("failed", str(len(failed)))], sections, [html_body])
