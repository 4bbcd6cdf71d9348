# SPDX-License-Identifier: LGPL-2.1-or-later
"""
/proc/PID/smaps and /proc/PID/smaps_rollup (fs/proc/task_mmu.c
``show_smap()``, ``show_smaps_rollup()``), counted from one
:func:`~drgn_ptwalk.walk.pt_range_walk` of the mm.

:func:`smaps_gather` returns the numbers (:class:`SmapsResult`);
:func:`format_smaps` / :func:`format_smaps_rollup` print them.

Corrupt input: a corrupt VMA tree raises
:class:`~drgn_ptwalk.vmatree.VmaTreeError` (address and level of the bad node
or VMA). A VMA whose fields cannot be read
(:data:`~drgn_ptwalk.procfs.common.VMA_ERRORS`) is left out of smaps and
smaps_rollup, and a ``struct page``, page table or swap map that cannot be
read leaves its counts out; each is a :class:`ProcfsWarning` (also in
:attr:`SmapsResult.warnings`) saying what could not be read and where.
"""

import itertools
from itertools import repeat
from operator import add, attrgetter, mul, rshift
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from drgn import FaultError, Object, Program

from drgn_ptwalk._kernel import cached
from drgn_ptwalk.entry import PtEntry, PtFlag, PtLevel, PtType
from drgn_ptwalk.errors import NoMmError
from drgn_ptwalk.generations import generation
from drgn_ptwalk.page import Folio, FolioReader, folio_runs
from drgn_ptwalk.procfs.common import VMA_ERRORS, warn, warn_vma
from drgn_ptwalk.procfs.maps import format_maps_line, gate_vma
from drgn_ptwalk.procfs.swap import SwapCounter, shmem_partial_swap_usage, shmem_swap_usage
from drgn_ptwalk.procfs.thp import thp_eligible
from drgn_ptwalk.procfs.vma import (
    VM_HUGETLB,
    VM_LOCKED,
    VM_PFNMAP,
    VM_SHARED,
    VM_WRITE,
    VmaFacts,
    VmaRaw,
    VmaReader,
    default_root,
    hugetlb_pmd_shared,
    hugetlb_vma_page_size,
    reader_root,
    vm_flags_string,
    vma_facts,
    vma_kernel_pagesize,
)
from drgn_ptwalk.tasks import get_task_mm, task_mm
from drgn_ptwalk.walk import pt_range_walk

__all__ = (
    "MemSizeStats",
    "SmapsResult",
    "SmapsVma",
    "format_smaps",
    "format_smaps_rollup",
    "smaps",
    "smaps_gather",
    "smaps_mm",
    "smaps_rollup",
    "smaps_rollup_mm",
    "smaps_totals",
)

PSS_SHIFT = 12
_YOUNG = int(PtFlag.YOUNG)
_DIRTY = int(PtFlag.DIRTY)


_MSS_FIELDS = (
    "resident", "shared_clean", "shared_dirty", "private_clean", "private_dirty", "referenced",
    "anonymous", "lazyfree", "anonymous_thp", "shmem_thp", "file_thp", "swap", "shared_hugetlb",
    "private_hugetlb", "ksm", "pss", "pss_anon", "pss_file", "pss_shmem", "pss_dirty", "pss_locked",
    "swap_pss",
)
_MSS_ZERO = dict.fromkeys(_MSS_FIELDS, 0)


