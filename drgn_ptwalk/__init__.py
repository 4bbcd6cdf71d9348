# SPDX-License-Identifier: LGPL-2.1-or-later
"""
drgn-ptwalk: walk a task's real page tables in a live kernel or crash dump.

The public API is :func:`pt_range_walk` and its result type
:class:`PtEntry`; :mod:`drgn_ptwalk.page` gives fast ``struct page`` access.
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
from drgn_ptwalk.swapinfo import SwapTypes, swap_types
from drgn_ptwalk.walk import mm_segments, pt_range_walk

__all__ = (
    "ArchDecoder",
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
