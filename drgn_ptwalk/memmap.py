# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Where the memory went: every PFN of the machine in exactly one row, from its /proc/kpageflags value
(:mod:`drgn_ptwalk.kpage`), next to the kernel's own counter where it keeps one.

:func:`memmap` returns the rows (they add up to the PFNs /proc/kpageflags covers) and the page-types style
census (pages per distinct kpageflags value). The kernel counters are read from the dump
(``vm_zone_stat``, ``vm_node_stat``, ``totalram_pages``, the hstates): what /proc/meminfo would have
printed at the dump. They differ from the rows by rule, not by error; :data:`RULES` says how, per row.
"""

from collections import Counter
from typing import Dict, List, NamedTuple, Optional, Tuple

from drgn import Program

from drgn_ptwalk.kpage import KPF, file_chunks, max_dump_pfn
from drgn_ptwalk.kpage.context import kpage_context
from drgn_ptwalk.kpage.sections import section_states

__all__ = ("MemmapRow", "MemmapSummary", "RULES", "hole_value", "kpf_names", "kpf_row", "memmap", "offline_sections",
           "vm_stat")


class MemmapRow(NamedTuple):
    """One row: *pages* PFNs, and the kernel's counter for the same thing (``None``: it keeps none)."""

    name: str
    pages: int
    counter: Optional[int]
    """Pages the kernel counts (its /proc/meminfo field in :data:`RULES`)."""


class MemmapSummary(NamedTuple):
    rows: List[MemmapRow]
    total: int
    """PFNs covered (``get_max_dump_pfn()``): the rows add up to it."""
    page_size: int
    census: List[Tuple[int, int]]
    """(kpageflags value, pages), most pages first: the ``page-types`` view."""


RULES: Dict[str, str] = {
    "hole": "no online struct page (no counter; MemTotal is the managed pages of the other rows less "
            "reserved and early allocations)",
    "free": "MemFree (NR_FREE_PAGES): buddy pages; free pages on per-CPU lists are neither (they count "
            "under other kernel)",
    "hugetlb": "HugePages_Total x Hugepagesize: the pool, used and free",
    "slab": "Slab (NR_SLAB_RECLAIMABLE_B + NR_SLAB_UNRECLAIMABLE_B, in pages): the same pages; large "
            "kmalloc()s are counted there too but are not slab pages (other kernel here)",
    "page_tables": "PageTables (NR_PAGETABLE) + SecPageTables where the kernel has it",
    "anon_mapped": "AnonPages (NR_ANON_MAPPED) counts the mapped pages of anonymous folios; kpageflags' "
                   "KPF_MMAP marks every page of a large folio any page of which is mapped, so a partly "
                   "mapped THP counts whole here",
    "anon_unmapped": "anonymous pages no process maps (swap cache, being freed): no counter",
    "shmem": "Shmem (NR_SHMEM): tmpfs, SysV and shared anonymous pages in their file's page cache, mapped "
             "or not: the pages flagged swap-backed, not anonymous and not in the swap cache",
    "shmem_swapcache": "shmem pages written to swap and still in the swap cache: out of their file's page "
                       "cache, so out of Shmem (SwapCached counts them with the anonymous ones)",
    "file_mapped": "Mapped (NR_FILE_MAPPED) counts the mapped pages of file and shmem folios: shmem's "
                   "mapped pages are in the shmem row here",
    "file_unmapped": "page cache no process maps: Cached - Shmem - Mapped (the kernel counts folios on "
                     "and off the LRU alike)",
    "zero_page": "the shared zero pages: no counter",
    "reserved": "PG_reserved (kernel image, memmap, firmware): not in MemTotal",
    "offline": "logically offline (balloons): no counter",
    "hwpoison": "HardwareCorrupted",
    "other_kernel": "the rest: kernel stacks, vmalloc, per-CPU free lists, buffers, drivers (no single "
                    "counter)",
}

_ORDER = tuple(RULES)