class MemSizeStats:
    """
    ``struct mem_size_stats``: byte counters (PSS ones ``<< PSS_SHIFT``).

    The counters live in the instance dictionary so that making one and
    adding two are single C-level dictionary operations (one of each per
    VMA, thousands per process in memtop).
    """

    fields = _MSS_FIELDS
    """The counter names, in the kernel's order."""

    # The counters (instance attributes, set by __init__), for type checkers.
    resident: int
    shared_clean: int
    shared_dirty: int
    private_clean: int
    private_dirty: int
    referenced: int
    anonymous: int
    lazyfree: int
    anonymous_thp: int
    shmem_thp: int
    file_thp: int
    swap: int
    shared_hugetlb: int
    private_hugetlb: int
    ksm: int
    pss: int
    pss_anon: int
    pss_file: int
    pss_shmem: int
    pss_dirty: int
    pss_locked: int
    swap_pss: int

    def __init__(self) -> None:
        self.__dict__.update(_MSS_ZERO)

    def add(self, other: "MemSizeStats", times: int = 1) -> None:
        """Add *other* (*times* over) to these counters."""
        d = self.__dict__
        od = other.__dict__
        if times == 1:
            d.update(zip(_MSS_FIELDS, map(add, map(d.__getitem__, _MSS_FIELDS), map(od.__getitem__, _MSS_FIELDS))))
        else:
            d.update(zip(_MSS_FIELDS, map(add, map(d.__getitem__, _MSS_FIELDS),
                                          map(mul, map(od.__getitem__, _MSS_FIELDS), repeat(times)))))

    def __repr__(self) -> str:
        return "MemSizeStats(" + ", ".join(f"{k}={getattr(self, k)}" for k in _MSS_FIELDS) + ")"


class SmapsVma(NamedTuple):
    """The smaps record of one VMA."""

    facts: VmaFacts
    stats: MemSizeStats
    kernel_page_size: int
    mmu_page_size: int
    thp_eligible: bool
    protection_key: Optional[int]
    """``None`` when the kernel prints no ProtectionKey line."""
    vm_flags: str
    """The VmFlags mnemonics, each followed by a space."""


class SmapsResult(NamedTuple):
    """All VMAs of an mm (gate VMA last, if any) and what could not be read."""

    vmas: List[SmapsVma]
    warnings: List[str]
    gate: bool
    """Whether the last record is the gate VMA (not part of smaps_rollup)."""


class _Gen(NamedTuple):
    """What differs between kernel generations (feature-detected)."""

    ksm: bool
    thp_width8: bool
    precise: bool
    page_size: int
    pmd_size: int
    pkeys: Optional[int]
    """Mask of the protection-key VM bits (after >> 32), or None."""


def _generation(prog: Program) -> _Gen:
    def compute() -> _Gen:
        from drgn_ptwalk.arch import get_decoder

        dec = get_decoder(prog)
        g = generation(prog)
        # The generations: the "KSM:" line, "THPeligible:    %8u" (v6.1: "%d"), smaps_account() with
        # folio_precise_page_mapcount() and "!present => maybe shared" (see drgn_ptwalk.generations).
        return _Gen(g.smaps_ksm_line, g.thp_eligible_width8, g.precise_mapcount, dec.page_size,
                    1 << dec.level_shift(PtLevel.PMD), _pkey_mask(prog))

    return cached(prog, "ptwalk_procfs_smaps_gen", compute)


