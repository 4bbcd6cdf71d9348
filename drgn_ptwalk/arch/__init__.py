# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Architecture decoders: everything that knows bit positions.

:func:`get_decoder` returns the :class:`ArchDecoder` for a program (chosen by
``prog.platform.arch``, built once and cached in ``prog.cache``). The walker
(:mod:`drgn_ptwalk.walk`) only calls the methods below; it never looks at a
bit itself.
"""

from functools import cached_property
from typing import Dict, List, Optional, Tuple

from drgn import Architecture, Object, Program

from drgn_ptwalk.entry import PtFlag, PtLevel

__all__ = (
    "ArchDecoder",
    "BAD",
    "LEAF",
    "NONE",
    "SWAP",
    "TABLE",
    "get_decoder",
)

# Entry kinds returned by ArchDecoder.kind().
NONE = 0  # pte_none() & co.
TABLE = 1  # points to a lower-level table
LEAF = 2  # present leaf (page, block or PROT_NONE/present-invalid)
SWAP = 3  # non-present, swap format (swap, migration, marker, ...)
BAD = 4  # makes no sense at this level


class ArchDecoder:
    """
    Base class of the per-architecture entry decoders.

    :ivar prog: the program
    :ivar page_shift: ``PAGE_SHIFT``
    :ivar levels: ``((PtLevel, shift, nr_entries), ...)`` as used at run
        time, root table first (folded levels are left out)
    :ivar va_bits: size of the user (and kernel) address space in bits
    :ivar none_masks: per level (root first): an entry is none iff
        ``value & mask == 0``
    :ivar none_exact: ``None``, or per level the one value that is none
        there (``None`` for a level tested by :attr:`none_masks`): s390x,
        whose empty entries are the invalid pattern of their level
    :ivar special_mask: bit(s) of ``pte_special()``
    :ivar cont_mask: the contiguous bit (0 if the arch has none)
    :ivar swap_step: difference between the raw values of two swap entries
        with consecutive offsets
    :ivar entry_order: byte order of the entries in memory (``"big"`` on
        ppc64, whose radix tables are big-endian whatever the kernel's byte
        order); table readers give the walker the values, so every decoder
        method sees ``pte_val()``
    """

    prog: Program
    page_shift: int
    levels: Tuple[Tuple[PtLevel, int, int], ...]
    va_bits: int
    none_masks: Tuple[int, ...]
    none_exact: Optional[Tuple[Optional[int], ...]] = None
    special_mask: int = 0
    cont_mask: int = 0
    swap_step: int = 0
    entry_order: str = "little"
    # Number of slots in a contiguous block, by level (arm64 only).
    cont_slots: Dict[PtLevel, int] = {}
    # Bits kept when a PFN is taken out of a swap offset (SWP_PFN_MASK).
    swp_pfn_mask: int = (1 << 40) - 1
    # The bits leaf_flags() / swap_flags() read: entry_flags() caches their
    # results by ``value & mask`` (all bits by default, always correct).
    leaf_flag_bits: int = (1 << 64) - 1
    swap_flag_bits: int = (1 << 64) - 1

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        # (is leaf, value & flag bits, level) -> PtFlag (entry_flags()).
        self.flag_cache: Dict[Tuple[bool, int, PtLevel], PtFlag] = {}

    @cached_property
    def none_values(self) -> Tuple[Tuple[int, ...], ...]:
        """
        Per level (root first): every value that is none there, i.e. each
        combination of the bits outside :attr:`none_masks` (``(0,)`` for a
        plain zero test; x86's four A/D combinations). The walker looks for
        these in a whole table at C speed instead of testing every slot.
        """
        out: List[Tuple[int, ...]] = []
        for depth, mask in enumerate(self.none_masks):
            exact = None if self.none_exact is None else self.none_exact[depth]
            if exact is not None:
                out.append((exact,))
                continue
            free = [1 << b for b in range(64) if not mask >> b & 1]
            if len(free) > 4:
                raise ValueError(f"none mask {mask:#x} leaves {len(free)} bits free")
            vals = [0]
            for bit in free:
                vals += [v | bit for v in vals]
            out.append(tuple(vals))
        return tuple(out)

    # Geometry.
    @property
    def page_size(self) -> int:
        return 1 << self.page_shift

    def level_shift(self, level: PtLevel) -> int:
        """Address shift of one slot at *level*."""
        for lvl, shift, _ in self.levels:
            if lvl == level:
                return shift
        raise ValueError(f"no {level.name} level")

    def user_range(self) -> Tuple[int, int]:
        """``[start, end)`` of user addresses."""
        return 0, 1 << self.va_bits

    def kernel_range(self) -> Tuple[int, int]:
        """``[start, end)`` of kernel addresses."""
        return (1 << 64) - (1 << self.va_bits), 1 << 64

    def root(self, mm: Object) -> Tuple[int, bool]:
        """
        Address of the root table of *mm* and whether it is physical.

        :param mm: ``struct mm_struct *``
        """
        return mm.pgd.value_(), False

    def for_mm(self, mm: Object) -> "ArchDecoder":
        """
        The decoder of *mm*'s tables: this one, except where the depth is
        per mm (s390x: the ASCE type; see :mod:`drgn_ptwalk.arch.s390x`).

        :param mm: ``struct mm_struct *``
        """
        return self

    # Decoding; overridden by the architectures.
    def kind(self, value: int, depth: int) -> int:
        """Classify *value* found in a table at index *depth* of levels."""
        raise NotImplementedError

    def table_addr(self, value: int) -> int:
        """Physical address of the table a ``TABLE`` entry points to."""
        raise NotImplementedError

    def leaf_pfn(self, value: int, shift: int) -> int:
        """PFN of the first page of a ``LEAF`` entry mapping ``1 << shift``."""
        raise NotImplementedError

    def leaf_step(self, value: int) -> int:
        """Raw value difference between leaves of consecutive pages."""
        raise NotImplementedError

    def swp(self, value: int) -> Tuple[int, int]:
        """``(swap type, swap offset)`` of a ``SWAP`` entry."""
        raise NotImplementedError

    def swp_at(self, value: int, level: PtLevel) -> Tuple[int, int]:
        """:meth:`swp` of a ``SWAP`` entry at *level* (s390x's PMD/PUD
        swap entries have their own layout)."""
        return self.swp(value)

    def pte_decode(self, value: int) -> Tuple[int, Optional[int], Optional[int]]:
        """
        ``(kind, pfn, step)`` of a non-none PTE in one call (the hot path):
        for a ``LEAF`` its PFN and :meth:`leaf_step`, else ``(kind, None,
        None)``.
        """
        depth = len(self.levels) - 1
        kind = self.kind(value, depth)
        if kind == LEAF:
            return kind, self.leaf_pfn(value, self.page_shift), self.leaf_step(value)
        return kind, None, None

    def entry_flags(self, leaf: bool, value: int, level: PtLevel) -> PtFlag:
        """
        The :class:`~drgn_ptwalk.entry.PtFlag` bits of an entry of raw value
        *value*: a present leaf (*leaf*) or a swap-format entry. Cached by
        the bits :meth:`leaf_flags` / :meth:`swap_flags` read (the hot path
        of smaps and pagemap).
        """
        key = (leaf, value & (self.leaf_flag_bits if leaf else self.swap_flag_bits), level)
        f = self.flag_cache.get(key)
        if f is None:
            f = self.flag_cache[key] = PtFlag(
                self.leaf_flags(value, level) if leaf else self.swap_flags(value, level)
            )
        return f

    def leaf_flags(self, value: int, level: PtLevel) -> int:
        """:class:`~drgn_ptwalk.entry.PtFlag` bits of a ``LEAF`` entry."""
        raise NotImplementedError

    def swap_flags(self, value: int, level: PtLevel) -> int:
        """:class:`~drgn_ptwalk.entry.PtFlag` bits of a ``SWAP`` entry."""
        raise NotImplementedError

    def cont_valid(self, value: int) -> bool:
        """Whether *value* is a valid entry with the contiguous bit."""
        return False

    def cont_merge(self, values: Tuple[int, ...]) -> Tuple[int, ...]:
        """
        The values of one contiguous block as the kernel's getters return
        them: each with young/dirty ORed over the whole block.
        """
        return values


def get_decoder(prog: Program) -> ArchDecoder:
    """
    Return the :class:`ArchDecoder` for *prog*, cached in ``prog.cache``.

    :return: the decoder of *prog*'s architecture (and paging mode)

    :raises NotImplementedError: for architectures other than x86-64,
        AArch64, ppc64 (radix MMU), s390x and LoongArch64
    """
    try:
        return prog.cache["ptwalk_decoder"]
    except KeyError:
        pass
    arch = prog.platform.arch if prog.platform else None
    dec: Optional[ArchDecoder]
    if arch == Architecture.X86_64:
        from drgn_ptwalk.arch.x86_64 import X86_64Decoder

        dec = X86_64Decoder.from_program(prog)
    elif arch == Architecture.AARCH64:
        from drgn_ptwalk.arch.aarch64 import AArch64Decoder

        dec = AArch64Decoder.from_program(prog)
    elif arch == Architecture.PPC64:
        from drgn_ptwalk.arch.ppc64 import Ppc64RadixDecoder

        dec = Ppc64RadixDecoder.from_program(prog)
    elif arch == Architecture.S390X:
        from drgn_ptwalk.arch.s390x import S390xDecoder

        dec = S390xDecoder.from_program(prog)
    elif arch is not None and arch.name == "LOONGARCH64":  # by name: older drgn has no LOONGARCH64
        from drgn_ptwalk.arch.loongarch64 import LoongArch64Decoder

        dec = LoongArch64Decoder.from_program(prog)
    else:
        raise NotImplementedError(f"page-table walking is not supported on {arch}")
    prog.cache["ptwalk_decoder"] = dec
    return dec
