# SPDX-License-Identifier: LGPL-2.1-or-later
"""
s390x (z/Architecture) DAT tables as Linux uses them (arch/s390/include/asm/pgtable.h,
arch/s390/mm/hugetlbpage.c).

Geometry: region-first (R1, 11 index bits at bit 53), region-second (R2, at 42), region-third (R3, at
31), segment (11 bits at 20) tables of 2048 entries (16 KiB), and page tables of 256 entries (2 KiB,
``PTRS_PER_PTE``: two per page) for 4 KiB pages. How many levels a user mm has is its own: the ASCE
type in ``mm->context.asce`` (``init_new_context()``: a new mm starts with an R3 table, 3 levels and
4 TiB; ``crst_table_upgrade()`` adds R2 and R1 tables when a mapping goes higher), so
:meth:`S390xDecoder.for_mm` gives the decoder of each mm's depth. Linux's names: R1 = PGD, R2 = P4D,
R3 = PUD, segment = PMD.

Entries are big-endian, as all of the kernel's data (:attr:`S390xDecoder.entry_order`); every value
here is ``pte_val()``. An empty entry is not 0 but the invalid pattern of its level
(``pte_none()``: ``== _PAGE_INVALID``; ``pmd_none()``: ``== _SEGMENT_ENTRY_EMPTY``; ...):
:attr:`S390xDecoder.none_exact`.

* PTE: ``pte_present()`` is the software bit ``_PAGE_PRESENT``; the hardware invalid bit is also set
  on present PTEs that are old or PROT_NONE (young/dirty tracking by faults), and they count as present
  (drgn's own translation treats them as absent). PROT_NONE and NUMA-hinting entries are present
  without ``_PAGE_READ`` (``pte_protnone()``). Swap: not none and not present, type in bits 2-6,
  offset from bit 12, soft-dirty ``0x002``, exclusive ``_PAGE_LARGE`` (``0x800``).
* Segment and region-3 entries (RSTEs): a table (``pmd_present()``/``pud_present()`` without the
  large bit ``0x400``) or a large leaf (1 MiB with EDAT-1, 2 GiB with EDAT-2: THP and hugetlb) with
  software write/read/dirty/young bits ``0x8000/0x4000/0x2000/0x1000`` and soft-dirty ``0x002``. A
  not-present RSTE that is not empty is a swap entry in the RSTE format (``mk_swap_rste()``: type in
  bits 6-10, offset from bit 12): THP migration, hugetlb migration/hwpoison/markers.
* No uffd-wp (s390 has no ``HAVE_ARCH_USERFAULTFD_WP``), no contiguous entries.
"""

from typing import Any, Dict, Optional, Tuple

from drgn import FaultError, Program

from drgn_ptwalk._vmcoreinfo import vmcoreinfo_number
from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE, ArchDecoder
from drgn_ptwalk.entry import PtFlag, PtLevel

__all__ = ("S390xDecoder",)

_U64 = (1 << 64) - 1
# PTE bits.
_PAGE_PRESENT = 0x001
_PAGE_SOFT_DIRTY = 0x002
_PAGE_YOUNG = 0x004
_PAGE_DIRTY = 0x008
_PAGE_READ = 0x010
_PAGE_WRITE = 0x020
_PAGE_SPECIAL = 0x040
_PAGE_INVALID = 0x400
_PAGE_SWP_EXCLUSIVE = 0x800  # _PAGE_LARGE
# Region/segment table entries (RSTE).
_RSTE_PRESENT = 0x0001  # _SEGMENT_ENTRY_PRESENT, _REGION3_ENTRY_PRESENT
_RSTE_SOFT_DIRTY = 0x0002
_RSTE_TYPE_MASK = 0x000C
_RSTE_INVALID = 0x0020
_RSTE_LARGE = 0x0400
_RSTE_YOUNG = 0x1000
_RSTE_DIRTY = 0x2000
_RSTE_READ = 0x4000
_RSTE_WRITE = 0x8000
# Bits that make a table entry bad (~_SEGMENT_ENTRY_BITS, ~_REGION_ENTRY_BITS).
_SEGMENT_BAD = ~0xFFFFFFFFFFFFFE3F & _U64
_REGION_BAD = ~0xFFFFFFFFFFFFF22F & _U64
# The origin of the table an entry points to: page tables are 2 KiB fragments (_SEGMENT_ENTRY_ORIGIN);
# region and segment tables are 16 KiB (bit 11 of a good region entry is 0).
_TABLE_ORIGIN = ~0x7FF & _U64
_SWP_OFFSET_MASK = (1 << 52) - 1
_SWP_TYPE_MASK = 0x1F

