# SPDX-License-Identifier: LGPL-2.1-or-later
"""
/proc/PID/pagemap (fs/proc/task_mmu.c ``pagemap_read()``) as read by root
(``show_pfn``: PFNs and swap fields filled in), from one
:func:`~drgn_ptwalk.walk.pt_range_walk` of the range.

:func:`pagemap_pieces` streams the u64 values of a whole task or a range
in address order, in bounded memory (the ``pagemap`` command writes them as
they come); :func:`pagemap_entries` gives those of a range, :func:`pagemap`
their bytes, :func:`pagemap_records` those of every VMA.

Speed: the walk keeps runs of consecutive PFNs whole across order-0 folios
(``split_folios=False``); a run whose ``struct page`` entries (one read) are
all order-0 gets its values from C-level column scans of those bytes (the
anon bit of ``mapping``, ``_mapcount == 0`` for ``PM_MMAP_EXCLUSIVE``), not
one folio lookup per page; other runs are cut by folio and take the
per-folio path.

Corrupt input: a corrupt VMA tree raises
:class:`~drgn_ptwalk.vmatree.VmaTreeError` (address and level of the bad node
or VMA). Entries that cannot be told (a page table the walker reports as
ERROR, a VMA whose ``vm_flags`` cannot be read, a swap entry carrying no PFN
where only migration entries can be) are 0 with a :class:`ProcfsWarning`
saying what and where; a ``struct page`` that cannot be read leaves out only
the bits that needed it (``PM_FILE``, ``PM_MMAP_EXCLUSIVE``), with a warning.
"""

from array import array
from itertools import repeat
from operator import add, eq, mul, not_
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from drgn import FaultError, Object, Program

from drgn_ptwalk._kernel import cached
from drgn_ptwalk.entry import PtEntry, PtFlag, PtLevel, PtType
from drgn_ptwalk.errors import NoMmError
from drgn_ptwalk.generations import generation
from drgn_ptwalk.page import FolioReader, folio_runs, pages_all_order0, read_struct_pages
from drgn_ptwalk.procfs.common import VMA_ERRORS, reading, warn, warn_vma
from drgn_ptwalk.procfs.vma import VM_HUGETLB, VM_PFNMAP, hugetlb_pmd_shared, vm_flag_bits
from drgn_ptwalk.vmatree import checked_vma_ranges
from drgn_ptwalk.walk import pt_range_walk

__all__ = ("PagemapRecord", "PagemapResult", "pagemap", "pagemap_entries", "pagemap_mm", "pagemap_pieces",
           "pagemap_records")

PM_PFRAME_MASK = (1 << 55) - 1
PM_SOFT_DIRTY = 1 << 55
PM_MMAP_EXCLUSIVE = 1 << 56
PM_UFFD_WP = 1 << 57
PM_GUARD_REGION = 1 << 58
PM_FILE = 1 << 61
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63


class PagemapResult(NamedTuple):
    """The pagemap entries of a range and what could not be read."""

    start: int
    entries: array
    """u64 values, one per page from *start*."""
    warnings: List[str]


class _Gen(NamedTuple):
    precise: bool
    """v6.12+: PM_MMAP_EXCLUSIVE only for present entries, precise mapcount."""
    pmd_head: bool
    """v7.x: PMD THPs test the head page's mapcount for every subpage."""
    soft_dirty_bit: int
    page_size: int


def _generation(prog: Program) -> _Gen:
    def compute() -> _Gen:
        from drgn_ptwalk.arch import get_decoder

        bits = vm_flag_bits(prog)
        sd = bits.get("SOFTDIRTY")
        g = generation(prog)
        return _Gen(
            # PM_MMAP_EXCLUSIVE per page, present entries only (Generation.precise_mapcount).
            g.precise_mapcount,
            # v7.x pagemap_pmd_range_thp() passes the head page to
            # __folio_page_mapped_exclusively() for every subpage; it came
            # with the MM-id rework. Proxy: Generation.mm_ids.
            g.mm_ids,
            (1 << sd) if sd is not None else 0,
            get_decoder(prog).page_size,
        )

    return cached(prog, "ptwalk_procfs_pagemap_gen", compute)


