# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``memmap`` command: where all the memory went (:func:`drgn_ptwalk.memmap.memmap`): one row per kind of
page, adding up to every PFN, next to the kernel's own counter; ``--census`` adds the ``page-types`` view
(pages per kpageflags value, with the flags' long names).
"""

import argparse
import json
from typing import TYPE_CHECKING, TextIO

from drgn import Program

from drgn_ptwalk.commands import arg, command
from drgn_ptwalk.errors import ArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.memmap import MemmapSummary

__all__ = ("COMMANDS",)


def run(prog: Program, args: argparse.Namespace) -> "MemmapSummary":
    from drgn_ptwalk.memmap import memmap

    if args.census < 0:
        raise ArgumentError("--census takes a number of rows (0: none)")
    return memmap(prog)


def format_memmap(res: "MemmapSummary", args: argparse.Namespace, out: TextIO) -> None:
    from tabulate import tabulate

    from drgn_ptwalk.memmap import RULES, kpf_names

    kb = res.page_size // 1024
    if args.json:
        out.write(json.dumps({
            "page_size": res.page_size, "total_pages": res.total,
            "rows": [{"name": r.name, "pages": r.pages, "kernel_counter_pages": r.counter, "rule": RULES[r.name]}
                     for r in res.rows],
            "census": [{"kpageflags": v, "flags": kpf_names(v), "pages": n} for v, n in res.census[:args.census]],
        }, indent=1) + "\n")
        return
    rows = [[r.name, r.pages, r.pages * kb, "" if r.counter is None else r.counter * kb,
             "" if r.counter is None else r.pages - r.counter] for r in res.rows]
    rows.append(["total", res.total, res.total * kb, "", ""])
    out.write(tabulate(rows, headers=("row", "pages", "kB", "kernel counter kB", "pages - counter"),
                       tablefmt="plain") + "\n")
    differ = [r for r in res.rows if r.counter is not None and r.counter != r.pages]
    if differ:
        out.write("\n" + "\n".join(f"{r.name}: {RULES[r.name]}" for r in differ) + "\n")
    if args.census:
        crow = [[f"{v:#x}", n, kpf_names(v)] for v, n in res.census[:args.census]]
        out.write("\n" + tabulate(crow, headers=("kpageflags", "pages", "flags"), tablefmt="plain",
                                  disable_numparse=True) + "\n")


COMMANDS = (
    command(
        "memmap",
        "where all the memory went: every PFN in one row, next to the kernel's counters",
        (
            arg("--census", type=int, default=0, metavar="N",
                help="also the N most common kpageflags values (page-types' view)"),
            arg("--json", action="store_true", help="print a JSON object"),
        ),
        run,
        format_memmap,
    ),
)
