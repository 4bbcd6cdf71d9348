# SPDX-License-Identifier: LGPL-2.1-or-later
"""
AArch64 page-table entries (arch/arm64/include/asm/pgtable*.h).

Geometry: 4K, 16K or 64K granules; the number of levels follows the virtual
address size in use at run time (``64 - TCR_EL1_T1SZ``), so a 52-bit (LPA2)
kernel on a CPU without LPA2 drops its top level ("folded at run time", Linux
commit 0dd4f60a2c76 "arm64: mm: Add support for folding PUDs at runtime",
v6.9, and its P4D counterpart). Block entries at PMD and (4K) PUD; the
contiguous bit groups CONT_PTES PTEs or CONT_PMDS PMDs.

Two software layouts are handled, told apart by the kernel's own PAGE_NONE
(``protection_map[VM_NONE]``, :attr:`~drgn_ptwalk.generations.Generation.arm64_v610_layout`):

* before Linux v6.10 (6.1): PROT_NONE is bit 58 (PMD_PRESENT_INVALID bit 59),
  swap type in bits 3-7, offset in bits 8-57, no uffd-wp;
* since the series "arm64/mm: Enable userfaultfd write-protect" (Ryan
  Roberts, v6.10: "arm64/mm: Remove PTE_PROT_NONE bit", "arm64/mm: Move
  PTE_PRESENT_INVALID to overlay PTE_NG", "arm64/mm: Add uffd write-protect
  support"): present-invalid is nG (bit 11) with VALID clear, uffd-wp is bit 58
  (swap: bit 3), swap type in bits 6-10, offset in bits 12-61.
"""

from typing import Any, Optional, Tuple

from drgn import Program

from drgn_ptwalk._vmcoreinfo import vmcoreinfo, vmcoreinfo_number
from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE, ArchDecoder
from drgn_ptwalk.entry import PtFlag, PtLevel
from drgn_ptwalk.generations import generation

__all__ = ("AArch64Decoder",)

_VALID = 1 << 0
_TABLE = 1 << 1
_SWP_EXCLUSIVE = 1 << 2
_SWP_UFFD_WP = 1 << 3  # new layout only
_USER = 1 << 6
_RDONLY = 1 << 7
_AF = 1 << 10
_NG = 1 << 11  # new layout: PTE_PRESENT_INVALID when !VALID
_WRITE = 1 << 51  # DBM
_CONT = 1 << 52
_UXN = 1 << 54
_DIRTY = 1 << 55  # software dirty
_SPECIAL = 1 << 56
_BIT58 = 1 << 58  # old: PTE_PROT_NONE; new: PTE_UFFD_WP
_PMD_PRESENT_INVALID_OLD = 1 << 59
_U64 = (1 << 64) - 1
_SWP_OFFSET_MASK = (1 << 50) - 1

# CONFIG_ARM64_CONT_{PTE,PMD}_SHIFT defaults by PAGE_SHIFT (arch/arm64/Kconfig).
_CONT_PTES = {12: 16, 14: 128, 16: 32}
_CONT_PMDS = {12: 16, 14: 32, 16: 32}


