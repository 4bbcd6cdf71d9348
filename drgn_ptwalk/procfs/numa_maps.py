# SPDX-License-Identifier: LGPL-2.1-or-later
"""
/proc/PID/numa_maps (fs/proc/task_mmu.c ``show_numa_map()``), counted from
one :func:`~drgn_ptwalk.walk.pt_range_walk` of the mm.

Corrupt input as in smaps: a corrupt VMA tree raises
:class:`~drgn_ptwalk.vmatree.VmaTreeError`; a VMA whose fields cannot be read
is left out, and a missing ``struct page`` or page table leaves its counts
out, each with a :class:`~drgn_ptwalk.procfs.common.ProcfsWarning`.
"""

from bisect import bisect_right
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from drgn import FaultError, Object, Program

from drgn_ptwalk._kernel import cached, page_size
from drgn_ptwalk.entry import PtEntry, PtLevel, PtType
from drgn_ptwalk.errors import UnsupportedKernelError
from drgn_ptwalk.page import FolioReader
from drgn_ptwalk.procfs.common import VMA_ERRORS, warn, warn_vma
from drgn_ptwalk.procfs.vma import (
    VM_HUGETLB,
    VmaRaw,
    VmaReader,
    d_path_kernel,
    default_root,
    file_user_path,
    hugetlb_vma_page_size,
    is_vm_hugetlb_page,
    mangle_path,
    mpol_to_str,
    reader_root,
    vma_is_initial_heap,
    vma_is_initial_stack,
    vma_kernel_pagesize,
    vma_policy,
)
from drgn_ptwalk.tasks import get_task_mm
from drgn_ptwalk.walk import pt_range_walk

__all__ = ("NumaMaps", "numa_maps", "numa_maps_gather", "numa_maps_mm")


class NumaMaps:
    """``struct numa_maps``: page counts of one VMA."""

    __slots__ = ("pages", "anon", "active", "writeback", "mapcount_max", "dirty", "swapcache", "node")

    def __init__(self) -> None:
        self.pages = self.anon = self.active = self.writeback = 0
        self.mapcount_max = self.dirty = self.swapcache = 0
        self.node: Dict[int, int] = {}


class _Nodes(NamedTuple):
    starts: List[int]
    ranges: List[Tuple[int, int, int]]  # (start_pfn, end_pfn, nid)
    memory: Tuple[int, ...]
    """Node ids set in ``node_states[N_MEMORY]``."""


def _nodes(prog: Program) -> _Nodes:
    def compute() -> _Nodes:
        from drgn.helpers.linux.nodemask import for_each_node_state

        mem = tuple(for_each_node_state(prog, prog.constant("N_MEMORY")))
        ranges = []
        nd = prog["node_data"]
        for nid in mem:
            pg = nd[nid]
            s = pg.node_start_pfn.value_()
            ranges.append((s, s + pg.node_spanned_pages.value_(), nid))
        ranges.sort()
        return _Nodes([r[0] for r in ranges], ranges, mem)

    return cached(prog, "ptwalk_procfs_nodes", compute)


def _pfn_nid(nodes: _Nodes, pfn: int) -> Optional[int]:
    # folio_nid(): the node whose span holds the PFN.
    i = bisect_right(nodes.starts, pfn) - 1
    if i >= 0:
        s, e, nid = nodes.ranges[i]
        if s <= pfn < e:
            return nid
    return None


class _Gather:
    def __init__(self, prog: Program, warnings: List[str]) -> None:
        self.prog = prog
        self.folios = FolioReader(prog)
        self.nodes = _nodes(prog)
        self.warnings = warnings

    def stats(self, md: NumaMaps, pfn: int, nr: int, pte_dirty: bool, checks: bool) -> None:
        """``can_gather_numa_stats*()`` + ``gather_stats()`` for one page/PMD."""
        fr = self.folios
        try:
            folio = fr.folio(pfn)
            count = fr.precise_page_mapcounts(folio, pfn, 1)[0]
        except FaultError as e:
            warn(f"struct page of PFN {pfn:#x} cannot be read ({e}); numa_maps counts are missing",
                 self.warnings)
            return
        nid = _pfn_nid(self.nodes, folio.head)
        if checks:
            if fr.test(folio, "reserved") or nid is None or nid not in self.nodes.memory:
                return
        md.pages += nr
        if pte_dirty or fr.test(folio, "dirty"):
            md.dirty += nr
        if fr.test(folio, "swapbacked") and fr.test(folio, "swapcache"):
            md.swapcache += nr
        if fr.test(folio, "active") or fr.test(folio, "unevictable"):
            md.active += nr
        if fr.test(folio, "writeback"):
            md.writeback += nr
        if folio.anon:
            md.anon += nr
        if count > md.mapcount_max:
            md.mapcount_max = count
        if nid is not None:
            md.node[nid] = md.node.get(nid, 0) + nr


