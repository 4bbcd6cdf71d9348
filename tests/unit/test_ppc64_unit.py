# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests of the ppc64 radix decoder on synthetic entries (book3s/64/pgtable.h, radix.h), and the
big-endian table reader. The truth tests (tests/test_walk_truth.py) check it against real dumps."""

import struct

from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE
from drgn_ptwalk.arch.ppc64 import Ppc64RadixDecoder
from drgn_ptwalk.entry import PtFlag, PtLevel
from drgn_ptwalk.walk import make_reader
from encode import make_swp

PRESENT, PTE, INVALID = 1 << 63, 1 << 62, 1 << 61
READ, WRITE, EXEC = 4, 2, 1
DIRTY, ACCESSED, SOFT_DIRTY, SPECIAL = 0x80, 0x100, 0x200, 0x400


def _levels(d):
    return [(lvl.name, shift, n) for lvl, shift, n in d.levels]


def test_geometry():
    # radix-4k.h: 13/9/9/9 index bits; radix-64k.h: 13/9/9/5 (a 256-byte PTE table); 52-bit addresses.
    d4 = Ppc64RadixDecoder(page_shift=12)
    assert _levels(d4) == [("PGD", 39, 8192), ("PUD", 30, 512), ("PMD", 21, 512), ("PTE", 12, 512)]
    d64 = Ppc64RadixDecoder(page_shift=16)
    assert _levels(d64) == [("PGD", 39, 8192), ("PUD", 30, 512), ("PMD", 21, 512), ("PTE", 16, 32)]
    assert d4.va_bits == d64.va_bits == 52
    assert d64.kernel_range() == (0xC000000000000000, 0xC010000000000000)


def test_pte_present_and_invalid():
    d = Ppc64RadixDecoder(page_shift=16)
    v = PRESENT | PTE | (0x1234 << 16) | READ | WRITE | DIRTY | ACCESSED
    assert d.kind(v, 3) == LEAF and d.pte_decode(v) == (LEAF, 0x1234, 1 << 16)
    # ptep_set_access_flags() clears PRESENT and sets INVALID for a moment: still pte_present().
    inv = (v & ~PRESENT) | INVALID
    assert d.kind(inv, 3) == LEAF and d.pte_decode(inv)[1] == 0x1234
    flags = PtFlag(d.leaf_flags(v, PtLevel.PTE))
    assert PtFlag.WRITE in flags and PtFlag.DIRTY in flags and PtFlag.YOUNG in flags
    assert PtFlag.PROTNONE not in flags


def test_pte_none_ignores_r_c():
    d = Ppc64RadixDecoder(page_shift=12)
    # RADIX_PTE_NONE_MASK: R and C written back to a cleared entry leave it none.
    for v in (0, DIRTY, ACCESSED, DIRTY | ACCESSED):
        assert d.kind(v, 3) == NONE and d.pte_decode(v)[0] == NONE
    assert d.none_values[3] == (0, DIRTY, ACCESSED, DIRTY | ACCESSED)


def test_protnone():
    d = Ppc64RadixDecoder(page_shift=12)
    # PAGE_NONE / NUMA hint: hardware-valid, no R/W/X (pte_protnone()).
    v = PRESENT | PTE | ACCESSED | (0x55 << 12)
    assert d.kind(v, 3) == LEAF
    assert PtFlag.PROTNONE in PtFlag(d.leaf_flags(v, PtLevel.PTE))
    assert PtFlag.PROTNONE not in PtFlag(d.leaf_flags(v | READ, PtLevel.PTE))


def test_swap():
    for shift in (12, 16):
        d = Ppc64RadixDecoder(page_shift=shift)
        v = make_swp(d, 3, 0x12345, SOFT_DIRTY | 0x20)
        assert d.kind(v, 3) == SWAP and d.pte_decode(v)[0] == SWAP
        assert d.swp(v) == (3, 0x12345)
        assert d.swp(v + d.swap_step) == (3, 0x12346)
        f = PtFlag(d.swap_flags(v, PtLevel.PTE))
        assert f == PtFlag.SOFT_DIRTY | PtFlag.EXCLUSIVE


def test_pmd_pud_leaf_table_bad():
    d = Ppc64RadixDecoder(page_shift=12)
    leaf = PRESENT | PTE | READ | WRITE | ACCESSED | DIRTY | (0x200 << 12)
    assert d.kind(leaf, 2) == LEAF and d.leaf_pfn(leaf, 21) == 0x200
    assert d.kind(leaf, 1) == LEAF and d.leaf_pfn(leaf | (0x1FF << 12), 30) == 0
    # pmdp_invalidate(): INVALID without PRESENT is still pmd_present().
    assert d.kind((leaf & ~PRESENT) | INVALID, 2) == LEAF
    # A swap-format PMD (THP migration) or hugetlb PUD entry.
    assert d.kind(make_swp(d, 31, 0x4000), 2) == SWAP
    # pmd_populate(): the table's physical address | RADIX_PMD_VAL_BITS (PRESENT | index size).
    table = PRESENT | 0x7654000 | 9
    assert d.kind(table, 2) == TABLE and d.table_addr(table) == 0x7654000
    assert d.kind(table | 0x40, 2) == BAD  # RADIX_PMD_BAD_BITS
    assert d.kind(leaf, 0) == BAD  # no PGD leaves
    assert d.kind(0, 2) == NONE and d.kind(DIRTY, 2) == BAD  # pmd_none() tests every bit


def test_special():
    d = Ppc64RadixDecoder(page_shift=12)
    v = PRESENT | PTE | READ | SPECIAL | (1 << 12)
    assert v & d.special_mask and PtFlag.SPECIAL in PtFlag(d.leaf_flags(v, PtLevel.PTE))


class _Prog:
    def __init__(self, mem: bytes) -> None:
        self.mem = mem

    def read(self, addr: int, size: int, physical: bool = False) -> bytes:
        return self.mem[addr : addr + size]


def test_reader_converts_big_endian_entries():
    d = Ppc64RadixDecoder(page_shift=16)
    vals = [PRESENT | PTE | (i << 16) | READ for i in range(32)]
    read = make_reader(_Prog(struct.pack(">32Q", *vals)), d)  # type: ignore[arg-type]
    assert struct.unpack("<32Q", read(0, 32, True)) == tuple(vals)
