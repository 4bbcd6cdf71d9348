# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``filecache`` command: the page cache by file (:func:`drgn_ptwalk.filecache.filecache`), largest first:
each cached inode's pages, dirty, writeback, evicted (shadow or swap entries), mapping processes and large
folios; then the totals per super block, and the sums next to the kernel's counters (and, with
``--memmap``, memmap's file and shmem rows).
"""

import argparse
import json
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, TextIO

from drgn import Program

from drgn_ptwalk.commands import arg, command
from drgn_ptwalk.errors import ArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.filecache import CachedFile, FileCacheSummary
    from drgn_ptwalk.memmap import MemmapSummary

__all__ = ("COMMANDS", "SORT_KEYS", "FileCacheResult", "filecache_json")

SORT_KEYS = ("pages", "dirty", "writeback", "evicted", "mapped", "size")
"""What filecache sorts by: fields of :class:`~drgn_ptwalk.filecache.CachedFile`."""

MEMMAP_ROWS = ("shmem", "shmem_swapcache", "file_mapped", "file_unmapped")
"""memmap's rows of page-cache pages."""


class FileCacheResult(NamedTuple):
    summary: "FileCacheSummary"
    memmap: "Optional[MemmapSummary]"


def run(prog: Program, args: argparse.Namespace) -> FileCacheResult:
    from drgn_ptwalk.filecache import filecache

    if args.limit < 0:
        raise ArgumentError("--limit takes a number of files (0: all)")
    mm = None
    if args.memmap:
        from drgn_ptwalk.memmap import memmap

        mm = memmap(prog)
    return FileCacheResult(filecache(prog), mm)


def sorted_files(summary: "FileCacheSummary", sort: str = "pages", limit: int = 0) -> "List[CachedFile]":
    """The files by *sort*, largest first, at most *limit* (0: all)."""
    files = sorted(summary.files, key=lambda f: (-getattr(f, sort), f.path, f.inode))
    return files[:limit] if limit else files


def _file_json(f: "CachedFile") -> Dict[str, Any]:
    d = f._asdict()
    d["folios"] = {str(order): n for order, n in f.folios}
    return d


def filecache_json(summary: "FileCacheSummary", mm: "Optional[MemmapSummary]" = None, sort: str = "pages",
                   limit: int = 0) -> Dict[str, Any]:
    """The JSON object of the command (also the report's page cache section)."""
    from drgn_ptwalk.filecache import COUNTER_RULES

    out: Dict[str, Any] = {
        "page_size": summary.page_size,
        "files": [_file_json(f) for f in sorted_files(summary, sort, limit)],
        "super_blocks": [s._asdict() for s in summary.super_blocks],
        "totals": summary.totals,
        "kernel_counters": summary.counters,
        "counter_rules": COUNTER_RULES,
        "warnings": summary.warnings,
    }
    if mm is not None:
        out["memmap_rows"] = {r.name: r.pages for r in mm.rows if r.name in MEMMAP_ROWS}
    return out


def format_filecache(res: FileCacheResult, args: argparse.Namespace, out: TextIO) -> None:
    from tabulate import tabulate

    s = res.summary
    if args.json:
        out.write(json.dumps(filecache_json(s, res.memmap, args.sort, args.limit), indent=1) + "\n")
        return
    kb = s.page_size // 1024
    rows: List[List[Any]] = []
    for f in sorted_files(s, args.sort, args.limit):
        large = ",".join(f"{n}x{order}" for order, n in f.folios if order) or "-"
        rows.append([f.pages * kb, f.dirty * kb, f.writeback * kb, f.evicted * kb, f.mapped, large, f.kind,
                     f.fstype, f.dev, f.path])
    out.write(tabulate(rows, headers=("CACHED kB", "DIRTY kB", "WB kB", "EVICTED kB", "MAPPED", "LARGE",
                                      "KIND", "FS", "DEV", "PATH"), tablefmt="plain", disable_numparse=True)
              + "\n")
    for f in s.files:
        if f.error:
            out.write(f"# {f.path}: {f.error}\n")
    sbrows = [[sb.fstype, sb.dev, sb.mount or "-", sb.files, sb.pages * kb, sb.dirty * kb, sb.writeback * kb,
               sb.evicted * kb] for sb in s.super_blocks]
    out.write("\n" + tabulate(sbrows, headers=("FS", "DEV", "MOUNT", "FILES", "CACHED kB", "DIRTY kB", "WB kB",
                                               "EVICTED kB"), tablefmt="plain", disable_numparse=True) + "\n")
    t, c = s.totals, s.counters

    def k(v: Optional[int]) -> str:
        return "-" if v is None else str(v * kb)

    swc = c.get("nr_swapcache")
    trows = [
        ["page cache (+ swap cache)", k(t["pages"] + (swc or 0)), k(c.get("nr_file_pages")), "NR_FILE_PAGES"],
        ["shmem", k(t["shmem"]), k(c.get("nr_shmem")), "NR_SHMEM"],
        ["dirty", k(t["dirty"]), k(c.get("nr_dirty")), "NR_FILE_DIRTY"],
        ["writeback", k(t["writeback"]), k(c.get("nr_writeback")), "NR_WRITEBACK"],
        ["hugetlbfs (not page cache counters)", k(t["hugetlbfs"]), "-", "-"],
    ]
    out.write("\n" + tabulate(trows, headers=("TOTAL", "kB", "KERNEL kB", "COUNTER"), tablefmt="plain",
                              disable_numparse=True) + "\n")
    if res.memmap is not None:
        mrows = [[r.name, r.pages * kb] for r in res.memmap.rows if r.name in MEMMAP_ROWS]
        out.write("\n" + tabulate(mrows, headers=("MEMMAP ROW", "kB"), tablefmt="plain") + "\n")
    for w in s.warnings:
        out.write(f"# warning: {w}\n")


COMMANDS = (
    command(
        "filecache",
        "the page cache by file: cached, dirty, writeback, evicted pages, mapping processes; totals per super "
        "block and next to the kernel's counters",
        (
            arg("--sort", choices=SORT_KEYS, default="pages", help="column to sort by (default pages)"),
            arg("--limit", type=int, default=20, help="files to print (0: all; default 20)"),
            arg("--memmap", action="store_true", help="also memmap's file and shmem rows (reads all of memmap)"),
            arg("--json", action="store_true", help="print a JSON object"),
        ),
        run,
        format_filecache,
    ),
)