class PagemapRecord(NamedTuple):
    """The pagemap values of one VMA (as ``vmcores.truth.read_pagemap()``)."""

    start: int
    end: int
    entries: array


def pagemap_records(mm: Object, warnings: Optional[List[str]] = None) -> List[PagemapRecord]:
    """
    The pagemap values of every VMA of *mm* from one walk of the whole
    address space (cheaper than one :func:`pagemap_entries` per VMA). Holds
    them all: :func:`pagemap_pieces` streams them.

    :param mm: ``struct mm_struct *``
    :param warnings: list collecting what the dump cannot tell
    :return: one record per VMA, in address order
    """
    # One read of the VMA tree for the records and the walk (on a live kernel a second read may see
    # other VMAs), with each VMA's range as read then.
    ranges = list(checked_vma_ranges(mm))
    out = [array("Q") for _ in ranges]
    starts = {vs: k for k, (_, vs, _) in enumerate(ranges)}
    k = -1
    for addr, vals in pagemap_pieces(mm, warnings=warnings, vma_ranges=ranges):
        k = starts.get(addr, k)
        out[k].extend(vals)
    return [PagemapRecord(vs, ve, out[k]) for k, (_, vs, ve) in enumerate(ranges)]


_CONST_PIECE = 1 << 16
"""Most values in one piece of a run whose values are all alike (a hole in a huge VMA): bounded memory."""


def pagemap_pieces(mm: Object, start: Optional[int] = None, end: Optional[int] = None, *,
                   warnings: Optional[List[str]] = None,
                   vma_ranges: Optional[Sequence[Tuple[Object, int, int]]] = None,
                   gaps: bool = False) -> Iterator[Tuple[int, Sequence[int]]]:
    """
    The pagemap values of *mm* over ``[start, end)`` (default: the whole
    user address space), streamed from one walk: ``(address, values)``
    pieces in address order, one u64 per page from *address*, each inside
    one VMA (or one gap between VMAs). Every page of every VMA in the range
    is in exactly one piece; gaps only with *gaps* (their values are 0, as
    ``pagemap_pte_hole()`` gives outside VMAs). A piece holds at most one
    page-table page's worth of values, or :data:`_CONST_PIECE` alike.

    :param mm: ``struct mm_struct *``
    :param start: first address (page aligned)
    :param end: end address (page aligned)
    :param warnings: list collecting what the dump cannot tell
    :param vma_ranges: the VMAs as :func:`~drgn_ptwalk.vmatree.checked_vma_ranges`
        gives them, if already read (the tree is then read once); default:
        those of the range, reading only the maple nodes that cover it
    :param gaps: also yield the gaps between VMAs
    """
    prog = mm.prog_
    gen = _generation(prog)
    ps = gen.page_size
    if warnings is None:
        warnings = []
    folios = FolioReader(prog)
    ranges = list(checked_vma_ranges(mm, start=start, end=end)) if vma_ranges is None else vma_ranges
    # vm_flags of each VMA the walk meets, read when first met (a caller's vma_ranges may hold more).
    vobjs = {v.value_(): v for v, _, _ in ranges}
    vflags: Dict[int, Optional[int]] = {}
    for e in pt_range_walk(mm, start, end, vma_ranges=ranges, split_folios=False):
        if e.vma is None:
            if gaps:
                yield from _const_pieces(e.start, e.end, ps, 0)
            continue
        try:
            vm_flags = vflags[e.vma]
        except KeyError:
            vm_flags = vflags[e.vma] = _vma_flags(vobjs[e.vma], warnings)
        n = (e.end - e.start) // ps
        if n > _CONST_PIECE and (vm_flags is None or vm_flags & VM_PFNMAP or e.type == PtType.NONE
                                 or e.type == PtType.ERROR):
            # What _entry_values() gives each page of these, without a list of them.
            if vm_flags is None:
                v = 0
            elif e.type == PtType.ERROR and not vm_flags & VM_PFNMAP:
                warn(f"no valid page table for {e.start:#x}-{e.end:#x} ({e.reason}); reported as 0", warnings)
                v = 0
            else:
                v = PM_SOFT_DIRTY if vm_flags & gen.soft_dirty_bit else 0
            yield from _const_pieces(e.start, e.end, ps, v)
            continue
        yield e.start, _run_values(prog, gen, folios, e, vm_flags, warnings)


