# SPDX-License-Identifier: LGPL-2.1-or-later
"""The process memory reader (``user_pages`` / ``read_user``) judged on the procmem process of every reference
guest (vmcores/procmem.c): it wrote known patterns (a function of address and seed, vmcores/truth.py
``procmem_expected``) into anon pages, a THP, an mTHP, shmem, a memfd, a private file mapping with COW pages,
hugetlb, and pages it pushed out to two zram devices (different compressors), to zswap in front of a swap disk
and to that disk itself, whose image the build keeps (meta.json ``swap_disk``).

Judged against the truth, never against the reader itself: every byte of a page called readable equals the
pattern; each page's fate agrees with the kernel's own pagemap captured in the guest (present with that PFN,
swapped with that swap type and offset); a page called unreadable really is (on a swap device no image was
given for, or a present page the dump does not hold: makedumpfile -d 31); zram and zswap pages, kernel
memory, are readable on every dump including -d 31; with the swap disk's image the disk's pages read too.
"""

from collections import Counter
from typing import Dict, List, Tuple

import pytest
from drgn.helpers.linux.pid import find_task

from conftest import get_vmcore
from drgn_ptwalk import read_user, user_pages
from procmem_common import Procmem, procmem_dumps, procmem_of, reader_prog, swap_entry
from vmcores.truth import ProcmemRegion, procmem_region_expected

DUMPS = procmem_dumps()
D31 = [n for n in DUMPS if n.endswith(":makedumpfile-d31")]

# What each fate needs of the captured pagemap entry of its page.
PRESENT_FATES = {"PRESENT"}
SWAP_FATES = {"SWAPCACHE", "ZRAM", "ZRAM_SAME", "ZSWAP", "SWAP_IMAGE", "SWAP_DEVICE"}
# Fates a page of the procmem process may have at all (it has no device, PFN, poisoned or migrating page).
PROCMEM_FATES = PRESENT_FATES | SWAP_FATES | {"FILE_CACHE", "ZERO", "EXCLUDED"}


class Reads:
    """The reader's output for every procmem region, without and with the swap disk's image."""

    def __init__(self, v) -> None:
        self.pm: Procmem = procmem_of(v)
        prog = reader_prog(v)
        self.task = find_task(prog, self.pm.pid)
        assert self.task, f"{v.name}: no task {self.pm.pid} (procmem) in the dump"
        self.plain: List[Tuple[ProcmemRegion, list]] = []
        self.image: List[Tuple[ProcmemRegion, list]] = []
        images = self.pm.swap_images()
        for r in self.pm.truth.regions:
            self.plain.append((r, list(user_pages(self.task, r.start, r.end))))
            self.image.append((r, list(user_pages(self.task, r.start, r.end, swap_images=images))))


_reads: Dict[str, Reads] = {}


@pytest.fixture(params=DUMPS, scope="module")
def reads(request) -> Reads:
    if request.param not in _reads:
        _reads[request.param] = Reads(get_vmcore(request.param))
    return _reads[request.param]


def _pages_of(pm: Procmem, rng):
    """(address, index in the range) of each page of a UserRange."""
    for i, a in enumerate(range(rng.start, rng.end, pm.page_size)):
        yield a, i


