# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``kpage`` command: /proc/kpageflags, /proc/kpagecount or /proc/kpagecgroup for a PFN range, as the
kernel's file would have returned it (:mod:`drgn_ptwalk.kpage`).

Raw bytes (one u64 per PFN from ``--start``, in the dumped kernel's byte order as the file's: big-endian
for an s390x dump) go to ``-o FILE`` or to a standard output that is not a terminal; a terminal gets a
table of the PFNs whose value is not 0 (``--table``/``--raw`` choose). Without ``--start``/``--end``:
every PFN the file covers.
"""

import argparse
import itertools
from typing import Dict, Iterator, NamedTuple, TextIO

from drgn import Program

from drgn_ptwalk.commands import BINARY_OUTPUT, arg, command, range_args, write_binary
from drgn_ptwalk.errors import ArgumentError

__all__ = ("COMMANDS", "KpageOutput", "kpage_table")

FILES = ("kpageflags", "kpagecount", "kpagecgroup")


class KpageOutput(NamedTuple):
    """What the command prints: the file's name, its first PFN and its bytes (u64s in the dumped kernel's
    byte order, as the file's), a section at a time (a large range is written out as it is computed, never
    held whole)."""

    file: str
    start: int
    chunks: Iterator[bytes]
    big_endian: bool = False
    """The bytes are big-endian (an s390x dump's): the table swaps them to values."""


def kpage_table(res: KpageOutput, out: TextIO) -> None:
    """A table of the non-zero entries of *res* (kpageflags: the ``KPF_*`` names)."""
    import sys
    from array import array

    from tabulate import tabulate

    from drgn_ptwalk.kpage import KPF

    names: Dict[int, str] = {}
    for name, bit in KPF.items():
        names.setdefault(bit, name.lower())
    rows = []
    pfn = res.start
    for chunk in res.chunks:
        values = array("Q")
        values.frombytes(chunk)
        if res.big_endian != (sys.byteorder == "big"):
            values.byteswap()
        for i, v in enumerate(values):
            if not v:
                continue
            what = ",".join(names.get(b, str(b)) for b in range(64) if v >> b & 1) if res.file == "kpageflags" \
                else str(v)
            rows.append([f"{pfn + i:#x}", f"{v:#x}", what])
        pfn += len(values)
    headers = ("pfn", "value", "flags" if res.file == "kpageflags" else "decimal")
    out.write(tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True) + "\n")


def run(prog: Program, args: argparse.Namespace) -> KpageOutput:
    """The file's bytes for the range."""
    from drgn_ptwalk._byteorder import is_big_endian
    from drgn_ptwalk.kpage import kpage_chunks, max_dump_pfn

    start = 0 if args.start is None else args.start
    end = max_dump_pfn(prog) if args.end is None else args.end
    if start < 0 or end < start:
        raise ArgumentError(f"bad PFN range {start:#x}-{end:#x}")
    chunks = kpage_chunks(prog, args.file, start, end)
    # the first section now: an error (a section not in the dump) before any output
    first = next(chunks, None)
    return KpageOutput(args.file, start, itertools.chain(() if first is None else (first[1],),
                                                         (data for _, data in chunks)), is_big_endian(prog))


def format_kpage(res: KpageOutput, args: argparse.Namespace, out: TextIO) -> None:
    """Raw bytes (to ``-o FILE`` or a standard output that is not a terminal) or the table."""
    write_binary(res.file, lambda: res.chunks, lambda f: kpage_table(res, f), args, out)


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
