# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests of the LoongArch decoder on synthetic entries (arch/loongarch/include/asm/pgtable.h and
pgtable-bits.h of Linux 7.2) and of the kernel-address translation through synthetic tables. The truth
tests (tests/test_walk_truth.py, tests/test_procfs.py) check it against the loongarch64-7.2 dump."""

import struct

import drgn
import pytest

from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE
from drgn_ptwalk.arch.loongarch64 import CACHE_BASE, LoongArch64Decoder, _KernelTranslation
from drgn_ptwalk.entry import PtFlag, PtLevel

VALID, DIRTY, GLOBAL, HUGE, PRESENT, WRITE, MODIFIED, PROTNONE, SPECIAL = (
    1 << 0, 1 << 1, 1 << 6, 1 << 6, 1 << 7, 1 << 8, 1 << 9, 1 << 10, 1 << 11)
SWP_EXCLUSIVE, PRESENT_INVALID = 1 << 23, 1 << 60
# Debian's kernel: the invalid tables' direct-mapped addresses (nm vmlinux).
INVALID_PMD, INVALID_PTE = 0x9000000001B28000, 0x9000000001B24000


def _dec(**kw):
    return LoongArch64Decoder(page_shift=14, levels=3, invalid_tables=(INVALID_PMD, INVALID_PTE), **kw)


def test_geometry():
    # One page of 8-byte entries per table: PAGE_SHIFT - 3 bits a level; VA_BITS = PGDIR_SHIFT + PAGE_SHIFT - 3.
    d = _dec()
    assert [(lvl.name, s, n) for lvl, s, n in d.levels] == [("PGD", 36, 2048), ("PMD", 25, 2048), ("PTE", 14, 2048)]
    assert d.va_bits == 47 and d.kernel_range() == (0xFFFF800000000000, 1 << 64)
    d4 = LoongArch64Decoder(page_shift=12, levels=4, invalid_tables=(1 << 12, 2 << 12, 3 << 12))
    assert [lvl.name for lvl, _, _ in d4.levels] == ["PGD", "PUD", "PMD", "PTE"] and d4.va_bits == 48
    with pytest.raises(ValueError):
        LoongArch64Decoder(page_shift=14, levels=3, invalid_tables=(INVALID_PTE,))


def test_empty_entries():
    d = _dec()
    # pud_none()/pmd_none(): the invalid table of the level below; pte_none() ignores _PAGE_GLOBAL.
    assert d.kind(INVALID_PMD, 0) == NONE and d.kind(INVALID_PTE, 1) == NONE
    assert d.kind(INVALID_PTE, 0) == TABLE  # another table's address at the PGD level is a table
    assert d.none_values == ((INVALID_PMD,), (INVALID_PTE,), (0, GLOBAL))
    for v in (0, GLOBAL):
        assert d.kind(v, 2) == NONE and d.pte_decode(v)[0] == NONE


def test_tables():
    d = _dec()
    table = CACHE_BASE | 0x12344000
    assert d.kind(table, 0) == TABLE and d.kind(table, 1) == TABLE
    assert d.table_addr(table) == 0x12344000  # PHYSADDR(): DMW_PABITS (48) bits
    assert d.kind(table | 0x8, 1) == BAD  # pmd_bad(): bits below PAGE_SHIFT
    assert d.kind(table | HUGE, 0) == BAD  # no leaves above the PMD level


def test_pte_present():
    d = _dec()
    v = (0x1234 << 14) | PRESENT | VALID | WRITE | DIRTY | MODIFIED | (1 << 4) | (3 << 2)
    assert d.kind(v, 2) == LEAF and d.pte_decode(v) == (LEAF, 0x1234, 1 << 14)
    f = PtFlag(d.entry_flags(True, v, PtLevel.PTE))
    assert f == PtFlag.PRESENT | PtFlag.WRITE | PtFlag.DIRTY | PtFlag.YOUNG
    # pte_dirty(): _PAGE_MODIFIED alone (a write-protected dirty page).
    assert PtFlag.DIRTY in PtFlag(d.leaf_flags((v & ~(DIRTY | WRITE)), PtLevel.PTE))
    assert PtFlag.SPECIAL in PtFlag(d.leaf_flags(v | SPECIAL, PtLevel.PTE))
    # PAGE_NONE / a NUMA hint: _PAGE_PROTNONE without _PAGE_PRESENT is pte_present().
    pn = (0x55 << 14) | PROTNONE | (1 << 61)
    assert d.kind(pn, 2) == LEAF and d.pte_decode(pn)[1] == 0x55
    assert PtFlag(d.leaf_flags(pn, PtLevel.PTE)) == PtFlag.PRESENT | PtFlag.PROTNONE


def test_huge_pmd():
    d = _dec()
    v = (0x8000 << 14) | HUGE | PRESENT | VALID | WRITE | MODIFIED | (1 << 12)  # _PAGE_HGLOBAL at bit 12
    assert d.kind(v, 1) == LEAF and d.leaf_pfn(v, 25) == 0x8000
    # pmd_mkinvalid(): PRESENT_INVALID keeps pmd_present().
    inv = (v | PRESENT_INVALID) & ~(PRESENT | VALID | DIRTY | PROTNONE)
    assert d.kind(inv, 1) == LEAF
    # __swp_entry_to_pmd(): a swap entry with _PAGE_HUGE.
    swp = (5 << 16) | (0x777 << 24) | HUGE
    assert d.kind(swp, 1) == SWAP and d.swp(swp) == (5, 0x777)


def test_swap():
    d = _dec()
    # mk_swap_pte(): type in bits 16-22, offset from bit 24, the exclusive marker at bit 23.
    v = (0x7F << 16) | (0x123456 << 24)
    assert d.kind(v, 2) == SWAP and d.pte_decode(v)[0] == SWAP
    assert d.swp(v) == (0x7F, 0x123456) and d.swap_step == 1 << 24
    assert d.entry_flags(False, v, PtLevel.PTE) == 0
    assert PtFlag(d.entry_flags(False, v | SWP_EXCLUSIVE, PtLevel.PTE)) == PtFlag.EXCLUSIVE
    assert d.swp(v | SWP_EXCLUSIVE) == (0x7F, 0x123456)
    assert d.swp_pfn_mask == (1 << (48 - 14)) - 1


def _program(mem: bytearray) -> drgn.Program:
    prog = drgn.Program(drgn.Platform(drgn.Architecture.LOONGARCH64,
                                      drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN))

    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        return bytes(mem[offset:offset + count])

    prog.add_memory_segment(0, len(mem), read, True)
    return prog


def test_kernel_translation():
    # swapper_pg_dir at 0, a PMD table at 16K, a PTE table at 32K; a 4-page and a 32 MiB mapping.
    ps = 1 << 14
    mem = bytearray(ps * 8)
    va = 0xFFFFFEBFFE000000  # Debian's vmemmap
    pgd_i, pmd_i, pte_i = (va >> 36) & 2047, (va >> 25) & 2047, (va >> 14) & 2047
    struct.pack_into("<Q", mem, pgd_i * 8, CACHE_BASE | ps)
    struct.pack_into("<Q", mem, ps + pmd_i * 8, CACHE_BASE | 2 * ps)
    struct.pack_into("<Q", mem, 2 * ps + pte_i * 8, (4 << 14) | PRESENT | VALID | GLOBAL)
    struct.pack_into("<Q", mem, 2 * ps + (pte_i + 1) * 8, (6 << 14) | PRESENT | VALID | GLOBAL)
    mem[4 * ps:4 * ps + 4] = b"abcd"
    mem[6 * ps:6 * ps + 4] = b"efgh"
    huge = va - (1 << 25)  # (va is the last PMD slot of its table)
    struct.pack_into("<Q", mem, ps + (pmd_i - 1) * 8, HUGE | PRESENT | VALID)  # PFN 0: the whole memory
    prog = _program(mem)
    t = _KernelTranslation(prog, LoongArch64Decoder(prog, page_shift=14, levels=3, invalid_tables=(0, 0)), 0)
    assert t.leaf(va) == (va, ps, 4 * ps)
    # A read across two leaves whose frames are not adjacent.
    assert t.read(va + ps - 2, 6) == b"\0\0efgh"
    assert t.read(va, 4) == b"abcd"
    assert t.leaf(huge + 5) == (huge, 1 << 25, 0) and t.read(huge + 4 * ps, 4) == b"abcd"
    with pytest.raises(drgn.FaultError):
        t.leaf(va + 2 * ps)  # a none PTE