def _fate_problem(pm: Procmem, r: ProcmemRegion, rng, addr: int, i: int, images: Dict[int, str]) -> str:
    """Why the fate of the page at addr (the i-th of rng) disagrees with the captured pagemap, or ''."""
    e = pm.pagemap.get(addr, 0)
    fate = rng.fate.name
    where = f"{r.label} {addr:#x} {fate} ({rng.detail}), pagemap {e:#018x}"
    if fate not in PROCMEM_FATES:
        return f"{where}: not a fate any procmem page can have"
    if fate in PRESENT_FATES or fate == "EXCLUDED":
        if not pm.present(e):
            return f"{where}: the kernel's pagemap says not present"
        if fate == "EXCLUDED" and pm.v.dump != "makedumpfile":
            return f"{where}: excluded from a {pm.v.dump} dump (only makedumpfile filters pages)"
        if fate == "PRESENT" and rng.pfn is not None and rng.pfn + i != pm.pfn(e):
            return f"{where}: PFN {rng.pfn + i:#x}, pagemap {pm.pfn(e):#x}"
        return ""
    if fate in SWAP_FATES:
        if not pm.swapped(e):
            return f"{where}: the kernel's pagemap says not swapped"
        stype, soff = swap_entry(e)
        if rng.swap_type is not None and rng.swap_type != stype:
            return f"{where}: swap type {rng.swap_type}, pagemap {stype}"
        if rng.swap_offset is not None and rng.swap_offset + i != soff:
            return f"{where}: swap offset {rng.swap_offset + i:#x}, pagemap {soff:#x}"
        if fate in ("ZRAM", "ZRAM_SAME") and stype not in pm.zram_types():
            return f"{where}: zram fate on swap type {stype}, zram devices are {pm.zram_types()}"
        if fate in ("ZSWAP", "SWAP_IMAGE", "SWAP_DEVICE") and stype != pm.disk_type():
            return f"{where}: a disk-swap fate on swap type {stype}, the swap disk is {pm.disk_type()}"
        if fate == "SWAP_DEVICE" and stype in images:
            return f"{where}: swap type {stype} was given an image ({images[stype]}) but was not read from it"
        return ""
    if fate == "FILE_CACHE":
        # a file (tmpfs) page of the private mapping, or a shared shmem/memfd page, not mapped here
        if pm.present(e) or pm.swapped(e):
            return f"{where}: read from the page cache, but the page table maps or swaps it"
        if r.fate not in ("file", "file-untouched", "shmem", "memfd"):
            return f"{where}: page cache fate in a {r.fate} region"
        return ""
    if fate == "ZERO":
        if pm.present(e):
            return f"{where}: the kernel's pagemap says present"
        if pm.swapped(e) and r.kind != "zero":
            return f"{where}: a swapped page of non-zero content called zero"
        return ""
    return f"{where}: unexpected"


def test_procmem_guest(reads):
    """The guest did what the truth says (judges vmcores/procmem.c, not the reader): the resident regions
    are present and each swapped region's pages sit on the swap device the workload aimed at, unless the
    kernel refused that device (a ``refused`` line in steps.log)."""
    pm = reads.pm
    types = pm.truth.swap_types
    assert "zram0" in types, f"{pm.v.name}: no zram0 in the procmem process's /proc/swaps"
    bad = []
    for r in pm.truth.regions:
        for a, e in pm.pages(r):
            if r.fate in ("present", "thp", "mthp", "shmem", "memfd", "file-cow", "hugetlb"):
                if not pm.present(e):
                    bad.append(f"{r.label} {a:#x}: {r.fate} page not present ({e:#x})")
            elif r.device:
                refused = {"zram1": ("swapon-zram1", "switch-zram1"),
                           "swapdisk": ("swapon-swapdisk", "switch-swapdisk")}.get(r.device, ())
                if any(pm.refused(s) for s in refused):
                    continue
                if not pm.swapped(e) or swap_entry(e)[0] != types.get(r.device):
                    bad.append(f"{r.label} {a:#x}: meant for {r.device} (type {types.get(r.device)}), "
                               f"pagemap {e:#x}")
    assert not bad, f"{pm.v.name}: {len(bad)} pages not where procmem put them:\n" + "\n".join(bad[:20])


