# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The result type of :func:`~drgn_ptwalk.walk.pt_range_walk`: :class:`PtEntry`
with its enums :class:`PtType`, :class:`PtLevel` and :class:`PtFlag`.

Entries are made in the hot loop of the walker, so :class:`PtEntry` stores
only what the walker knows anyway (raw value, first PFN / swap fields) and
decodes flags, pages and folios when asked.
"""

import enum
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Sequence, Tuple

from drgn import Object

if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.arch import ArchDecoder

__all__ = ("PtEntry", "PtFlag", "PtLevel", "PtType")


class PtType(enum.IntEnum):
    """What a range of the address space holds (the RFC's ``PT_TYPE_*``)."""

    NONE = 0
    """Nothing: ``pte_none()``, an empty or missing table."""
    FOLIO = 1
    """Present, mapping a normal page (``vm_normal_page()`` would return it)."""
    MARKER = 2
    """A PTE marker (uffd-wp, poisoned, guard)."""
    PFN = 3
    """Present, but no normal page: special, zero page, PFNMAP, beyond memmap."""
    SWAP = 4
    """A swap entry of a real swap device."""
    MIGRATION = 5
    """A migration entry (read, read-exclusive, write)."""
    DEVICE = 6
    """A device-private or device-exclusive entry."""
    HWPOISON = 7
    """A hardware-poisoned page."""
    ERROR = 8
    """A table that could not be read, or an entry that makes no sense."""


class PtLevel(enum.IntEnum):
    """Page-table level of an entry (number of levels below it, plus one)."""

    PTE = 1
    PMD = 2
    PUD = 3
    P4D = 4
    PGD = 5


class PtFlag(enum.IntFlag):
    """State bits of an entry, decoded from the raw value by the arch code."""

    PRESENT = 1 << 0
    """``pte_present()``: includes PROT_NONE / NUMA-hinting entries."""
    WRITE = 1 << 1
    DIRTY = 1 << 2
    YOUNG = 1 << 3
    SOFT_DIRTY = 1 << 4
    UFFD_WP = 1 << 5
    EXCLUSIVE = 1 << 6
    """Swap-format entries: the arch "swp exclusive" bit (anon-exclusive)."""
    SPECIAL = 1 << 7
    PROTNONE = 1 << 8
    """``pte_protnone()``: PROT_NONE mapping or NUMA-balancing hint."""


# Lower-case names for the JSON/table views ("soft_dirty", ...).
FLAG_NAMES = tuple((f, f.name.lower()) for f in PtFlag)  # type: ignore[union-attr]


class PtEntry(NamedTuple):
    """
    One entry of a page-table walk: a range ``[start, end)`` of one type.

    Batched entries cover several page-table slots; their pages have
    consecutive PFNs (or swap offsets) and identical state bits.

    A ``NamedTuple`` (cheap to make in the walker's hot loop); the decoded
    views (:attr:`flags`, :meth:`page`, ...) are computed when asked for.
    Two entries are equal when they say the same (type, level, range, raw
    value, PFN, swap fields, kind, VMA, table, reason), whatever decoder and
    table bytes they were read with.
    """

    type: PtType
    """:class:`PtType`."""
    level: PtLevel
    """:class:`PtLevel` of the slots (for ``ERROR``: of the table that could
    not be read)."""
    start: int
    """First address."""
    end: int
    """Address after the last."""
    raw: int = 0
    """Raw value of the first slot as the kernel reads it (``ptep_get()``:
    arm64 contiguous blocks have young/dirty ORed in)."""
    pfn: Optional[int] = None
    """PFN of the first page: present entries and PFN-carrying swap entries
    (migration, device, hwpoison); else ``None``."""
    cont: bool = False
    """Whether the slots carry the arm64 contiguous bit."""
    vma: Optional[int] = None
    """Address of the ``struct vm_area_struct`` or ``None``."""
    swap_type: Optional[int] = None
    """Swap type number of swap-format entries."""
    swap_offset: Optional[int] = None
    """Swap offset of the first page of swap-format entries (for
    PFN-carrying ones it may include non-PFN bits, see :attr:`pfn`)."""
    kind: Optional[str] = None
    """Migration ``"read"``, ``"read_exclusive"``, ``"write"``; device
    ``"private_read"``, ``"private_write"``, ``"exclusive"``,
    ``"exclusive_read"``, ``"exclusive_write"``; marker names joined by
    ``"|"`` (``"uffd_wp"``, ``"poisoned"``, ``"guard"``); else ``None``."""
    table: Optional[int] = None
    """``ERROR``: address of the table (physical; virtual for the root)."""
    reason: Optional[str] = None
    """``ERROR``: why."""
    decoder: "Optional[ArchDecoder]" = None
    """The arch decoder (for the decoded views)."""
    values: Optional[Sequence[int]] = None
    """The table the slots are in (see :attr:`raws`)."""
    slot: int = 0
    """Index of the first slot in :attr:`values`."""

    # Sizes.
    @property
    def size(self) -> int:
        """Size in bytes."""
        return self.end - self.start

    @property
    def nr_pages(self) -> int:
        """Number of base pages."""
        dec = self.decoder
        shift = dec.page_shift if dec is not None else 12
        return (self.end - self.start) >> shift

    # Raw values.
    @property
    def raws(self) -> Tuple[int, ...]:
        """
        The raw values of the slots this entry covers, as stored in the
        table (not ORed). Empty for ``NONE``/``ERROR`` entries.
        """
        tbl = self.values
        if tbl is None or self.decoder is None:
            return ()
        shift = self.decoder.level_shift(self.level)
        first = self.start >> shift
        last = (self.end - 1) >> shift
        return tuple(tbl[self.slot : self.slot + last - first + 1])

    # Equality: what the entry says, not the decoder and table it was read with.
    def __eq__(self, other: object) -> bool:
        if isinstance(other, PtEntry):
            return self[:_SAID] == other[:_SAID]
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, PtEntry):
            return self[:_SAID] != other[:_SAID]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self[:_SAID])

    # State bits.
    @property
    def flags(self) -> PtFlag:
        """Decoded :class:`PtFlag` bits (from :attr:`raw`, by the decoder)."""
        t = self.type
        dec = self.decoder
        if t == PtType.NONE or t == PtType.ERROR or dec is None:
            return PtFlag(0)
        return dec.entry_flags(t == PtType.FOLIO or t == PtType.PFN, self.raw, self.level)

    @property
    def present(self) -> bool:
        return self.type == PtType.FOLIO or self.type == PtType.PFN

    @property
    def writable(self) -> bool:
        return bool(self.flags & PtFlag.WRITE)

    @property
    def dirty(self) -> bool:
        return bool(self.flags & PtFlag.DIRTY)

    @property
    def young(self) -> bool:
        return bool(self.flags & PtFlag.YOUNG)

    @property
    def soft_dirty(self) -> bool:
        return bool(self.flags & PtFlag.SOFT_DIRTY)

    @property
    def uffd_wp(self) -> bool:
        """uffd-wp bit of a present or swap entry, or a uffd-wp marker."""
        if self.type == PtType.MARKER and self.kind and "uffd_wp" in self.kind:
            return True
        return bool(self.flags & PtFlag.UFFD_WP)

    @property
    def special(self) -> bool:
        return bool(self.flags & PtFlag.SPECIAL)

    @property
    def protnone(self) -> bool:
        return bool(self.flags & PtFlag.PROTNONE)

    @property
    def anon_exclusive(self) -> bool:
        """
        Whether the anonymous page is exclusive to this mm: the swap
        "exclusive" bit for swap-format entries, ``PG_anon_exclusive`` of the
        first page for present ones.
        """
        if self.present:
            if self.type != PtType.FOLIO or self.decoder is None:
                return False
            from drgn_ptwalk.page import page_info, page_is_anon_exclusive

            return page_is_anon_exclusive(
                self.decoder.prog, page_info(self.decoder.prog, self.pfn)  # type: ignore[arg-type]
            )
        return bool(self.flags & PtFlag.EXCLUSIVE)

    # Markers / migration.
    @property
    def migration(self) -> Optional[str]:
        return self.kind if self.type == PtType.MIGRATION else None

    @property
    def marker(self) -> Optional[str]:
        return self.kind if self.type == PtType.MARKER else None

    # drgn objects, made only when asked for.
    def page(self, index: int = 0) -> Object:
        """
        ``struct page *`` of page *index* of this entry.

        :raises ValueError: if the entry has no PFN
        """
        if self.pfn is None or self.decoder is None:
            raise ValueError(f"{self.type.name} entry has no page")
        from drgn.helpers.linux.mm import pfn_to_page

        return pfn_to_page(self.decoder.prog, self.pfn + index)

    def folio(self) -> Object:
        """
        ``struct folio *`` containing the first page of this entry.

        :raises ValueError: if the entry has no PFN
        """
        if self.pfn is None or self.decoder is None:
            raise ValueError(f"{self.type.name} entry has no folio")
        from drgn import cast
        from drgn.helpers.linux.mm import pfn_to_page

        from drgn_ptwalk.page import compound_head_pfn

        prog = self.decoder.prog
        return cast(
            "struct folio *", pfn_to_page(prog, compound_head_pfn(prog, self.pfn))
        )

    def flag_names(self) -> Tuple[str, ...]:
        """Lower-case names of the set flags (for tables and JSON)."""
        flags = self.flags
        names = [name for f, name in FLAG_NAMES if flags & f]
        if self.cont:
            names.append("cont")
        return tuple(names)

    def as_dict(self) -> "dict[str, Any]":
        """A JSON-ready dictionary of the entry."""
        return {
            "type": self.type.name.lower(),
            "level": self.level.name.lower(),
            "cont": self.cont,
            "start": self.start,
            "end": self.end,
            "nr_pages": self.nr_pages,
            "pfn": self.pfn,
            "swap_type": self.swap_type,
            "swap_offset": self.swap_offset,
            "kind": self.kind,
            "flags": list(self.flag_names()),
            "raw": self.raw,
            "vma": self.vma,
            "table": self.table,
            "reason": self.reason,
        }

    def __repr__(self) -> str:
        parts = [
            f"{self.type.name}",
            f"{self.level.name}{'+cont' if self.cont else ''}",
            f"{self.start:#x}-{self.end:#x}",
        ]
        if self.pfn is not None:
            parts.append(f"pfn={self.pfn:#x}")
        if self.swap_type is not None:
            parts.append(f"swp={self.swap_type}:{self.swap_offset:#x}")
        if self.kind:
            parts.append(self.kind)
        if self.reason:
            parts.append(f"table={self.table:#x} {self.reason}" if self.table is not None else self.reason)
        names = self.flag_names()
        if names:
            parts.append(",".join(names))
        return f"PtEntry({' '.join(parts)})"


_SAID = PtEntry._fields.index("decoder")
"""The fields before this one are what an entry says (compared by ``==``); the rest is how it was read."""