def kpf_names(value: int) -> str:
    """
    ``KPF_*`` names of a kpageflags value, lower case, joined by ``,`` (``page-types``' long names).

    :param value: a kpageflags value
    :return: the names of its bits
    """
    names: Dict[int, str] = {}
    for name, bit in KPF.items():
        names.setdefault(bit, name.lower())
    return ",".join(names.get(b, str(b)) for b in range(64) if value >> b & 1)


def kpf_row(v: int) -> str:
    """
    The memmap row (``"free"``, ``"anon"``, ``"file"``, ...) of a page with kpageflags value *v*.

    :param v: a kpageflags value
    :return: the row's name
    """
    def has(name: str) -> bool:
        return bool(v >> KPF[name] & 1)

    if has("HWPOISON"):
        return "hwpoison"
    if has("BUDDY"):
        return "free"
    if has("OFFLINE"):
        return "offline"
    if has("HUGE"):
        return "hugetlb"
    if has("SLAB"):
        return "slab"
    if has("PGTABLE"):
        return "page_tables"
    if has("ZERO_PAGE"):
        return "zero_page"
    if has("ANON"):
        return "anon_mapped" if has("MMAP") else "anon_unmapped"
    if has("SWAPBACKED"):
        # shmem_writeout() moves the folio from the shmem mapping to the swap cache (NR_SHMEM drops).
        return "shmem_swapcache" if has("SWAPCACHE") else "shmem"
    if has("LRU") or (has("UPTODATE") and has("MMAP")):
        return "file_mapped" if has("MMAP") else "file_unmapped"
    if has("RESERVED"):
        return "reserved"
    return "other_kernel"


def vm_stat(prog: Program, array: str, item: str) -> Optional[int]:
    """A global vmstat counter as the kernel would fold it now: the global value plus every CPU's
    not-yet-folded delta (the reference guests set vm.stat_interval to a day, so the deltas are real).

    :param array: the global array: ``vm_zone_stat`` or ``vm_node_stat``
    :param item: the enumerator of the counter (``NR_FREE_PAGES``, ...)
    :return: the folded value, or ``None`` if the kernel has no such counter
    """
    from drgn.helpers.linux.cpumask import for_each_possible_cpu
    from drgn.helpers.linux.percpu import per_cpu_ptr

    from drgn_ptwalk._compat import online_pgdats as for_each_online_pgdat

    try:
        idx = prog.constant(item).value_()
        total = prog[array][idx].counter.value_()
        for pgdat in for_each_online_pgdat(prog):
            if array == "vm_node_stat":
                for cpu in for_each_possible_cpu(prog):
                    total += per_cpu_ptr(pgdat.per_cpu_nodestats, cpu).vm_node_stat_diff[idx].value_()
            else:
                for z in range(pgdat.node_zones.type_.length):
                    zone = pgdat.node_zones[z]
                    if not zone.per_cpu_zonestats:
                        continue
                    for cpu in for_each_possible_cpu(prog):
                        total += per_cpu_ptr(zone.per_cpu_zonestats, cpu).vm_stat_diff[idx].value_()
        return total
    except (KeyError, LookupError, AttributeError):
        return None


def _counters(prog: Program, page_size: int) -> Dict[str, Optional[int]]:
    def node(item: str) -> Optional[int]:
        return vm_stat(prog, "vm_node_stat", item)

    # The *_B items are accounted in bytes but stored in pages (__mod_node_page_state()).
    slab_r = node("NR_SLAB_RECLAIMABLE_B")
    slab_u = node("NR_SLAB_UNRECLAIMABLE_B")
    pt = node("NR_PAGETABLE")
    sec = node("NR_SECONDARY_PAGETABLE")
    hugetlb = None
    try:
        hugetlb = 0
        for i in range(prog["hugetlb_max_hstate"].value_()):
            h = prog["hstates"][i]
            hugetlb += h.nr_huge_pages.value_() << h.order.value_()
    except (KeyError, LookupError):
        hugetlb = None
    shmem = node("NR_SHMEM")
    mapped = node("NR_FILE_MAPPED")
    return {
        "free": vm_stat(prog, "vm_zone_stat", "NR_FREE_PAGES"),
        "hugetlb": hugetlb,
        "slab": None if slab_r is None or slab_u is None else slab_r + slab_u,
        "page_tables": None if pt is None else pt + (sec or 0),
        "anon_mapped": node("NR_ANON_MAPPED"),
        "shmem": shmem,
        "file_mapped": mapped,
    }