def test_readable_pages_hold_the_pattern(reads):
    pm = reads.pm
    counts: Dict[str, int] = {}
    bad = []
    for r, ranges in reads.plain + reads.image:
        for rng in ranges:
            assert r.start <= rng.start < rng.end <= r.end, f"{r.label}: range {rng} outside the asked span"
            if not rng.readable:
                assert rng.data is None, f"{r.label}: unreadable {rng.fate.name} range has data"
                continue
            assert rng.data is not None and len(rng.data) == rng.end - rng.start, f"{r.label}: {rng}"
            want = procmem_region_expected(r, rng.start, rng.end - rng.start, pm.page_size, pm.truth.byteorder)
            if rng.data != want:
                for a, _ in _pages_of(pm, rng):
                    o = a - rng.start
                    if rng.data[o : o + pm.page_size] != want[o : o + pm.page_size]:
                        bad.append(f"{r.label} {a:#x} ({rng.fate.name}, {rng.detail}): bytes differ from the "
                                   f"pattern")
            counts[rng.fate.name] = counts.get(rng.fate.name, 0) + (rng.end - rng.start) // pm.page_size
    print(f"{pm.v.name}: readable pages checked by fate: {counts}")
    assert not bad, f"{pm.v.name}: {len(bad)} readable pages with wrong bytes:\n" + "\n".join(bad[:20])
    assert sum(counts.values()) > 0


def test_fates_agree_with_pagemap(reads):
    """Every page's fate, readable or not, agrees with the kernel's pagemap captured in the guest."""
    pm = reads.pm
    bad = []
    for ranges, images in ((reads.plain, {}), (reads.image, pm.swap_images())):
        for r, rr in ranges:
            covered = sum(x.end - x.start for x in rr)
            if covered != r.end - r.start:
                bad.append(f"{r.label}: ranges cover {covered:#x} of {r.end - r.start:#x} bytes")
            for rng in rr:
                for a, i in _pages_of(pm, rng):
                    p = _fate_problem(pm, r, rng, a, i, images)
                    if p:
                        bad.append(p)
    assert not bad, f"{pm.v.name}: {len(bad)} pages whose fate disagrees:\n" + "\n".join(bad[:30])


def test_compressed_pages_are_readable(reads):
    """zram and zswap hold their pages in kernel memory (zsmalloc): readable on every dump, -d 31 included."""
    pm = reads.pm
    zram, bad = 0, []
    zswap_used = any(s.startswith("procmem zswap-enable ok") for s in pm.steps)
    for r, ranges in reads.plain:
        for rng in ranges:
            for a, _ in _pages_of(pm, rng):
                e = pm.pagemap.get(a, 0)
                if not pm.swapped(e):
                    continue
                t = swap_entry(e)[0]
                if t in pm.zram_types():
                    zram += 1
                    if not rng.readable:
                        bad.append(f"{r.label} {a:#x}: zram page (type {t}) unreadable: {rng.fate.name} "
                                   f"{rng.detail}")
                elif zswap_used and r.fate in ("zswap", "zswap-same") and not rng.readable:
                    bad.append(f"{r.label} {a:#x}: page stored in zswap unreadable: {rng.fate.name} {rng.detail}")
    assert zram > 0, f"{pm.v.name}: no procmem page in zram"
    assert not bad, f"{pm.v.name}:\n" + "\n".join(bad[:20])


