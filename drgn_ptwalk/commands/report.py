# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``report`` command: ``report -o DIR`` writes ``DIR/index.html`` (self-contained: pictures inline, nothing
fetched) and ``DIR/report.json`` of the program (:func:`drgn_ptwalk.report.write_report`);
``report --batch FILE -o DIR [--jobs N]`` one report per ``CORE VMLINUX`` line of FILE, each in its own
process, and ``DIR/index.html`` comparing them (:func:`drgn_ptwalk.report.run_batch`): exit status 1 if a
dump failed. Needs matplotlib (``pip install 'drgn-ptwalk[report]'``): without it, says so in one line.
"""

import argparse
import sys
from typing import Any, Optional, TextIO

from drgn import Program

from drgn_ptwalk.commands import arg, command
from drgn_ptwalk.errors import ArgumentError

__all__ = ("COMMANDS",)


def prepare(args: argparse.Namespace) -> Optional[int]:
    """Before a program is opened: check matplotlib; a batch runs here (it opens no program itself)."""
    from drgn_ptwalk.report import charts

    charts.ensure()
    if not args.batch:
        return None
    res = _batch(args)
    format_report(res, args, sys.stdout)
    return 1 if res.failed else 0


def _batch(args: argparse.Namespace) -> Any:
    from drgn_ptwalk.report import run_batch

    return run_batch(args.batch, args.output, jobs=args.jobs, timeout=args.timeout,
                     progress=sys.stderr)


def run(prog: Program, args: argparse.Namespace) -> Any:
    from drgn_ptwalk.report import write_report

    if args.top < 1:
        raise ArgumentError("--top takes a positive number")
    if args.batch:
        return _batch(args)
    source = {}
    if getattr(args, "core", None):
        source["core"] = args.core
    if getattr(args, "symbols", None):
        source["vmlinux"] = " ".join(args.symbols)
    return write_report(prog, args.output, top=args.top, source=source, progress=sys.stderr)


def format_report(res: Any, args: argparse.Namespace, out: TextIO) -> None:
    from drgn_ptwalk.report import BatchResult

    if isinstance(res, BatchResult):
        out.write(f"wrote {res.html} and {res.json}: {len(res.rows)} dumps, {len(res.failed)} failed\n")
        for r in res.rows:
            if r.status != "ok":
                out.write(f"  line {r.line} {r.core}: {r.status}: {r.error}\n")
        return
    failed = res.failed
    out.write(f"wrote {res.html} and {res.json}: {len(res.report['sections'])} sections"
              + (f", failed: {', '.join(failed)}" if failed else "") + "\n")


COMMANDS = (
    command(
        "report",
        "a self-contained HTML report (pictures inline) and its JSON: the machine, where all the RAM went, "
        "processes, the physical memory map, buddy orders, page cache, swap, hugetlb; or one per dump of a batch",
        (
            arg("-o", "--output", metavar="DIR", required=True,
                help="directory to write index.html and report.json to"),
            arg("--batch", metavar="FILE", help="one report per line 'CORE VMLINUX' of FILE, each in its own process"),
            arg("--jobs", type=int, default=1, help="reports of a batch run side by side (default 1)"),
            arg("--timeout", type=float, default=None, metavar="SEC", help="seconds one report of a batch may take"),
            arg("--top", type=int, default=15, help="processes and files in the pictures (default 15)"),
        ),
        run,
        format_report,
        prepare=prepare,
    ),
)