def hole_value(prog: Program) -> int:
    """The kpageflags value of a PFN without an online ``struct page``: ``KPF_NOPAGE``, or 0 on kernels
    whose files read such PFNs as 0 (:attr:`~drgn_ptwalk.generations.Generation.kpage_holes_zero`: there
    a 0 is a hole only in an offline section, see :func:`offline_sections`).

    :return: ``1 << KPF_NOPAGE`` or 0
    """
    return kpage_context(prog).nopage


def offline_sections(prog: Program, end_pfn: int) -> Tuple[int, List[bool]]:
    """
    The SPARSEMEM sections below *end_pfn* that have no online ``struct page`` (holes).

    :param end_pfn: the end of the range, exclusive
    :return: (pages per section, one flag per section: ``True`` for a hole)
    """
    pps = kpage_context(prog).pages_per_section
    return pps, [not online for online, _ in section_states(prog, 0, -(-end_pfn // pps))]


def memmap(prog: Program) -> MemmapSummary:
    """
    The rows and the census of all of RAM (see the module doc).

    :return: every PFN in one row, each beside the kernel's counter, and the ``page-types`` census
    """
    ctx = kpage_context(prog)
    end = max_dump_pfn(prog)
    # A section at a time (memory flat in the size of RAM: all of a 256 GiB machine's values are 512 MiB).
    # A tail page is in its folio's row. v6.1's kpageflags gives tails their own page->flags (no
    # SWAPBACKED, LRU, ...: a shmem THP's tails would land in other_kernel); later kernels give them the
    # folio's, and no tail needs moving. Only a section with such tails is gone over page by page; a folio
    # outside hugetlb never crosses a section (naturally aligned, at most a section: arm64 64K's 512 MiB
    # PMD THP is one), and hugetlb tails stay in their head's row, so each section's pass starts afresh.
    tail, head = 1 << KPF["COMPOUND_TAIL"], 1 << KPF["COMPOUND_HEAD"]
    census: Counter = Counter()
    row_of: Dict[int, str] = {}
    moves: Counter = Counter()
    for _pfn, data in file_chunks(prog, "kpageflags", 0, end, False):
        values = memoryview(data).cast("Q")
        section = Counter(values)
        census.update(section)
        for v in section:
            if v not in row_of:
                row_of[v] = kpf_row(v)
        if any(v & tail and row_of[v] != "hugetlb" for v in section):
            head_row = None
            for v in values:
                if v & head:
                    head_row = row_of[v]
                elif v & tail and head_row is not None and row_of[v] != head_row:
                    moves[row_of[v]] -= 1
                    moves[head_row] += 1
    counts = dict(census)
    if ctx.nopage:
        holes = counts.pop(ctx.nopage, 0)
    else:
        # this kernel reads holes as 0: the offline sections' PFNs are taken out of the 0 values
        pps = ctx.pages_per_section
        holes = sum(pps for online, _ in section_states(prog, 0, end // pps) if not online)
        counts[0] = counts.get(0, 0) - holes
    rows: Dict[str, int] = dict.fromkeys(_ORDER, 0)
    rows["hole"] = holes
    for v, n in counts.items():
        rows[row_of.get(v) or kpf_row(v)] += n
    for name, n in moves.items():
        rows[name] += n
    page_size = 1 << prog["PAGE_SHIFT"].value_()
    counters = _counters(prog, page_size)
    out = [MemmapRow(name, rows[name], counters.get(name)) for name in _ORDER]
    return MemmapSummary(out, end, page_size, census.most_common())

