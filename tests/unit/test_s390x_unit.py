# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests of the s390x decoder on synthetic entries (arch/s390/include/asm/pgtable.h,
arch/s390/mm/hugetlbpage.c): per-mm depth from the ASCE, exact-value empty entries, present PTEs with
the hardware invalid bit, swap entries in the PTE and RSTE formats, large segment/region-3 leaves; a
walk over synthetic big-endian tables; and ``struct page`` words of a big-endian kernel read as a
little-endian one's (the physical side). The truth tests (tests/test_walk_truth.py, tests/test_kpage.py)
check it against real dumps."""

import struct

import drgn
import pytest

from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE
from drgn_ptwalk.arch.s390x import S390xDecoder
from drgn_ptwalk.entry import PtFlag, PtLevel, PtType
from drgn_ptwalk.walk import make_reader, walk_tables
from encode import make_swp

# PTE bits.
P_PRESENT, P_SOFT_DIRTY, P_YOUNG, P_DIRTY, P_READ, P_WRITE, P_SPECIAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40
P_NOEXEC, P_PROTECT, P_INVALID, P_LARGE = 0x100, 0x200, 0x400, 0x800
# RSTE bits.
R_PRESENT, R_SOFT_DIRTY, R_INVALID, R_COMM, R_LARGE = 0x1, 0x2, 0x20, 0x10, 0x400
R_YOUNG, R_DIRTY, R_READ, R_WRITE = 0x1000, 0x2000, 0x4000, 0x8000
R3_TYPE, R3_TABLE = 0x04, 0x07  # _REGION3_ENTRY: TYPE_R3 | LENGTH
SEG_EMPTY, R3_EMPTY, R2_EMPTY, R1_EMPTY = 0x20, 0x24, 0x28, 0x2C


def _levels(d):
    return [(lvl.name, shift, n) for lvl, shift, n in d.levels]


def test_geometry_by_asce_type():
    # init_new_context(): a new mm has an R3 root (3 levels, 4 TiB); crst_table_upgrade() adds R2, R1.
    d = S390xDecoder()
    assert _levels(d) == [("PUD", 31, 2048), ("PMD", 20, 2048), ("PTE", 12, 256)]
    assert d.user_range() == (0, 1 << 42)
    assert _levels(d.variant(0x08))[0] == ("P4D", 42, 2048) and d.variant(0x08).va_bits == 53
    assert _levels(d.variant(0x0C))[:2] == [("PGD", 53, 2048), ("P4D", 42, 2048)]
    assert d.variant(0x0C).user_range() == (0, 1 << 64)
    assert _levels(d.variant(0x00)) == [("PMD", 20, 2048), ("PTE", 12, 256)]
    # Variants are made once and share the flag cache.
    assert d.variant(0x08) is d.variant(0x08).variant(0x08) and d.variant(0x08).flag_cache is d.flag_cache
    assert d.none_values == ((R3_EMPTY,), (SEG_EMPTY,), (P_INVALID,))
    with pytest.raises(ValueError):
        S390xDecoder(asce_type=0x10)


class _Ctx:
    def __init__(self, asce):
        self.asce = drgn.Object(_s390x_prog(), "unsigned long", asce)


class _Mm:
    def __init__(self, asce):
        self.context = _Ctx(asce)


def test_for_mm_and_root_from_asce():
    d = S390xDecoder()
    # __pa(pgd) | _ASCE_TABLE_LENGTH | _ASCE_USER_BITS | type.
    mm = _Mm(0x12344000 | 0x3 | 0x1C0 | 0x08)
    v = d.for_mm(mm)
    assert v.asce_type == 0x08 and v.levels[0][0] == PtLevel.P4D
    assert v.root(mm) == (0x12344000, True)
    assert d.for_mm(_Mm(0x7000 | 0x04)) is d


def test_pte_none_present_invalid():
    d = S390xDecoder()
    # pte_none(): exactly _PAGE_INVALID; 0 is not none to the kernel (a swap entry).
    assert d.kind(P_INVALID, 2) == NONE and d.pte_decode(P_INVALID)[0] == NONE
    assert d.kind(0, 2) == SWAP
    # A present, old, read-write PTE: the hardware invalid bit set with _PAGE_PRESENT
    # (pte_mkold()); still pte_present().
    v = (0x1234 << 12) | P_PRESENT | P_READ | P_WRITE | P_INVALID | P_PROTECT
    assert d.kind(v, 2) == LEAF and d.pte_decode(v) == (LEAF, 0x1234, 4096)
    f = PtFlag(d.leaf_flags(v, PtLevel.PTE))
    assert PtFlag.WRITE in f and PtFlag.YOUNG not in f and PtFlag.PROTNONE not in f
    young = (0x1234 << 12) | P_PRESENT | P_READ | P_WRITE | P_YOUNG | P_DIRTY | P_SOFT_DIRTY
    f = PtFlag(d.leaf_flags(young, PtLevel.PTE))
    assert f == PtFlag.PRESENT | PtFlag.WRITE | PtFlag.YOUNG | PtFlag.DIRTY | PtFlag.SOFT_DIRTY


def test_pte_protnone_special():
    d = S390xDecoder()
    # __PAGE_NONE: present, invalid, protected, no read (pte_protnone(); PROT_NONE and NUMA hints).
    v = (0x55 << 12) | P_PRESENT | P_INVALID | P_PROTECT
    assert d.kind(v, 2) == LEAF and PtFlag.PROTNONE in PtFlag(d.leaf_flags(v, PtLevel.PTE))
    s = (0x56 << 12) | P_PRESENT | P_READ | P_SPECIAL
    assert s & d.special_mask and PtFlag.SPECIAL in PtFlag(d.leaf_flags(s, PtLevel.PTE))


def test_pte_swap():
    d = S390xDecoder()
    v = make_swp(d, 3, 0x12345, P_SOFT_DIRTY | P_LARGE)
    assert d.kind(v, 2) == SWAP and d.pte_decode(v)[0] == SWAP
    assert d.swp(v) == (3, 0x12345) and d.swp_at(v, PtLevel.PTE) == (3, 0x12345)
    assert d.swp(v + d.swap_step) == (3, 0x12346)
    assert PtFlag(d.swap_flags(v, PtLevel.PTE)) == PtFlag.SOFT_DIRTY | PtFlag.EXCLUSIVE
    # Type 31 (the top of MAX_SWAPFILES_SHIFT's range: hwpoison/migration/markers live there).
    assert d.swp(make_swp(d, 31, 1)) == (31, 1)


def test_segment_entries():
    d = S390xDecoder()
    assert d.kind(SEG_EMPTY, 1) == NONE
    # pmd_populate(): the 2 KiB page table's origin | _SEGMENT_ENTRY (present).
    table = 0x7654800 | R_PRESENT
    assert d.kind(table, 1) == TABLE and d.table_addr(table) == 0x7654800
    assert d.kind(table | 0x40, 1) == BAD  # outside _SEGMENT_ENTRY_BITS
    assert d.kind(table | R3_TYPE, 1) == BAD  # a segment entry with a region type
    # A large (1 MiB) leaf: THP or hugetlb, old (hardware invalid) and young.
    leaf = (0x300 << 12) | R_PRESENT | R_LARGE | R_READ | R_WRITE | R_DIRTY | R_SOFT_DIRTY
    assert d.kind(leaf, 1) == LEAF and d.leaf_pfn(leaf, 20) == 0x300
    assert d.kind(leaf | R_INVALID, 1) == LEAF  # pmdp_invalidate(): still present
    f = PtFlag(d.leaf_flags(leaf, PtLevel.PMD))
    assert f == PtFlag.PRESENT | PtFlag.WRITE | PtFlag.DIRTY | PtFlag.SOFT_DIRTY
    assert PtFlag.YOUNG in PtFlag(d.leaf_flags(leaf | R_YOUNG, PtLevel.PMD))
    assert PtFlag.PROTNONE in PtFlag(d.leaf_flags(leaf & ~R_READ, PtLevel.PMD))
    # mk_swap_rste(): _RST_ENTRY_INVALID | _RST_ENTRY_COMM, type in bits 6-10, offset from bit 12.
    swp = R_INVALID | R_COMM | (7 << 6) | (0x4000 << 12) | R_SOFT_DIRTY
    assert d.kind(swp, 1) == SWAP
    assert d.swp_at(swp, PtLevel.PMD) == (7, 0x4000)
    assert PtFlag(d.swap_flags(swp, PtLevel.PMD)) == PtFlag.SOFT_DIRTY  # no exclusive bit in RSTEs


def test_region3_entries():
    d = S390xDecoder()
    assert d.kind(R3_EMPTY, 0) == NONE
    table = 0x1238000 | R3_TABLE
    assert d.kind(table, 0) == TABLE and d.table_addr(table) == 0x1238000
    assert d.kind(0x1238000 | 0x03, 0) == BAD  # no R3 type
    # A 2 GiB leaf (EDAT-2 hugetlb): _REGION3_ENTRY_ORIGIN_LARGE.
    leaf = (1 << 31) | 0x1234000 | R3_TYPE | R_PRESENT | R_LARGE | R_READ | R_YOUNG
    assert d.kind(leaf, 0) == LEAF and d.leaf_pfn(leaf, 31) == (1 << 31) >> 12
    swp = R_INVALID | R_COMM | R3_TYPE | (30 << 6) | (0x99 << 12)
    assert d.kind(swp, 0) == SWAP and d.swp_at(swp, PtLevel.PUD) == (30, 0x99)


def test_region1_region2_entries():
    d = S390xDecoder().variant(0x0C)
    assert d.kind(R1_EMPTY, 0) == NONE and d.kind(R2_EMPTY, 1) == NONE
    assert d.kind(0x4000000 | 0x0F, 0) == TABLE and d.kind(0x4000000 | 0x0B, 1) == TABLE
    assert d.kind(0x4000000 | 0x0B, 0) == BAD  # an R2 entry in the R1 table
    assert d.kind(0x4000000 | 0x0F | R_LARGE, 0) == BAD  # no region-1 leaves


def test_reader_converts_big_endian_entries():
    class _Prog:
        def read(self, addr, size, physical=False):
            return mem[addr : addr + size]

    d = S390xDecoder()
    vals = [(i << 12) | P_PRESENT | P_READ for i in range(256)]
    mem = struct.pack(">256Q", *vals)
    read = make_reader(_Prog(), d)  # type: ignore[arg-type]
    assert struct.unpack("<256Q", read(0, 256, True)) == tuple(vals)


def test_walk_synthetic_tables():
    # An R3 root -> a segment table -> a 2 KiB page table, as big-endian memory read by the reader.
    d = S390xDecoder()
    r3, seg, pt, pt2 = 0x10000, 0x20000, 0x30000, 0x30800  # two page tables in one page
    mem = bytearray(0x40000)

    def put(table, idx, v):
        struct.pack_into(">Q", mem, table + idx * 8, v)

    for i in range(2048):
        put(r3, i, R3_EMPTY)
        put(seg, i, SEG_EMPTY)
    for i in range(256):
        put(pt, i, P_INVALID)
        put(pt2, i, P_INVALID)
    base = 0x80000000  # R3 slot 1, segment slot 0
    put(r3, 1, seg | R3_TABLE)
    put(seg, 0, pt | R_PRESENT)
    put(seg, 1, pt2 | R_PRESENT)
    put(seg, 2, (0x500 << 12) | R_PRESENT | R_LARGE | R_READ | R_WRITE | R_YOUNG | R_DIRTY)
    put(seg, 3, R_INVALID | R_COMM | (2 << 6) | (0x77 << 12))
    for i in range(4):  # present, old (hardware invalid) and young
        put(pt, i, ((0x100 + i) << 12) | P_PRESENT | P_READ | (P_INVALID if i % 2 else P_YOUNG))
    put(pt, 10, make_swp(d, 0, 0x40, P_LARGE))
    put(pt, 11, make_swp(d, 0, 0x41, P_LARGE))
    put(pt2, 255, (0x200 << 12) | P_PRESENT | P_READ | P_WRITE | P_DIRTY | P_YOUNG)

    class _Prog:
        def read(self, addr, size, physical=False):
            return bytes(mem[addr : addr + size])

    entries = list(walk_tables(d, make_reader(_Prog(), d), r3, True, [(base, base + (4 << 20), None)],
                               batch=False))
    pos = base
    for e in entries:
        assert e.start == pos
        pos = e.end
    assert pos == base + (4 << 20)
    got = [(e.type, e.level, e.start - base, e.end - base, e.pfn) for e in entries if e.type != PtType.NONE]
    assert got == [
        (PtType.FOLIO, PtLevel.PTE, 0x0000, 0x1000, 0x100),
        (PtType.FOLIO, PtLevel.PTE, 0x1000, 0x2000, 0x101),
        (PtType.FOLIO, PtLevel.PTE, 0x2000, 0x3000, 0x102),
        (PtType.FOLIO, PtLevel.PTE, 0x3000, 0x4000, 0x103),
        (PtType.SWAP, PtLevel.PTE, 0xA000, 0xB000, None),
        (PtType.SWAP, PtLevel.PTE, 0xB000, 0xC000, None),
        (PtType.FOLIO, PtLevel.PTE, 0x1FF000, 0x200000, 0x200),
        (PtType.FOLIO, PtLevel.PMD, 0x200000, 0x300000, 0x500),
        (PtType.SWAP, PtLevel.PMD, 0x300000, 0x400000, None),
    ]
    swaps = [(e.swap_type, e.swap_offset, e.flags) for e in entries if e.type == PtType.SWAP]
    assert swaps == [(0, 0x40, PtFlag.EXCLUSIVE), (0, 0x41, PtFlag.EXCLUSIVE), (2, 0x77, PtFlag(0))]
    # Batched: the swap run is one entry; the holes between stay coalesced.
    batched = list(walk_tables(d, make_reader(_Prog(), d), r3, True, [(base, base + (4 << 20), None)]))
    assert [(e.type, e.nr_pages) for e in batched if e.type == PtType.SWAP] == [(PtType.SWAP, 2), (PtType.SWAP, 256)]


def _s390x_prog():
    return drgn.Program(drgn.Platform(drgn.Architecture.S390X, drgn.PlatformFlags.IS_64_BIT))


def test_struct_pages_of_a_big_endian_kernel_read_as_little_endian():
    """The physical side reads a big-endian kernel's ``struct page`` array as a little-endian one's: each
    8-byte word swapped once per read, the 4-byte fields then at offset ^ 4 (page_layout() gives those
    offsets). Synthetic x86-64-shaped pages (flags, lru, mapping, index, private, _mapcount, _refcount,
    memcg_data) written big-endian and swapped must give the runs and run states the same pages give
    written little-endian."""
    import random
    from array import array

    from drgn_ptwalk.kpage.context import KpageContext
    from drgn_ptwalk.kpage.scan import keys_at, make_scan, run_starts
    from drgn_ptwalk.page import PageLayout, swap_words

    pg = {"locked": 0, "referenced": 2, "uptodate": 3, "dirty": 4, "lru": 5, "head": 6, "active": 8,
          "swapbacked": 17, "swapcache": 10, "slab": 9, "reserved": 13}
    lay = PageLayout(vmemmap=0, size=64, flags=0, refcount=52, mapcount=48, mapping=24, info=8, info_is_mask=False,
                     fake_heads=True, pg_head=pg["head"], order_offset=64)
    fields = dict.fromkeys(KpageContext._fields)
    fields.update(lay=lay, scheme="folio", private=40, memcg=56, pg=pg, pgty={})
    le_ctx = KpageContext(**fields)
    be_ctx = le_ctx._replace(lay=lay._replace(mapcount=48 ^ 4, refcount=52 ^ 4, swap_words=True))
    rnd = random.Random(390)
    # (flags, lru, mapping, index, private, _mapcount, _refcount, memcg_data) per page, changing in runs
    state = {"flags": 0x28, "mapping": 0x5001, "mapcount": 0, "refcount": 1, "memcg": 0x1000}
    rows = []
    for i in range(4096):
        if rnd.random() < 0.05:
            f = rnd.choice(list(state))
            state[f] = {"flags": lambda v: v ^ 1 << rnd.choice([0, 4, 5, 6, 8, 17, 30]),
                        "mapping": lambda v: rnd.choice([0, 0x5001, 0x5003, 0x6000]),
                        "mapcount": lambda v: rnd.choice([-1, 0, 2, -129, -0x10000000 - 1]),
                        "refcount": lambda v: rnd.choice([0, 1, 3, 0xFFFFFFFF]),
                        "memcg": lambda v: rnd.choice([0, 0x1000, 0xFFFF888000001000])}[f](state[f])
        rows.append((state["flags"], i, i, state["mapping"], i, i, state["mapcount"], state["refcount"],
                     state["memcg"]))
    le = b"".join(struct.pack("<QQQQQQiIQ", *r) for r in rows)
    be = b"".join(struct.pack(">QQQQQQiIQ", *r) for r in rows)
    swapped = swap_words(be)
    n = len(rows)
    known = [0, 100, 2000, n]
    covered = bytes(1 if 100 <= i < 2000 else 0 for i in range(n))
    le_starts = run_starts(le_ctx, make_scan(le_ctx), le, known, covered)
    assert run_starts(be_ctx, make_scan(be_ctx), swapped, known, covered) == le_starts
    assert len(le_starts) > 10

    def keys(ctx, buf):
        mv = memoryview(buf)
        q, w = mv.cast("Q"), mv.cast("I")
        cols = (q[0::8], mv[24::64], w[ctx.lay.refcount // 4 :: 16], w[ctx.lay.mapcount // 4 :: 16], q[7::8])
        return keys_at(cols, array("q", [0]) * n, bytearray(covered), le_starts[:-1])

    assert keys(be_ctx, swapped) == keys(le_ctx, le)


def test_byte_order_of_programs():
    from drgn_ptwalk._byteorder import byte_order, struct_order
    from drgn_ptwalk.program import _platform

    assert byte_order(_s390x_prog()) == "big" and struct_order(_s390x_prog()) == ">"
    assert not _platform("s390x").flags & drgn.PlatformFlags.IS_LITTLE_ENDIAN
    assert _platform("ppc64").flags & drgn.PlatformFlags.IS_LITTLE_ENDIAN
    le = drgn.Program(_platform("x86_64"))
    assert byte_order(le) == "little" and struct_order(le) == "<"


def test_nonnone_slots_exact_value():
    from drgn_ptwalk.walk import _nonnone_slots

    # s390x's empty PTE is 0x400, not 0: a mask test would take it for an entry, 0 for a hole.
    vals = [P_INVALID, 0x5000 | P_PRESENT, P_INVALID, 0, P_INVALID]
    assert list(_nonnone_slots(vals, 0, 5, (1 << 64) - 1, P_INVALID, P_INVALID)) == [1, 3]
    assert list(_nonnone_slots(vals, 1, 2, (1 << 64) - 1, P_INVALID, P_INVALID)) == [1]
