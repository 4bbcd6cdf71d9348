# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Test helpers that encode page-table entries the way the kernel does (the walker only decodes): swap
entries for the unit tests' synthetic tables.
"""

from drgn_ptwalk.arch import ArchDecoder
from drgn_ptwalk.arch.ppc64 import Ppc64RadixDecoder
from drgn_ptwalk.arch.s390x import S390xDecoder
from drgn_ptwalk.arch.x86_64 import X86_64Decoder

_U64 = (1 << 64) - 1


def make_swp(dec: ArchDecoder, type: int, offset: int, flags: int = 0) -> int:
    """``__swp_entry(type, offset)`` of *dec*'s architecture and layout, plus swp flag bits *flags*."""
    if isinstance(dec, X86_64Decoder):
        # arch/x86/include/asm/pgtable_64.h: type in bits 59-63, ~offset in bits 9-58.
        return ((((~offset) << 14) & _U64) >> 5) | (type << 59) | flags
    if isinstance(dec, S390xDecoder):
        # s390 pgtable.h: mk_swap_pte() (_PAGE_INVALID | _PAGE_PROTECT, type in bits 2-6, offset from bit 12).
        return 0x400 | 0x200 | (type << 2) | (offset << 12) | flags
    if isinstance(dec, Ppc64RadixDecoder):
        # book3s/64/pgtable.h: __swp_entry() (type in bits 0-4, offset at PAGE_SHIFT), then
        # __swp_entry_to_pte() sets _PAGE_PTE.
        return type | (offset << dec.page_shift) | (1 << 62) | flags
    # arm64: type and offset at the layout's shifts (see drgn_ptwalk.arch.aarch64).
    return (type << dec._type_shift) | (offset << dec._offset_shift) | flags  # type: ignore[attr-defined]