def _const_pieces(a: int, b: int, ps: int, v: int) -> Iterator[Tuple[int, Sequence[int]]]:
    step = _CONST_PIECE * ps
    while a < b:
        n = min(b - a, step) // ps
        yield a, array("Q", [v]) * n
        a += n * ps


_RUN_TYPES = frozenset((PtType.FOLIO, PtType.MIGRATION, PtType.DEVICE))
"""The types the walker cuts by folio (``split_folios``): the runs of these pagemap cuts itself."""


def _run_values(prog: Program, gen: _Gen, folios: FolioReader, e: PtEntry, vm_flags: Optional[int],
                warnings: List[str]) -> Sequence[int]:
    # The values of an entry of a split_folios=False walk: a PTE run of consecutive PFNs may span folios.
    n = e.nr_pages
    if n == 1 or e.level != PtLevel.PTE or e.type not in _RUN_TYPES or vm_flags is None or vm_flags & VM_PFNMAP:
        return _entry_values(prog, gen, folios, e, vm_flags, warnings)
    if e.type == PtType.FOLIO and not vm_flags & VM_HUGETLB:
        vals = _order0_values(prog, gen, folios, e, vm_flags)
        if vals is not None:
            return vals
    # Cut by folio, as the walker's split_folios=True would have.
    out = array("Q")
    ps = gen.page_size
    s = 0
    for r in folio_runs(prog, e.pfn, n):  # type: ignore[arg-type]
        sub = e._replace(start=e.start + s * ps, end=e.start + (s + r) * ps, pfn=e.pfn + s,  # type: ignore[operator]
                         swap_offset=None if e.swap_offset is None else e.swap_offset + s)
        out.extend(_entry_values(prog, gen, folios, sub, vm_flags, warnings))
        s += r
    return out