# Software bits of a present PTE and of a large RSTE, as PtFlags.
_PTE_FLAGS = ((_PAGE_WRITE, PtFlag.WRITE), (_PAGE_DIRTY, PtFlag.DIRTY), (_PAGE_YOUNG, PtFlag.YOUNG),
              (_PAGE_SOFT_DIRTY, PtFlag.SOFT_DIRTY), (_PAGE_SPECIAL, PtFlag.SPECIAL))
_RSTE_FLAGS = ((_RSTE_WRITE, PtFlag.WRITE), (_RSTE_DIRTY, PtFlag.DIRTY), (_RSTE_YOUNG, PtFlag.YOUNG),
               (_RSTE_SOFT_DIRTY, PtFlag.SOFT_DIRTY))

# Table kinds, root first: (PtLevel, address shift, entries, entry type bits, empty value).
_R1 = (PtLevel.PGD, 53, 2048, 0x0C, 0x2C)
_R2 = (PtLevel.P4D, 42, 2048, 0x08, 0x28)
_R3 = (PtLevel.PUD, 31, 2048, 0x04, 0x24)
_SEG = (PtLevel.PMD, 20, 2048, 0x00, _RSTE_INVALID)
_PTE = (PtLevel.PTE, 12, 256, None, _PAGE_INVALID)
# ASCE designation type (mm->context.asce & _ASCE_TYPE_MASK) -> the tables under it.
_BY_ASCE_TYPE = {
    0x0C: (_R1, _R2, _R3, _SEG, _PTE),
    0x08: (_R2, _R3, _SEG, _PTE),
    0x04: (_R3, _SEG, _PTE),
    0x00: (_SEG, _PTE),
}
_ASCE_TYPE_MASK = 0x0C
_ASCE_ORIGIN = ~0xFFF & _U64


