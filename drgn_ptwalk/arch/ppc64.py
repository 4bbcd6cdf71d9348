# SPDX-License-Identifier: LGPL-2.1-or-later
"""
ppc64 (Book3S-64) radix page-table entries (arch/powerpc/include/asm/book3s/64/
{pgtable,radix,radix-4k,radix-64k}.h).

Geometry (radix-4k.h / radix-64k.h): four levels, PGD 13 index bits, PUD 9,
PMD 9, PTE 9 with 4K pages or 5 with 64K pages (a 256-byte PTE table, a
fragment of a page), 52-bit addresses. Leaves at PMD (2M) and PUD (1G):
``pmd_leaf()``/``pud_leaf()`` are ``_PAGE_PTE``.

Entries are stored big-endian (``pte_raw()`` is ``__be64``) whatever the
kernel's byte order: :attr:`Ppc64RadixDecoder.entry_order` tells the walker's
table reader to convert them, and every value here is ``pte_val()``.

* present: ``pte_present()`` is ``_PAGE_PRESENT`` or ``_PAGE_INVALID`` (a
  PTE invalidated by ``ptep_set_access_flags()``, a PMD by
  ``pmdp_invalidate()``), with ``_PAGE_PTE``; PROT_NONE and NUMA-hinting
  entries are hardware-valid without R/W/X (``pte_protnone()``);
* swap: ``_PAGE_PTE`` set, type in bits 0-4, offset at ``PAGE_SHIFT`` under
  ``PTE_RPN_MASK``, soft-dirty ``_RPAGE_SW3`` and exclusive
  ``_PAGE_NON_IDEMPOTENT`` (``__swp_entry()``, ``_PAGE_SWP_EXCLUSIVE``);
* no uffd-wp bit (powerpc does not select ``HAVE_ARCH_USERFAULTFD_WP``).

Only the radix MMU: a hash-MMU kernel's Linux page tables have another
layout (hash-4k.h/hash-64k.h), and drgn cannot translate its kernel
addresses; :meth:`Ppc64RadixDecoder.from_program` refuses it.
"""

from typing import Any, Optional, Tuple

from drgn import Program

from drgn_ptwalk._vmcoreinfo import vmcoreinfo_number
from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE, ArchDecoder
from drgn_ptwalk.entry import PtFlag, PtLevel

__all__ = ("Ppc64RadixDecoder",)

_EXEC = 1 << 0
_WRITE = 1 << 1
_READ = 1 << 2
_RWX = _EXEC | _WRITE | _READ
_NON_IDEMPOTENT = 1 << 5  # swap entries: _PAGE_SWP_EXCLUSIVE
_DIRTY = 1 << 7
_ACCESSED = 1 << 8
_SOFT_DIRTY = 1 << 9  # _RPAGE_SW3, also _PAGE_SWP_SOFT_DIRTY
_SPECIAL = 1 << 10  # _RPAGE_SW2
_DEVMAP = 1 << 11  # _RPAGE_SW1
_INVALID = 1 << 61  # _RPAGE_SW0
_PTE = 1 << 62
_PRESENT = 1 << 63
_U64 = (1 << 64) - 1
# _PAGE_PA_MAX: the PFN is bits [52:PAGE_SHIFT] (PTE_RPN_MASK).
_PA_MASK = (1 << 53) - 1
# pte_none() ignores R and C (RADIX_PTE_NONE_MASK): the MMU may write them
# back to an entry just cleared.
_PTE_NONE_MASK = _U64 & ~(_DIRTY | _ACCESSED)
# P?D_MASKED_BITS: the flag bits around a table's physical address (the
# next level's size is in bits 0-4, RADIX_P?D_VAL_BITS).
_TABLE_MASKED = 0xC0000000000000FF
# RADIX_P?D_BAD_BITS.
_TABLE_BAD = 0x60000000000000E0
_SWP_TYPE_MASK = 0x1F
# The kernel's quadrant 3 (0xc...): radix kernel addresses (init_mm).
_KERNEL_BASE = 0xC000000000000000
# R_MAX_PHYSMEM_BITS with SPARSEMEM_VMEMMAP and SPARSEMEM_EXTREME (radix.h),
# which every Book3S-64 distribution config has.
_MAX_PHYSMEM_BITS = 51

# radix-4k.h / radix-64k.h: index bits (PGD, PUD, PMD, PTE) by PAGE_SHIFT.
_INDEX_BITS = {12: (13, 9, 9, 9), 16: (13, 9, 9, 5)}