def _order0_values(prog: Program, gen: _Gen, folios: FolioReader, e: PtEntry, vm_flags: int) -> Optional[array]:
    """
    The values of a present PTE run of *e.nr_pages* order-0 folios, from one
    read of their ``struct page`` entries and C-level column scans; ``None``
    if a page is part of a large folio, or the entries cannot be read or
    scanned so (the caller then goes folio by folio, with warnings).
    """
    n = e.nr_pages
    pfn = e.pfn
    lay = folios.lay
    s = lay.size
    if pfn is None or pfn + n > PM_PFRAME_MASK or s % 8 or lay.mapping % 8 or lay.mapcount % 4:
        return None
    try:
        buf = read_struct_pages(prog, pfn, n)
    except FaultError:
        return None
    if not pages_all_order0(lay, buf, n):
        return None
    flags = PM_PRESENT
    if vm_flags & gen.soft_dirty_bit or e.flags & PtFlag.SOFT_DIRTY:
        flags |= PM_SOFT_DIRTY
    if e.uffd_wp:
        flags |= PM_UFFD_WP
    first = flags | pfn
    # The anon bit of each page's mapping (its own folio's: order 0), and its _mapcount: an order-0 page's
    # precise mapcount is 1 (PM_MMAP_EXCLUSIVE) iff _mapcount as stored is 0, on every generation.
    anon = buf[lay.mapping :: s].translate(_ANON_BIT)
    mc = memoryview(buf).cast("i")[lay.mapcount // 4 :: s // 4]
    if mc[1:] == mc[:-1] and anon[1:] == anon[:-1]:
        extra = (0 if anon[0] else PM_FILE) | (PM_MMAP_EXCLUSIVE if mc[0] == 0 else 0)
        return array("Q", range(first | extra, (first | extra) + n))
    extras = map(add, map(mul, map(not_, anon), repeat(PM_FILE)),
                 map(mul, map(eq, mc.tolist(), repeat(0)), repeat(PM_MMAP_EXCLUSIVE)))
    return array("Q", map(add, range(first, first + n), extras))


_ANON_BIT = bytes(x & 1 for x in range(256))
"""``bytes.translate`` table: a byte to its bit 0 (``PAGE_MAPPING_ANON`` in the low byte of ``mapping``)."""


def _vma_flags(v: Object, warnings: List[str]) -> Optional[int]:
    """``vm_flags`` of *v* (``None``, with a warning, if unreadable)."""
    try:
        with reading(v, "vm_flags"):
            return v.vm_flags.value_()
    except VMA_ERRORS as e:
        warn_vma(v, e, "pagemap (its entries are 0)", warnings)
        return None


def _task_size(mm: Object) -> int:
    return mm.task_size.value_()


def pagemap_entries(mm: Object, start: int, end: int) -> PagemapResult:
    """
    The pagemap values of *mm* for pages ``[start, end)`` (clamped to
    ``mm->task_size``, as ``pagemap_read()`` does).

    :param mm: ``struct mm_struct *``
    """
    ps = _generation(mm.prog_).page_size
    warnings: List[str] = []
    start -= start % ps
    end = min(end, _task_size(mm))
    out = array("Q")
    if end <= start:
        return PagemapResult(start, out, warnings)
    for _, vals in pagemap_pieces(mm, start, -(-end // ps) * ps, warnings=warnings, gaps=True):
        out.extend(vals)
    del out[(end - start + ps - 1) // ps:]
    return PagemapResult(start, out, warnings)


def _exclusive(folios: FolioReader, pfn: int, warnings: List[str]) -> bool:
    try:
        f = folios.folio(pfn)
        return folios.precise_page_mapcounts(f, pfn, 1)[0] == 1
    except FaultError as e:
        warn(f"struct page of PFN {pfn:#x} cannot be read ({e}): PM_MMAP_EXCLUSIVE unknown", warnings)
        return False


def _is_file(folios: FolioReader, pfn: int, warnings: List[str]) -> bool:
    try:
        return not folios.folio(pfn).anon
    except FaultError as e:
        warn(f"struct page of PFN {pfn:#x} cannot be read ({e}): PM_FILE unknown", warnings)
        return False


def _entry_values(prog: Program, gen: _Gen, folios: FolioReader, e: PtEntry, vm_flags: Optional[int],
                  warnings: List[str]) -> List[int]:
    # vm_flags: of the entry's VMA; None outside VMAs (and for a VMA whose
    # vm_flags cannot be read, already warned about).
    n = e.nr_pages
    if vm_flags is None:
        return [0] * n
    base = PM_SOFT_DIRTY if vm_flags & gen.soft_dirty_bit else 0
    if vm_flags & VM_PFNMAP or e.type == PtType.NONE:
        # walk_page_test() sends VM_PFNMAP VMAs to pagemap_pte_hole().
        return [base] * n
    if e.type == PtType.ERROR:
        warn(f"no valid page table for {e.start:#x}-{e.end:#x} ({e.reason}); reported as 0",
             warnings)
        return [0] * n
    if vm_flags & VM_HUGETLB:
        return _hugetlb_values(prog, gen, folios, e, base, warnings)
    fl = e.flags
    flags = base
    if fl & fl.SOFT_DIRTY:
        flags |= PM_SOFT_DIRTY
    if e.uffd_wp:
        flags |= PM_UFFD_WP
    if e.present:
        flags |= PM_PRESENT
        assert e.pfn is not None  # a present entry has its PFN
        if e.level == PtLevel.PTE:
            if e.type != PtType.FOLIO:
                return [flags | ((e.pfn + i) & PM_PFRAME_MASK) for i in range(n)]
            if _is_file(folios, e.pfn, warnings):
                flags |= PM_FILE
            try:
                f = folios.folio(e.pfn)
                mcs = folios.precise_page_mapcounts(f, e.pfn, n)
            except FaultError as err:
                warn(f"struct pages of PFN {e.pfn:#x}+{n} cannot be read ({err})", warnings)
                mcs = [0] * n
            return [flags | (PM_MMAP_EXCLUSIVE if mcs[i] == 1 else 0) | ((e.pfn + i) & PM_PFRAME_MASK)
                    for i in range(n)]
        return _pmd_values(gen, folios, e, flags, True, warnings)
    # swap-format entries
    if e.type == PtType.MARKER:
        flags |= PM_SWAP
        if e.kind and "guard" in e.kind:
            flags |= PM_GUARD_REGION
        assert e.swap_type is not None and e.swap_offset is not None  # a swap-format entry has both
        frame = (e.swap_type | e.swap_offset << 5) & PM_PFRAME_MASK
        return [flags | frame] * n
    if e.level != PtLevel.PTE:
        if e.pfn is None:
            # Only migration entries (which carry a PFN) can be in a PMD: the
            # kernel VM_BUG_ONs on anything else. A corrupt table.
            warn(f"{e.level.name} entry for {e.start:#x}-{e.end:#x} is a swap entry without a PFN "
                 f"({e.type.name}), which cannot be at this level; reported as 0", warnings)
            return [0] * n
        return _pmd_values(gen, folios, e, flags, False, warnings)
    flags |= PM_SWAP
    assert e.swap_type is not None  # a swap-format entry has its type
    if e.pfn is None:  # real swap
        assert e.swap_offset is not None  # and its offset
        return [flags | ((e.swap_type | (e.swap_offset + i) << 5) & PM_PFRAME_MASK) for i in range(n)]
    # PFN-carrying entries (migration, device, hwpoison)
    if _is_file(folios, e.pfn, warnings):
        flags |= PM_FILE
    res = []
    for i in range(n):
        v = flags | ((e.swap_type | (e.pfn + i) << 5) & PM_PFRAME_MASK)
        if not gen.precise and e.type != PtType.MIGRATION and _exclusive(folios, e.pfn + i, warnings):
            # v6.1: page_mapcount() == 1 && !migration, also for non-present
            v |= PM_MMAP_EXCLUSIVE
        res.append(v)
    return res


def _pmd_values(gen: _Gen, folios: FolioReader, e: PtEntry, flags: int, present: bool,
                warnings: List[str]) -> List[int]:
    # pagemap_pmd_range() THP branch, for every PMD of e.
    n = e.nr_pages
    res: List[int] = []
    pfn0 = e.pfn
    swap_type = e.swap_type or 0  # a PFN-carrying swap-format entry's (a present one has none)
    assert pfn0 is not None  # a present or PFN-carrying swap-format entry
    if not present:
        flags |= PM_SWAP
    page_file = _is_file(folios, pfn0, warnings)
    if page_file:
        flags |= PM_FILE
    try:
        f = folios.folio(pfn0)
        mcs = folios.precise_page_mapcounts(f, pfn0, n)
        head_mc = folios.precise_page_mapcounts(f, f.head, 1)[0]
    except FaultError as err:
        warn(f"struct pages of PFN {pfn0:#x}+{n} cannot be read ({err})", warnings)
        mcs = [0] * n
        head_mc = 0
    for i in range(n):
        v = flags
        if present:
            v |= (pfn0 + i) & PM_PFRAME_MASK
            if gen.precise:
                mc = head_mc if gen.pmd_head else mcs[i]
                if mc == 1:
                    v |= PM_MMAP_EXCLUSIVE
            elif head_mc == 1:
                v |= PM_MMAP_EXCLUSIVE
        else:
            v |= (swap_type | (pfn0 + i) << 5) & PM_PFRAME_MASK
            if not gen.precise and e.type != PtType.MIGRATION and head_mc == 1:
                v |= PM_MMAP_EXCLUSIVE
        res.append(v)
    return res


def _table_shared(prog: Program, e: PtEntry) -> bool:
    # hugetlb_pmd_shared() of the table holding the entry, at any level (see there).
    if e.vma is None:
        return False
    return hugetlb_pmd_shared(Object(prog, "struct vm_area_struct *", e.vma).vm_mm, e.start, e.level)


def _hugetlb_values(prog: Program, gen: _Gen, folios: FolioReader, e: PtEntry, base: int,
                    warnings: List[str]) -> List[int]:
    # pagemap_hugetlb_range(): never PM_SWAP; soft-dirty only from the VMA.
    n = e.nr_pages
    flags = base
    if e.uffd_wp:
        flags |= PM_UFFD_WP
    if not e.present:
        return [flags] * n
    flags |= PM_PRESENT
    assert e.pfn is not None  # a present entry has its PFN
    try:
        f = folios.folio(e.pfn)
        if not f.anon:
            flags |= PM_FILE
        if gen.precise:
            # !folio_likely_mapped_shared() && !hugetlb_pmd_shared()
            if not folios.likely_mapped_shared(f) and not _table_shared(prog, e):
                flags |= PM_MMAP_EXCLUSIVE
        elif folios.precise_page_mapcounts(f, f.head, 1)[0] == 1:
            flags |= PM_MMAP_EXCLUSIVE
    except FaultError as err:
        warn(f"struct page of PFN {e.pfn:#x} cannot be read ({err})", warnings)
    return [flags | ((e.pfn + i) & PM_PFRAME_MASK) for i in range(n)]


def pagemap_mm(mm: Object, start: int, end: int) -> bytes:
    """
    The bytes of /proc/PID/pagemap of *mm* at offset ``start / PAGE_SIZE *
    8`` for ``(end - start) / PAGE_SIZE`` entries (root's view): the file's
    bytes, each u64 in the dumped kernel's byte order (big-endian for an
    s390x dump), as the kernel's read returned them and the ``pagemap``
    command writes them. :func:`pagemap_entries` gives the values.

    :param mm: ``struct mm_struct *``
    :param start: first address, page aligned
    :param end: end address, exclusive, page aligned
    :return: 8 bytes per page of the range
    :raises NoMmError: for a NULL mm (a kernel thread or an exited task: the
        kernel's read fails with ESRCH)
    """
    import sys

    from drgn_ptwalk._byteorder import byte_order

    if not mm.value_():
        raise NoMmError("no mm (a kernel thread or an exited task): reading pagemap fails with ESRCH")
    res = pagemap_entries(mm, start, end)
    if byte_order(mm.prog_) != sys.byteorder:
        res.entries.byteswap()
    return res.entries.tobytes()


def pagemap(task: Object, start: int, end: int) -> bytes:
    """
    /proc/PID/pagemap bytes of *task* for ``[start, end)``, in the dumped
    kernel's byte order as the file's (see :func:`pagemap_mm`).

    :param task: ``struct task_struct *``
    :param start: first address, page aligned
    :param end: end address, exclusive, page aligned
    :return: 8 bytes per page of the range
    :raises NoMmError: without an mm of its own
        (:func:`~drgn_ptwalk.tasks.task_mm`; the kernel's read fails with ESRCH)
    """
    from drgn_ptwalk.tasks import task_mm

    return pagemap_mm(task_mm(task), start, end)
