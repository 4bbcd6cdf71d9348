# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``memread`` command (``drgn-ptwalk read``, ``%memread``): the bytes of a range of a task's address
space (:func:`drgn_ptwalk.usermem.user_pages`), as a hexdump like ``xxd``'s with each page's fate on a
line before its bytes, as JSON Lines (``--json``), or raw to ``-o FILE`` (zero-filled where a page is
unreadable; a summary of the fates on stderr). The file is written under a temporary name and renamed, so
a failed read leaves nothing under the ``-o`` name.
"""

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from typing import TYPE_CHECKING, Dict, Iterator, List, NamedTuple, Optional, TextIO

from drgn import Object, Program

from drgn_ptwalk.commands import address, arg, command
from drgn_ptwalk.errors import ArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.usermem import UserRange

__all__ = ("COMMANDS", "MemreadOutput", "hexdump_lines", "parse_swap_images")

MAX_HEXDUMP = 64 << 20
"""Bytes a hexdump (or ``--json`` with data) may cover; larger reads go to ``-o FILE``."""


class MemreadOutput(NamedTuple):
    """What ``memread`` read: the requested range and its runs, streamed."""

    task: Object
    address: int
    length: int
    page_size: int
    ranges: Iterator["UserRange"]


def parse_swap_images(items: Optional[List[str]]) -> Dict[int, str]:
    """``TYPE=FILE`` arguments -> {type: path}."""
    out: Dict[int, str] = {}
    for item in items or ():
        t, sep, path = item.partition("=")
        try:
            if not sep or not path:
                raise ValueError
            out[int(t, 0)] = path
        except ValueError:
            raise ArgumentError(f"--swap-image wants TYPE=FILE (a swap type number and a path): {item!r}") from None
    return out


def _check_vmas(mm: Object, start: int, end: int) -> None:
    """A range that meets no VMA is bad input (the kernel's read would fault on every byte)."""
    from drgn_ptwalk.vmatree import checked_vma_ranges

    for _vma, vs, ve in checked_vma_ranges(mm):
        if ve > start:
            if vs < end:
                return
            break
    raise ArgumentError(f"{start:#x}-{end:#x} is outside every VMA of the task")


def run(prog: Program, args: argparse.Namespace) -> MemreadOutput:
    from drgn_ptwalk.tasks import find_target, task_mm
    from drgn_ptwalk.usermem import user_pages

    if args.length <= 0:
        raise ArgumentError(f"LEN must be positive, not {args.length}")
    if args.address < 0:
        raise ArgumentError(f"bad address {args.address:#x}")
    if not args.output and args.length > MAX_HEXDUMP:
        raise ArgumentError(f"{args.length} bytes is too much to print: give -o FILE (at most {MAX_HEXDUMP} printed)")
    if args.root is not None and not os.path.isdir(args.root):
        raise ArgumentError(f"--root {args.root}: not a directory")
    task = find_target(prog, args.task)
    mm = task_mm(task)
    ps = prog["PAGE_SIZE"].value_()
    end = args.address + args.length
    _check_vmas(mm, args.address, end)
    ranges = user_pages(mm, args.address, end, swap_images=parse_swap_images(args.swap_image), root=args.root)
    return MemreadOutput(task, args.address, args.length, ps, ranges)


def _clip(r: "UserRange", start: int, end: int, page_size: int) -> "UserRange":
    a, b = max(r.start, start), min(r.end, end)
    if (a, b) == (r.start, r.end):
        return r
    skip = (a - r.start) // page_size
    return r._replace(
        start=a, end=b, data=None if r.data is None else r.data[a - r.start:b - r.start],
        pfn=None if r.pfn is None else r.pfn + skip,
        swap_offset=None if r.swap_offset is None else r.swap_offset + skip)


def _clipped(res: MemreadOutput) -> Iterator["UserRange"]:
    end = res.address + res.length
    for r in res.ranges:
        if r.end > res.address and r.start < end:
            yield _clip(r, res.address, end, res.page_size)


def fate_line(r: "UserRange", page: Optional[int] = None, page_size: int = 4096) -> str:
    """
    The line that says the fate of the page at *page* of *r* (a readable run's page), or of the whole of
    *r* (an unreadable run) when *page* is None.
    """
    first = r.start - r.start % page_size
    if page is None:
        n = (r.end - first + page_size - 1) // page_size
        where = f"{r.start:#x}-{r.end:#x}" + (f" ({n} pages)" if n > 1 else "")
        k = 0
    else:
        where = f"{page:#x}"
        k = (page - first) // page_size
    facts = []
    if r.swap_type is not None and r.swap_offset is not None:
        facts.append(f"swap {r.swap_type}:{r.swap_offset + k:#x}")
    if r.pfn is not None:
        facts.append(f"pfn {r.pfn + k:#x}")
    extra = f" [{', '.join(facts)}]" if facts else ""
    detail = f": {r.detail}" if r.detail else ""
    return f"--- {where} {r.fate.value}{extra}{detail}"


_PRINTABLE = bytes(c if 0x20 <= c < 0x7F else 0x2E for c in range(256))


def hexdump_lines(addr: int, data: bytes) -> Iterator[str]:
    """``xxd``'s lines of *data* at address *addr*: 16 bytes a line, in 2-byte groups, then the text."""
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        hx = chunk.hex()
        groups = " ".join(hx[j:j + 4] for j in range(0, len(hx), 4))
        yield f"{addr + i:012x}: {groups:<39}  {chunk.translate(_PRINTABLE).decode('ascii')}"


def _write_hexdump(res: MemreadOutput, out: TextIO) -> Counter:
    counts: Counter = Counter()
    ps = res.page_size
    for r in _clipped(res):
        counts[r.fate] += r.end - r.start
        if r.data is None:
            out.write(fate_line(r, None, ps) + "\n")
            continue
        a = r.start
        while a < r.end:
            b = min((a // ps + 1) * ps, r.end)
            out.write(fate_line(r, a - a % ps, ps) + "\n")
            for line in hexdump_lines(a, r.data[a - r.start:b - r.start]):
                out.write(line + "\n")
            a = b
    return counts


def _json(r: "UserRange", with_data: bool) -> str:
    d = {"start": r.start, "end": r.end, "fate": r.fate.value, "readable": r.readable, "pfn": r.pfn,
         "swap_type": r.swap_type, "swap_offset": r.swap_offset, "detail": r.detail}
    if with_data:
        d["data"] = None if r.data is None else r.data.hex()
    return json.dumps(d)


def _write_file(res: MemreadOutput, path: str, json_out: Optional[TextIO]) -> Counter:
    counts: Counter = Counter()
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would have made it (mkstemp makes 0600)
        with os.fdopen(fd, "wb") as f:
            for r in _clipped(res):
                counts[r.fate] += r.end - r.start
                f.write(r.data if r.data is not None else bytes(r.end - r.start))
                if json_out is not None:
                    json_out.write(_json(r, False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return counts


def summary(res: MemreadOutput, counts: Counter) -> str:
    """One line: how many bytes of which fate."""
    from drgn_ptwalk.usermem import READABLE_FATES

    readable = sum(n for f, n in counts.items() if f in READABLE_FATES)
    parts = ", ".join(f"{f.value} {n}" for f, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    pid = res.task.pid.value_()
    return (f"drgn-ptwalk: PID {pid} {res.address:#x}+{res.length:#x}: {readable} of {res.length} bytes "
            f"readable ({parts})")


def format_memread(res: MemreadOutput, args: argparse.Namespace, out: TextIO) -> None:
    if args.output:
        counts = _write_file(res, args.output, out if args.json else None)
    elif args.json:
        counts = Counter()
        for r in _clipped(res):
            counts[r.fate] += r.end - r.start
            out.write(_json(r, True) + "\n")
    else:
        counts = _write_hexdump(res, out)
    if args.output or args.json:
        print(summary(res, counts), file=sys.stderr)


COMMANDS = (
    command(
        "memread",
        "the bytes of a range of a task's memory, each page with its fate (RAM, swap cache, zram, zswap, "
        "swap image, page cache, or why not)",
        (
            arg("task", help="PID, struct task_struct address (0x...), or process name"),
            arg("address", type=address, help="first address"),
            arg("length", type=address, help="number of bytes"),
            arg("-o", "--output", metavar="FILE",
                help="write the raw bytes to FILE (zero-filled where unreadable; a summary on stderr)"),
            arg("--swap-image", metavar="TYPE=FILE", action="append",
                help="an image of swap device TYPE (a copy of the partition or swap file); may be repeated"),
            arg("--root", metavar="DIR",
                help="read file pages that are in no cache from the files under DIR (not from the dump)"),
            arg("--json", action="store_true",
                help="JSON Lines, one object per run of pages (with the bytes in hex unless -o)"),
        ),
        run,
        format_memread,
        aliases=("read",),
    ),
)