class S390xDecoder(ArchDecoder):
    """
    Decoder for s390x DAT tables of one depth.

    :param asce_type: the ASCE designation type of the root (``0x04``: an R3 table, the default of a
        user mm; ``0x08``: R2; ``0x0c``: R1; ``0x00``: a segment table)
    :param max_physmem_bits: ``MAX_PHYSMEM_BITS`` (swap PFN width)
    """

    entry_order = "big"
    special_mask = _PAGE_SPECIAL
    swap_step = 1 << 12
    leaf_flag_bits = (_PAGE_PRESENT | _PAGE_SOFT_DIRTY | _PAGE_YOUNG | _PAGE_DIRTY | _PAGE_READ | _PAGE_WRITE
                      | _PAGE_SPECIAL | _RSTE_YOUNG | _RSTE_DIRTY | _RSTE_READ | _RSTE_WRITE)
    swap_flag_bits = _PAGE_SOFT_DIRTY | _PAGE_SWP_EXCLUSIVE

    def __init__(
        self,
        prog: Optional[Program] = None,
        *,
        asce_type: int = 0x04,
        max_physmem_bits: Optional[int] = None,
    ) -> None:
        super().__init__(prog)
        if asce_type not in _BY_ASCE_TYPE:
            raise ValueError(f"bad ASCE type {asce_type:#x}")
        self.asce_type = asce_type
        self.max_physmem_bits = max_physmem_bits
        tables = _BY_ASCE_TYPE[asce_type]
        self._tables = tables
        self.page_shift = 12
        self.levels = tuple((lvl, shift, n) for lvl, shift, n, _, _ in tables)
        top = tables[0]
        self.va_bits = min(64, top[1] + 11)
        self.none_exact = tuple(empty for *_, empty in tables)
        # Unused where none_exact is set (every level here); kept for the base class's shape.
        self.none_masks = tuple(_U64 for _ in tables)
        self._pte_depth = len(tables) - 1
        if max_physmem_bits:
            self.swp_pfn_mask = (1 << (max_physmem_bits - 12)) - 1
        # Decoders of the other depths, made on demand; they share the flag cache.
        self._variants: Dict[int, "S390xDecoder"] = {asce_type: self}

    @classmethod
    def from_program(cls, prog: Program) -> "S390xDecoder":
        """The decoder of a new user mm's depth (R3); :meth:`for_mm` gives each mm its own."""
        return cls(prog, max_physmem_bits=vmcoreinfo_number(prog, "MAX_PHYSMEM_BITS"))

    def variant(self, asce_type: int) -> "S390xDecoder":
        """The decoder of tables under an ASCE of *asce_type* (cached; the flag cache is shared)."""
        dec = self._variants.get(asce_type)
        if dec is None:
            dec = S390xDecoder(self.prog, asce_type=asce_type, max_physmem_bits=self.max_physmem_bits)
            dec.flag_cache = self.flag_cache
            dec._variants = self._variants
            self._variants[asce_type] = dec
        return dec

    @staticmethod
    def _asce(mm: Any) -> int:
        try:
            return mm.context.asce.value_()
        except (AttributeError, LookupError, FaultError):
            return 0

    def for_mm(self, mm: Any) -> "S390xDecoder":
        # The depth the kernel walks this mm's tables with: the ASCE type (pgd_offset() reads it
        # from the root table's first entry, which says the same).
        asce = self._asce(mm)
        if not asce:
            return self
        return self.variant(asce & _ASCE_TYPE_MASK)

    def root(self, mm: Any) -> Tuple[int, bool]:
        # The ASCE's origin is the root table's physical address (mm->pgd is its identity-mapped one).
        asce = self._asce(mm)
        if asce:
            return asce & _ASCE_ORIGIN, True
        return mm.pgd.value_(), False

    def user_range(self) -> Tuple[int, int]:
        return 0, 1 << self.va_bits

    def kernel_range(self) -> Tuple[int, int]:
        # The kernel has its own address space (the kernel ASCE), from 0 as user space.
        return 0, 1 << self.va_bits

    def kind(self, value: int, depth: int) -> int:
        lvl, _, _, ttype, empty = self._tables[depth]
        if value == empty:
            return NONE
        if ttype is None:  # a PTE: pte_present() is the software bit, everything else is a swap entry
            return LEAF if value & _PAGE_PRESENT else SWAP
        if ttype == 0x00:  # segment: pmd_present(), pmd_leaf(), pmd_bad()
            if value & _RSTE_TYPE_MASK:
                return BAD
            if value & _RSTE_PRESENT:
                if value & _RSTE_LARGE:
                    return LEAF
                return BAD if value & _SEGMENT_BAD else TABLE
            return SWAP
        if value & _RSTE_TYPE_MASK != ttype:
            return BAD
        if ttype == 0x04:  # region-3: pud_present(), pud_leaf(), pud_bad()
            if value & _RSTE_PRESENT:
                if value & _RSTE_LARGE:
                    return LEAF
                return BAD if value & _REGION_BAD else TABLE
            return SWAP
        # Region-1/2: no leaves, no swap entries; p?d_none() is the invalid bit.
        if value & _RSTE_INVALID:
            return NONE
        return BAD if value & _REGION_BAD or not value & _TABLE_ORIGIN else TABLE

    def table_addr(self, value: int) -> int:
        return value & _TABLE_ORIGIN

    def leaf_pfn(self, value: int, shift: int) -> int:
        # _SEGMENT_ENTRY_ORIGIN_LARGE, _REGION3_ENTRY_ORIGIN_LARGE; a PTE's PFN is all bits above 12.
        return (value & ~((1 << shift) - 1) & _U64) >> 12

    def leaf_step(self, value: int) -> int:
        return 1 << 12

    def pte_decode(self, value: int) -> Tuple[int, Optional[int], Optional[int]]:
        # Inlined kind() + leaf_pfn() + leaf_step() for PTEs (the hot path).
        if value & _PAGE_PRESENT:
            return LEAF, value >> 12, 4096
        if value == _PAGE_INVALID:
            return NONE, None, None
        return SWAP, None, None

    def swp(self, value: int) -> Tuple[int, int]:
        # A PTE swap entry (__swp_type(), __swp_offset()).
        return (value >> 2) & _SWP_TYPE_MASK, (value >> 12) & _SWP_OFFSET_MASK

    def swp_at(self, value: int, level: PtLevel) -> Tuple[int, int]:
        if level == PtLevel.PTE:
            return self.swp(value)
        # An RSTE swap entry (__swp_type_rste(), __swp_offset_rste()): what __pmd_to_swp_entry() and
        # huge_ptep_get() turn into the PTE swap entry generic code sees.
        return (value >> 6) & _SWP_TYPE_MASK, (value >> 12) & _SWP_OFFSET_MASK

    def leaf_flags(self, value: int, level: PtLevel) -> int:
        # A PTE, or a large segment/region-3 entry (THP, hugetlb: huge_ptep_get() moves the RSTE's bits
        # to the PTE's, __rste_to_pte()). No read bit: pte_protnone() / pmd_protnone().
        bits, read = (_PTE_FLAGS, _PAGE_READ) if level == PtLevel.PTE else (_RSTE_FLAGS, _RSTE_READ)
        f = PtFlag.PRESENT
        for bit, flag in bits:
            if value & bit:
                f |= flag
        if not value & read:
            f |= PtFlag.PROTNONE
        return int(f)

    def swap_flags(self, value: int, level: PtLevel) -> int:
        f = 0
        if value & _PAGE_SOFT_DIRTY:  # also _SEGMENT_ENTRY_SOFT_DIRTY (pmd_swp_soft_dirty())
            f |= PtFlag.SOFT_DIRTY
        if level == PtLevel.PTE and value & _PAGE_SWP_EXCLUSIVE:
            f |= PtFlag.EXCLUSIVE
        return int(f)
