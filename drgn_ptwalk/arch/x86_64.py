# SPDX-License-Identifier: LGPL-2.1-or-later
"""
x86-64 page-table entries (arch/x86/include/asm/pgtable*.h).

4 or 5 levels of 512 entries; PSE leaves at PMD (2M) and PUD (1G); PROT_NONE
and NUMA-hinting entries (PRESENT clear, PROTNONE set) store the PFN
inverted (L1TF mitigation, pgtable-invert.h); swap entries store the offset
inverted (pgtable_64.h: TYPE in bits 59-63, ~OFFSET in bits 9-58).
"""

from typing import Any, Optional, Tuple

from drgn import Program

from drgn_ptwalk._vmcoreinfo import vmcoreinfo_number
from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE, ArchDecoder
from drgn_ptwalk.entry import PtFlag, PtLevel
from drgn_ptwalk.generations import generation

__all__ = ("X86_64Decoder",)

_PRESENT = 1 << 0
_RW = 1 << 1
_USER = 1 << 2
_ACCESSED = 1 << 5
_DIRTY = 1 << 6
_PSE = 1 << 7
_PROTNONE = 1 << 8  # _PAGE_GLOBAL when present
_SPECIAL = 1 << 9
_UFFD_WP = 1 << 10
_SOFT_DIRTY = 1 << 11
_SAVED_DIRTY = 1 << 58  # 6.6+ (shadow stacks); _PAGE_DEVMAP before
# Swap-entry flag bits (pgtable_64_types.h / pgtable_types.h).
_SWP_SOFT_DIRTY = 1 << 1
_SWP_UFFD_WP = 1 << 2
_SWP_EXCLUSIVE = 1 << 3
# pte_none() ignores A/D: some CPUs (KNL erratum) set them spuriously.
_NONE_MASK = ~(_ACCESSED | _DIRTY) & ((1 << 64) - 1)
_U64 = (1 << 64) - 1
_SWP_OFFSET_MASK = (1 << 50) - 1


