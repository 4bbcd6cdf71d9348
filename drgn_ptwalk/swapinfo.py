# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Classification of swap-format (non-present, non-none) entries.

The kernel packs every non-present entry into a ``swp_entry_t`` (called
``softleaf_t`` since 7.x; the classification below is the same either way):
types below ``MAX_SWAPFILES`` are real swap devices, the types above it are
special entries, in this order (include/linux/swap.h)::

    HWPOISON            if CONFIG_MEMORY_FAILURE               (1)
    MIGRATION_READ, MIGRATION_READ_EXCLUSIVE, MIGRATION_WRITE
                        if CONFIG_MIGRATION                    (3)
    DEVICE_*            if CONFIG_DEVICE_PRIVATE               (4 or 3)
    PTE_MARKER          always since v6.2-ish, before only with
                        CONFIG_PTE_MARKER                      (1)
    SWAPIN_ERROR        up to v6.1                             (1)

How the numbers are derived from the dump: ``MAX_SWAPFILES`` is the length
of the ``swap_info[]`` array (``struct swap_info_struct
*swap_info[MAX_SWAPFILES]``), so ``32 - len(swap_info)`` special types exist.
HWPOISON and MIGRATION are present iff their code is built in
(``memory_failure()``, ``migrate_pages()``). The remaining count is split
into device/marker/swapin-error types by the combinations the kernel has had:

* SWAPIN_ERROR (``SWP_SWAPIN_ERROR``, from "mm/swapfile: unuse_pte can map
  random data if swap read fails", v5.19) was turned into a PTE marker by
  "mm: use pte markers for swap errors" (v6.2) and later renamed
  PTE_MARKER_POISONED ("mm: make PTE_MARKER_SWAPIN_ERROR more general",
  v6.5); we report it as ``MARKER`` kind ``"poisoned"``.
* Device entries were WRITE, READ, EXCLUSIVE_WRITE, EXCLUSIVE_READ (4) until
  the exclusive read/write pair became one SWP_DEVICE_EXCLUSIVE (3) in David
  Hildenbrand's device-exclusive rework: commit c25465eb7630 ("mm: use single
  SWP_DEVICE_EXCLUSIVE entry type"), v6.15. Debian 7.2 (DEVICE_PRIVATE=y):
  32 - 24 = 8 special types = 1 + 3 + 3 + 1, which only the 3-type layout
  fits.

Marker bits (offset of a PTE_MARKER entry): BIT(0) uffd-wp, BIT(1) poisoned
(v6.5+), BIT(2) guard ("mm: madvise: implement lightweight guard page
mechanism", v6.13).
"""

from typing import Dict, NamedTuple, Optional, Tuple

from drgn import Program

from drgn_ptwalk.entry import PtType

__all__ = ("SwapTypes", "classify_swp", "marker_names", "swap_types")


class SwapTypes(NamedTuple):
    """The swap type numbers of a kernel."""

    max_swapfiles: int
    """``MAX_SWAPFILES``: types below it are swap devices."""
    special: Dict[int, Tuple[PtType, Optional[str]]]
    """type number → (:class:`PtType`, kind) for the special types."""
    marker: Optional[int]
    """``SWP_PTE_MARKER`` or ``None``."""
    swapin_error: Optional[int]
    """``SWP_SWAPIN_ERROR`` (≤ v6.1) or ``None``."""


# (device types, marker, swapin error) combinations, most recent first.
_DEVICE_KINDS = {
    0: (),
    3: ("private_write", "private_read", "exclusive"),
    4: ("private_write", "private_read", "exclusive_write", "exclusive_read"),
}
_COMBOS = (
    (0, 1, 0),
    (3, 1, 0),
    (4, 1, 0),
    (0, 1, 1),
    (4, 1, 1),
    (0, 0, 1),
    (4, 0, 1),
    (0, 0, 0),
    (3, 0, 0),
    (4, 0, 0),
)


def make_swap_types(
    max_swapfiles: int, hwpoison: bool, migration: bool
) -> SwapTypes:
    """Lay out the special types above *max_swapfiles* (see module doc)."""
    rem = 32 - max_swapfiles - int(hwpoison) - (3 if migration else 0)
    for ndev, nmarker, nerr in _COMBOS:
        if ndev + nmarker + nerr == rem:
            break
    else:
        raise ValueError(
            f"cannot lay out {32 - max_swapfiles} special swap types "
            f"(MAX_SWAPFILES={max_swapfiles})"
        )
    special: Dict[int, Tuple[PtType, Optional[str]]] = {}
    t = max_swapfiles
    if hwpoison:
        special[t] = (PtType.HWPOISON, None)
        t += 1
    if migration:
        for kind in ("read", "read_exclusive", "write"):
            special[t] = (PtType.MIGRATION, kind)
            t += 1
    for kind in _DEVICE_KINDS[ndev]:
        special[t] = (PtType.DEVICE, kind)
        t += 1
    marker = swapin_error = None
    if nmarker:
        marker = t
        special[t] = (PtType.MARKER, None)
        t += 1
    if nerr:
        swapin_error = t
        special[t] = (PtType.MARKER, "poisoned")
        t += 1
    return SwapTypes(max_swapfiles, special, marker, swapin_error)


def swap_types(prog: Program) -> SwapTypes:
    """
    The swap-entry type numbers of the kernel in *prog* (cached).

    :return: ``MAX_SWAPFILES`` and the types of migration, device, hwpoison and marker entries
    """
    try:
        return prog.cache["ptwalk_swap_types"]
    except KeyError:
        pass
    max_swapfiles = len(prog["swap_info"])
    st = make_swap_types(
        max_swapfiles,
        hwpoison="memory_failure" in prog,
        migration="migrate_pages" in prog,
    )
    prog.cache["ptwalk_swap_types"] = st
    return st


_MARKER_BITS = ((1, "uffd_wp"), (2, "poisoned"), (4, "guard"))


def marker_names(bits: int) -> str:
    """
    ``"uffd_wp|guard"``-style name of PTE marker *bits*.

    :param bits: the marker's bits (``PTE_MARKER_*``)
    :return: the names of the bits set, ``|``-separated (unknown bits in hex)
    """
    names = [name for bit, name in _MARKER_BITS if bits & bit]
    rest = bits & ~7
    if rest:
        names.append(f"{rest:#x}")
    return "|".join(names) if names else "none"


def classify_swp(
    st: SwapTypes, type: int, offset: int, pfn_mask: int
) -> Tuple[PtType, Optional[str], Optional[int]]:
    """
    Classify swap entry ``(type, offset)``.

    :param st: the kernel's swap types (:func:`swap_types`)
    :param type: the entry's swap type
    :param offset: the entry's swap offset
    :param pfn_mask: ``SWP_PFN_MASK`` (PFN bits of a PFN-carrying offset)
    :return: ``(PtType, kind, pfn)``; *pfn* for migration, device and
        hwpoison entries, else ``None``
    """
    if type < st.max_swapfiles:
        return PtType.SWAP, None, None
    try:
        t, kind = st.special[type]
    except KeyError:
        return PtType.ERROR, f"unknown swap type {type}", None
    if t == PtType.MARKER:
        if type == st.marker:
            return t, marker_names(offset), None
        return t, kind, None
    return t, kind, offset & pfn_mask
