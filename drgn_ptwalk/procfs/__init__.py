# SPDX-License-Identifier: LGPL-2.1-or-later
"""
/proc/PID/{maps,smaps,smaps_rollup,numa_maps,pagemap} rebuilt from a live
kernel or a crash dump, byte for byte as the kernel would print them.

Text files come back as ``str`` (bytes that are not UTF-8 are kept with the
``surrogateescape`` error handler: ``s.encode("utf-8", "surrogateescape")``
gives the kernel's bytes); pagemap as ``bytes``.

What a dump cannot tell (a ``struct page`` or page table left out of a
filtered dump) is never guessed: it is reported with :func:`warnings.warn`
(category :class:`ProcfsWarning`) and, for the ``*_result()`` functions, in
the ``warnings`` list of the result.
"""

from drgn_ptwalk.procfs.maps import maps, maps_mm
from drgn_ptwalk.procfs.common import ProcfsWarning

__all__ = (
    "ProcfsWarning",
    "maps",
    "maps_mm",
)
