# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reading the ground truth a guest captured (see README "Reference vmcores" for the layout)."""

import json
import struct
from array import array
from bisect import bisect_right
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
    got = read_kpage_runs(truth)
    if got is None:
        return None
    npfn, page_size, runs = got
    files = {name: None if r is None else r.window(0, npfn) for name, r in runs.items()}
    cpath = truth / "kpage-changed.bin"
    if cpath.is_file():
        changed, overflow, scheme = parse_kpage_changed(cpath.read_bytes())
    else:
        changed, overflow, scheme = {}, True, None
    return KpageTruth(npfn, page_size, files, changed, overflow, scheme)


class KpageRuns(NamedTuple):
    """One kpage file of the truth as runs of equal values: no array per PFN (a 256 GiB guest has 6.7e7
    PFNs: 512 MiB per file as u64s, a few hundred thousand runs)."""

    starts: array
    """First PFN of each run (ascending; the first is 0)."""
    values: array
    """The value of each run."""
    npfn: int

    def window(self, start: int, end: int) -> array:
        """The values of PFNs ``[start, end)`` (cut at ``npfn``), as u64s."""
        end = min(end, self.npfn)
        out = array("Q")
        if start >= end:
            return out
        i = bisect_right(self.starts, start) - 1
        pfn = start
        while pfn < end:
            stop = self.starts[i + 1] if i + 1 < len(self.starts) else self.npfn
            n = min(stop, end) - pfn
            out.extend(repeat(self.values[i], n))
            pfn += n
            i += 1
        return out


def read_kpage_runs(truth: Path) -> Optional[Tuple[int, int, Dict[str, Optional[KpageRuns]]]]:
    """kpage.bin (snapshot A) as runs: (PFN count, page size, file name -> :class:`KpageRuns`, ``None`` for
    a file the guest could not read); ``None`` if the build has none. The changed PFNs:
    :func:`parse_kpage_changed` of kpage-changed.bin."""
    path = Path(truth) / "kpage.bin"
    if not path.is_file():
        return None
    data = path.read_bytes()
    if data[:4] != b"KPG1":
        raise ValueError(f"{path}: not a kpage capture")
    v = _Varints(data)
    v.pos = 4
    npfn, page_size, nfiles = v(), v(), v()
    files: Dict[str, Optional[KpageRuns]] = {}
    for f in range(nfiles):
        name = KPAGE_FILES[f] if f < len(KPAGE_FILES) else f"file{f}"
        if not v():
            files[name] = None
            continue
        starts, values = array("Q"), array("Q")
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
            starts.append(n)
            values.append(value)
            n += count
        if n != npfn:
            raise ValueError(f"{path}: {name} has {n} PFNs, the header says {npfn}")
        files[name] = KpageRuns(starts, values, npfn)
    return npfn, page_size, files


# The procmem scenario (vmcores/procmem.c): every 8-byte word of its regions is a function of the word's
# pattern address (the virtual address, or the file offset for a file's own pages) and a seed.
PROCMEM_KINDS = ("compressible", "incompressible", "same", "zero")
_M64 = (1 << 64) - 1


