# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``ptwalk`` command: :func:`~drgn_ptwalk.walk.pt_range_walk` of a task, one line (or JSON object) per
(batched) entry, streamed; the formatting of entries lives here, out of the walker.
"""

import argparse
import json
import sys
from typing import TYPE_CHECKING, Iterable, Iterator, List, Optional, TextIO

from drgn import Program

from drgn_ptwalk.commands import TASK, arg, command, range_args
from drgn_ptwalk.entry import PtType

if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.entry import PtEntry

__all__ = ("COMMANDS", "ENTRY_HEADERS", "entry_row", "print_entries")

ENTRY_HEADERS = ("type", "level", "start", "end", "size", "pages", "pfn", "swap", "kind", "flags")


def _size(n: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def entry_row(e: "PtEntry") -> List[str]:
    """The table row of one entry (columns :data:`ENTRY_HEADERS`)."""
    if e.type == PtType.ERROR:
        kind = f"table {e.table:#x}: {e.reason}" if e.table is not None else (e.reason or "")
    else:
        kind = e.kind or ""
    return [
        e.type.name.lower(),
        e.level.name.lower() + ("+cont" if e.cont else ""),
        f"{e.start:#x}",
        f"{e.end:#x}",
        _size(e.end - e.start),
        str(e.nr_pages),
        f"{e.pfn:#x}" if e.pfn is not None else "",
        f"{e.swap_type}:{e.swap_offset:#x}" if e.swap_type is not None and e.pfn is None else "",
        kind,
        ",".join(e.flag_names()),
    ]


def print_entries(entries: Iterable["PtEntry"], out: TextIO, as_json: bool = False) -> int:
    """Print entries as a table or a JSON list; returns how many ERROR entries there were."""
    errors = 0

    def counted(it: Iterable["PtEntry"]) -> Iterator["PtEntry"]:
        nonlocal errors
        for e in it:
            if e.type == PtType.ERROR:
                errors += 1
            yield e

    if as_json:
        # Streamed: a whole-task walk can be millions of entries.
        out.write("[")
        first = True
        for e in counted(entries):
            out.write(("\n " if first else ",\n ") + json.dumps(e.as_dict()))
            first = False
        out.write("\n]\n" if not first else "]\n")
    else:
        from tabulate import tabulate

        rows = [entry_row(e) for e in counted(entries)]
        out.write(tabulate(rows, headers=ENTRY_HEADERS, tablefmt="plain", disable_numparse=True) + "\n")
    return errors


def entry_types(names: Optional[List[str]]) -> Optional[List[PtType]]:
    """The :class:`PtType` of each name (``None``: all types)."""
    if not names:
        return None
    out = []
    for n in names:
        try:
            out.append(PtType[n.upper()])
        except KeyError:
            known = ", ".join(t.name.lower() for t in PtType)
            raise ValueError(f"unknown entry type {n!r} (known: {known})") from None
    return out


def run(prog: Program, args: argparse.Namespace) -> Iterator["PtEntry"]:
    """The entries of the walk (range and types checked before the first is read)."""
    from drgn_ptwalk.tasks import find_target, task_mm
    from drgn_ptwalk.walk import pt_range_walk

    mm = task_mm(find_target(prog, args.task))
    return pt_range_walk(mm, args.start, args.end, include_none=args.holes, types=entry_types(args.type),
                         batch=not args.no_batch)


def format_entries(entries: Iterable["PtEntry"], args: argparse.Namespace, out: TextIO) -> None:
    """Print the entries; how many tables could not be read goes to stderr."""
    errors = print_entries(entries, out, as_json=args.json)
    if errors:
        print(f"drgn-ptwalk: {errors} page-table page(s) could not be read (type error entries)", file=sys.stderr)


COMMANDS = (
    command(
        "ptwalk",
        "walk the page tables: one line per (batched) entry",
        (
            TASK,
            *range_args("first address (default 0)", "end address (default: the task size)"),
            arg("--type", action="append", metavar="T",
                help="only entries of this type (" + ", ".join(t.name.lower() for t in PtType) + "); may repeat"),
            arg("--holes", action="store_true", help="also show NONE entries (holes)"),
            arg("--no-batch", action="store_true", help="one entry per page-table slot"),
            arg("--json", action="store_true", help="print a JSON list"),
        ),
        run,
        format_entries,
    ),
)
