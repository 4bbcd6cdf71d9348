# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``pagemap`` command: /proc/PID/pagemap as root reads it (:mod:`drgn_ptwalk.procfs.pagemap`), of a whole
task or of a range, as raw bytes or as a readable table, streamed from one walk in bounded memory.

Raw bytes go to ``-o FILE`` or to a standard output that is not a terminal; a terminal gets the table
(``--table`` / ``--raw`` choose). The raw layouts:

* without ``--start``/``--end``: the file reading ``/proc/PID/pagemap`` from offset 0 to its end gives —
  the entry of address ``A`` at offset ``A / PAGE_SIZE * 8``, ``mm->task_size / PAGE_SIZE * 8`` bytes in
  all — written as a sparse file: only the VMAs' entries are written, the holes between them are sought
  over (zeros, as the kernel reads there). It needs a seekable output (a file). A file system that cannot
  hold a file that big (ext4's 16 TiB, under the 128 TiB of a task with 5-level paging) gets the file up to
  the end of the last VMA's entries, with a warning;
* ``--records``: one record per VMA, the layout of the reference vmcores' ``pagemap.bin``: little-endian
  u64 start, u64 end, u64 n, then n u64 entries;
* with ``--start`` and/or ``--end``: the bytes of that range (a missing bound is the first VMA's start or the
  last VMA's end).
"""

import argparse
import errno
import os
import struct
import warnings
from typing import IO, Dict, Iterator, NamedTuple, Optional, Sequence, TextIO, Tuple

from drgn import Object, Program

from drgn_ptwalk.commands import BINARY_OUTPUT, TASK, arg, command, range_args
from drgn_ptwalk.errors import ArgumentError, ProcfsWarning

__all__ = ("COMMANDS", "PagemapOutput", "pagemap_table", "write_pagemap")


class PagemapOutput(NamedTuple):
    """What :func:`run` found: the task's mm, the range asked for and the layout."""

    mm: Object
    start: Optional[int]
    end: Optional[int]
    records: bool
    page_size: int
    task_size: int


_BITS = ((63, "present"), (62, "swap"), (61, "file"), (58, "guard"), (57, "uffd_wp"), (56, "exclusive"),
         (55, "soft_dirty"))


def _bits(v: int) -> str:
    return ",".join([name for bit, name in _BITS if v >> bit & 1]) or "-"


def pagemap_table(pieces: Iterator[Tuple[int, Sequence[int]]], page_size: int, out: TextIO) -> None:
    """
    A readable table of the non-zero pagemap entries of *pieces* (``(start address, values)``), streamed:
    fixed columns ``address entry frame bits``.
    """
    bits: Dict[int, str] = {}
    out.write(f"{'address':<18} {'entry':<16} {'frame':<20} bits\n")
    for start, vals in pieces:
        lines = []
        for i, v in enumerate(vals):
            if v == 0:
                continue
            frame = v & ((1 << 55) - 1)
            if v >> 62 & 1:
                what = f"swap {frame & 31}:{frame >> 5:#x}"
            elif v >> 63 & 1:
                what = f"pfn {frame:#x}"
            else:
                what = "-"
            b = bits.get(v >> 55)
            if b is None:
                b = bits[v >> 55] = _bits(v)
            lines.append(f"{start + i * page_size:<#18x} {v:016x} {what:<20} {b}\n")
        out.write("".join(lines))


def run(prog: Program, args: argparse.Namespace) -> PagemapOutput:
    """The task's mm and the range (checked before anything is written)."""
    from drgn_ptwalk.arch import get_decoder
    from drgn_ptwalk.tasks import find_target, task_mm
    from drgn_ptwalk.vmatree import checked_vma_ranges

    if args.table and args.raw:
        raise ArgumentError("give --table or --raw, not both")
    whole = args.start is None and args.end is None
    if args.records and not whole:
        raise ArgumentError("--records is the whole task: give no --start/--end")
    mm = task_mm(find_target(prog, args.task))
    dec = get_decoder(prog)
    ps = dec.page_size
    task_size = mm.task_size.value_()
    start: Optional[int] = args.start
    end: Optional[int] = args.end
    if not whole:
        if start is None or end is None:
            # The first VMA is the leftmost path of the tree; the last VMA's end, the VMAs from start on
            # (which the range then covers anyway): no more of the tree is read than the range needs.
            first = next(iter(checked_vma_ranges(mm)), None)
            if first is None:
                raise ArgumentError("the task has no VMAs; give --start and --end")
            if start is None:
                start = first[1]
            if end is None:
                end = first[2]
                for _, _, ve in checked_vma_ranges(mm, start=start):
                    end = ve
                if end <= start:
                    end = max(ve for _, _, ve in checked_vma_ranges(mm))
        if start % ps or end % ps:
            raise ArgumentError(f"the range {start:#x}-{end:#x} is not page aligned ({ps:#x})")
        end = min(end, task_size)  # as pagemap_read() stops at mm->task_size
        if start >= end:
            raise ArgumentError(f"start {start:#x} is not below end {end:#x} (or the task size)")
    return PagemapOutput(mm, start, end, args.records, ps, task_size)


def _pieces(res: PagemapOutput, gaps: bool) -> Iterator[Tuple[int, Sequence[int]]]:
    from drgn_ptwalk.procfs.pagemap import pagemap_pieces

    return pagemap_pieces(res.mm, res.start, res.end, gaps=gaps)


def write_pagemap(res: PagemapOutput, f: IO[bytes]) -> None:
    """Write the raw bytes of *res* to the binary file *f* in its layout (see the module doc): the entries
    of the raw file in the dumped kernel's byte order (big-endian on s390x), as the kernel's file held them;
    ``--records`` little-endian throughout (the reference dumps' ``pagemap.bin``)."""
    from array import array

    from drgn_ptwalk._byteorder import is_big_endian
    from drgn_ptwalk.vmatree import checked_vma_ranges

    ps = res.page_size
    swap = is_big_endian(res.mm.prog_) and not res.records

    def raw(vals: Sequence[int]) -> array:
        a = array("Q", vals)  # a copy: the byte swap must not change the caller's values
        if swap:
            a.byteswap()
        return a

    if res.start is not None:
        for _, vals in _pieces(res, gaps=True):
            f.write(raw(vals))
        return
    from drgn_ptwalk.procfs.pagemap import pagemap_pieces

    ranges = list(checked_vma_ranges(res.mm))
    pieces = pagemap_pieces(res.mm, warnings=None, vma_ranges=ranges)
    if res.records:
        heads = {vs: struct.pack("<QQQ", vs, ve, (ve - vs) // ps) for _, vs, ve in ranges}
        for addr, vals in pieces:
            head = heads.get(addr)
            if head is not None:
                f.write(head)
            f.write(vals if isinstance(vals, array) else array("Q", vals))
        return
    # The sparse file, written by offset (os.pwrite: a file system's size limit fails the write that
    # crosses it, not a later flush).
    f.flush()
    fd = f.fileno()
    beyond = None  # the first address whose entries the file system cannot hold
    for addr, vals in pieces:
        if not any(vals):
            continue  # zeros: a hole of the sparse file
        try:
            os.pwrite(fd, raw(vals), addr // ps * 8)
        except OSError as e:
            if e.errno not in (errno.EFBIG, errno.EINVAL):
                raise
            beyond = addr
            break
    if beyond is None:
        try:
            os.ftruncate(fd, res.task_size // ps * 8)
            return
        except OSError as e:
            if e.errno != errno.EFBIG:
                raise
            reason = e.strerror
    else:
        reason = f"{os.strerror(errno.EFBIG)}: the entries from {beyond:#x} on are left out"
    # ext4 holds 16 TiB: a 5-level task's file is 128 TiB (an s390x one's 32 PiB). It then ends after the
    # last VMA whose entries it holds.
    last = max((ve for _, vs, ve in ranges if beyond is None or ve <= beyond), default=0)
    os.ftruncate(fd, last // ps * 8)
    warnings.warn(f"the file system cannot hold the {res.task_size // ps * 8:#x} bytes of the whole file "
                  f"({reason}): it ends after the last VMA, at {last // ps * 8:#x}", ProcfsWarning, stacklevel=2)


def format_pagemap(res: PagemapOutput, args: argparse.Namespace, out: TextIO) -> None:
    """Raw bytes (to ``-o FILE`` or a standard output that is not a terminal) or the table."""
    table = args.table or (not args.raw and not args.output and out.isatty())
    if table:
        pieces = _pieces(res, gaps=False)
        if args.output:
            with open(args.output, "w") as f:
                pagemap_table(pieces, res.page_size, f)
        else:
            pagemap_table(pieces, res.page_size, out)
        return
    if args.output:
        tmp = args.output + ".tmp"
        try:
            with open(tmp, "wb") as f:
                write_pagemap(res, f)
            os.replace(tmp, args.output)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    stream = getattr(out, "buffer", None)
    if stream is None or out.isatty():
        raise ArgumentError("pagemap is binary: give -o FILE or --table")
    whole = res.start is None and not res.records
    if whole and not stream.seekable():
        raise ArgumentError("the whole task's pagemap is a sparse file: give -o FILE (or --records, or a range)")
    out.flush()
    write_pagemap(res, stream)
    stream.flush()


COMMANDS = (
    command(
        "pagemap",
        "/proc/PID/pagemap entries: raw bytes (the whole file, one record per VMA, or a range) or a table",
        (
            TASK,
            *range_args("first address (default: the whole task; with --end: the first VMA's)",
                        "end address (default: the whole task; with --start: the last VMA's end)"),
            *BINARY_OUTPUT,
            arg("--records", action="store_true",
                help="the whole task as one record per VMA (u64 start, end, n, then n entries)"),
        ),
        run,
        format_pagemap,
    ),
)
