# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reading the ground truth a guest captured (see README "Reference vmcores" for the layout)."""

import json
import struct
from array import array
from pathlib import Path
from typing import Dict, Iterator, NamedTuple

# pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst)
PM_PFN_MASK = (1 << 55) - 1
PM_SOFT_DIRTY = 1 << 55
PM_MMAP_EXCLUSIVE = 1 << 56
PM_UFFD_WP = 1 << 57
PM_GUARD_REGION = 1 << 58
PM_FILE = 1 << 61
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63


class PagemapRecord(NamedTuple):
    """The pagemap entries of one VMA: ``entries[i]`` is the page at ``start + i * page_size``."""

    start: int
    end: int
    entries: array


def read_pagemap(path: Path) -> Iterator[PagemapRecord]:
    """Records of a ``pagemap.bin``: u64 start, u64 end, u64 n, then n u64 entries (little-endian)."""
    data = Path(path).read_bytes()
    off = 0
    while off < len(data):
        start, end, n = struct.unpack_from("<QQQ", data, off)
        off += 24
        entries = array("Q")
        entries.frombytes(data[off : off + 8 * n])
        if entries.itemsize != 8:
            raise RuntimeError("array('Q') is not 64-bit here")
        off += 8 * n
        yield PagemapRecord(start, end, entries)


def pids(truth: Path) -> Dict[str, int]:
    return json.loads((Path(truth) / "pids.json").read_text())