class Ppc64RadixDecoder(ArchDecoder):
    """
    Decoder for ppc64 Book3S radix.

    :param page_shift: 12 (``CONFIG_PPC_4K_PAGES``) or 16 (64K)
    :param max_physmem_bits: ``MAX_PHYSMEM_BITS`` (swap PFN width)
    """

    special_mask = _SPECIAL
    entry_order = "big"

    def __init__(
        self,
        prog: Optional[Program] = None,
        *,
        page_shift: int = 16,
        max_physmem_bits: Optional[int] = None,
    ) -> None:
        super().__init__(prog)
        if page_shift not in _INDEX_BITS:
            raise ValueError(f"unsupported page shift {page_shift}")
        self.page_shift = page_shift
        pgd, pud, pmd, pte = _INDEX_BITS[page_shift]
        self.levels = (
            (PtLevel.PGD, page_shift + pte + pmd + pud, 1 << pgd),
            (PtLevel.PUD, page_shift + pte + pmd, 1 << pud),
            (PtLevel.PMD, page_shift + pte, 1 << pmd),
            (PtLevel.PTE, page_shift, 1 << pte),
        )
        self.va_bits = page_shift + pte + pmd + pud + pgd
        self.none_masks = (_U64, _U64, _U64, _PTE_NONE_MASK)
        self.rpn_mask = _PA_MASK & ~((1 << page_shift) - 1)
        self.swap_step = 1 << page_shift
        self.swp_pfn_mask = (1 << ((max_physmem_bits or _MAX_PHYSMEM_BITS) - page_shift)) - 1
        self._pte_depth = 3
        self._leaf_depths = {1, 2}

    @classmethod
    def from_program(cls, prog: Program) -> "Ppc64RadixDecoder":
        """
        Build the decoder from what the kernel in *prog* says about itself.

        :raises NotImplementedError: for a kernel running with the hash MMU
        """
        # The MMU in use: mmu_features' MMU_FTR_TYPE_RADIX (mmu.h), as
        # radix_enabled() tests it.
        try:
            radix = bool(prog["cur_cpu_spec"].mmu_features.value_() & 0x40)
        except (KeyError, LookupError, AttributeError):
            radix = True  # a kernel without the hash MMU (CONFIG_PPC_64S_HASH_MMU=n)
        if not radix:
            raise NotImplementedError("page-table walking on ppc64 needs the radix MMU (this kernel uses hash)")
        page_size = vmcoreinfo_number(prog, "PAGESIZE")
        if page_size is None:
            page_size = prog["PAGE_SIZE"].value_()
        return cls(
            prog,
            page_shift=page_size.bit_length() - 1,
            max_physmem_bits=vmcoreinfo_number(prog, "MAX_PHYSMEM_BITS"),
        )

    def user_range(self) -> Tuple[int, int]:
        return 0, 1 << self.va_bits

    def kernel_range(self) -> Tuple[int, int]:
        return _KERNEL_BASE, _KERNEL_BASE + (1 << self.va_bits)

    def root(self, mm: Any) -> Tuple[int, bool]:
        return mm.pgd.value_(), False

    def kind(self, value: int, depth: int) -> int:
        if depth == self._pte_depth:
            if not value & _PTE_NONE_MASK:
                return NONE
            # pte_present(); everything else is a swap entry to the kernel.
            if value & _PTE and value & (_PRESENT | _INVALID):
                return LEAF
            return SWAP
        if not value:
            return NONE
        if value & _PTE:
            if depth not in self._leaf_depths:
                return BAD
            # pmd_present(): PRESENT or INVALID (pmdp_invalidate()); else a
            # swap-format PMD (THP migration) or hugetlb PUD entry.
            return LEAF if value & (_PRESENT | _INVALID) else SWAP
        # A table: p?d_present() and no RADIX_P?D_BAD_BITS.
        return TABLE if value & _PRESENT and not value & _TABLE_BAD else BAD

    def table_addr(self, value: int) -> int:
        return value & ~_TABLE_MASKED & _U64

    def leaf_pfn(self, value: int, shift: int) -> int:
        return (value & self.rpn_mask & ~((1 << shift) - 1)) >> self.page_shift

    def leaf_step(self, value: int) -> int:
        return 1 << self.page_shift

    def pte_decode(self, value: int) -> Tuple[int, Optional[int], Optional[int]]:
        # Inlined kind() + leaf_pfn() + leaf_step() for PTEs (the hot path).
        if value & _PTE and value & (_PRESENT | _INVALID):
            return LEAF, (value & self.rpn_mask) >> self.page_shift, 1 << self.page_shift
        if not value & _PTE_NONE_MASK:
            return NONE, None, None
        return SWAP, None, None

    def swp(self, value: int) -> Tuple[int, int]:
        # __pte_to_swp_entry() clears _PAGE_PTE; __swp_type(), __swp_offset().
        return value & _SWP_TYPE_MASK, (value & self.rpn_mask) >> self.page_shift

    leaf_flag_bits = _PRESENT | _PTE | _RWX | _DIRTY | _ACCESSED | _SOFT_DIRTY | _SPECIAL
    swap_flag_bits = _SOFT_DIRTY | _NON_IDEMPOTENT

    def leaf_flags(self, value: int, level: PtLevel) -> int:
        f = PtFlag.PRESENT
        if value & _WRITE:
            f |= PtFlag.WRITE
        if value & _DIRTY:
            f |= PtFlag.DIRTY
        if value & _ACCESSED:
            f |= PtFlag.YOUNG
        if value & _SOFT_DIRTY:
            f |= PtFlag.SOFT_DIRTY
        if value & _SPECIAL:
            f |= PtFlag.SPECIAL
        if value & (_PRESENT | _PTE | _RWX) == _PRESENT | _PTE:
            f |= PtFlag.PROTNONE
        return int(f)

    def swap_flags(self, value: int, level: PtLevel) -> int:
        f = 0
        if value & _SOFT_DIRTY:
            f |= PtFlag.SOFT_DIRTY
        if value & _NON_IDEMPOTENT:
            f |= PtFlag.EXCLUSIVE
        return int(f)
