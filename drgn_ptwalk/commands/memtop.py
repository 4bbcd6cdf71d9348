# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``memtop`` command: every process's smaps_rollup numbers (:mod:`drgn_ptwalk.procfs.memtop`), largest
first, as a table in kB or a JSON list.
"""

import argparse
import json
import sys
from typing import TYPE_CHECKING, List, TextIO

from drgn import Program

from drgn_ptwalk.commands import arg, command

if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.procfs.memtop import MemtopRow

__all__ = ("COMMANDS", "SORT_KEYS", "print_memtop")

SORT_KEYS = ("rss", "pss", "swap", "anon", "file", "shmem", "hugetlb")
"""What memtop sorts by: the ``*_kb`` fields of :class:`~drgn_ptwalk.procfs.memtop.MemtopRow`."""

HEADERS = ("PID", "COMM", "RSS kB", "PSS kB", "ANON kB", "FILE kB", "SHMEM kB", "SWAP kB", "HUGETLB kB")


def print_memtop(rows: "List[MemtopRow]", out: TextIO, limit: int = 20, as_json: bool = False) -> None:
    """Print rows as a table (sizes in kB) or a JSON list; ``limit`` 0 prints all."""
    shown = rows[:limit] if limit else rows
    if as_json:
        out.write(json.dumps([r._asdict() for r in shown], indent=1) + "\n")
        return
    from tabulate import tabulate

    table = [list(r[:9]) for r in shown]
    out.write(tabulate(table, headers=HEADERS, tablefmt="plain") + "\n")
    for r in shown:
        if r.error:
            out.write(f"# PID {r.pid}: {r.error}\n")


def run(prog: Program, args: argparse.Namespace) -> "List[MemtopRow]":
    """The rows, sorted (progress on stderr when it is a terminal)."""
    from drgn_ptwalk.procfs.memtop import memtop

    return memtop(prog, sort=args.sort, progress=sys.stderr if sys.stderr.isatty() else None)


def format_rows(rows: "List[MemtopRow]", args: argparse.Namespace, out: TextIO) -> None:
    """The table or the JSON list."""
    print_memtop(rows, out, limit=args.limit, as_json=args.json)


COMMANDS = (
    command(
        "memtop",
        "per-process memory (RSS, PSS, anon, file, shmem, swap, hugetlb; smaps_rollup accounting), sorted",
        (
            arg("--sort", choices=SORT_KEYS, default="rss", help="column to sort by (default rss)"),
            arg("--limit", type=int, default=20, help="rows to print (0: all; default 20)"),
            arg("--json", action="store_true", help="print a JSON list"),
        ),
        run,
        format_rows,
    ),
)
