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
"""

from drgn_ptwalk.procfs.common import ProcfsWarning
from drgn_ptwalk.procfs.maps import maps, maps_mm
from drgn_ptwalk.procfs.numa_maps import numa_maps, numa_maps_mm
from drgn_ptwalk.procfs.pagemap import PagemapRecord, pagemap, pagemap_mm, pagemap_records
from drgn_ptwalk.procfs.smaps import (
    MemSizeStats,
    SmapsResult,
    SmapsVma,
    smaps,
    smaps_gather,
    smaps_mm,
    smaps_rollup,
    smaps_rollup_mm,
)

__all__ = (
    "MemSizeStats",
    "ProcfsWarning",
    "SmapsResult",
    "SmapsVma",
    "PagemapRecord",
    "maps",
    "maps_mm",
    "numa_maps",
    "numa_maps_mm",
    "pagemap",
    "pagemap_mm",
    "pagemap_records",
    "smaps",
    "smaps_gather",
    "smaps_mm",
    "smaps_rollup",
    "smaps_rollup_mm",
)