def test_swap_image_reads_the_disk_pages(reads):
    """With the kept swap disk image every page swapped to the disk reads (from zswap, the swap cache or the
    image); without it the pages only the disk holds say which device and slot."""
    pm = reads.pm
    t = pm.disk_type()
    assert t is not None and pm.swap_disk_image, (
        f"{pm.v.name}: no swap disk (swap types {pm.truth.swap_types}, image {pm.swap_disk_image})")
    on_disk = from_image = device = 0
    fates: Counter = Counter()  # where the pages on the disk were read from (said when none is the image)
    bad = []
    for (r, plain), (_, image) in zip(reads.plain, reads.image):
        for rng in image:
            for a, _ in _pages_of(pm, rng):
                e = pm.pagemap.get(a, 0)
                if pm.swapped(e) and swap_entry(e)[0] == t:
                    on_disk += 1
                    from_image += rng.fate.name == "SWAP_IMAGE"
                    fates[rng.fate.name] += 1
                    if not rng.readable:
                        bad.append(f"{r.label} {a:#x}: on the swap disk, unreadable with its image: "
                                   f"{rng.fate.name} {rng.detail}")
        for rng in plain:
            if rng.fate.name == "SWAP_DEVICE":
                device += (rng.end - rng.start) // pm.page_size
                assert rng.detail, f"{r.label}: SWAP_DEVICE without saying which device and slot"
    assert on_disk > 0, f"{pm.v.name}: no procmem page on the swap disk (type {t})"
    if pm.refused("memcg-reclaim-swapdisk"):
        # The guest could not get the disk-bound pages out of the swap cache before the dump (their writeback
        # outlasted its wait; steps.log says how many were left): every page on the disk is also in memory,
        # and must read from there.
        assert fates["SWAPCACHE"] > 0 and not from_image, (
            f"{pm.v.name}: the guest left disk-bound pages in the swap cache, read as {dict(fates)}")
    else:
        assert from_image > 0, (f"{pm.v.name}: no page read from the swap image ({on_disk} on the disk, read as "
                                f"{dict(fates)})")
    assert device == from_image, (f"{pm.v.name}: {device} pages SWAP_DEVICE without the image, {from_image} "
                                  f"read from it")
    assert not bad, f"{pm.v.name}:\n" + "\n".join(bad[:20])


def test_read_user_matches_user_pages(reads):
    """read_user: the bytes of a span across regions, zero where a page is unreadable, with the same fates."""
    pm = reads.pm
    for r, ranges in reads.image[:: max(1, len(reads.image) // 8)]:
        start = r.start + 8  # unaligned on purpose
        size = min(r.end - start, 3 * pm.page_size)
        got = read_user(reads.task, start, size, swap_images=pm.swap_images())
        assert len(got.data) == size
        want = bytearray(procmem_region_expected(r, start, size, pm.page_size, pm.truth.byteorder))
        for rng in got.ranges:
            if not rng.readable:
                lo, hi = max(rng.start, start) - start, min(rng.end, start + size) - start
                want[lo:hi] = bytes(hi - lo)
        assert got.data == bytes(want), f"{pm.v.name} {r.label}: read_user({start:#x}, {size:#x})"
        assert [x.fate for x in got.ranges] == [x.fate for x in ranges if x.start < start + size], r.label


@pytest.mark.parametrize("name", D31)
def test_filtered_dump_excludes_user_pages(name):
    """makedumpfile -d 31 dropped user pages: every present anonymous page of the process says EXCLUDED
    (none reads as invented bytes), while its zram pages stay readable. (Parametrised like test_kdump: over
    the matrix's -d 31 dumps, x86_64-6.12-kdump, unless PTWALK_KERNELS leaves it out.)"""
    if name not in _reads:
        _reads[name] = Reads(get_vmcore(name))
    rd = _reads[name]
    pm = rd.pm
    excluded = zram = 0
    bad = []
    for r, ranges in rd.plain:
        for rng in ranges:
            for a, _ in _pages_of(pm, rng):
                e = pm.pagemap.get(a, 0)
                if pm.present(e) and r.fate in ("present", "thp", "mthp", "file-cow", "hugetlb"):
                    if rng.fate.name != "EXCLUDED":
                        bad.append(f"{r.label} {a:#x}: present user page, fate {rng.fate.name} on -d 31")
                    excluded += 1
                elif pm.swapped(e) and swap_entry(e)[0] in pm.zram_types():
                    zram += 1
                    if not rng.readable:
                        bad.append(f"{r.label} {a:#x}: zram page unreadable on -d 31: {rng.fate.name}")
    assert excluded > 0 and zram > 0, f"{name}: {excluded} excluded, {zram} zram pages"
    assert not bad, f"{name}:\n" + "\n".join(bad[:20])
