# SPDX-License-Identifier: LGPL-2.1-or-later
"""
drgn-ptwalk: walk a task's real page tables in a live kernel or crash dump.

The public API is :func:`pt_range_walk` and its result type
:class:`PtEntry`; :mod:`drgn_ptwalk.page` gives fast ``struct page`` access;
:mod:`drgn_ptwalk.procfs` rebuilds /proc/PID/{maps,smaps,smaps_rollup,
numa_maps,pagemap} on the walker; :func:`memtop` ranks processes by memory.
"""

from drgn_ptwalk.arch import ArchDecoder, get_decoder
from drgn_ptwalk.entry import PtEntry, PtFlag, PtLevel, PtType
from drgn_ptwalk.page import (
    PageInfo,
    compound_head_pfn,
    folio_info,
    folio_order,
    folio_runs,
    page_info,
    page_infos,
)
from drgn_ptwalk.memtop import MemtopRow, memtop, print_memtop
from drgn_ptwalk.procfs import (
    MemSizeStats,
    ProcfsWarning,
    maps,
    maps_mm,
    numa_maps,
    numa_maps_mm,
    pagemap,
    pagemap_mm,
    smaps,
    smaps_gather,
    smaps_mm,
    smaps_rollup,
    smaps_rollup_mm,
)
from drgn_ptwalk.program import ProgramError, open_program
from drgn_ptwalk.swapinfo import SwapTypes, swap_types
from drgn_ptwalk.tasks import NoMmError, TaskNotFoundError, find_target, get_task_mm, task_mm
from drgn_ptwalk.walk import mm_segments, pt_range_walk

__all__ = (
    "ArchDecoder",
    "MemSizeStats",
    "MemtopRow",
    "NoMmError",
    "ProcfsWarning",
    "ProgramError",
    "TaskNotFoundError",
    "find_target",
    "get_task_mm",
    "maps",
    "maps_mm",
    "memtop",
    "numa_maps",
    "numa_maps_mm",
    "open_program",
    "pagemap",
    "pagemap_mm",
    "print_memtop",
    "smaps",
    "smaps_gather",
    "smaps_mm",
    "smaps_rollup",
    "smaps_rollup_mm",
    "task_mm",
    "PageInfo",
    "PtEntry",
    "PtFlag",
    "PtLevel",
    "PtType",
    "SwapTypes",
    "compound_head_pfn",
    "folio_info",
    "folio_order",
    "folio_runs",
    "get_decoder",
    "mm_segments",
    "page_info",
    "page_infos",
    "pt_range_walk",
    "swap_types",
)
