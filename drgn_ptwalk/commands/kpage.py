# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``kpage`` command: /proc/kpageflags, /proc/kpagecount or /proc/kpagecgroup for a PFN range, as the
kernel's file would have returned it (:mod:`drgn_ptwalk.kpage`).

Raw bytes (one little-endian u64 per PFN, from ``--start``) go to ``-o FILE`` or to a standard output that
is not a terminal; a terminal gets a table of the PFNs whose value is not 0 (``--table``/``--raw``
choose). Without ``--start``/``--end``: every PFN the file covers.
"""

import argparse
from typing import NamedTuple, TextIO

from drgn import Program

from drgn_ptwalk.commands import BINARY_OUTPUT, arg, command, range_args, write_binary

__all__ = ("COMMANDS", "KpageOutput", "kpage_table")

FILES = ("kpageflags", "kpagecount", "kpagecgroup")


class KpageOutput(NamedTuple):
    """What the command prints: the file's name, its first PFN and its bytes."""

    file: str
    start: int
    data: bytes


def kpage_table(res: KpageOutput, out: TextIO) -> None:
    """A table of the non-zero entries of *res* (kpageflags: the ``KPF_*`` names)."""
    from array import array

    from tabulate import tabulate

    from drgn_ptwalk.kpage import KPF

    names = {}
    for name, bit in KPF.items():
        names.setdefault(bit, name.lower())
    values = array("Q")
    values.frombytes(res.data)
    rows = []
    for i, v in enumerate(values):
        if not v:
            continue
        what = ",".join(names.get(b, str(b)) for b in range(64) if v >> b & 1) if res.file == "kpageflags" \
            else str(v)
        rows.append([f"{res.start + i:#x}", f"{v:#x}", what])
    headers = ("pfn", "value", "flags" if res.file == "kpageflags" else "decimal")
    out.write(tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True) + "\n")


def run(prog: Program, args: argparse.Namespace) -> KpageOutput:
    """The file's bytes for the range."""
    from drgn_ptwalk.kpage import kpagecgroup, kpagecount, kpageflags, max_dump_pfn

    start = 0 if args.start is None else args.start
    end = max_dump_pfn(prog) if args.end is None else args.end
    if start < 0 or end < start:
        raise ValueError(f"bad PFN range {start:#x}-{end:#x}")
    fn = {"kpageflags": kpageflags, "kpagecount": kpagecount, "kpagecgroup": kpagecgroup}[args.file]
    return KpageOutput(args.file, start, fn(prog, start, end))


def format_kpage(res: KpageOutput, args: argparse.Namespace, out: TextIO) -> None:
    """Raw bytes (to ``-o FILE`` or a standard output that is not a terminal) or the table."""
    write_binary(res.file, lambda: res.data, lambda f: kpage_table(res, f), args, out)


COMMANDS = (
    command(
        "kpage",
        "/proc/kpageflags, kpagecount or kpagecgroup of a PFN range: raw bytes or a table",
        (
            arg("file", choices=FILES, help="which file"),
            *range_args("first PFN (default 0)", "end PFN, exclusive (default: where the kernel's file ends)"),
            *BINARY_OUTPUT,
        ),
        run,
        format_kpage,
    ),
)
