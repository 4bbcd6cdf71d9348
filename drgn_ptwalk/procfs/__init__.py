# SPDX-License-Identifier: LGPL-2.1-or-later
"""
/proc/PID/{maps,smaps,smaps_rollup,numa_maps,pagemap} rebuilt from a live
kernel or a crash dump, byte for byte as the kernel would print them.

Text files come back as ``str`` (bytes that are not UTF-8 are kept with the
``surrogateescape`` error handler: ``s.encode("utf-8", "surrogateescape")``
gives the kernel's bytes); pagemap as ``bytes``.

What a dump cannot tell (a ``struct page``, page table or swap map left out
of a filtered dump) is never guessed: it is reported with
:func:`warnings.warn` (category :class:`ProcfsWarning`) and collected in the
``warnings`` list of the ``*_gather()`` results.

Corrupt dumps (the contract every file here keeps; see
:mod:`drgn_ptwalk.procfs.common`):

* a corrupt or unreadable VMA tree (bad maple node type, garbage node
  pointer, a loop, a VMA not where the tree files it) raises
  :class:`~drgn_ptwalk.vmatree.VmaTreeError` (a
  :class:`~drgn_ptwalk.vmatree.PtWalkError`) carrying the address of the bad
  node or VMA, its level and the reason; the VMAs are read with
  :func:`~drgn_ptwalk.vmatree.checked_vmas`, the reader the walker uses
  (bounded, loop-safe). The CLI prints it as one line and exits with 2;
* a VMA whose fields (``vm_file``, its inode or path, ``vm_flags``, the
  hugetlb hstate, ...) cannot be read or make no sense is left out (pagemap:
  its entries are 0) with a :class:`ProcfsWarning` naming the VMA, its range
  and what could not be read; the rest of the file is printed;
* a ``struct page`` that cannot be read (not in the dump, or a garbage PFN
  beyond ``highest_memmap_pfn``) and a page-table entry that cannot be at its
  level leave out what needed them, with a :class:`ProcfsWarning` saying
  what and where.
"""

from drgn_ptwalk.procfs.common import ProcfsWarning, VmaFieldError
from drgn_ptwalk.procfs.maps import maps, maps_mm
from drgn_ptwalk.procfs.numa_maps import numa_maps, numa_maps_mm
from drgn_ptwalk.procfs.pagemap import PagemapRecord, pagemap, pagemap_mm, pagemap_pieces, pagemap_records
from drgn_ptwalk.procfs.smaps import (
    MemSizeStats,
    SmapsResult,
    SmapsVma,
    smaps,
    smaps_gather,
    smaps_mm,
    smaps_rollup,
    smaps_rollup_mm,
    smaps_totals,
)

__all__ = (
    "MemSizeStats",
    "ProcfsWarning",
    "SmapsResult",
    "SmapsVma",
    "PagemapRecord",
    "VmaFieldError",
    "maps",
    "maps_mm",
    "numa_maps",
    "numa_maps_mm",
    "pagemap",
    "pagemap_mm",
    "pagemap_pieces",
    "pagemap_records",
    "smaps",
    "smaps_gather",
    "smaps_mm",
    "smaps_rollup",
    "smaps_rollup_mm",
    "smaps_totals",
)
