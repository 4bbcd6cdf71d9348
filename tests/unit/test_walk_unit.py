# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests: entry decoding per arch/layout on synthetic values, and the walker on synthetic tables.

These complement, not replace, the truth tests against real dumps (tests/test_walk_truth.py).
"""

import drgn
import pytest

from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE
from drgn_ptwalk.arch.aarch64 import AArch64Decoder
from drgn_ptwalk.arch.x86_64 import X86_64Decoder
from drgn_ptwalk.entry import PtFlag, PtLevel, PtType
from drgn_ptwalk.errors import ArgumentError
from drgn_ptwalk.swapinfo import classify_swp, make_swap_types
from drgn_ptwalk.walk import _check_range, _nonnone_slots, _run_end, walk_tables
from encode import make_swp

# ---------------------------------------------------------------------------------------------------------
# x86-64


def test_x86_levels():
    d4 = X86_64Decoder(l5=False)
    d5 = X86_64Decoder(l5=True)
    assert [(lv.name, s) for lv, s, _ in d4.levels] == [("PGD", 39), ("PUD", 30), ("PMD", 21), ("PTE", 12)]
    assert [(lv.name, s) for lv, s, _ in d5.levels] == [
        ("PGD", 48), ("P4D", 39), ("PUD", 30), ("PMD", 21), ("PTE", 12)]
    # Canonical halves: 47 and 56 bits.
    assert d4.user_range() == (0, 1 << 47) and d5.user_range() == (0, 1 << 56)
    assert d5.kernel_range() == ((1 << 64) - (1 << 56), 1 << 64)


def test_x86_pte_present():
    d = X86_64Decoder()
    pte = (0x12345 << 12) | 0x1 | 0x2 | 0x4 | 0x20 | 0x40 | (1 << 11) | (1 << 63)
    assert d.kind(pte, 3) == LEAF
    assert d.leaf_pfn(pte, 12) == 0x12345
    f = PtFlag(d.leaf_flags(pte, PtLevel.PTE))
    assert f == PtFlag.PRESENT | PtFlag.WRITE | PtFlag.YOUNG | PtFlag.DIRTY | PtFlag.SOFT_DIRTY
    assert d.leaf_step(pte) == 4096


def test_x86_none_ignores_accessed_dirty():
    d = X86_64Decoder()
    assert d.kind(0, 3) == NONE
    assert d.kind(0x60, 3) == NONE  # KNL erratum: A/D on an empty slot
    assert d.kind(0x60, 2) == NONE


def test_x86_protnone_inverted_pfn():
    d = X86_64Decoder()
    pfn = 0xABCDE
    # pfn_pte() on PAGE_NONE: PROTNONE set, PRESENT clear, PFN stored inverted.
    pte = ((~(pfn << 12)) & ((1 << 52) - 1) & ~0xFFF) | 0x100 | 0x20
    assert d.kind(pte, 3) == LEAF
    assert d.leaf_pfn(pte, 12) == pfn
    f = PtFlag(d.leaf_flags(pte, PtLevel.PTE))
    assert PtFlag.PROTNONE in f and PtFlag.PRESENT in f
    assert d.leaf_step(pte) == -4096
    nxt = ((~((pfn + 1) << 12)) & ((1 << 52) - 1) & ~0xFFF) | 0x100 | 0x20
    assert nxt == pte + d.leaf_step(pte)


def test_x86_sme_mask_excluded_from_pfn():
    c_bit = 1 << 47
    d = X86_64Decoder(physical_mask=((1 << 52) - 1) & ~c_bit)
    pte = c_bit | (0x1000 << 12) | 0x67
    assert d.leaf_pfn(pte, 12) == 0x1000
    assert d.table_addr(pte) == 0x1000 << 12


def test_x86_pse_pmd_pud():
    d = X86_64Decoder()
    pmd = (0x40000 << 12) | 0x80 | 0x1067 | (1 << 12)  # PAT_LARGE (bit 12) is not address
    assert d.kind(pmd, 2) == LEAF
    assert d.leaf_pfn(pmd, 21) == 0x40000
    pud = (0x80000 << 12) | 0x80 | 0x67
    assert d.kind(pud, 1) == LEAF
    assert d.leaf_pfn(pud, 30) == 0x80000
    table = (0x1234 << 12) | 0x67
    assert d.kind(table, 2) == TABLE and d.table_addr(table) == 0x1234000
    # pmdp_invalidate() clears PRESENT but keeps PSE: still a (present) leaf.
    assert d.kind(pmd & ~1, 2) == LEAF
    assert d.kind(1 << 20, 0) == BAD  # non-present garbage at PGD level


def test_x86_swap_inverted_offset():
    d = X86_64Decoder()
    for t, off in ((0, 1), (3, 0x12345), (31, (1 << 50) - 1)):
        v = make_swp(d, t, off, 0x2 | 0x8)
        assert d.kind(v, 3) == SWAP
        assert d.swp(v) == (t, off)
        assert PtFlag(d.swap_flags(v, PtLevel.PTE)) == PtFlag.SOFT_DIRTY | PtFlag.EXCLUSIVE
    # The kernel's own formula: __swp_offset(x) = (~x << 5) >> 14.
    v = make_swp(d, 2, 0x777)
    assert (((~v) << 5) & ((1 << 64) - 1)) >> 14 == 0x777
    assert make_swp(d, 2, 0x778) == v + d.swap_step
    assert PtFlag(d.swap_flags(make_swp(d, 1, 5, 0x4), PtLevel.PTE)) == PtFlag.UFFD_WP


def test_x86_saved_dirty():
    pte = (5 << 12) | 0x25 | (1 << 58)  # shadow-stack style: Write=0, SavedDirty=1
    assert PtFlag.DIRTY in PtFlag(X86_64Decoder(saved_dirty=True).leaf_flags(pte, PtLevel.PTE))
    assert PtFlag.DIRTY not in PtFlag(X86_64Decoder(saved_dirty=False).leaf_flags(pte, PtLevel.PTE))


def test_x86_swp_pfn_mask():
    assert X86_64Decoder(l5=False).swp_pfn_mask == (1 << 34) - 1
    assert X86_64Decoder(l5=True).swp_pfn_mask == (1 << 40) - 1


# ---------------------------------------------------------------------------------------------------------
# arm64


def _levels(d):
    return [(lv.name, s, n) for lv, s, n in d.levels]


def test_arm64_geometry():
    assert _levels(AArch64Decoder(page_shift=12, va_bits=48)) == [
        ("PGD", 39, 512), ("PUD", 30, 512), ("PMD", 21, 512), ("PTE", 12, 512)]
    # LPA2 52-bit: 5 levels, 16-entry root.
    assert _levels(AArch64Decoder(page_shift=12, va_bits=52)) == [
        ("PGD", 48, 16), ("P4D", 39, 512), ("PUD", 30, 512), ("PMD", 21, 512), ("PTE", 12, 512)]
    # 16K: 52-bit = 4 levels with a 32-entry root; 47-bit (LPA2 kernel folded at run time) = 3 levels.
    assert _levels(AArch64Decoder(page_shift=14, va_bits=52)) == [
        ("PGD", 47, 32), ("PUD", 36, 2048), ("PMD", 25, 2048), ("PTE", 14, 2048)]
    assert _levels(AArch64Decoder(page_shift=14, va_bits=47)) == [
        ("PGD", 36, 2048), ("PMD", 25, 2048), ("PTE", 14, 2048)]
    assert _levels(AArch64Decoder(page_shift=14, va_bits=48)) == [
        ("PGD", 47, 2), ("PUD", 36, 2048), ("PMD", 25, 2048), ("PTE", 14, 2048)]
    assert AArch64Decoder(page_shift=12).cont_slots == {PtLevel.PTE: 16, PtLevel.PMD: 16}
    assert AArch64Decoder(page_shift=14, va_bits=47).cont_slots == {PtLevel.PTE: 128, PtLevel.PMD: 32}


def test_arm64_page_and_block():
    d = AArch64Decoder(page_shift=12, va_bits=48)
    pte = (0x4567 << 12) | 0x3 | (1 << 10) | (1 << 51) | (1 << 54) | (1 << 53)
    assert d.kind(pte, 3) == LEAF
    assert d.leaf_pfn(pte, 12) == 0x4567
    f = PtFlag(d.leaf_flags(pte, PtLevel.PTE))
    # DBM-writable and RDONLY clear => hardware dirty.
    assert f == PtFlag.PRESENT | PtFlag.WRITE | PtFlag.YOUNG | PtFlag.DIRTY
    assert PtFlag.DIRTY not in PtFlag(d.leaf_flags(pte | (1 << 7), PtLevel.PTE))
    assert d.kind(pte & ~2, 3) == BAD  # 0b01 at the last level is reserved
    block = (0x200 << 12) | 0x1 | (1 << 10)
    assert d.kind(block, 2) == LEAF and d.leaf_pfn(block, 21) == 0x200
    assert d.kind(block, 1) == LEAF  # 1G PUD block with 4K pages
    assert d.kind((0x1000 << 12) | 3, 2) == TABLE
    d16 = AArch64Decoder(page_shift=14, va_bits=47)
    assert d16.kind(block, 0) == BAD  # no blocks at the 16K root
    assert d16.leaf_pfn((0x2000 << 14) | 3, 14) == 0x2000


def test_arm64_lpa2_address_bits():
    d = AArch64Decoder(page_shift=12, va_bits=52)
    phys = (0b11 << 50) | (0b10 << 48) | 0x1234000
    pte = (phys & ((1 << 50) - 1)) | ((phys >> 50) << 8) | 0x3
    assert d.table_addr(pte) == phys
    assert d.leaf_pfn(pte, 12) == phys >> 12
    # Without LPA2 bits 8-9 are shareability and must be ignored.
    d48 = AArch64Decoder(page_shift=12, va_bits=48)
    assert d48.leaf_pfn((0x1234 << 12) | (0b11 << 8) | 3, 12) == 0x1234
    # 16K with LPA2.
    d16 = AArch64Decoder(page_shift=14, va_bits=52)
    assert d16.leaf_pfn(pte, 14) == phys >> 14


def test_arm64_swap_layouts():
    new = AArch64Decoder(new_layout=True)
    old = AArch64Decoder(new_layout=False)
    # 6.12+: type bits 6-10, offset 12-61, bit 2 exclusive, bit 3 uffd-wp.
    v = (7 << 6) | (0x1234 << 12) | (1 << 2) | (1 << 3)
    assert new.kind(v, 3) == SWAP
    assert new.swp(v) == (7, 0x1234)
    assert PtFlag(new.swap_flags(v, PtLevel.PTE)) == PtFlag.EXCLUSIVE | PtFlag.UFFD_WP
    assert make_swp(new, 7, 0x1235, 0xC) == v + new.swap_step
    # 6.1: type bits 3-7, offset 8-57, no uffd-wp.
    v = (7 << 3) | (0x1234 << 8) | (1 << 2)
    assert old.kind(v, 3) == SWAP
    assert old.swp(v) == (7, 0x1234)
    assert PtFlag(old.swap_flags(v, PtLevel.PTE)) == PtFlag.EXCLUSIVE
    assert old.swap_step == 1 << 8


def test_arm64_protnone():
    new = AArch64Decoder(new_layout=True)
    old = AArch64Decoder(new_layout=False)
    # 6.12+ PAGE_NONE: VALID clear, nG (present-invalid) set, RDONLY, PXN, UXN, no USER.
    pn = (0x99 << 12) | (1 << 11) | (1 << 7) | (1 << 53) | (1 << 54) | (1 << 10)
    assert new.kind(pn, 3) == LEAF
    assert new.leaf_pfn(pn, 12) == 0x99
    assert PtFlag.PROTNONE in PtFlag(new.leaf_flags(pn, PtLevel.PTE))
    assert new.leaf_step(pn) == 4096
    # 6.1 PAGE_NONE: bit 58.
    po = (0x99 << 12) | (1 << 58) | (1 << 7) | (1 << 53) | (1 << 54)
    assert old.kind(po, 3) == LEAF and PtFlag.PROTNONE in PtFlag(old.leaf_flags(po, PtLevel.PTE))
    # Bit 58 is uffd-wp on 6.12+.
    assert PtFlag.UFFD_WP in PtFlag(new.leaf_flags((1 << 58) | 3, PtLevel.PTE))
    assert PtFlag.UFFD_WP not in PtFlag(old.leaf_flags((1 << 58) | 3, PtLevel.PTE))
    # 6.1 PMD_PRESENT_INVALID (bit 59) only counts above the PTE level.
    assert old.kind((1 << 59) | (5 << 21), 2) == LEAF
    assert old.kind((1 << 59) | (5 << 21), 3) == SWAP


def test_arm64_cont_merge():
    d = AArch64Decoder(page_shift=12)
    base = (0x1000 << 12) | 0x3 | (1 << 52) | (1 << 51) | (1 << 7)  # cont, writable, clean, old
    block = tuple(base + (i << 12) for i in range(16))
    assert all(d.cont_valid(v) for v in block)
    assert d.cont_merge(block) == block
    dirty = list(block)
    dirty[5] &= ~(1 << 7)  # CPU cleared RDONLY on one entry (DBM dirty)
    dirty[9] |= 1 << 10  # AF on another
    merged = d.cont_merge(tuple(dirty))
    for v in merged:
        f = PtFlag(d.leaf_flags(v, PtLevel.PTE))
        assert PtFlag.DIRTY in f and PtFlag.YOUNG in f
    assert [d.leaf_pfn(v, 12) for v in merged] == list(range(0x1000, 0x1010))


# ---------------------------------------------------------------------------------------------------------
# Special swap types


@pytest.mark.parametrize(
    "max_swapfiles,hwp,expect",
    [
        # 6.1 amd64: HWP 26, MIG 27-29, MARKER 30, SWAPIN_ERROR 31.
        (26, True, {26: "HWPOISON", 27: "MIGRATION:read", 29: "MIGRATION:write", 30: "MARKER", 31: "MARKER:poisoned"}),
        # 6.1 amd64 cloud (no MEMORY_FAILURE).
        (27, False, {27: "MIGRATION:read", 28: "MIGRATION:read_exclusive", 30: "MARKER", 31: "MARKER:poisoned"}),
        # 6.12: HWP 27, MIG 28-30, MARKER 31.
        (27, True, {27: "HWPOISON", 28: "MIGRATION:read", 30: "MIGRATION:write", 31: "MARKER"}),
        # 7.2: HWP 24, MIG 25-27, DEVICE 28-30, MARKER 31.
        (24, True, {24: "HWPOISON", 25: "MIGRATION:read", 27: "MIGRATION:write", 28: "DEVICE:private_write",
                    29: "DEVICE:private_read", 30: "DEVICE:exclusive", 31: "MARKER"}),
    ],
)
def test_special_swap_types(max_swapfiles, hwp, expect):
    st = make_swap_types(max_swapfiles, hwpoison=hwp, migration=True)
    assert st.max_swapfiles == max_swapfiles
    for t, want in expect.items():
        typ, kind = st.special[t]
        assert (typ.name + (":" + kind if kind else "")) == want, t
    assert classify_swp(st, 0, 5, 0xFF)[0] == PtType.SWAP
    assert classify_swp(st, max_swapfiles - 1, 5, 0xFF)[0] == PtType.SWAP


def test_marker_kinds_and_pfn_entries():
    st = make_swap_types(24, True, True)
    assert classify_swp(st, 31, 1, 0xFF) == (PtType.MARKER, "uffd_wp", None)
    assert classify_swp(st, 31, 4, 0xFF) == (PtType.MARKER, "guard", None)
    assert classify_swp(st, 31, 2, 0xFF) == (PtType.MARKER, "poisoned", None)
    # Migration offsets carry young/dirty bits above the PFN (SWP_MIG_YOUNG/DIRTY).
    assert classify_swp(st, 27, (1 << 8) | 0x42, 0xFF) == (PtType.MIGRATION, "write", 0x42)
    assert classify_swp(st, 24, 0x42, 0xFF) == (PtType.HWPOISON, None, 0x42)


# ---------------------------------------------------------------------------------------------------------
# The walker on synthetic tables


class FakeMemory:
    """Page tables in a dict: phys -> list of entries (a mock reader for unit tests only)."""

    def __init__(self, dec):
        self.dec = dec
        self.tables = {}
        self.next = 0x100000
        self.reads = 0
        self.unreadable = set()

    def new_table(self, n):
        addr = self.next
        self.next += 0x1000 * max(1, n * 8 // 0x1000)
        self.tables[addr] = [0] * n
        return addr

    def read(self, addr, n, physical):
        self.reads += 1
        if addr in self.unreadable:
            raise drgn.FaultError("could not read memory", addr)
        t = self.tables[addr]
        assert len(t) == n
        return tuple(t)

    def walk_down(self, root, addr, depth_target):
        """Return the table at depth_target covering addr, creating tables on the way (x86 bits)."""
        table = root
        for depth, (_, shift, n) in enumerate(self.dec.levels[:-1]):
            if depth == depth_target:
                return table
            idx = (addr >> shift) & (n - 1)
            v = self.tables[table][idx]
            if not v:
                nxt = self.new_table(self.dec.levels[depth + 1][2])
                self.tables[table][idx] = nxt | self.table_bits
                v = self.tables[table][idx]
            table = self.dec.table_addr(v)
        return table

    def set(self, addr, value, depth=None):
        if depth is None:
            depth = len(self.dec.levels) - 1
        _, shift, n = self.dec.levels[depth]
        table = self.walk_down(self.root, addr, depth)
        self.tables[table][(addr >> shift) & (n - 1)] = value


def _mem(dec, table_bits):
    m = FakeMemory(dec)
    m.table_bits = table_bits
    m.root = m.new_table(dec.levels[0][2])
    return m


def _walk(m, segments, **kw):
    return list(walk_tables(m.dec, m.read, m.root, True, segments, **kw))


def _check_cover(entries, start, end):
    pos = start
    for e in entries:
        assert e.start == pos, (hex(e.start), hex(pos))
        assert e.end > e.start
        pos = e.end
    assert pos == end


X86_PTE = 0x8000000000000067  # NX | D | A | U | W | P


def test_walk_holes_coalesced_and_batched():
    d = X86_64Decoder()
    m = _mem(d, 0x67)
    base = 0x7F0000000000
    # 40 consecutive PFNs, then a gap, then 3 random PFNs, then 10 swapped pages with consecutive offsets.
    for i in range(40):
        m.set(base + i * 4096, ((0x5000 + i) << 12) | X86_PTE)
    for i, pfn in enumerate((0x9000, 0x7000, 0x7001)):
        m.set(base + (100 + i) * 4096, (pfn << 12) | X86_PTE)
    for i in range(10):
        m.set(base + (200 + i) * 4096, make_swp(d, 1, 500 + i))
    st = make_swap_types(27, True, True)
    start, end = base - (1 << 30), base + (1 << 30)
    ents = _walk(m, [(start, end, None)], swap_types=st)
    _check_cover(ents, start, end)
    kinds = [(e.type, e.nr_pages) for e in ents]
    assert kinds == [
        (PtType.NONE, (1 << 30) // 4096),
        (PtType.FOLIO, 40),
        (PtType.NONE, 60),
        (PtType.FOLIO, 1),
        (PtType.FOLIO, 2),
        (PtType.NONE, 97),
        (PtType.SWAP, 10),
        (PtType.NONE, (1 << 30) // 4096 - 210),
    ]
    assert ents[1].pfn == 0x5000 and ents[4].pfn == 0x7000
    assert ents[6].swap_type == 1 and ents[6].swap_offset == 500
    assert len(ents[1].raws) == 40
    # Without batching: one entry per slot, holes still coalesced.
    ents = _walk(m, [(start, end, None)], swap_types=st, batch=False)
    _check_cover(ents, start, end)
    assert sum(1 for e in ents if e.type == PtType.FOLIO) == 43
    assert sum(1 for e in ents if e.type == PtType.NONE) == 4
    # include_none=False
    ents = _walk(m, [(start, end, None)], swap_types=st, include_none=False)
    assert all(e.type != PtType.NONE for e in ents) and len(ents) == 4


def test_walk_folio_split_and_bits():
    d = X86_64Decoder()
    m = _mem(d, 0x67)
    base = 0x400000
    for i in range(32):
        v = ((0x8000 + i) << 12) | X86_PTE
        if i == 20:
            v &= ~0x40  # clean page in the middle: different bits, new entry
        m.set(base + i * 4096, v)
    # Folios: 0x8000-0x800f (order 4), then order-0 pages.
    def runs(pfn, n):
        out, p = [], pfn
        while p < pfn + n:
            if 0x8000 <= p < 0x8010:
                r = min(0x8010, pfn + n) - p
            else:
                r = 1
            out.append(r)
            p += r
        return out
    ents = _walk(m, [(base, base + 32 * 4096, 0xAAA)], folio_runs_fn=runs)
    _check_cover(ents, base, base + 32 * 4096)
    sizes = [e.nr_pages for e in ents]
    assert sizes[:1] == [16] and sum(sizes) == 32
    assert all(e.vma == 0xAAA for e in ents)
    clean = [e for e in ents if not e.dirty]
    assert len(clean) == 1 and clean[0].start == base + 20 * 4096


def test_walk_vma_segments_and_pmd_leaf():
    d = X86_64Decoder()
    m = _mem(d, 0x67)
    thp = 0x600000
    m.set(thp, (0x40000 << 12) | 0x80 | 0xE7, depth=2)  # 2M PSE leaf
    segs = [(0x400000, 0x900000, 1), (0x900000, 0xA00000, None), (0xA00000, 0xB00000, 2)]
    ents = _walk(m, segs)
    _check_cover(ents, 0x400000, 0xB00000)
    assert [(e.type, e.vma) for e in ents] == [
        (PtType.NONE, 1), (PtType.FOLIO, 1), (PtType.NONE, 1), (PtType.NONE, None), (PtType.NONE, 2)]
    leaf = ents[1]
    assert leaf.level == PtLevel.PMD and leaf.nr_pages == 512 and leaf.pfn == 0x40000
    # A VMA boundary inside a leaf (only a corrupt or racing table has that) cuts it; PFNs follow.
    ents = _walk(m, [(0x600000, 0x700000, 1), (0x700000, 0x800000, 2)])
    assert [(e.vma, e.pfn, e.nr_pages) for e in ents] == [(1, 0x40000, 256), (2, 0x40100, 256)]
    # A range starting in the middle of the leaf gets the matching PFN.
    ents = _walk(m, [(thp + 0x3000, thp + 0x5000, None)])
    assert len(ents) == 1 and ents[0].pfn == 0x40003 and ents[0].nr_pages == 2


def test_walk_unreadable_table_is_error_and_continues():
    d = X86_64Decoder()
    m = _mem(d, 0x67)
    m.set(0x400000, (0x1234 << 12) | X86_PTE)
    m.set(0x40000000, (0x4321 << 12) | X86_PTE)
    bad = m.walk_down(m.root, 0x400000, 3)
    m.unreadable.add(bad)
    ents = _walk(m, [(0, 0x80000000, None)])
    _check_cover(ents, 0, 0x80000000)
    errs = [e for e in ents if e.type == PtType.ERROR]
    assert len(errs) == 1 and errs[0].table == bad and errs[0].level == PtLevel.PTE
    assert (errs[0].start, errs[0].end) == (0x400000, 0x600000)  # the PMD slot whose table is unreadable
    assert any(e.type == PtType.FOLIO and e.pfn == 0x4321 for e in ents)


def test_walk_reads_each_table_once():
    d = X86_64Decoder()
    m = _mem(d, 0x67)
    for i in range(0, 512, 2):
        m.set(0x400000 + i * 4096, ((0x100 + i) << 12) | X86_PTE)
    segs = [(0x400000 + i * 4096, 0x400000 + (i + 1) * 4096, i) for i in range(512)]
    before = m.reads
    ents = _walk(m, segs)
    assert m.reads - before == 4  # PGD, PUD, PMD, PTE tables, each once across 512 VMAs
    assert sum(e.type == PtType.FOLIO for e in ents) == 256


def test_walk_arm64_cont_pte_and_cont_pmd():
    d = AArch64Decoder(page_shift=12, va_bits=48)
    m = _mem(d, 0x3)
    base = 0x7F0000000000
    attrs = 0x3 | (1 << 52) | (1 << 51) | (1 << 7) | (1 << 54) | (1 << 53) | (1 << 6)
    # Two 64K hugetlb pages (cont-PTE blocks) with consecutive PFNs but different folios;
    # only one entry of the first block is young.
    for i in range(32):
        v = ((0x2000 + i) << 12) | attrs
        if i == 3:
            v |= 1 << 10
        m.set(base + i * 4096, v)
    runs = lambda pfn, n: [16] * (n // 16) + ([n % 16] if n % 16 else [])  # noqa: E731
    ents = _walk(m, [(base, base + 32 * 4096, 7)], folio_runs_fn=runs)
    assert [(e.type, e.level, e.cont, e.nr_pages) for e in ents] == [
        (PtType.FOLIO, PtLevel.PTE, True, 16), (PtType.FOLIO, PtLevel.PTE, True, 16)]
    assert ents[0].young and not ents[1].young  # ORed over the block, as ptep_get() reads it
    assert not (ents[0].raws[0] & (1 << 10))  # raws are the stored values
    # A cont-PMD block (16 x 2M = 32M hugetlb) is one entry.
    hb = 0x7E0000000000
    for i in range(16):
        m.set(hb + i * (1 << 21), ((0x40000 + i * 512) << 12) | 0x1 | (1 << 52) | (1 << 10), depth=2)
    ents = _walk(m, [(hb, hb + (32 << 20), None)])
    assert [(e.type, e.level, e.cont, e.size) for e in ents] == [(PtType.FOLIO, PtLevel.PMD, True, 32 << 20)]
    assert ents[0].pfn == 0x40000


def test_walk_markers_batched():
    d = AArch64Decoder()
    m = _mem(d, 0x3)
    st = make_swap_types(27, True, True)
    base = 0x10000000
    for i in range(24, 64):
        m.set(base + i * 4096, make_swp(d, 31, 1))  # uffd-wp markers
    for i in range(8, 12):
        m.set(base + i * 4096, make_swp(d, 31, 4))  # guard markers
    ents = _walk(m, [(base, base + 64 * 4096, None)], swap_types=st)
    got = [(e.type, e.kind, e.nr_pages) for e in ents if e.type != PtType.NONE]
    assert got == [(PtType.MARKER, "guard", 4), (PtType.MARKER, "uffd_wp", 40)]
    assert ents[-1].uffd_wp


def test_check_range_errors():
    d = X86_64Decoder()
    with pytest.raises(ArgumentError, match="start .* not page aligned"):
        _check_range(d, 0x1001, 0x3000)
    with pytest.raises(ArgumentError, match="end .* not page aligned"):
        _check_range(d, 0x1000, 0x3001)
    with pytest.raises(ArgumentError, match="not below end"):
        _check_range(d, 0x3000, 0x3000)
    with pytest.raises(ArgumentError, match="beyond the user address space"):
        _check_range(d, 0x1000, 1 << 50)
    with pytest.raises(ArgumentError, match="outside the user"):
        _check_range(d, 1 << 60, (1 << 60) + 0x1000)
    _check_range(d, (1 << 64) - (1 << 47), 1 << 64)
    # Non-canonical on 4-level paging (the hole between the halves).
    with pytest.raises(ArgumentError, match="outside the user"):
        _check_range(d, 1 << 47, (1 << 47) + 0x1000)
    with pytest.raises(ArgumentError, match="outside the user"):
        _check_range(d, (1 << 64) - (1 << 48), 1 << 64)


def _looped():
    """Tables with a PMD slot pointing back at the PUD table and a PUD slot at the root: (memory, PUD table)."""
    d = X86_64Decoder()
    m = _mem(d, 0x67)
    m.set(0x400000, (0x1234 << 12) | X86_PTE)
    pud = m.walk_down(m.root, 0x400000, 1)
    pmd = m.walk_down(m.root, 0x400000, 2)
    m.tables[pmd][5] = pud | 0x67
    m.tables[pud][3] = m.root | 0x67
    return m, pud


def _one_pte_table_everywhere():
    """Tables with every PMD slot from 3 on pointing at one PTE table (no kernel does that)."""
    m = _mem(X86_64Decoder(), 0x67)
    m.set(0x400000, (0x1234 << 12) | X86_PTE)
    pmd = m.walk_down(m.root, 0x400000, 2)
    pte = m.walk_down(m.root, 0x400000, 3)
    for i in range(3, 512):
        m.tables[pmd][i] = pte | 0x67
    return m


def test_walk_table_loops_are_errors():
    # A PMD slot pointing back at the PUD table and a PUD slot at the root:
    # each one ERROR at the level of the table it claims to be.
    m, pud = _looped()
    ents = _walk(m, [(0, 0x100000000, None)])
    _check_cover(ents, 0, 0x100000000)
    errs = [(e.level, e.start, e.end, e.table) for e in ents if e.type == PtType.ERROR]
    assert errs == [
        (PtLevel.PTE, 5 << 21, 6 << 21, pud),
        (PtLevel.PMD, 3 << 30, 4 << 30, m.root),
    ], errs
    assert all("loop" in e.reason for e in ents if e.type == PtType.ERROR)
    assert any(e.type == PtType.FOLIO and e.pfn == 0x1234 for e in ents)


def test_walk_table_in_two_places_and_budget():
    d = X86_64Decoder()
    m = _one_pte_table_everywhere()
    ents = _walk(m, [(0, 0x40000000, None)], unique_tables=True)
    _check_cover(ents, 0, 0x40000000)
    errs = [e for e in ents if e.type == PtType.ERROR]
    assert len(errs) == 509 and all("already the PTE table" in e.reason for e in errs)
    # Without the uniqueness rule the budget still bounds the walk.
    ents = _walk(m, [(0, 0x40000000, None)], max_tables=10)
    errs = [e for e in ents if e.type == PtType.ERROR]
    assert errs and all("page tables" in e.reason for e in errs)
    # hugetlb may share PMD tables between addresses: not an error.
    m2 = _mem(d, 0x67)
    m2.set(0x40000000, (0x200 << 12) | X86_PTE | 0x80, depth=2)
    pud = m2.walk_down(m2.root, 0x40000000, 1)
    m2.tables[pud][2] = m2.tables[pud][1]
    ents = _walk(m2, [(0, 0x100000000, None)], unique_tables=True)
    assert not [e for e in ents if e.type == PtType.ERROR]


def test_x86_pse_on_pgd_is_bad():
    d = X86_64Decoder()
    m = _mem(d, 0x67)
    m.set(0x400000, (0x1234 << 12) | X86_PTE)
    m.tables[m.root][0] |= 0x80
    ents = _walk(m, [(0, 1 << 39, None)])
    assert [(e.type, e.level) for e in ents] == [(PtType.ERROR, PtLevel.PGD)]


# ---------------------------------------------------------------------------------------------------------
# The fast paths (whole-table runs compared as big integers, C-level slot scans) against the plain rules


def _slow_run_end(vals, i, i1, step):
    j = i + 1
    while j < i1 and vals[j] == vals[i] + (j - i) * step:
        j += 1
    return j


def test_run_end_matches_slot_by_slot():
    import random

    rng = random.Random(6)
    top = (1 << 64) - 1
    for _ in range(300):
        step = rng.choice((4096, -4096, 0, -512, 1 << 14, 1 << 16))
        m = rng.randint(2, 600)
        v = rng.choice((rng.randrange(1 << 63), top - rng.randrange(3) * abs(step or 1), rng.randrange(8192)))
        vals = [(v + k * step) & top for k in range(m)]  # wraps past 2**64 / below 0 like u64 slots
        if rng.random() < 0.7:
            vals[rng.randrange(1, m)] ^= 1 << rng.randrange(64)
        i = rng.randrange(m - 1)
        assert _run_end(vals, i, m, step) == _slow_run_end(vals, i, m, step), (hex(v), step, m, i)


def test_nonnone_slots_x86_accessed_dirty_only():
    d = X86_64Decoder()
    mask = d.none_masks[-1]
    assert d.none_values[-1] == (0, 0x20, 0x40, 0x60)
    vals = [X86_PTE | (5 << 12)] * 512
    assert _nonnone_slots(vals, 0, 512, mask, 0x60) == range(0, 512)
    vals[7] = 0x60
    vals[9] = 0
    vals[11] = 0x25  # present, PFN 0: not none, but below none_max (the slow scan decides)
    got = _nonnone_slots(vals, 5, 20, mask, 0x60)
    assert list(got) == [i for i in range(5, 20) if vals[i] & mask]
    assert AArch64Decoder().none_values[-1] == (0,)


def _full_table_walks(dec, table_bits, values, **kw):
    m = _mem(dec, table_bits)
    base = 0x7F0000000000
    for i, v in enumerate(values):
        if v:
            m.set(base + i * dec.page_size, v)
    return m, base, _walk(m, [(base, base + len(values) * dec.page_size, 0x1)], **kw)


@pytest.mark.parametrize("step_sign", (1, -1))
def test_whole_table_run_fast_path_equals_slow_path(step_sign):
    d = X86_64Decoder()
    if step_sign > 0:
        vals = [((0x12345 + i) << 12) | X86_PTE for i in range(512)]
    else:  # PROT_NONE: the PFN is stored inverted, the raw value goes down
        vals = [((~((0x12345 + i) << 12)) & ((1 << 52) - 1) & ~0xFFF) | 0x120 for i in range(512)]
    m, base, ents = _full_table_walks(d, 0x67, vals)
    assert [(e.type, e.nr_pages, e.pfn, e.start, e.raw) for e in ents] == [
        (PtType.FOLIO, 512, 0x12345, base, vals[0])]
    assert ents[0].raws == tuple(vals) and ents[0].slot == 0
    # Cut by folio (order-0 everywhere): one entry per page, as without batching.
    ones = lambda pfn, n: [1] * n  # noqa: E731
    per_folio = _walk(m, [(base, base + 512 * 4096, 0x1)], folio_runs_fn=ones)
    unbatched = _walk(m, [(base, base + 512 * 4096, 0x1)], batch=False)
    assert len(per_folio) == 512
    assert [tuple(e[:12]) for e in per_folio] == [tuple(e[:12]) for e in unbatched]
    assert [e.raws for e in per_folio] == [(v,) for v in vals]
    # A part of the table (the VMA ends inside it): same entries, clipped.
    ents = _walk(m, [(base + 100 * 4096, base + 300 * 4096, 0x1)])
    assert [(e.nr_pages, e.pfn, e.raw) for e in ents] == [(200, 0x12345 + 100, vals[100])]


def test_whole_table_almost_run_takes_slow_path():
    d = X86_64Decoder()
    vals = [((0x5000 + i) << 12) | X86_PTE for i in range(512)]
    vals[511] &= ~0x40  # last page clean
    _, base, ents = _full_table_walks(d, 0x67, vals)
    assert [(e.nr_pages, e.dirty) for e in ents] == [(511, True), (1, False)]
    vals[511] = 0
    _, base, ents = _full_table_walks(d, 0x67, vals)
    assert [(e.type, e.nr_pages) for e in ents] == [(PtType.FOLIO, 511), (PtType.NONE, 1)]


def test_whole_table_run_arm64_cont_not_fast_path():
    d = AArch64Decoder(page_shift=12, va_bits=48)
    attrs = 0x3 | (1 << 52) | (1 << 51) | (1 << 7) | (1 << 54) | (1 << 53) | (1 << 6)
    vals = [((0x2000 + i) << 12) | attrs for i in range(512)]
    vals[17] |= 1 << 10  # young in the second block only: ORed over that block
    _, base, ents = _full_table_walks(d, 0x3, vals)
    assert [(e.nr_pages, e.young) for e in ents] == [(16, False), (16, True), (480, False)]


# ---------------------------------------------------------------------------------------------------------
# Order-0 page classes (smaps' bulk accounting) against page-by-page grouping


class _FakeProg:
    """What read_struct_pages() and FolioReader use of a program: its cache and read()."""

    def __init__(self, lay, memmap, highest):
        self.cache = {"ptwalk_page_layout": lay, "ptwalk_highest_memmap_pfn": highest}
        self.memmap = memmap

    def read(self, addr, n, physical=False):
        off = addr - self.cache["ptwalk_page_layout"].vmemmap
        return self.memmap[off : off + n]


def _struct_pages(lay, pages):
    import struct

    buf = bytearray(lay.size * len(pages))
    for i, (flags, mapping, ref, mc, info) in enumerate(pages):
        o = i * lay.size
        struct.pack_into("<Q", buf, o + lay.flags, flags)
        struct.pack_into("<Q", buf, o + lay.mapping, mapping)
        struct.pack_into("<i", buf, o + lay.refcount, ref)
        struct.pack_into("<i", buf, o + lay.mapcount, mc)
        struct.pack_into("<Q", buf, o + lay.info, info)
    return bytes(buf)


def test_order0_classes_match_page_by_page():
    import random

    from drgn_ptwalk.page import FolioReader, PageLayout

    pg = {"referenced": 2, "dirty": 4, "swapbacked": 19, "young": 23}
    lay = PageLayout(vmemmap=0xFFFFEA0000000000, size=64, flags=0, refcount=52, mapcount=48, mapping=24, info=8,
                     info_is_mask=False, fake_heads=True, pg_head=6, order_offset=64 + 48, pg=pg)
    rng = random.Random(7)
    n = 512
    for case in range(40):
        alike = case % 2 == 0
        pages = []
        for _ in range(n):
            if alike or rng.random() < 0.8:
                flags, mapping, ref, mc = (1 << 19) | (1 << 5) | (3 << 56), 0xFFFF888001234561, 1, 0
            else:
                flags = rng.choice((0, 1 << 2, 1 << 4, 1 << 23, 1 << 8)) | (rng.randrange(1 << 20) << 40)
                mapping = rng.choice((0xFFFF888001234561, 0xFFFF888001234563, 0xFFFF888001234000))
                ref, mc = rng.choice(((1, 0), (2, 0), (3, 1), (2, -1), (1, -0x10000081)))
            pages.append((flags | rng.choice((0, 1 << 8, 1 << 9)), mapping, ref, mc, 0))  # noise: active/workingset
        pfn0 = 0x1000
        prog = _FakeProg(lay, bytes(pfn0 * 64) + _struct_pages(lay, pages), pfn0 + n + 5)
        fr = FolioReader(prog)
        mask = fr.flag_mask("swapbacked", "dirty", "young", "referenced", "no_such_flag")
        assert mask == (1 << 19) | (1 << 4) | (1 << 23) | (1 << 2)
        got = fr.order0_classes(pfn0, n, mask)
        want = {}
        for i, (flags, mapping, ref, mc, _) in enumerate(pages):
            key = (flags & mask, mapping & 3, ref, mc)
            if key not in want:
                want[key] = [pfn0 + i, 0]
            want[key][1] += 1
        assert sorted(got) == sorted((k, f, c) for k, (f, c) in want.items())
        assert (len(got) == 1) == (len(want) == 1)
        assert sorted(fr._classes_slow(prog.read(lay.vmemmap + pfn0 * 64, n * 64), pfn0, n, mask)) == sorted(got)
        # A compound page in the run: no classes, the caller splits by folio.
        pages[100] = pages[100][:4] + (lay.vmemmap + 99 * 64 + 1,)
        prog.memmap = bytes(pfn0 * 64) + _struct_pages(lay, pages)
        assert fr.order0_classes(pfn0, n, mask) is None


@pytest.mark.parametrize("dec", [
    AArch64Decoder(page_shift=12, va_bits=48), AArch64Decoder(page_shift=12, va_bits=52),
    AArch64Decoder(page_shift=14, va_bits=48), AArch64Decoder(page_shift=16, va_bits=52),
    AArch64Decoder(page_shift=12, va_bits=48, new_layout=False), X86_64Decoder(), X86_64Decoder(l5=True),
], ids=lambda d: type(d).__name__)
def test_pte_decode_is_kind_pfn_step(dec):
    import random

    from drgn_ptwalk.arch import ArchDecoder

    rng = random.Random(11)
    depth = len(dec.levels) - 1
    bits = (0, 1, 2, 3, 6, 7, 8, 10, 11, 51, 52, 54, 55, 56, 58, 59, 63)
    for _ in range(4000):
        v = rng.randrange(1 << 64) if rng.random() < 0.3 else rng.randrange(1 << 40) << 12
        for b in bits:
            if rng.random() < 0.3:
                v ^= 1 << b
        got = dec.pte_decode(v)
        want = ArchDecoder.pte_decode(dec, v)  # kind() + leaf_pfn() + leaf_step()
        if want[0] in (NONE, SWAP, BAD):
            assert got[0] == want[0], hex(v)
        else:
            assert got == want, hex(v)
        assert dec.kind(v, depth) == want[0]


def _slot_reader(m):
    """``read_table`` over *m*'s tables for reads of part of a table (iter_tables reads the slots asked)."""
    def read(addr, n, physical):
        start = max(t for t in m.tables if t <= addr)
        i = (addr - start) // 8
        assert i + n <= len(m.tables[start])
        return tuple(m.tables[start][i : i + n])

    return read