def _pkey_mask(prog: Program) -> Optional[int]:
    """``arch_pkeys_enabled()`` → the pkey bits mask, else ``None``."""
    arch = prog.platform.arch.name if prog.platform else ""
    if arch == "X86_64":
        try:
            caps = prog["boot_cpu_data"].x86_capability
        except LookupError:
            return None
        # X86_FEATURE_OSPKE = 16*32 + 4.
        if caps[16].value_() >> 4 & 1:
            return 0xF
        return None
    if arch == "AARCH64":
        # system_supports_poe(): ARM64_HAS_S1POE in system_cpucaps (v6.12+).
        try:
            cap = prog.constant("ARM64_HAS_S1POE").value_()
            bits = prog["system_cpucaps"]
        except LookupError:
            return None
        word = bits[cap // 64].value_()
        return 0x7 if word >> (cap % 64) & 1 else None
    return None


class _Ctx:
    """State of one gathering: folio cache, swap counter, warnings."""

    def __init__(self, prog: Program, warnings: List[str]) -> None:
        self.prog = prog
        self.gen = _generation(prog)
        self.folios = FolioReader(prog)
        self.swap = SwapCounter(prog)
        self.warnings = warnings
        self.shmem_files: Dict[int, bool] = {}
        # What account() reads of an order-0 folio's flags.
        self.order0_mask = self.folios.flag_mask("swapbacked", "dirty", "young", "referenced")

    def folio(self, pfn: int) -> Optional[Folio]:
        try:
            return self.folios.folio(pfn)
        except FaultError as e:
            warn(f"struct page of PFN {pfn:#x} cannot be read ({e}); its counts are missing", self.warnings)
            return None

    # smaps_page_accumulate()
    def accumulate(self, mss: MemSizeStats, folio: Folio, size: int, pss: int, dirty: bool, locked: bool,
                   private: bool) -> None:
        fr = self.folios
        mss.pss += pss
        if folio.anon:
            mss.pss_anon += pss
        elif fr.test(folio, "swapbacked"):
            mss.pss_shmem += pss
        else:
            mss.pss_file += pss
        if locked:
            mss.pss_locked += pss
        if dirty or fr.test(folio, "dirty"):
            mss.pss_dirty += pss
            if private:
                mss.private_dirty += size
            else:
                mss.shared_dirty += size
        else:
            if private:
                mss.private_clean += size
            else:
                mss.shared_clean += size

    # smaps_account(); n pages starting at pfn (compound: the whole folio)
    def account(self, mss: MemSizeStats, pfn: int, n: int, compound: bool, young: bool, dirty: bool,
                locked: bool, present: bool) -> None:
        folio = self.folio(pfn)
        if folio is None:
            return
        fr = self.folios
        gen = self.gen
        ps = gen.page_size
        if compound:
            n = folio.nr if pfn == folio.head else 1
        size = n * ps
        if folio.anon:
            mss.anonymous += size
            if not fr.test(folio, "swapbacked") and not dirty and not fr.test(folio, "dirty"):
                mss.lazyfree += size
        if gen.ksm and folio.ksm:
            mss.ksm += size
        mss.resident += size
        if young or fr.test(folio, "young") or fr.test(folio, "referenced"):
            mss.referenced += size
        if gen.precise:
            if folio.refcount == 1 or not present:
                self.accumulate(mss, folio, size, size << PSS_SHIFT, dirty, locked, present)
                return
        else:
            # v6.1: "present" carries "migration" (inverted below).
            if folio.refcount == 1 or not present:
                self.accumulate(mss, folio, size, size << PSS_SHIFT, dirty, locked, True)
                return
        try:
            mcs = fr.precise_page_mapcounts(folio, pfn, n)
        except FaultError as e:
            warn(f"struct pages of PFNs {pfn:#x}+{n} cannot be read ({e})", self.warnings)
            return
        one = ps << PSS_SHIFT
        for mc in mcs:
            self.accumulate(mss, folio, ps, one // mc if mc >= 2 else one, dirty, locked, mc < 2)


class _Order0:
    """
    Order-0 pages of one VMA awaiting accounting, by class (see
    :meth:`FolioReader.order0_classes`): pages of a class and with the same
    PTE young/dirty bits are accounted alike, so one page of each class is
    accounted and multiplied by the number of pages, when the VMA is done.
    """

    __slots__ = ("classes",)

    def __init__(self) -> None:
        # (class key, young, dirty) -> [first PFN, number of pages]
        self.classes: Dict[Tuple[Tuple[int, ...], bool, bool], List[int]] = {}

    def add(self, key: Tuple[int, ...], young: bool, dirty: bool, pfn: int, n: int) -> None:
        k = (key, young, dirty)
        c = self.classes.get(k)
        if c is None:
            self.classes[k] = [pfn, n]
        else:
            c[1] += n

    def account(self, ctx: _Ctx, mss: MemSizeStats, locked: bool) -> None:
        for (_, young, dirty), (pfn, n) in self.classes.items():
            one = MemSizeStats()
            ctx.account(one, pfn, 1, False, young, dirty, locked, True)
            mss.add(one, n)
        self.classes.clear()


def _vma_entries(entries: Iterable[PtEntry]) -> Iterator[Tuple[int, Iterator[PtEntry]]]:
    """
    ``(vma address, its entries)`` in address order, streamed: the walk cuts entries at VMA boundaries
    and yields them in address order, so no list of a whole mm's entries is kept.
    """
    return itertools.groupby((e for e in entries if e.vma is not None), key=attrgetter("vma"))


def _shmem_aops(prog: Program) -> Optional[int]:
    def compute() -> Optional[int]:
        try:
            return prog["shmem_aops"].address_of_().value_()
        except LookupError:
            return None

    return cached(prog, "ptwalk_procfs_shmem_aops", compute)


def _is_shmem_mapping(prog: Program, vma: Object) -> bool:
    f = vma.vm_file.read_()
    if not f:
        return False
    aops = _shmem_aops(prog)
    if aops is None:
        return False
    return f.f_mapping.a_ops.value_() == aops


def _is_shmem_file(ctx: "_Ctx", vma: Object, file: int) -> bool:
    # _is_shmem_mapping() of a VMA whose vm_file is *file*, once per file.
    if not file:
        return False
    try:
        return ctx.shmem_files[file]
    except KeyError:
        v = ctx.shmem_files[file] = _is_shmem_mapping(ctx.prog, vma)
        return v


def _gather_vma(ctx: _Ctx, vma: Object, entries: Iterable[PtEntry], raw: Optional[VmaRaw] = None) -> MemSizeStats:
    """``smap_gather_stats(vma, &mss, 0)`` (*raw*: the VMA's :func:`~drgn_ptwalk.procfs.vma.vma_raw`, if
    read)."""
    prog = ctx.prog
    gen = ctx.gen
    ps = gen.page_size
    mss = MemSizeStats()
    flags = vma.vm_flags.value_() if raw is None else raw.flags
    locked = bool(flags & VM_LOCKED)
    shmem_holes = False
    per_order = gen.precise  # v6.12+: 1 << xas_get_order() per swap entry
    if _is_shmem_mapping(prog, vma) if raw is None else _is_shmem_file(ctx, vma, raw.file):
        swapped = shmem_swap_usage(vma, per_order) * ps
        if not swapped or flags & VM_SHARED or not flags & VM_WRITE:
            mss.swap += swapped
        else:
            shmem_holes = True
    if flags & VM_HUGETLB:  # is_vm_hugetlb_page(), from the flags read above
        _gather_hugetlb(ctx, vma, entries, mss)
        return mss
    if not gen.precise and flags & VM_PFNMAP:
        # v6.1 walk_page_vma() -> walk_page_test() skips VM_PFNMAP VMAs.
        return mss
    if raw is None:
        vm_start = vma.vm_start.value_()
        pgoff = vma.vm_pgoff.value_()
    else:
        vm_start, pgoff = raw.start, raw.pgoff
    order0 = _Order0()
    for e in entries:
        t = e.type
        if t == PtType.NONE:
            if shmem_holes:
                a = (e.start - vm_start) // ps + pgoff
                b = (e.end - vm_start) // ps + pgoff
                mss.swap += shmem_partial_swap_usage(vma.vm_file.f_mapping, a, b, per_order) * ps
            continue
        if t == PtType.ERROR:
            warn(f"no valid page table for {e.start:#x}-{e.end:#x} ({e.reason}); its counts are missing",
                 ctx.warnings)
            continue
        if e.level == PtLevel.PTE:
            _pte_entry(ctx, mss, e, locked, order0)
        else:
            _pmd_entry(ctx, mss, e, locked)
    order0.account(ctx, mss, locked)
    return mss


def _pte_entry(ctx: _Ctx, mss: MemSizeStats, e: PtEntry, locked: bool, order0: _Order0) -> None:
    # smaps_pte_entry() for the e.nr_pages PTEs of e (identical state bits;
    # a FOLIO run may span folios: the walk is not split by folio).
    t = e.type
    n = e.nr_pages
    ps = ctx.gen.page_size
    if t == PtType.FOLIO:
        fl = int(e.flags)  # int operations: IntFlag's are Python code
        young = bool(fl & _YOUNG)
        dirty = bool(fl & _DIRTY)
        pfn = e.pfn
        assert pfn is not None  # a FOLIO entry has its PFN
        if n == 1:
            ctx.account(mss, pfn, 1, False, young, dirty, locked, True)
            return
        try:
            classes = ctx.folios.order0_classes(pfn, n, ctx.order0_mask)
        except FaultError:
            classes = None
        if classes is not None:
            for key, first, count in classes:
                order0.add(key, young, dirty, first, count)
            return
        # Large folios (or unreadable struct pages): folio by folio, as
        # folio_pte_batch() would have cut the run.
        for r in folio_runs(ctx.prog, pfn, n):
            ctx.account(mss, pfn, r, False, young, dirty, locked, True)
            pfn += r
    elif t == PtType.SWAP:
        mss.swap += n * ps
        swap_type, swap_offset = e.swap_type, e.swap_offset
        assert swap_type is not None and swap_offset is not None  # a SWAP entry has both
        for i in range(n):
            try:
                mc = ctx.swap.count(swap_type, swap_offset + i)
            except FaultError as err:
                warn(f"swap map of {swap_type}:{swap_offset + i:#x} cannot be read ({err})", ctx.warnings)
                mc = 1
            one = ps << PSS_SHIFT
            mss.swap_pss += one // mc if mc >= 2 else one
    elif t in (PtType.MIGRATION, PtType.HWPOISON, PtType.DEVICE):
        if ctx.gen.precise:
            # Non-present entries are "maybe shared"; device-private ones
            # are "fake present".
            present = t == PtType.DEVICE and (e.kind or "").startswith("private")
        else:
            present = t != PtType.MIGRATION  # v6.1: the "migration" flag
        assert e.pfn is not None  # these swap-format entries carry a PFN
        for i in range(n):
            ctx.account(mss, e.pfn + i, 1, False, False, False, locked, present)


def _pmd_entry(ctx: _Ctx, mss: MemSizeStats, e: PtEntry, locked: bool) -> None:
    # smaps_pmd_entry() for each PMD of e.
    gen = ctx.gen
    t = e.type
    if t == PtType.FOLIO:
        fl = e.flags
        if not gen.precise and fl & fl.PROTNONE:
            # v6.1 follow_trans_huge_pmd(FOLL_DUMP) returns NULL for
            # pmd_protnone(): such THPs are not counted at all.
            return
        young = bool(fl & fl.YOUNG)
        dirty = bool(fl & fl.DIRTY)
        present = True
    elif t in (PtType.MIGRATION, PtType.HWPOISON, PtType.DEVICE):
        if not gen.precise and t != PtType.MIGRATION:
            return  # v6.1: only THP migration entries
        young = dirty = False
        # v6.12+: non-present => shared; v6.1: migration => private (both
        # are the "not present" path of account()).
        present = False
    else:
        return
    step = gen.pmd_size // gen.page_size
    assert e.pfn is not None  # FOLIO and PFN-carrying swap-format entries
    for k in range(e.size // gen.pmd_size):
        pfn = e.pfn + k * step
        folio = ctx.folio(pfn)
        if folio is None:
            continue
        if folio.anon:
            mss.anonymous_thp += gen.pmd_size
        elif ctx.folios.test(folio, "swapbacked"):
            mss.shmem_thp += gen.pmd_size
        else:
            mss.file_thp += gen.pmd_size
        ctx.account(mss, pfn, step, True, young, dirty, locked, present)


def _gather_hugetlb(ctx: _Ctx, vma: Object, entries: Iterable[PtEntry], mss: MemSizeStats) -> None:
    # smaps_hugetlb_range(): only Shared_Hugetlb / Private_Hugetlb.
    from drgn_ptwalk.arch import get_decoder

    hps = hugetlb_vma_page_size(vma)
    dec = get_decoder(ctx.prog)
    spans = {lvl: (1 << shift) * n for lvl, shift, n in dec.levels}
    fr = ctx.folios
    shared_tables: Dict[Tuple[PtLevel, int], bool] = {}  # (level, table index) -> its count is set
    for e in entries:
        if e.type == PtType.ERROR:
            warn(f"no valid page table for {e.start:#x}-{e.end:#x} ({e.reason})", ctx.warnings)
            continue
        if e.type not in (PtType.FOLIO, PtType.MIGRATION, PtType.HWPOISON, PtType.DEVICE):
            continue
        present = e.type == PtType.FOLIO
        assert e.pfn is not None  # FOLIO and PFN-carrying swap-format entries
        for k in range(max(1, e.size // hps)):
            addr = e.start + k * hps
            pfn = e.pfn + (k * hps) // ctx.gen.page_size
            folio = ctx.folio(pfn)
            if folio is None:
                continue
            key = (e.level, addr // spans[e.level])
            pmd_shared = shared_tables.get(key)
            if pmd_shared is None:
                try:
                    pmd_shared = hugetlb_pmd_shared(vma.vm_mm, addr, e.level)
                except FaultError as err:
                    warn(f"page table of {addr:#x} has no readable struct page ({err}): "
                         "counted as not shared", ctx.warnings)
                    pmd_shared = False
                shared_tables[key] = pmd_shared
            if ctx.gen.precise:
                shared = not present or fr.likely_mapped_shared(folio) or pmd_shared
            else:
                try:
                    mc = fr.precise_page_mapcounts(folio, pfn, 1)[0]
                except FaultError:
                    mc = 0
                shared = mc >= 2 or pmd_shared
            if shared:
                mss.shared_hugetlb += hps
            else:
                mss.private_hugetlb += hps


def _each_vma(mm: Object, reader: Optional[VmaReader] = None,
              ) -> Iterator[Tuple[Object, Optional[VmaRaw], Iterable[PtEntry]]]:
    """
    Each VMA of *mm* with its :class:`~drgn_ptwalk.procfs.vma.VmaRaw` (from
    the read that checked it; ``None`` if unreadable) and its entries of
    one streamed walk of the whole mm. Runs are not cut by folio: order-0
    memory comes as one entry per PTE table and is accounted by class
    (:class:`_Order0`).
    """
    # One read of the VMA tree (and of each VMA) for the walk and the records.
    vlist = (reader or VmaReader(mm, None)).vmas()
    groups = _vma_entries(pt_range_walk(mm, split_folios=False, vma_ranges=[(v, a, b) for v, a, b, _ in vlist]))
    pending = next(groups, None)
    for vma, _, _, raw in vlist:
        addr = vma.value_()
        entries: Iterable[PtEntry] = ()
        if pending is not None and pending[0] == addr:
            entries = pending[1]
        yield vma, raw, entries
        if entries:
            # groupby skips whatever of the group was not consumed.
            pending = next(groups, None)


def smaps_gather(mm: Object, root: Optional[Object] = None) -> SmapsResult:
    """
    Gather the smaps numbers of every VMA of *mm* (one page-table walk).

    :param mm: ``struct mm_struct *``
    :param root: reader's fs root (``struct path *``) for file names;
        default PID 1's
    :return: every VMA's record and what the dump cannot tell
    :raises VmaTreeError: if the VMA tree is corrupt (see the module doc)
    """
    prog = mm.prog_
    warnings: List[str] = []
    if not mm.value_():
        return SmapsResult([], warnings, False)
    if root is None:
        root = default_root(prog)
    ctx = _Ctx(prog, warnings)
    gen = ctx.gen
    reader = VmaReader(mm, root)
    out: List[SmapsVma] = []
    for vma, raw, entries in _each_vma(mm, reader):
        try:
            stats = _gather_vma(ctx, vma, entries, raw)
            out.append(_record(vma, mm, root, stats, gen, reader, raw))
        except VMA_ERRORS as e:
            warn_vma(vma, e, "smaps and smaps_rollup", warnings)
    gate = gate_vma(prog, mm)
    if gate is not None:
        out.append(_record(gate, mm, root, MemSizeStats(), gen))
    return SmapsResult(out, warnings, gate is not None)


def smaps_totals(mm: Object) -> Tuple[MemSizeStats, List[str]]:
    """
    The counters of ``smaps_rollup`` of *mm* and the warnings, without the
    per-VMA records (names, THPeligible, VmFlags): what memtop needs, at the
    cost of the walk and the accounting only. Like the kernel's rollup, a
    VMA counts even if its name could not be read (:func:`smaps_gather`
    leaves such a VMA out of its records, with a warning).

    :param mm: ``struct mm_struct *`` (not NULL)
    :return: the counters and what the dump cannot tell
    :raises VmaTreeError: if the VMA tree is corrupt (see the module doc)
    """
    warnings: List[str] = []
    ctx = _Ctx(mm.prog_, warnings)
    total = MemSizeStats()
    for vma, raw, entries in _each_vma(mm):
        try:
            total.add(_gather_vma(ctx, vma, entries, raw))
        except VMA_ERRORS as e:
            warn_vma(vma, e, "smaps_rollup", warnings)
    return total, warnings


def _record(vma: Object, mm: Object, root: Optional[Object], stats: MemSizeStats, gen: _Gen,
            reader: Optional[VmaReader] = None, raw: Optional[VmaRaw] = None) -> SmapsVma:
    if reader is not None and raw is not None:
        kps = reader.kernel_pagesize(vma, raw)
        return SmapsVma(
            reader.facts(vma, raw),
            stats,
            kps,
            kps,
            thp_eligible(vma, raw),
            None if gen.pkeys is None else (raw.flags >> 32) & gen.pkeys,
            reader.flags_string(raw.flags),
        )
    kps = vma_kernel_pagesize(vma)
    pkey = None
    if gen.pkeys is not None:
        pkey = (vma.vm_flags.value_() >> 32) & gen.pkeys
    return SmapsVma(
        vma_facts(vma, mm, root),
        stats,
        kps,
        kps,  # vma_mmu_pagesize(): no x86/arm64 override
        thp_eligible(vma),
        pkey,
        vm_flags_string(vma),
    )


# __show_smap(): (label, counter, shift to kB, width, shown in: "all" | "rollup" | "ksm").
_STAT_LINES = (
    (b"Rss:            ", "resident", 10, 8, "all"),
    (b"Pss:            ", "pss", PSS_SHIFT + 10, 8, "all"),
    (b"Pss_Dirty:      ", "pss_dirty", PSS_SHIFT + 10, 8, "all"),
    (b"Pss_Anon:       ", "pss_anon", PSS_SHIFT + 10, 8, "rollup"),
    (b"Pss_File:       ", "pss_file", PSS_SHIFT + 10, 8, "rollup"),
    (b"Pss_Shmem:      ", "pss_shmem", PSS_SHIFT + 10, 8, "rollup"),
    (b"Shared_Clean:   ", "shared_clean", 10, 8, "all"),
    (b"Shared_Dirty:   ", "shared_dirty", 10, 8, "all"),
    (b"Private_Clean:  ", "private_clean", 10, 8, "all"),
    (b"Private_Dirty:  ", "private_dirty", 10, 8, "all"),
    (b"Referenced:     ", "referenced", 10, 8, "all"),
    (b"Anonymous:      ", "anonymous", 10, 8, "all"),
    (b"KSM:            ", "ksm", 10, 8, "ksm"),
    (b"LazyFree:       ", "lazyfree", 10, 8, "all"),
    (b"AnonHugePages:  ", "anonymous_thp", 10, 8, "all"),
    (b"ShmemPmdMapped: ", "shmem_thp", 10, 8, "all"),
    (b"FilePmdMapped:  ", "file_thp", 10, 8, "all"),
    (b"Shared_Hugetlb: ", "shared_hugetlb", 10, 8, "all"),
    (b"Private_Hugetlb: ", "private_hugetlb", 10, 7, "all"),
    (b"Swap:           ", "swap", 10, 8, "all"),
    (b"SwapPss:        ", "swap_pss", PSS_SHIFT + 10, 8, "all"),
    (b"Locked:         ", "pss_locked", PSS_SHIFT + 10, 8, "all"),
)
_STAT_FORMATS: Dict[Tuple[bool, bool], Tuple[bytes, Tuple[str, ...], Tuple[int, ...]]] = {}


def _stat_format(rollup: bool, ksm: bool) -> Tuple[bytes, Tuple[str, ...], Tuple[int, ...]]:
    """The lines of :data:`_STAT_LINES` shown: one ``%``-template, the counters and their shifts."""
    try:
        return _STAT_FORMATS[(rollup, ksm)]
    except KeyError:
        lines = [x for x in _STAT_LINES if x[4] == "all" or (x[4] == "rollup" and rollup) or (x[4] == "ksm" and ksm)]
        v = _STAT_FORMATS[(rollup, ksm)] = (b"".join(label + b"%%%dd kB\n" % width for label, _, _, width, _ in lines),
                                            tuple(x[1] for x in lines), tuple(x[2] for x in lines))
        return v


def _format_stats(out: List[bytes], mss: MemSizeStats, rollup: bool, ksm: bool) -> None:
    # __show_smap(): every counter in kB (a right shift: the kernel's >> 10), in one formatting.
    fmt, names, shifts = _stat_format(rollup, ksm)
    out.append(fmt % tuple(map(rshift, map(mss.__dict__.__getitem__, names), shifts)))


def format_smaps(prog: Program, result: SmapsResult) -> bytes:
    """The bytes of /proc/PID/smaps for *result*."""
    gen = _generation(prog)
    out: List[bytes] = []
    for r in result.vmas:
        out.append(format_maps_line(r.facts))
        out.append(b"Size:           %8d kB\n" % ((r.facts.end - r.facts.start) >> 10))
        out.append(b"KernelPageSize: %8d kB\n" % (r.kernel_page_size >> 10))
        out.append(b"MMUPageSize:    %8d kB\n" % (r.mmu_page_size >> 10))
        _format_stats(out, r.stats, False, gen.ksm)
        if gen.thp_width8:
            out.append(b"THPeligible:    %8u\n" % int(r.thp_eligible))
        else:
            out.append(b"THPeligible:    %d\n" % int(r.thp_eligible))
        if r.protection_key is not None:
            out.append(b"ProtectionKey:  %8u\n" % r.protection_key)
        out.append(b"VmFlags: " + r.vm_flags.encode() + b"\n")
    return b"".join(out)


def format_smaps_rollup(prog: Program, result: SmapsResult) -> bytes:
    """The bytes of /proc/PID/smaps_rollup for *result* (gate VMA left out)."""
    gen = _generation(prog)
    recs = result.vmas[:-1] if result.gate else result.vmas
    total = MemSizeStats()
    for r in recs:
        total.add(r.stats)
    start = recs[0].facts.start if recs else 0
    end = recs[-1].facts.end if recs else 0
    out = [format_maps_line(VmaFacts(start, end, 0, 0, 0, 0, b"[rollup]"))]
    _format_stats(out, total, True, gen.ksm)
    return b"".join(out)


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def smaps_mm(mm: Object, root: Optional[Object] = None) -> str:
    """
    /proc/PID/smaps of *mm*.

    :param mm: ``struct mm_struct *`` (NULL gives ``""``)
    :param root: reader's fs root (``struct path *``) for file names; default PID 1's
    :return: the file's text
    """
    if not mm.value_():
        return ""
    return _text(format_smaps(mm.prog_, smaps_gather(mm, root)))


def smaps_rollup_mm(mm: Object, root: Optional[Object] = None) -> str:
    """
    /proc/PID/smaps_rollup of *mm*.

    :param mm: ``struct mm_struct *``
    :param root: reader's fs root (``struct path *``) for file names; default PID 1's
    :return: the file's text
    :raises NoMmError: for a NULL mm (a kernel thread or an exited task: the
        kernel's read fails with ESRCH)
    """
    if not mm.value_():
        raise NoMmError("no mm (a kernel thread or an exited task): reading smaps_rollup fails with ESRCH")
    return _text(format_smaps_rollup(mm.prog_, smaps_gather(mm, root)))


def _task_mm_root(task: Object, root: "str | Object | None") -> Tuple[Object, Optional[Object]]:
    mm = get_task_mm(task)
    return mm, (reader_root(task, root) if mm.value_() else None)


def smaps(task: Object, root: "str | Object | None" = None) -> str:
    """
    /proc/PID/smaps of *task*; ``""`` without an mm of its own.

    :param task: ``struct task_struct *``
    :param root: whose root the paths are relative to: see :func:`~drgn_ptwalk.procfs.maps.maps`
    :return: the file's text
    """
    mm, r = _task_mm_root(task, root)
    return smaps_mm(mm, r)


def smaps_rollup(task: Object, root: "str | Object | None" = None) -> str:
    """
    /proc/PID/smaps_rollup of *task*.

    :param task: ``struct task_struct *``
    :param root: whose root the paths are relative to: see :func:`~drgn_ptwalk.procfs.maps.maps`
    :return: the file's text
    :raises NoMmError: without an mm of its own (the kernel's read fails with
        ESRCH)
    """
    mm = task_mm(task)
    return smaps_rollup_mm(mm, reader_root(task, root))