class X86_64Decoder(ArchDecoder):
    """
    Decoder for x86-64.

    :param l5: 5-level paging (LA57) is in use
    :param physical_mask: the kernel's ``physical_mask`` (``(1 << 52) - 1``
        without the memory-encryption bit)
    :param saved_dirty: bit 58 is ``_PAGE_SAVED_DIRTY`` (counts as dirty)
    :param max_physmem_bits: ``MAX_PHYSMEM_BITS`` (swap PFN width)
    """

    special_mask = _SPECIAL
    swap_step = -(1 << 9)  # offset + 1 => ~offset + 1 => raw - 512

    def __init__(
        self,
        prog: Optional[Program] = None,
        *,
        l5: bool = False,
        physical_mask: int = (1 << 52) - 1,
        saved_dirty: bool = True,
        max_physmem_bits: Optional[int] = None,
    ) -> None:
        super().__init__(prog)
        self.page_shift = 12
        self.l5 = l5
        if l5:
            self.levels = (
                (PtLevel.PGD, 48, 512),
                (PtLevel.P4D, 39, 512),
                (PtLevel.PUD, 30, 512),
                (PtLevel.PMD, 21, 512),
                (PtLevel.PTE, 12, 512),
            )
        else:
            self.levels = (
                (PtLevel.PGD, 39, 512),
                (PtLevel.PUD, 30, 512),
                (PtLevel.PMD, 21, 512),
                (PtLevel.PTE, 12, 512),
            )
        self.va_bits = 57 if l5 else 48
        # Only the last three levels can hold leaves, and only they have the
        # A/D-ignoring none test (p4d/pgd_none() also mask the erratum bits).
        self.none_masks = tuple(_NONE_MASK for _ in self.levels)
        self.physical_mask = physical_mask
        self.pte_pfn_mask = physical_mask & ((1 << 52) - 1) & ~0xFFF
        self.dirty_mask = _DIRTY | (_SAVED_DIRTY if saved_dirty else 0)
        if max_physmem_bits is None:
            max_physmem_bits = 52 if l5 else 46
        self.swp_pfn_mask = (1 << (max_physmem_bits - self.page_shift)) - 1
        self._leaf_depths = {len(self.levels) - 1, len(self.levels) - 2, len(self.levels) - 3}
        self._pte_depth = len(self.levels) - 1

    @classmethod
    def from_program(cls, prog: Program) -> "X86_64Decoder":
        """Build the decoder from what the kernel in *prog* says about itself."""
        l5 = vmcoreinfo_number(prog, "pgtable_l5_enabled")
        if l5 is None:
            # Before vmcoreinfo had it, and on live kernels without the note.
            try:
                l5 = int(prog["__pgtable_l5_enabled"].value_())
            except (KeyError, LookupError):
                l5 = 0
        try:
            # CONFIG_DYNAMIC_PHYSICAL_MASK (SME/TDX): the kernel's own mask.
            physical_mask = prog["physical_mask"].value_()
        except (KeyError, LookupError):
            sme = vmcoreinfo_number(prog, "sme_mask") or 0
            physical_mask = ((1 << 52) - 1) & ~sme
        # Bit 58: _PAGE_SAVED_DIRTY or _PAGE_DEVMAP (see Generation.x86_saved_dirty).
        saved_dirty = bool(generation(prog).x86_saved_dirty)
        return cls(
            prog,
            l5=bool(l5),
            physical_mask=physical_mask,
            saved_dirty=saved_dirty,
            max_physmem_bits=vmcoreinfo_number(prog, "MAX_PHYSMEM_BITS"),
        )

    def root(self, mm: Any) -> Tuple[int, bool]:
        return mm.pgd.value_(), False

    def kind(self, value: int, depth: int) -> int:
        if not value & _NONE_MASK:
            return NONE
        if depth == self._pte_depth:
            # pte_present(): PRESENT or PROTNONE.
            return LEAF if value & (_PRESENT | _PROTNONE) else SWAP
        if depth in self._leaf_depths:
            # PMD/PUD: PSE leaf (also when PRESENT was cleared by
            # pmdp_invalidate() or for PROT_NONE), else a table.
            if value & _PSE:
                return LEAF
            if value & _PRESENT:
                return TABLE
            if value & _PROTNONE:
                return LEAF
            return SWAP
        # PGD/P4D: no leaves on x86-64; PSE there is pgd_bad()/p4d_bad().
        return TABLE if value & (_PRESENT | _PSE) == _PRESENT else BAD

    def user_range(self) -> Tuple[int, int]:
        # Canonical lower half: 47 (48-bit) or 56 (LA57) bits.
        return 0, 1 << (self.va_bits - 1)

    def kernel_range(self) -> Tuple[int, int]:
        return (1 << 64) - (1 << (self.va_bits - 1)), 1 << 64

    def table_addr(self, value: int) -> int:
        return value & self.pte_pfn_mask

    def leaf_pfn(self, value: int, shift: int) -> int:
        if not value & _PRESENT:
            # protnone_mask(): PROT_NONE entries hold ~PFN.
            value = ~value & _U64
        # pmd/pud_pfn_mask leave out the low bits (and _PAGE_PAT_LARGE).
        return (value & self.pte_pfn_mask & ~((1 << shift) - 1)) >> 12

    def pte_decode(self, value: int) -> Tuple[int, Optional[int], Optional[int]]:
        # Inlined kind() + leaf_pfn() + leaf_step() for PTEs.
        if value & _PRESENT:
            return LEAF, (value & self.pte_pfn_mask) >> 12, 4096
        if value & _PROTNONE:
            return LEAF, (~value & self.pte_pfn_mask) >> 12, -4096
        if not value & _NONE_MASK:
            return NONE, None, None
        return SWAP, None, None

    def leaf_step(self, value: int) -> int:
        return 4096 if value & _PRESENT else -4096

    def swp(self, value: int) -> Tuple[int, int]:
        # __swp_type(x) = x >> 59; __swp_offset(x) = (~x << 5) >> 14.
        return value >> 59, (~value >> 9) & _SWP_OFFSET_MASK

    leaf_flag_bits = _PRESENT | _RW | _DIRTY | _SAVED_DIRTY | _ACCESSED | _SOFT_DIRTY | _UFFD_WP | _SPECIAL | _PROTNONE
    swap_flag_bits = _SWP_SOFT_DIRTY | _SWP_UFFD_WP | _SWP_EXCLUSIVE

    def leaf_flags(self, value: int, level: PtLevel) -> int:
        f = PtFlag.PRESENT
        if value & _RW:
            f |= PtFlag.WRITE
        if value & self.dirty_mask:
            f |= PtFlag.DIRTY
        if value & _ACCESSED:
            f |= PtFlag.YOUNG
        if value & _SOFT_DIRTY:
            f |= PtFlag.SOFT_DIRTY
        if value & _UFFD_WP:
            f |= PtFlag.UFFD_WP
        if value & _SPECIAL:
            f |= PtFlag.SPECIAL
        if (value & (_PRESENT | _PROTNONE)) == _PROTNONE:
            f |= PtFlag.PROTNONE
        return int(f)

    def swap_flags(self, value: int, level: PtLevel) -> int:
        f = 0
        if value & _SWP_SOFT_DIRTY:
            f |= PtFlag.SOFT_DIRTY
        if value & _SWP_UFFD_WP:
            f |= PtFlag.UFFD_WP
        if value & _SWP_EXCLUSIVE:
            f |= PtFlag.EXCLUSIVE
        return int(f)