def test_iter_tables_order_and_range():
    from drgn_ptwalk.walk import iter_tables

    d = X86_64Decoder()
    m = _mem(d, 0x67)
    for a in (0x400000, 0x7F0000000000, 0x7F0000200000):
        m.set(a, (0x1234 << 12) | X86_PTE)
    got = [(t.level, t.base, t.error) for t in iter_tables(d, _slot_reader(m), m.root, True, 0, 1 << 47)]
    assert got == [(PtLevel.PGD, 0, None),
                   (PtLevel.PUD, 0, None), (PtLevel.PMD, 0, None), (PtLevel.PTE, 2 << 21, None),
                   (PtLevel.PUD, 0x7F0000000000 & ~((1 << 39) - 1), None),
                   (PtLevel.PMD, 0x7F0000000000 & ~((1 << 30) - 1), None),
                   (PtLevel.PTE, 0x7F0000000000, None), (PtLevel.PTE, 0x7F0000200000, None)], got
    # only the tables on the way to [lo, hi)
    got = [(t.level, t.base) for t in iter_tables(d, _slot_reader(m), m.root, True, 0x7F0000200000,
                                                  0x7F0000200001)]
    assert [lvl for lvl, _ in got] == [PtLevel.PGD, PtLevel.PUD, PtLevel.PMD, PtLevel.PTE]
    assert got[-1][1] == 0x7F0000200000