class AArch64Decoder(ArchDecoder):
    """
    Decoder for AArch64.

    :param page_shift: 12, 14 or 16
    :param va_bits: virtual address size in use (``64 - TCR_EL1_T1SZ``)
    :param new_layout: the v6.10+ software bits (see the module doc)
    :param max_physmem_bits: ``MAX_PHYSMEM_BITS`` (swap PFN width)
    """

    special_mask = _SPECIAL
    cont_mask = _CONT

    def __init__(
        self,
        prog: Optional[Program] = None,
        *,
        page_shift: int = 12,
        va_bits: int = 48,
        new_layout: bool = True,
        max_physmem_bits: Optional[int] = None,
    ) -> None:
        super().__init__(prog)
        if page_shift not in (12, 14, 16):
            raise ValueError(f"unsupported page shift {page_shift}")
        self.page_shift = page_shift
        self.va_bits = va_bits
        self.new_layout = new_layout
        bits = page_shift - 3  # index bits per level
        nlevels = (va_bits - page_shift + bits - 1) // bits
        root_entries = 1 << ((va_bits - page_shift - 1) % bits + 1)
        names = (PtLevel.PTE, PtLevel.PMD, PtLevel.PUD, PtLevel.P4D)
        levels = []
        for i in range(nlevels):
            shift = page_shift + bits * i
            if i == nlevels - 1:
                levels.append((PtLevel.PGD, shift, root_entries))
            else:
                levels.append((names[i], shift, 1 << bits))
        self.levels = tuple(reversed(levels))
        self._pte_depth = nlevels - 1
        # Blocks: PMD always, PUD with 4K pages only (pud_sect_supported()).
        self._block_depths = {nlevels - 2}
        if page_shift == 12:
            self._block_depths.add(nlevels - 3)
        self.none_masks = tuple(_U64 for _ in self.levels)  # plain zero test
        # Output address: bits [47:PAGE_SHIFT]; with LPA2 (4K/16K, 52-bit)
        # bits [49:48] too and PA[51:50] in bits [9:8]; with 64K pages
        # PA[51:48] in bits [15:12] (zero if the PA is 48-bit).
        self.lpa2 = va_bits == 52 and page_shift != 16
        self.pa_low_mask = 0x0000FFFFFFFFFFFF & ~((1 << page_shift) - 1)
        if page_shift == 16:
            self.pa_high_mask, self.pa_high_shift = 0xF000, 36
        elif self.lpa2:
            self.pa_low_mask |= 0x0003000000000000
            self.pa_high_mask, self.pa_high_shift = 0x300, 42
        else:
            self.pa_high_mask, self.pa_high_shift = 0, 0
        if new_layout:
            self._type_shift, self._offset_shift = 6, 12
        else:
            self._type_shift, self._offset_shift = 3, 8
        self.swap_step = 1 << self._offset_shift
        if max_physmem_bits is None:
            max_physmem_bits = 52 if self.lpa2 else 48
        self.swp_pfn_mask = (1 << (max_physmem_bits - page_shift)) - 1
        self.cont_slots = {
            PtLevel.PTE: _CONT_PTES[page_shift],
            PtLevel.PMD: _CONT_PMDS[page_shift],
        }

    @classmethod
    def from_program(cls, prog: Program) -> "AArch64Decoder":
        """Build the decoder from what the kernel in *prog* says about itself."""
        page_size = vmcoreinfo_number(prog, "PAGESIZE")
        if page_size is None:
            page_size = prog["PAGE_SIZE"].value_()
        page_shift = page_size.bit_length() - 1
        t1sz = vmcoreinfo_number(prog, "TCR_EL1_T1SZ")
        va_bits = vmcoreinfo_number(prog, "VA_BITS") or 48
        # As drgn does: with 64K pages the tables are set up for VA_BITS even
        # when the CPU falls back to 48 bits; with 4K/16K the level count
        # follows the size in use.
        if page_shift != 16 and t1sz:
            va_bits = 64 - t1sz
        return cls(
            prog,
            page_shift=page_shift,
            va_bits=va_bits,
            new_layout=bool(generation(prog).arm64_v610_layout),
            max_physmem_bits=vmcoreinfo_number(prog, "MAX_PHYSMEM_BITS"),
        )

    def root(self, mm: Any) -> Tuple[int, bool]:
        pgd = mm.pgd.value_()
        # swapper_pg_dir lives in the kernel image: translate it directly
        # (as drgn does) rather than through itself.
        info = vmcoreinfo(self.prog)
        swapper = info.get("SYMBOL(swapper_pg_dir)")
        voffset = vmcoreinfo_number(self.prog, "kimage_voffset")
        if swapper is not None and voffset and pgd == int(swapper, 16):
            return pgd - voffset, True
        return pgd, False

    # Entries.
    def _present_invalid(self, value: int, depth: int) -> bool:
        if self.new_layout:
            return bool(value & _NG)
        if value & _BIT58:
            return True
        return depth != self._pte_depth and bool(value & _PMD_PRESENT_INVALID_OLD)

    def kind(self, value: int, depth: int) -> int:
        if not value:
            return NONE
        if value & _VALID:
            if depth == self._pte_depth:
                return LEAF if value & _TABLE else BAD  # 0b01 is reserved
            if value & _TABLE:
                return TABLE
            return LEAF if depth in self._block_depths else BAD
        if depth == self._pte_depth or depth in self._block_depths:
            return LEAF if self._present_invalid(value, depth) else SWAP
        return BAD

    def _phys(self, value: int) -> int:
        phys = value & self.pa_low_mask
        if self.pa_high_mask:
            phys |= (value & self.pa_high_mask) << self.pa_high_shift
        return phys

    def table_addr(self, value: int) -> int:
        return self._phys(value)

    def leaf_pfn(self, value: int, shift: int) -> int:
        return (self._phys(value) & ~((1 << shift) - 1)) >> self.page_shift

    def leaf_step(self, value: int) -> int:
        return 1 << self.page_shift

    def pte_decode(self, value: int) -> Tuple[int, Optional[int], Optional[int]]:
        # Inlined kind() + leaf_pfn() + leaf_step() for PTEs (the hot path).
        if value & _VALID:
            if not value & _TABLE:
                return BAD, None, None
        elif not value:
            return NONE, None, None
        elif not self._present_invalid(value, self._pte_depth):
            return SWAP, None, None
        phys = value & self.pa_low_mask
        if self.pa_high_mask:
            phys |= (value & self.pa_high_mask) << self.pa_high_shift
        return LEAF, phys >> self.page_shift, 1 << self.page_shift

    def swp(self, value: int) -> Tuple[int, int]:
        return (
            (value >> self._type_shift) & 0x1F,
            (value >> self._offset_shift) & _SWP_OFFSET_MASK,
        )

    leaf_flag_bits = _WRITE | _DIRTY | _RDONLY | _AF | _SPECIAL | _VALID | _NG | _USER | _UXN | _BIT58
    swap_flag_bits = _SWP_EXCLUSIVE | _SWP_UFFD_WP

    def leaf_flags(self, value: int, level: PtLevel) -> int:
        f = PtFlag.PRESENT
        if value & _WRITE:
            f |= PtFlag.WRITE
        # pte_dirty(): software dirty, or hardware dirty (DBM writable and
        # RDONLY cleared by the CPU).
        if value & _DIRTY or (value & _WRITE and not value & _RDONLY):
            f |= PtFlag.DIRTY
        if value & _AF:
            f |= PtFlag.YOUNG
        if value & _SPECIAL:
            f |= PtFlag.SPECIAL
        if not value & _VALID:
            if self.new_layout:
                # pte_protnone(): present-invalid, !PTE_USER, PTE_UXN.
                if value & _NG and not value & _USER and value & _UXN:
                    f |= PtFlag.PROTNONE
            elif value & _BIT58:
                f |= PtFlag.PROTNONE
        if self.new_layout and value & _BIT58:
            f |= PtFlag.UFFD_WP
        return int(f)

    def swap_flags(self, value: int, level: PtLevel) -> int:
        f = 0
        if value & _SWP_EXCLUSIVE:
            f |= PtFlag.EXCLUSIVE
        if self.new_layout and value & _SWP_UFFD_WP:
            f |= PtFlag.UFFD_WP
        return int(f)

    def cont_valid(self, value: int) -> bool:
        return (value & (_VALID | _CONT)) == (_VALID | _CONT)

    def cont_merge(self, values: Tuple[int, ...]) -> Tuple[int, ...]:
        # contpte_ptep_get() / huge_ptep_get(): pte_mkyoung() if any entry
        # is young, pte_mkdirty() if any is dirty (pte_mkdirty also clears
        # RDONLY when writable).
        young = dirty = False
        for v in values:
            if v & _AF:
                young = True
            if v & _DIRTY or (v & _WRITE and not v & _RDONLY):
                dirty = True
        if not (young or dirty):
            return values
        out = []
        for v in values:
            if young:
                v |= _AF
            if dirty:
                v |= _DIRTY
                if v & _WRITE:
                    v &= ~_RDONLY
            out.append(v)
        return tuple(out)
