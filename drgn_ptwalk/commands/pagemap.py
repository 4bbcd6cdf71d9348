# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``pagemap`` command: /proc/PID/pagemap as root reads it (:mod:`drgn_ptwalk.procfs.pagemap`), for one
range or for every VMA of the task, as raw bytes or as a readable table.

Raw bytes go to ``-o FILE`` or to a standard output that is not a terminal; a terminal gets the table
(``--table`` / ``--raw`` choose). Without ``--start``/``--end`` the raw output is one record per VMA, the
layout of the reference vmcores' ``pagemap.bin``: little-endian u64 start, u64 end, u64 n, then n u64
entries.
"""

import argparse
import struct
from typing import Iterable, List, NamedTuple, Optional, TextIO, Tuple

from drgn import Program

from drgn_ptwalk.commands import BINARY_OUTPUT, TASK, command, range_args, write_binary

__all__ = ("COMMANDS", "PagemapOutput", "pagemap_table")


class PagemapOutput(NamedTuple):
    """What the command prints: ``(start, entries as bytes)`` chunks, and whether they are per-VMA records."""

    chunks: List[Tuple[int, bytes]]
    records: bool
    page_size: int


_BITS = ((63, "present"), (62, "swap"), (61, "file"), (58, "guard"), (57, "uffd_wp"), (56, "exclusive"),
         (55, "soft_dirty"))


def pagemap_table(chunks: Iterable[Tuple[int, bytes]], page_size: int, out: TextIO) -> None:
    """A readable table of the non-zero pagemap entries of *chunks* (``(start address, bytes)``)."""
    from tabulate import tabulate

    rows = []
    for start, data in chunks:
        for i, (v,) in enumerate(struct.iter_unpack("<Q", data)):
            if v == 0:
                continue
            bits = [name for bit, name in _BITS if v >> bit & 1]
            frame = v & ((1 << 55) - 1)
            if v >> 62 & 1:
                what = f"swap {frame & 31}:{frame >> 5:#x}"
            elif v >> 63 & 1:
                what = f"pfn {frame:#x}"
            else:
                what = ""
            rows.append([f"{start + i * page_size:#x}", f"{v:016x}", what, ",".join(bits)])
    out.write(tabulate(rows, headers=("address", "entry", "frame", "bits"), tablefmt="plain",
                       disable_numparse=True) + "\n")


def run(prog: Program, args: argparse.Namespace) -> PagemapOutput:
    """The pagemap entries of the range, or of every VMA (one walk)."""
    from drgn_ptwalk.arch import get_decoder
    from drgn_ptwalk.procfs.pagemap import pagemap, pagemap_records
    from drgn_ptwalk.tasks import find_target, task_mm
    from drgn_ptwalk.vmatree import checked_vma_ranges

    task = find_target(prog, args.task)
    mm = task_mm(task)
    page_size = get_decoder(prog).page_size
    start: Optional[int] = args.start
    end: Optional[int] = args.end
    if start is None and end is None:
        recs = pagemap_records(mm)
        return PagemapOutput([(r.start, r.entries.tobytes()) for r in recs], True, page_size)
    if start is None or end is None:
        ranges = [(vs, ve) for _, vs, ve in checked_vma_ranges(mm)]
        if not ranges:
            raise ValueError("the task has no VMAs; give --start and --end")
        start = ranges[0][0] if start is None else start
        end = ranges[-1][1] if end is None else end
    return PagemapOutput([(start, pagemap(task, start, end))], False, page_size)


def _raw(res: PagemapOutput) -> bytes:
    if not res.records:
        return b"".join(data for _, data in res.chunks)
    ps = res.page_size
    return b"".join(struct.pack("<QQQ", start, start + len(data) // 8 * ps, len(data) // 8) + data
                    for start, data in res.chunks)


def format_pagemap(res: PagemapOutput, args: argparse.Namespace, out: TextIO) -> None:
    """Raw bytes (to ``-o FILE`` or a standard output that is not a terminal) or the table."""
    write_binary("pagemap", lambda: _raw(res), lambda f: pagemap_table(res.chunks, res.page_size, f), args, out)


COMMANDS = (
    command(
        "pagemap",
        "/proc/PID/pagemap entries: raw bytes (a range, or one record per VMA) or a table",
        (
            TASK,
            *range_args("first address (default: every VMA; with --end: the first VMA's)",
                        "end address (default: every VMA; with --start: the last VMA's end)"),
            *BINARY_OUTPUT,
        ),
        run,
        format_pagemap,
    ),
)