def mix64(z: int) -> int:
    """splitmix64's finalizer (procmem.c pm_mix64)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _mix64_np(z):  # numpy uint64 arrays: wrapping arithmetic, as in C
    import numpy as np

    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def procmem_expected(seed: int, kind: str, addr: int, n: int, page_size: int, byteorder: str = "little") -> bytes:
    """The ``n`` bytes the procmem process wrote at pattern address ``addr`` (any alignment) with ``seed``
    and ``kind`` (one of PROCMEM_KINDS), on a kernel with base pages of ``page_size`` bytes, each 8-byte
    word in ``byteorder`` (the guest's: ``big`` on s390x):

    * compressible: word = mix64(page ^ seed) + (word index in the page & 7)
    * incompressible: word = mix64(word address ^ seed)
    * same: word = mix64(page ^ seed) (every word of a page the same: zram/zswap same-filled pages)
    * zero: 0
    """
    if kind not in PROCMEM_KINDS:
        raise ValueError(f"unknown procmem pattern kind {kind!r}")
    if n <= 0:
        return b""
    first = addr & ~7
    nwords = (addr + n - first + 7) // 8
    try:
        import numpy as np
    except ImportError:
        np = None  # type: ignore[assignment]
    if kind == "zero":
        data = bytes(8 * nwords)
    elif np is not None:
        a = np.arange(nwords, dtype=np.uint64) * np.uint64(8) + np.uint64(first)
        page = a & np.uint64(~(page_size - 1) & _M64)
        if kind == "incompressible":
            w = _mix64_np(a ^ np.uint64(seed))
        elif kind == "same":
            w = _mix64_np(page ^ np.uint64(seed))
        else:
            w = _mix64_np(page ^ np.uint64(seed)) + (((a - page) >> np.uint64(3)) & np.uint64(7))
        data = w.astype("<u8" if byteorder == "little" else ">u8").tobytes()
    else:
        words = []
        for i in range(nwords):
            a = first + 8 * i
            page = a & ~(page_size - 1)
            if kind == "incompressible":
                words.append(mix64(a ^ seed))
            elif kind == "same":
                words.append(mix64(page ^ seed))
            else:
                words.append((mix64(page ^ seed) + (((a - page) >> 3) & 7)) & _M64)
        data = struct.pack(f"{'<' if byteorder == 'little' else '>'}{nwords}Q", *words)
    return data[addr - first : addr - first + n]


class ProcmemRegion(NamedTuple):
    """One run of pages of the procmem process with one pattern and one intended fate."""

    label: str
    start: int
    end: int
    kind: str
    seed: int
    addressing: str
    """``vaddr`` (pattern address = virtual address) or ``file`` (= file_offset + (addr - start))."""
    file_offset: int
    fate: str
    """What the workload meant: present, thp, mthp, shmem, memfd, file, file-untouched, file-cow, hugetlb,
    zram, zram-same, zram-zero, zswap, zswap-same, zswap-or-disk, swap-disk."""
    device: str
    """zram0, zram1, swapdisk (the virtio disk, type in ``ProcmemTruth.swap_types``) or ``""``."""
    seen: Dict
    """What the process's own pagemap and mincore said afterwards: present, none, swapcache, swap
    (type -> pages)."""


class ProcmemTruth(NamedTuple):
    pid: int
    page_size: int
    byteorder: str
    """The guest's byte order (``little``, ``big``): how each pattern word lies in memory."""
    seed: int
    regions: List[ProcmemRegion]
    swap_types: Dict[str, int]
    """Device name (zram0, zram1, swapdisk) -> swap type, from the order of /proc/swaps."""
    threads: List[Dict]
    glob: Dict
    raw: Dict


# The machine names (uname -m) of the matrix's big-endian guests.
_BIG_ENDIAN_MACHINES = ("s390x", "s390", "ppc64", "ppc", "sparc64", "mips", "mips64")


def guest_byteorder(truth: Path) -> str:
    """The guest's byte order (``little``, ``big``), from the machine field of ``uname -a`` it recorded."""
    fields = (Path(truth) / "global" / "uname").read_text().split()
    machine = fields[-2] if len(fields) >= 2 else ""
    return "big" if machine in _BIG_ENDIAN_MACHINES else "little"


def read_procmem(truth: Path, pid: int) -> ProcmemTruth:
    """truth/<pid>/procmem.json of a procmem process.

    The pattern of a region's bytes: :func:`procmem_region_expected`; the swap type of a device from
    /proc/swaps as the process read it last (swap types are assigned in swapon order; nothing is swapped
    off in the guest, so /proc/swaps, which lists swap_info[] in type order, gives each its type).
    """
    raw = json.loads((Path(truth) / str(pid) / "procmem.json").read_text())
    regions = [
        ProcmemRegion(r["label"], int(r["start"], 16), int(r["end"], 16), r["kind"], int(r["seed"], 16),
                      r["addressing"], int(r["file_offset"]), r["fate"], r["device"],
                      {**r["seen"], "swap": {int(k): v for k, v in r["seen"]["swap"].items()}})
        for r in raw["regions"]
    ]
    names = {"/dev/zram0": "zram0", "/dev/zram1": "zram1"}
    if raw.get("swapdisk"):
        names[raw["swapdisk"]] = "swapdisk"
    swap_types: Dict[str, int] = {}
    for i, line in enumerate(raw["proc_swaps"].splitlines()[1:]):
        dev = line.split()[0] if line.split() else ""
        if dev in names:
            swap_types[names[dev]] = i
    return ProcmemTruth(raw["pid"], raw["page_size"], raw.get("byteorder") or guest_byteorder(truth), int(raw["seed"], 16),
                        regions, swap_types,
                        raw["threads"], raw["global"], raw)


def procmem_region_expected(region: ProcmemRegion, addr: int, n: int, page_size: int,
                            byteorder: str = "little") -> bytes:
    """The bytes at ``addr`` .. ``addr + n`` inside ``region``."""
    if not (region.start <= addr and addr + n <= region.end):
        raise ValueError(f"{addr:#x}+{n:#x} is not inside {region.label} {region.start:#x}-{region.end:#x}")
    base = addr if region.addressing == "vaddr" else region.file_offset + (addr - region.start)
    return procmem_expected(region.seed, region.kind, base, n, page_size, byteorder)
