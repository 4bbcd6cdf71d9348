"""The subcommands, on an open program: shared by the ``drgn-ptwalk`` CLI and the drgn shell commands."""

import argparse
import os
import struct
import sys
from typing import TextIO

from drgn import Program
from tabulate import tabulate

from drgn_ptwalk.entry import PtType
from drgn_ptwalk.tasks import find_target, task_mm
from drgn_ptwalk.views import print_entries

_TEXT = ("maps", "smaps", "smaps_rollup", "numa_maps")


def _types(names):
    if not names:
        return None
    out = []
    for n in names:
        try:
            out.append(PtType[n.upper()])
        except KeyError:
            raise ValueError(f"unknown entry type {n!r} (known: {', '.join(t.name.lower() for t in PtType)})") from None
    return out


def _pagemap_table(data: bytes, start: int, page_size: int, out: TextIO) -> None:
    rows = []
    for i, (v,) in enumerate(struct.iter_unpack("<Q", data)):
        if v == 0:
            continue
        bits = [name for bit, name in ((63, "present"), (62, "swap"), (61, "file"), (58, "guard"),
                                       (57, "uffd_wp"), (56, "exclusive"), (55, "soft_dirty")) if v >> bit & 1]
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


def run(prog: Program, args: argparse.Namespace, out: TextIO) -> int:
    cmd = args.cmd
    if cmd == "memtop":
        from drgn_ptwalk.memtop import memtop, print_memtop

        rows = memtop(prog, sort=args.sort, progress=sys.stderr if sys.stderr.isatty() else None)
        print_memtop(rows, out, limit=args.limit, as_json=args.json)
        return 0
    task = find_target(prog, args.task)
    if cmd in _TEXT:
        from drgn_ptwalk import procfs

        task_mm(task)
        out.write(getattr(procfs, cmd)(task))
        return 0
    mm = task_mm(task)
    if cmd == "ptwalk":
        from drgn_ptwalk.walk import pt_range_walk

        entries = pt_range_walk(mm, args.start, args.end, include_none=args.holes, types=_types(args.type),
                                batch=not args.no_batch)
        errors = print_entries(entries, out, as_json=args.json)
        if errors:
            print(f"drgn-ptwalk: {errors} page-table page(s) could not be read (type error entries)",
                  file=sys.stderr)
        return 0
    if cmd == "pagemap":
        from drgn_ptwalk import procfs
        from drgn_ptwalk.vmatree import checked_vmas

        start, end = args.start, args.end
        if start is None or end is None:
            vmas = [(v.vm_start.value_(), v.vm_end.value_()) for v in checked_vmas(mm)]
            if not vmas:
                raise ValueError("the task has no VMAs; give --start and --end")
            start = vmas[0][0] if start is None else start
            end = vmas[-1][1] if end is None else end
        data = procfs.pagemap(task, start, end)
        page_size = prog["PAGE_SIZE"].value_()
        if args.table:
            dest = open(args.output, "w") if args.output else out
            try:
                _pagemap_table(data, start, page_size, dest)
            finally:
                if args.output:
                    dest.close()
        elif args.output:
            with open(args.output + ".tmp", "wb") as f:
                f.write(data)
            os.replace(args.output + ".tmp", args.output)
        else:
            stream = getattr(out, "buffer", None)
            if stream is None or out.isatty():
                raise ValueError("pagemap is binary: give -o FILE or --table")
            stream.write(data)
            stream.flush()
        return 0
    raise ValueError(f"unknown command {cmd}")
