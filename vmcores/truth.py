# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reading the ground truth a guest captured (see README "Reference vmcores" for the layout)."""

import json
import struct
from array import array
from pathlib import Path
from itertools import repeat
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

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


# /proc/kpageflags, kpagecount, kpagecgroup of every PFN (`workload kpage`: truth/kpage.bin and
# truth/kpage-changed.bin, the bytes of the =====KPAGE-BEGIN===== and =====KPAGE-CHANGED===== blocks).
KPAGE_FILES = ("kpageflags", "kpagecount", "kpagecgroup")
_KPAGE_MTF = 31
# When the guest read snapshot B (kpage-changed.bin's last varint; workload.c KPAGE_BEFORE_DUMP and
# KPAGE_BRACKETED): after the dumps, so snapshots A and B bracket them, or before the dump (kdump entries,
# which crash into a capture kernel; and builds from before the bracketing, whose block ends at overflow).
KPAGE_SCHEMES = {0: "before-dump", 1: "bracketed"}


class _Varints:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def __call__(self) -> int:
        data, pos = self.data, self.pos
        value = shift = 0
        while True:
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                self.pos = pos
                return value


class KpageTruth(NamedTuple):
    """The three files the guest read just before the dump (snapshot A), and the PFNs whose values differ
    in snapshot B, read after the dumps (or, see ``scheme``, before the dump)."""

    npfn: int
    page_size: int
    files: Dict[str, Optional[array]]
    """``kpageflags`` etc. -> u64 per PFN (``None``: the guest could not read that file)."""
    changed: Dict[int, int]
    """PFN -> mask of the files (bit i: ``KPAGE_FILES[i]``) whose value changed between the two reads."""
    changed_overflow: bool
    """More PFNs changed than the guest could list (or the list is missing): every PFN is then unstable."""
    scheme: Optional[str]
    """When snapshot B was read: ``"bracketed"`` (after the dumps), ``"before-dump"`` (kdump entries, older
    builds), ``None`` if the build has no list of changed PFNs (kpage-changed.bin)."""


def parse_kpage_changed(data: bytes) -> Tuple[Dict[int, int], bool, str]:
    """kpage-changed.bin: varint count, (PFN delta, mask of files) per PFN, overflow flag, then the scheme
    (absent before the bracketing: ``before-dump``). Returns (PFN -> mask, overflow, scheme)."""
    c = _Varints(data)
    changed: Dict[int, int] = {}
    pfn = 0
    for _ in range(c()):
        pfn += c()
        changed[pfn] = c()
    overflow = bool(c())
    code = c() if c.pos < len(data) else 0
    if code not in KPAGE_SCHEMES:
        raise ValueError(f"kpage-changed.bin: unknown scheme {code}")
    if c.pos != len(data):
        raise ValueError(f"kpage-changed.bin: {len(data) - c.pos} bytes after the scheme")
    return changed, overflow, KPAGE_SCHEMES[code]


def read_kpage(truth: Path) -> Optional[KpageTruth]:
    """The kpage truth of a build, or ``None`` if it has none (a build from before it was captured)."""
    truth = Path(truth)
    path = truth / "kpage.bin"
    if not path.is_file():
        return None
    data = path.read_bytes()
    if data[:4] != b"KPG1":
        raise ValueError(f"{path}: not a kpage capture")
    v = _Varints(data)
    v.pos = 4
    npfn, page_size, nfiles = v(), v(), v()
    files: Dict[str, Optional[array]] = {}
    for f in range(nfiles):
        name = KPAGE_FILES[f] if f < len(KPAGE_FILES) else f"file{f}"
        if not v():
            files[name] = None
            continue
        out = array("Q")
        tab: List[int] = []
        n = 0
        while n < npfn:
            code = v()
            count, idx = (code >> 5) + 1, code & 31
            if idx == _KPAGE_MTF:
                value = v()
                if len(tab) == _KPAGE_MTF:
                    tab.pop()
            else:
                value = tab.pop(idx)
            tab.insert(0, value)
            out.extend(repeat(value, count))
            n += count
        if n != npfn:
            raise ValueError(f"{path}: {name} has {n} PFNs, the header says {npfn}")
        files[name] = out
    cpath = truth / "kpage-changed.bin"
    if cpath.is_file():
        changed, overflow, scheme = parse_kpage_changed(cpath.read_bytes())
    else:
        changed, overflow, scheme = {}, True, None
    return KpageTruth(npfn, page_size, files, changed, overflow, scheme)
