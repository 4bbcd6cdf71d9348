# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests of the LoongArch decoder on synthetic entries (arch/loongarch/include/asm/pgtable.h and
pgtable-bits.h of Linux 7.2) and of the kernel-address translation through synthetic tables. The truth
tests (tests/test_walk_truth.py, tests/test_procfs.py) check it against the loongarch64-7.2 dump."""

import struct

import drgn
import pytest

from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE
from drgn_ptwalk.arch.loongarch64 import (
    CACHE_BASE,
    LoongArch64Decoder,
    RelocationError,
    _KernelTranslation,
    relocate_module_debug,
)
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


def _rel_file(relocs) -> bytes:
    """A minimal ET_REL LoongArch file: .text, .debug_info (16 bytes) and .rela.debug_info with *relocs*
    ((offset, type, symbol, addend); symbol 1 is .text's section symbol, 2 .debug_info's)."""
    names = b"\0.shstrtab\0.symtab\0.text\0.debug_info\0.rela.debug_info\0"
    off = {n: names.index(n.encode()) for n in (".shstrtab", ".symtab", ".text", ".debug_info", ".rela.debug_info")}
    syms = bytes(24) + struct.pack("<IBBHQQ", 0, 3, 0, 3, 0, 0) + struct.pack("<IBBHQQ", 0, 3, 0, 4, 0, 0)
    rela = b"".join(struct.pack("<QQq", o, (s << 32) | t, a) for o, t, s, a in relocs)
    body = [names, syms, bytes(32), bytes(16), rela]
    pos, offs = 64, []
    for b in body:
        offs.append(pos)
        pos += len(b)
    shoff = pos
    sh = [bytes(64),
          struct.pack("<IIQQQQIIQQ", off[".shstrtab"], 3, 0, 0, offs[0], len(names), 0, 0, 1, 0),
          struct.pack("<IIQQQQIIQQ", off[".symtab"], 2, 0, 0, offs[1], len(syms), 1, 1, 8, 24),
          struct.pack("<IIQQQQIIQQ", off[".text"], 1, 0x6, 0, offs[2], 32, 0, 0, 4, 0),
          struct.pack("<IIQQQQIIQQ", off[".debug_info"], 1, 0, 0, offs[3], 16, 0, 0, 1, 0),
          struct.pack("<IIQQQQIIQQ", off[".rela.debug_info"], 4, 0x40, 0, offs[4], len(rela), 2, 4, 8, 24)]
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 1, 258, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(sh), 1)
    return ehdr + b"".join(body) + b"".join(sh)


class _Module:
    section_addresses = {".text": 0xFFFF800002000000}


def test_relocate_module_debug(tmp_path):
    src, out = tmp_path / "m.ko", tmp_path / "m.relocated.ko"
    # R_LARCH_64 against .text (loaded) + 0x10; R_LARCH_32 against .debug_info (not loaded: 0) + 5.
    src.write_bytes(_rel_file([(0, 2, 1, 0x10), (8, 1, 2, 5)]))
    relocate_module_debug(_Module(), src, out)
    data = out.read_bytes()
    e_type, = struct.unpack_from("<H", data, 16)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    sh = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * 64) for i in range(6)]
    assert e_type == 2  # ET_EXEC
    assert sh[3][3] == 0xFFFF800002000000 and sh[4][3] == 0  # sh_addr: load addresses
    assert sh[5][1] == 0  # the relocation section is gone (SHT_NULL)
    debug = data[sh[4][4]:sh[4][4] + 16]
    assert struct.unpack_from("<QI", debug) == (0xFFFF800002000010, 5)
    # Another relocation type in a debug section is refused, not guessed.
    src.write_bytes(_rel_file([(0, 99, 1, 0)]))
    with pytest.raises(RelocationError):
        relocate_module_debug(_Module(), src, out)