def test_iter_tables_carries_the_walker_guards():
    from drgn_ptwalk.walk import TableGuard, iter_tables

    # a loop: met once, with its reason, and not gone down
    d = X86_64Decoder()
    m, pud = _looped()
    tables = list(iter_tables(d, _slot_reader(m), m.root, True, 0, 1 << 32))
    errs = [(t.level, t.base, t.addr) for t in tables if t.error is not None]
    assert errs == [(PtLevel.PTE, 5 << 21, pud), (PtLevel.PMD, 3 << 30, m.root)], errs
    assert all("loop" in t.error for t in tables if t.error is not None)
    # one PTE table in 509 places: refused where the walker refuses it, and the budget bounds the rest
    m = _one_pte_table_everywhere()
    guard = TableGuard(d.levels, m.root, None, True)
    tables = list(iter_tables(d, _slot_reader(m), m.root, True, 0, 1 << 30, guard=guard))
    errs = [t for t in tables if t.error is not None]
    assert len(errs) == 509 and all("already the PTE table" in t.error for t in errs)
    guard = TableGuard(d.levels, m.root, 10, False)
    tables = list(iter_tables(d, _slot_reader(m), m.root, True, 0, 1 << 30, guard=guard))
    assert len([t for t in tables if t.error is None]) == 1 + 10
    assert all("page tables" in t.error for t in tables if t.error is not None)
