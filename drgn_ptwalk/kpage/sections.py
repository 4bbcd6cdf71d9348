# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Where the /proc/kpage* files have pages: the SPARSEMEM sections that are online (and their subsection
maps), where the files end, and what a dump cannot hold of them.
"""

import struct
from typing import List, Optional, Tuple

from drgn import FaultError, Program, offsetof, sizeof

from drgn_ptwalk._byteorder import is_big_endian, struct_order
from drgn_ptwalk._compat import nr_to_section, section_flags
from drgn_ptwalk._kernel import var
from drgn_ptwalk.kpage.context import kpage_context
from drgn_ptwalk.page import swap_words

__all__ = ("kpage_unsupported", "max_dump_pfn", "pfn_online", "section_state", "section_states")


def kpage_unsupported(prog: Program) -> List[str]:
    """
    What of the three files this kernel keeps outside a dump's reach (empty on 64-bit kernels): each
    entry names the bit or file and why.

    :return: one line per bit or file this kernel keeps out of reach
    """
    out = []
    ctx = kpage_context(prog)
    if "idle" not in ctx.pg and var(prog, "page_idle_ops") is not None:
        out.append("KPF_IDLE: the idle bit is in page_ext (CONFIG_PAGE_IDLE_FLAG on a 32-bit kernel), "
                   "not read")
    if ctx.memcg is None:
        out.append("/proc/kpagecgroup: no CONFIG_MEMCG, the kernel has no such file")
    return out


def max_dump_pfn(prog: Program) -> int:
    """
    ``get_max_dump_pfn()``: where the files end (``max_pfn`` rounded up to a SPARSEMEM section).

    :return: the end PFN of the files, exclusive
    """
    pps = kpage_context(prog).pages_per_section
    return -(-prog["max_pfn"].value_() // pps) * pps


def section_state(prog: Program, nr: int) -> Tuple[bool, Optional[bytes]]:
    """(online, subsection map bytes or ``None`` when the whole section is valid) of section *nr*."""
    return section_states(prog, nr, nr + 1)[0]


def section_states(prog: Program, lo: int, hi: int) -> List[Tuple[bool, Optional[bytes]]]:
    """(online, subsection map bytes or ``None`` when the whole section is valid) of sections ``[lo, hi)``:
    ``SECTION_IS_ONLINE`` and ``SECTION_HAS_MEM_MAP`` set, and the subsection map, early sections' too:
    ``pfn_to_online_page()`` tests ``pfn_section_valid()`` whatever ``SECTION_IS_EARLY`` says
    (b13bc35193d9 "mm/hotplug: invalid PFNs from pfn_to_online_page()", v5.12; only ``pfn_valid()``
    takes an early section whole). A hole inside an early section (LoongArch's virt machine: RAM ends at
    256 MiB in a 512 MiB section) reads 0 in the kernel's kpageflags. The ``struct mem_section`` entries
    are read in bulk (one read per root: a root's entries are contiguous, ``SECTIONS_PER_ROOT`` of them
    with SPARSEMEM_EXTREME, all of them without)."""
    flags = section_flags(prog)
    online_bits = flags["SECTION_IS_ONLINE"] | flags["SECTION_HAS_MEM_MAP"]
    ms_type = prog.type("struct mem_section")
    size = ms_type.size
    map_off = offsetof(ms_type, "section_mem_map")
    usage_off = offsetof(ms_type, "usage") if ms_type.has_member("usage") else None
    smap_off = smap_size = None
    if usage_off is not None:
        usage_type = prog.type("struct mem_section_usage")
        if usage_type.has_member("subsection_map"):
            smap_off = offsetof(usage_type, "subsection_map")
            smap_size = sizeof(usage_type.member("subsection_map").type)
    per_root = prog["PAGE_SIZE"].value_() // size
    u64 = struct.Struct(struct_order(prog) + "Q")
    big = is_big_endian(prog)
    out: List[Tuple[bool, Optional[bytes]]] = []
    nr = lo
    while nr < hi:
        count = min(hi, (nr // per_root + 1) * per_root) - nr
        ms = nr_to_section(prog, nr)
        if not ms:
            out.extend([(False, None)] * count)
            nr += count
            continue
        raw = prog.read(ms.value_(), count * size)
        for k in range(count):
            value = u64.unpack_from(raw, k * size + map_off)[0]
            if value & online_bits != online_bits:
                out.append((False, None))
            elif smap_off is None:
                out.append((True, None))
            else:
                usage = u64.unpack_from(raw, k * size + usage_off)[0]
                try:
                    smap = prog.read(usage + smap_off, smap_size) if usage else None
                except FaultError:
                    smap = None
                # a bitmap of unsigned longs: bit i in byte i // 8 once its words are little-endian
                out.append((True, swap_words(smap) if big and smap is not None else smap))
        nr += count
    return out


def pfn_online(prog: Program, pfn: int) -> bool:
    """
    ``pfn_to_online_page(pfn) != NULL``: *pfn* is online memory with a ``struct page``.

    :param pfn: a page frame number
    :return: whether it is online
    """
    ctx = kpage_context(prog)
    if pfn < 0:
        return False
    online, smap = section_state(prog, pfn // ctx.pages_per_section)
    if not online or smap is None:
        return online
    i = (pfn % ctx.pages_per_section) // ctx.pages_per_subsection
    return bool(smap[i // 8] >> (i % 8) & 1)
