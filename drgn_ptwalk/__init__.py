# SPDX-License-Identifier: LGPL-2.1-or-later
"""
drgn-ptwalk: walk a task's real page tables in a live kernel or crash dump.

The public API is :func:`pt_range_walk` and its result type :class:`PtEntry`; :mod:`drgn_ptwalk.page`
reads ``struct page``/folio state; :mod:`drgn_ptwalk.kpage` rebuilds /proc/kpageflags, kpagecount and
kpagecgroup; :func:`whomaps` finds who maps a physical page (:mod:`drgn_ptwalk.rmap`); :mod:`drgn_ptwalk.procfs` rebuilds /proc/PID/{maps,smaps,smaps_rollup,
numa_maps,pagemap} on the walker; :func:`memtop` ranks processes by memory; every public exception and
warning is in :mod:`drgn_ptwalk.errors`. The names below are imported when first used, so that loading
the drgn plugin (which imports this package) costs only registering its commands.
"""

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

# name -> the module that defines it.
_EXPORTS: Dict[str, str] = {
    "ArchDecoder": "drgn_ptwalk.arch",
    "get_decoder": "drgn_ptwalk.arch",
    "PtEntry": "drgn_ptwalk.entry",
    "PtFlag": "drgn_ptwalk.entry",
    "PtLevel": "drgn_ptwalk.entry",
    "PtType": "drgn_ptwalk.entry",
    "MissingDependencyError": "drgn_ptwalk.errors",
    "NoMmError": "drgn_ptwalk.errors",
    "ProcfsWarning": "drgn_ptwalk.errors",
    "ProgramError": "drgn_ptwalk.errors",
    "PtWalkError": "drgn_ptwalk.errors",
    "TaskNotFoundError": "drgn_ptwalk.errors",
    "UnsupportedKernelError": "drgn_ptwalk.errors",
    "VmaFieldError": "drgn_ptwalk.errors",
    "VmaTreeError": "drgn_ptwalk.errors",
    "KPF": "drgn_ptwalk.kpage",
    "KpageValues": "drgn_ptwalk.kpage",
    "kpage_chunks": "drgn_ptwalk.kpage",
    "kpage_values": "drgn_ptwalk.kpage",
    "kpagecgroup": "drgn_ptwalk.kpage",
    "kpagecount": "drgn_ptwalk.kpage",
    "kpageflags": "drgn_ptwalk.kpage",
    "max_dump_pfn": "drgn_ptwalk.kpage",
    "pfn_online": "drgn_ptwalk.kpage",
    "COUNTER_RULES": "drgn_ptwalk.filecache",
    "CachedFile": "drgn_ptwalk.filecache",
    "FileCacheSummary": "drgn_ptwalk.filecache",
    "SuperBlockCache": "drgn_ptwalk.filecache",
    "filecache": "drgn_ptwalk.filecache",
    "MemmapRow": "drgn_ptwalk.memmap",
    "MemmapSummary": "drgn_ptwalk.memmap",
    "memmap": "drgn_ptwalk.memmap",
    "PageKind": "drgn_ptwalk.rmap",
    "TableOwner": "drgn_ptwalk.rmap",
    "WhoMaps": "drgn_ptwalk.rmap",
    "WhoSwaps": "drgn_ptwalk.rmap",
    "page_kind": "drgn_ptwalk.rmap",
    "page_table_owners": "drgn_ptwalk.rmap",
    "whomaps": "drgn_ptwalk.rmap",
    "whomaps_pfns": "drgn_ptwalk.rmap",
    "whoswaps": "drgn_ptwalk.rmap",
    "PageInfo": "drgn_ptwalk.page",
    "compound_head_pfn": "drgn_ptwalk.page",
    "folio_info": "drgn_ptwalk.page",
    "folio_order": "drgn_ptwalk.page",
    "folio_runs": "drgn_ptwalk.page",
    "page_info": "drgn_ptwalk.page",
    "page_infos": "drgn_ptwalk.page",
    "MemSizeStats": "drgn_ptwalk.procfs",
    "maps": "drgn_ptwalk.procfs",
    "maps_mm": "drgn_ptwalk.procfs",
    "numa_maps": "drgn_ptwalk.procfs",
    "numa_maps_mm": "drgn_ptwalk.procfs",
    "pagemap": "drgn_ptwalk.procfs",
    "pagemap_mm": "drgn_ptwalk.procfs",
    "smaps": "drgn_ptwalk.procfs",
    "smaps_gather": "drgn_ptwalk.procfs",
    "smaps_mm": "drgn_ptwalk.procfs",
    "smaps_rollup": "drgn_ptwalk.procfs",
    "smaps_rollup_mm": "drgn_ptwalk.procfs",
    "MemtopRow": "drgn_ptwalk.procfs.memtop",
    "memtop": "drgn_ptwalk.procfs.memtop",
    "print_memtop": "drgn_ptwalk.commands.memtop",
    "open_program": "drgn_ptwalk.program",
    "SwapTypes": "drgn_ptwalk.swapinfo",
    "swap_types": "drgn_ptwalk.swapinfo",
    "find_target": "drgn_ptwalk.tasks",
    "get_task_mm": "drgn_ptwalk.tasks",
    "task_mm": "drgn_ptwalk.tasks",
    "mm_segments": "drgn_ptwalk.walk",
    "pt_range_walk": "drgn_ptwalk.walk",
}

__all__ = tuple(sorted(_EXPORTS))


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.arch import ArchDecoder, get_decoder
    from drgn_ptwalk.commands.memtop import print_memtop
    from drgn_ptwalk.entry import PtEntry, PtFlag, PtLevel, PtType
    from drgn_ptwalk.errors import (
        MissingDependencyError,
        NoMmError,
        ProcfsWarning,
        ProgramError,
        PtWalkError,
        TaskNotFoundError,
        VmaFieldError,
        VmaTreeError,
    )
    from drgn_ptwalk.kpage import (
        KPF,
        KpageValues,
        kpage_chunks,
        kpage_values,
        kpagecgroup,
        kpagecount,
        kpageflags,
        max_dump_pfn,
        pfn_online,
    )
    from drgn_ptwalk.page import (
        PageInfo,
        compound_head_pfn,
        folio_info,
        folio_order,
        folio_runs,
        page_info,
        page_infos,
    )
    from drgn_ptwalk.procfs import (
        MemSizeStats,
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
    from drgn_ptwalk.procfs.memtop import MemtopRow, memtop
    from drgn_ptwalk.filecache import COUNTER_RULES, CachedFile, FileCacheSummary, SuperBlockCache, filecache
    from drgn_ptwalk.memmap import MemmapRow, MemmapSummary, memmap
    from drgn_ptwalk.program import open_program
    from drgn_ptwalk.rmap import (
        PageKind,
        TableOwner,
        WhoMaps,
        WhoSwaps,
        page_kind,
        page_table_owners,
        whomaps,
        whomaps_pfns,
        whoswaps,
    )
    from drgn_ptwalk.swapinfo import SwapTypes, swap_types
    from drgn_ptwalk.tasks import find_target, get_task_mm, task_mm
    from drgn_ptwalk.walk import mm_segments, pt_range_walk