def _gather_vma(g: _Gather, vma: Object, entries: List[PtEntry], raw: Optional[VmaRaw] = None) -> NumaMaps:
    md = NumaMaps()
    ps = page_size(g.prog)
    if is_vm_hugetlb_page(vma) if raw is None else raw.flags & VM_HUGETLB:
        # gather_hugetlb_stats(): present huge pages, nr = 1 each, no checks.
        hps = hugetlb_vma_page_size(vma)
        for e in entries:
            if e.type == PtType.FOLIO:
                fl = e.flags
                assert e.pfn is not None  # a FOLIO entry has its PFN
                for k in range(max(1, e.size // hps)):
                    pfn = e.pfn + k * hps // ps
                    # pte_page(): the head page of the huge page
                    try:
                        head = g.folios.folio(pfn).head
                    except FaultError:
                        head = pfn
                    g.stats(md, head, 1, bool(fl & fl.DIRTY), False)
        return md
    for e in entries:
        if e.type == PtType.ERROR:
            warn(f"no valid page table for {e.start:#x}-{e.end:#x} ({e.reason})", g.warnings)
            continue
        if e.type != PtType.FOLIO:
            continue  # non-present entries and pages without a normal struct page
        fl = e.flags
        dirty = bool(fl & fl.DIRTY)
        assert e.pfn is not None and e.decoder is not None  # a FOLIO entry has its PFN and decoder
        if e.level == PtLevel.PTE:
            for i in range(e.nr_pages):
                g.stats(md, e.pfn + i, 1, dirty, True)
        else:
            step = (1 << e.decoder.level_shift(e.level)) // ps
            for k in range(e.size // (step * ps)):
                g.stats(md, e.pfn + k * step, step, dirty, True)
    return md


def _format_raw(vma: Object, raw: VmaRaw, reader: VmaReader, task_pol: Object, policies: Dict[int, bytes],
                md: NumaMaps) -> bytes:
    # _format() from the VMA's one read (VmaReader), policy strings and paths once each.
    prog = reader.prog
    if raw.ops:
        pol = vma_policy(vma)  # vm_ops callbacks (shmem, SysV shm): the one-VMA path
    else:
        pol = Object(prog, "struct mempolicy *", raw.policy)
    if not pol.value_():
        pol = task_pol
    p = pol.value_()
    s = policies.get(p)
    if s is None:
        s = policies[p] = mpol_to_str(pol).encode()
    out = b"%08x %s" % (raw.start, s)
    if raw.file:
        out += b" file=" + mangle_path(reader.file_path(raw.file), b"\n\t= ")
    elif reader.initial_heap(raw):
        out += b" heap"
    elif reader.initial_stack(raw):
        out += b" stack"
    huge = bool(raw.flags & VM_HUGETLB)
    return out + _format_counts(md, huge, lambda: reader.kernel_pagesize(vma, raw))


def _format(vma: Object, mm: Object, root: Optional[Object], task_pol: Object, md: NumaMaps) -> bytes:
    pol = vma_policy(vma)
    s = mpol_to_str(pol if pol.value_() else task_pol)
    out = b"%08x %s" % (vma.vm_start.value_(), s.encode())
    file = vma.vm_file.read_()
    if file:
        out += b" file=" + mangle_path(d_path_kernel(file_user_path(file), root), b"\n\t= ")
    elif vma_is_initial_heap(vma, mm):
        out += b" heap"
    elif vma_is_initial_stack(vma, mm):
        out += b" stack"
    huge = is_vm_hugetlb_page(vma)
    return out + _format_counts(md, huge, lambda: vma_kernel_pagesize(vma))


def _format_counts(md: NumaMaps, huge: bool, kernel_pagesize: Callable[[], int]) -> bytes:
    # The rest of show_numa_map()'s line, from " huge" on.
    out = b""
    if huge:
        out += b" huge"
    if md.pages:
        if md.anon:
            out += b" anon=%d" % md.anon
        if md.dirty:
            out += b" dirty=%d" % md.dirty
        if md.pages != md.anon and md.pages != md.dirty:
            out += b" mapped=%d" % md.pages
        if md.mapcount_max > 1:
            out += b" mapmax=%d" % md.mapcount_max
        if md.swapcache:
            out += b" swapcache=%d" % md.swapcache
        if md.active < md.pages and not huge:
            out += b" active=%d" % md.active
        if md.writeback:
            out += b" writeback=%d" % md.writeback
        for nid in sorted(md.node):
            if md.node[nid]:
                out += b" N%d=%d" % (nid, md.node[nid])
        out += b" kernelpagesize_kB=%d" % (kernel_pagesize() >> 10)
    return out + b"\n"


def numa_maps_gather(mm: Object, task_pol: Object, root: Optional[Object] = None,
                     warnings: Optional[List[str]] = None) -> bytes:
    """
    The bytes of /proc/PID/numa_maps of *mm*.

    :param mm: ``struct mm_struct *``
    :param task_pol: ``struct mempolicy *`` printed for VMAs without their own
        policy (``get_task_policy()`` of the task; NULL means default)
    :param root: reader's fs root for ``file=``; default PID 1's
    :param warnings: list collecting what the dump cannot tell
    :raises VmaTreeError: if the VMA tree is corrupt
    :raises UnsupportedKernelError: if the kernel has no numa_maps (no ``CONFIG_NUMA``)
    """
    prog = mm.prog_
    require_numa_maps(prog)
    if warnings is None:
        warnings = []
    if not mm.value_():
        return b""
    if root is None:
        root = default_root(prog)
    g = _Gather(prog, warnings)
    # One read of the VMA tree (and of each VMA) for the walk and the lines.
    reader = VmaReader(mm, root)
    vlist = reader.vmas()
    by: Dict[int, List[PtEntry]] = {}
    for e in pt_range_walk(mm, include_none=False, vma_ranges=[(v, vs, ve) for v, vs, ve, _ in vlist]):
        if e.vma is not None:
            by.setdefault(e.vma, []).append(e)
    # The gate VMA prints nothing (show_numa_map(): !vma->vm_mm).
    out: List[bytes] = []
    policies: Dict[int, bytes] = {}
    for v, _, _, raw in vlist:
        try:
            md = _gather_vma(g, v, by.get(v.value_(), []), raw)
            if raw is None or reader.bounds is None:
                out.append(_format(v, mm, root, task_pol, md))
            else:
                out.append(_format_raw(v, raw, reader, task_pol, policies, md))
        except VMA_ERRORS as e:
            warn_vma(v, e, "numa_maps", warnings)
    return b"".join(out)


def require_numa_maps(prog: Program) -> None:
    """
    Refuse, as the kernel does (``ENOENT``), a kernel built without ``CONFIG_NUMA`` (Debian's s390x):
    it has no /proc/PID/numa_maps, nor the task and VMA policies it prints.

    :raises UnsupportedKernelError: if the kernel has no numa_maps
    """
    def compute() -> bool:
        try:
            prog["proc_pid_numa_maps_operations"]
            return True
        except KeyError:
            return prog.type("struct task_struct").has_member("mempolicy")

    if not cached(prog, "ptwalk_procfs_has_numa_maps", compute):
        raise UnsupportedKernelError("numa_maps: this kernel has no /proc/PID/numa_maps (built without CONFIG_NUMA)")


def numa_maps_mm(mm: Object, root: Optional[Object] = None) -> str:
    """
    /proc/PID/numa_maps of *mm* with the default task policy.

    :param mm: ``struct mm_struct *`` (NULL gives ``""``)
    :param root: reader's fs root (``struct path *``) for file names; default PID 1's
    :return: the file's text
    """
    from drgn import Object as O

    return numa_maps_gather(mm, O(mm.prog_, "struct mempolicy *", 0), root).decode("utf-8", "surrogateescape")


def numa_maps(task: Object, root: "str | Object | None" = None) -> str:
    """
    /proc/PID/numa_maps of *task*; ``""`` without an mm of its own.

    :param task: ``struct task_struct *``
    :param root: whose root the paths are relative to: see :func:`~drgn_ptwalk.procfs.maps.maps`
    :return: the file's text
    :raises UnsupportedKernelError: if the kernel has no numa_maps (no ``CONFIG_NUMA``)
    """
    require_numa_maps(task.prog_)
    mm = get_task_mm(task)
    if not mm.value_():
        return ""
    return numa_maps_gather(mm, task.mempolicy.read_(), reader_root(task, root)).decode("utf-8",
                                                                                        "surrogateescape")
