# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Who maps a physical page, found the way the kernel's reverse map finds it, and what a page is.

:func:`whomaps` starts from the folio of the PFN and its ``mapping``:

* an anonymous folio: the VMAs of its ``anon_vma`` tree (``anon_vma->rb_root``, ``anon_vma_chain``), at
  ``vma->vm_start + ((index - vma->vm_pgoff) << PAGE_SHIFT)`` (``vma_address()``; v7.3 and later: the
  VMA's anonymous page offset instead of ``vm_pgoff``, ``vma_anon_address()``);
* a KSM folio: the ``rmap_item``\\ s of its stable node, each an address in the VMAs of its ``anon_vma``
  (``rmap_walk_ksm()``);
* a file, shmem or hugetlbfs folio: the VMAs of its ``address_space``'s ``i_mmap`` tree (hugetlb folios
  of kernels that index them in huge pages are tried both ways);

then walks only that one address of that mm with :func:`~drgn_ptwalk.walk.pt_range_walk` and keeps it if
the entry there maps that very PFN (so the answer is what the page tables say, never a stale rmap
candidate). Pages no rmap tracks (the shared zero pages, pages of ``VM_PFNMAP``/``VM_MIXEDMAP`` and special
mappings: ``mapping`` is ``NULL``) are found by one walk over every process's page tables, batched for all
such PFNs of a call, and say so (:attr:`WhoMaps.found_by` ``"walk"``).

:func:`page_kind` says what a page is, mapped or not: free (buddy order), slab (cache), page table,
page cache (inode, path, offset), anonymous, KSM, hugetlb (in use or in the free pool), reserved, zero
page, hwpoisoned, offline, or other kernel memory.
"""

import struct
from bisect import bisect_left, bisect_right
from collections import defaultdict
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Set, Tuple

from drgn import FaultError, Object, Program, TypeKind, cast, offsetof
from drgn.helpers.linux.list import hlist_for_each_entry
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.rbtree import rbtree_inorder_for_each_entry

from drgn_ptwalk._byteorder import struct_order
from drgn_ptwalk._kernel import has_member
from drgn_ptwalk.entry import PtEntry, PtLevel, PtType
from drgn_ptwalk.errors import ArgumentError
from drgn_ptwalk.kpage import KPF, max_dump_pfn, one_file, pfn_online
from drgn_ptwalk.kpage.context import kpage_context, page_type_is
from drgn_ptwalk.page import compound_head_pfn, folio_order, page_layout, read_struct_pages

__all__ = ("PageKind", "TableOwner", "WhoMaps", "WhoSwaps", "page_kind", "page_table_owners", "whomaps",
           "whomaps_pfns", "whoswaps")

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


class WhoMaps(NamedTuple):
    """One mapping of a page: a process, its VMA and the user address there."""

    pfn: int
    pid: int
    """Thread-group ID of a process whose mm it is (one record per process sharing the mm)."""
    task: Object
    """``struct task_struct *`` of that process."""
    vma: int
    """Address of the ``struct vm_area_struct``."""
    address: int
    level: PtLevel
    """Level of the page-table entry that maps it (PTE, PMD, PUD)."""
    type: PtType
    """Type of that entry (:attr:`PtType.FOLIO` or :attr:`PtType.PFN`)."""
    found_by: str
    """``"anon_vma"``, ``"ksm"``, ``"i_mmap"`` (the kernel's rmap) or ``"walk"`` (no rmap: every process
    was walked)."""


def _page(prog: Program, pfn: int) -> Object:
    lay = page_layout(prog)
    return Object(prog, "struct page *", lay.vmemmap + pfn * lay.size)


def _index(page: Object) -> int:
    try:
        return page.__folio_index.value_()
    except AttributeError:
        return page.index.value_()


def _pgoff(prog: Program, hugetlb: bool, index: int, nr: int, off: int) -> int:
    """``page_to_pgoff()`` of page *off* of a folio of *nr* pages whose ``index`` is *index* (hugetlb
    folios, file or anonymous (``linear_hugepage_index()``), counted in huge pages on older kernels)."""
    from drgn_ptwalk.generations import generation

    if hugetlb and generation(prog).hugetlb_huge_index:
        return index * nr + off
    return index + off


def _file_name(host: Object) -> str:
    """A path of an inode: from the root of its file system, or ``/`` and the name of a dentry of it (the
    pseudo file systems: ``/SYSV...``, ``/dev/zero``, ``/memfd:...``)."""
    from drgn.helpers.linux.fs import inode_path

    try:
        path = inode_path(host)
    except (LookupError, FaultError, ValueError):
        path = None
    if path:
        text = path.decode(errors="replace")
        return text if text.startswith("/") else "/" + text
    try:
        # struct dentry::d_alias: in the d_u union (v6.12) or in an anonymous union (v7.x)
        alias = "d_u.d_alias" if has_member(host.prog_, "struct dentry", "d_u") else "d_alias"
        for d in hlist_for_each_entry("struct dentry", host.i_dentry.address_of_(), alias):
            return "/" + d.d_name.name.string_().decode(errors="replace")
        # No alias (v7.x shared anonymous memory, "/dev/zero"): the dentry of a file mapping it.
        root = host.i_mapping.i_mmap.rb_root.address_of_()
        for vma in rbtree_inorder_for_each_entry("struct vm_area_struct", root, "shared.rb"):
            return "/" + vma.vm_file.f_path.dentry.d_name.name.string_().decode(errors="replace")
    except (LookupError, FaultError):
        pass
    return f"inode {host.i_ino.value_()}"


class _Mms:
    """mm address -> the processes using it (thread-group leaders: a thread's mappings are its process's;
    a kernel thread using a borrowed mm is its own leader), read once per call."""

    def __init__(self, prog: Program) -> None:
        self.by_mm: Dict[int, List[Tuple[int, Object]]] = defaultdict(list)
        seen: Set[Tuple[int, int]] = set()
        # Leaders first; a thread counts for a process whose leader has exited (a zombie leader has no mm
        # while its other threads still use one).
        for leaders in (True, False):
            for task in for_each_task(prog):
                try:
                    if (task.pid == task.tgid) != leaders:
                        continue
                    mm = task.mm.value_()
                    tgid = task.tgid.value_()
                except FaultError:
                    continue
                if mm and (mm, tgid) not in seen:
                    seen.add((mm, tgid))
                    self.by_mm[mm].append((tgid, task))


class _Vma(NamedTuple):
    addr: int
    start: int
    end: int
    pgoff: int
    mm: int


def _vma_tuple(vma: Object) -> _Vma:
    return _Vma(vma.value_(), vma.vm_start.value_(), vma.vm_end.value_(), vma.vm_pgoff.value_(),
                vma.vm_mm.value_())


def _anon_pgoff_members(prog: Program) -> Tuple[str, ...]:
    """The members of ``struct vm_area_struct`` holding a VMA's anonymous page offset, low word first, or
    ``()`` where anonymous folios are placed by ``vm_pgoff`` (cached per program).

    Since v7.3 an anonymous folio's ``index`` and the anon rmap tree (``avc_start_pgoff()``) count from
    ``vma_start_anon_pgoff()`` (``__vm_anon_pgoff_lo``, plus ``__vm_anon_pgoff_hi << 32`` on 64-bit),
    ``vm_start >> PAGE_SHIFT`` when the VMA was first faulted; ``vm_pgoff`` is the file offset only, so a
    private file VMA's CoW'd folios, and every folio of an anonymous hugetlb VMA (``vm_pgoff`` 0), are
    found only by the anonymous one. Series "mm/rmap: index MAP_PRIVATE file-backed folios by virt pgoff"
    (Lorenzo Stoakes; its first patch "mm/vma: introduce VMA virtual page offset field and add helpers"),
    v7.3; hash unconfirmed (seen in Debian's 7.3~rc7 build, whose source package is not downloadable
    here). The member itself."""
    try:
        return prog.cache["ptwalk_anon_pgoff_members"]
    except KeyError:
        pass
    try:
        vma = prog.type("struct vm_area_struct")
        names = tuple(n for n in ("__vm_anon_pgoff_lo", "__vm_anon_pgoff_hi") if vma.has_member(n))
    except LookupError:
        names = ()
    prog.cache["ptwalk_anon_pgoff_members"] = names
    return names


def _anon_vma_tuple(vma: Object, members: Tuple[str, ...]) -> _Vma:
    """:func:`_vma_tuple` with ``pgoff`` the VMA's anonymous page offset (``vma_start_anon_pgoff()``)."""
    v = _vma_tuple(vma)
    if not members:
        return v
    pgoff = 0
    for i, name in enumerate(members):
        pgoff |= getattr(vma, name).value_() << (32 * i)
    return v._replace(pgoff=pgoff)


def _anon_vmas(prog: Program, anon_vma: int) -> List[_Vma]:
    root = Object(prog, "struct anon_vma *", anon_vma).rb_root.rb_root.address_of_()
    members = _anon_pgoff_members(prog)
    return [_anon_vma_tuple(avc.vma, members)
            for avc in rbtree_inorder_for_each_entry("struct anon_vma_chain", root, "rb")]


def _file_vmas(prog: Program, mapping: int) -> List[_Vma]:
    root = Object(prog, "struct address_space *", mapping).i_mmap.rb_root.address_of_()
    return [_vma_tuple(v) for v in rbtree_inorder_for_each_entry("struct vm_area_struct", root, "shared.rb")]


class _Tree:
    """
    The VMAs of one rmap tree indexed by page offset, as the kernel's interval tree is: :meth:`at` gives
    those whose ``[vm_pgoff, vm_pgoff + pages)`` holds an offset without going over the whole tree (an
    anon_vma of a process with 100,000 VMAs split from one mapping holds 100,000 of them).
    """

    __slots__ = ("vmas", "_first", "_reach")

    def __init__(self, vmas: List[_Vma], shift: int) -> None:
        self.vmas = sorted(vmas, key=lambda v: v.pgoff)
        self._first = [v.pgoff for v in self.vmas]
        # _reach[i]: the largest end offset of vmas[0..i]: no VMA at or before i holds an offset >= it.
        self._reach: List[int] = []
        reach = -1
        for v in self.vmas:
            reach = max(reach, v.pgoff + ((v.end - v.start) >> shift))
            self._reach.append(reach)

    def at(self, pgoff: int) -> List[_Vma]:
        """The VMAs that may map offset *pgoff* (in tree order: by ``vm_pgoff``)."""
        i = bisect_right(self._first, pgoff)
        out = []
        while i > 0 and self._reach[i - 1] > pgoff:
            i -= 1
            out.append(self.vmas[i])
        out.reverse()
        return out


class _Rmap:
    """The kernel's rmap, read from a dump: one instance per call, its trees read once."""

    def __init__(self, prog: Program) -> None:
        from drgn_ptwalk.page import FolioReader

        self.prog = prog
        self.page_shift = prog["PAGE_SHIFT"].value_()
        self.folios = FolioReader(prog)
        page = prog.type("struct page")
        self.index_off = offsetof(page, "__folio_index" if page.has_member("__folio_index") else "index")
        self.trees: Dict[Tuple[str, int], _Tree] = {}
        self.index_of: Dict[int, int] = {}

    def tree(self, kind: str, ptr: int) -> _Tree:
        t = self.trees.get((kind, ptr))
        if t is None:
            vmas = (_anon_vmas if kind == "anon" else _file_vmas)(self.prog, ptr)
            t = self.trees[(kind, ptr)] = _Tree(vmas, self.page_shift)
        return t

    def index(self, head: int) -> int:
        i = self.index_of.get(head)
        if i is None:
            # (read_struct_pages() gives a big-endian kernel's words swapped: an 8-byte field reads as "<Q")
            i = self.index_of[head] = _U64.unpack_from(read_struct_pages(self.prog, head, 1), self.index_off)[0]
        return i

    def candidates(self, pfn: int) -> Optional[List[Tuple[_Vma, int, str]]]:
        """(VMA, address, found_by) the rmap names for *pfn*, or ``None`` if nothing tracks the page."""
        folio = self.folios.folio(pfn)
        mapping = folio.mapping
        if not mapping:
            return None
        shift = self.page_shift
        off = pfn - folio.head
        if mapping & 3 == 3:
            # KSM: the rmap_items of the stable node (rmap_walk_ksm()).
            out = []
            node = Object(self.prog, "struct ksm_stable_node *", mapping & ~3)
            for item in hlist_for_each_entry("struct ksm_rmap_item", node.hlist.address_of_(), "hlist"):
                addr = item.address.value_() & ~((1 << shift) - 1)
                for v in self.tree("anon", item.anon_vma.value_()).vmas:
                    if v.start <= addr < v.end:
                        out.append((v, addr, "ksm"))
            return out
        if mapping & 2:
            return None  # movable_ops pages (zsmalloc, balloon): no user mappings
        index = self.index(folio.head)
        kind = "anon" if mapping & 1 else "file"
        pgoff = _pgoff(self.prog, folio.hugetlb, index, folio.nr, off)
        how = "anon_vma" if kind == "anon" else "i_mmap"
        out = []
        for v in self.tree(kind, mapping & ~3).at(pgoff):
            addr = v.start + ((pgoff - v.pgoff) << shift)
            if v.start <= addr < v.end:
                out.append((v, addr, how))
        return out


def _walk_ranges(prog: Program, mm: int, addrs: List[int], ps: int) -> Iterator[PtEntry]:
    """The FOLIO/PFN entries over *addrs* (sorted) of one mm: one walk per run of adjacent pages."""
    from drgn_ptwalk.walk import pt_range_walk

    mmo = Object(prog, "struct mm_struct *", mm)
    i = 0
    while i < len(addrs):
        j = i
        while j + 1 < len(addrs) and addrs[j + 1] - addrs[j] <= 64 * ps:
            j += 1
        try:
            yield from pt_range_walk(mmo, addrs[i], addrs[j] + ps, include_none=False, vmas=False,
                                     types=(PtType.FOLIO, PtType.PFN), split_folios=False)
        except (FaultError, ValueError):
            pass
        i = j + 1


def whomaps_pfns(prog: Program, pfns: Iterable[int]) -> Dict[int, List[WhoMaps]]:
    """
    :func:`whomaps` of several PFNs: the rmap trees and the process list are read once, each mm's
    candidate addresses are confirmed by one walk per run of nearby pages, and pages no rmap tracks share
    one walk over every process.

    :param pfns: the page frame numbers
    :return: PFN -> its mappings (an empty list: nobody maps it)
    """
    from drgn_ptwalk.walk import pt_range_walk

    ps = 1 << prog["PAGE_SHIFT"].value_()
    pfns = sorted(set(pfns))
    mms = _Mms(prog)
    rmap = _Rmap(prog)
    out: Dict[int, List[WhoMaps]] = {pfn: [] for pfn in pfns}
    untracked: Set[int] = set()
    # mm -> address -> [(pfn, vma, found_by)]
    want: Dict[int, Dict[int, List[Tuple[int, int, str]]]] = defaultdict(lambda: defaultdict(list))
    for pfn in pfns:
        try:
            cands = rmap.candidates(pfn)
        except FaultError:
            cands = None
        if cands is None:
            untracked.add(pfn)
            continue
        for v, addr, how in cands:
            want[v.mm][addr].append((pfn, v.addr, how))
    for mm, by_addr in want.items():
        procs = mms.by_mm.get(mm, ())
        addrs = sorted(by_addr)
        for e in _walk_ranges(prog, mm, addrs, ps):
            if e.pfn is None:
                continue
            k = bisect_left(addrs, e.start)
            while k < len(addrs) and addrs[k] < e.end:
                addr = addrs[k]
                at = e.pfn + (addr - e.start) // ps
                for pfn, vma, how in by_addr[addr]:
                    if pfn == at:
                        for pid, task in procs:
                            out[pfn].append(WhoMaps(pfn, pid, task, vma, addr, e.level, e.type, how))
                k += 1
    if untracked:
        lo, hi = min(untracked), max(untracked)
        for mm_addr, procs in mms.by_mm.items():
            mm = Object(prog, "struct mm_struct *", mm_addr)
            try:
                for e in pt_range_walk(mm, include_none=False, types=(PtType.FOLIO, PtType.PFN),
                                       split_folios=False):
                    if e.pfn is None:
                        continue
                    n = (e.end - e.start) // ps
                    if e.pfn > hi or e.pfn + n <= lo:
                        continue
                    for pfn in range(max(e.pfn, lo), min(e.pfn + n, hi + 1)):
                        if pfn in untracked:
                            addr = e.start + (pfn - e.pfn) * ps
                            for pid, task in procs:
                                out[pfn].append(WhoMaps(pfn, pid, task, e.vma or 0, addr, e.level, e.type,
                                                        "walk"))
            except (FaultError, ValueError, LookupError):
                continue
    for recs in out.values():
        recs.sort(key=lambda r: (r.pid, r.address))
    return out


def whomaps(prog: Program, pfn: int) -> List[WhoMaps]:
    """
    Every (process, VMA, address) whose page tables map *pfn*, found by the kernel's reverse map (see the
    module doc) and confirmed by walking that address.

    :param pfn: a page frame number (``phys >> PAGE_SHIFT``)
    :return: the mappings (an empty list: nobody maps it)
    :raises ArgumentError: if *pfn* has no ``struct page``
    """
    from drgn_ptwalk.page import highest_memmap_pfn

    top = highest_memmap_pfn(prog)
    if pfn < 0 or pfn > top:
        raise ArgumentError(f"PFN {pfn:#x} has no struct page (highest_memmap_pfn is {top:#x})")
    return whomaps_pfns(prog, [pfn])[pfn]


class WhoSwaps(NamedTuple):
    """One page-table entry holding a swap entry: a process and the user address there."""

    swap_type: int
    offset: int
    pid: int
    """Thread-group ID of a process whose mm it is (one record per process sharing the mm)."""
    task: Object
    """``struct task_struct *`` of that process."""
    vma: int
    """Address of the ``struct vm_area_struct``."""
    address: int
    level: PtLevel


def whoswaps(prog: Program, entries: Iterable[Tuple[int, int]]) -> Dict[Tuple[int, int], List[WhoSwaps]]:
    """
    Which processes hold each swap entry ``(type, offset)`` of *entries* in their page tables (the
    ``type:offset`` of a swap device slot, as pagemap and ``swp_entry_t`` give it).

    Nothing in a dump leads from a swap slot back to its page-table entries (the kernel's swapoff
    walks every mm too): one walk over every process's page tables, of swap entries only, answers all
    the entries of a call. Shmem pages swapped out sit in their file's page cache, not in page tables,
    and are not listed.

    :param entries: the swap entries, ``(type, offset)`` each
    :return: ``(type, offset)`` -> its holders, sorted by PID and address (an empty list: nobody)
    """
    from drgn_ptwalk.walk import pt_range_walk

    ps = 1 << prog["PAGE_SHIFT"].value_()
    wanted: Dict[int, Set[int]] = defaultdict(set)
    for t, off in entries:
        if t < 0 or off < 0:
            raise ArgumentError(f"bad swap entry {t}:{off:#x}")
        wanted[t].add(off)
    out: Dict[Tuple[int, int], List[WhoSwaps]] = {(t, o): [] for t, offs in wanted.items() for o in offs}
    if not out:
        return out
    for mm_addr, procs in _Mms(prog).by_mm.items():
        mm = Object(prog, "struct mm_struct *", mm_addr)
        try:
            for e in pt_range_walk(mm, include_none=False, types=(PtType.SWAP,)):
                swp_type = e.swap_type
                offs = wanted.get(swp_type) if swp_type is not None else None
                if not offs or swp_type is None or e.swap_offset is None:
                    continue
                n = (e.end - e.start) // ps
                for k in range(n) if n <= len(offs) else (o - e.swap_offset for o in offs):
                    off = e.swap_offset + k
                    if off in offs and 0 <= k < n:
                        for pid, task in procs:
                            out[(swp_type, off)].append(
                                WhoSwaps(swp_type, off, pid, task, e.vma or 0, e.start + k * ps, e.level))
        except (FaultError, ValueError, LookupError):
            continue
    for recs in out.values():
        recs.sort(key=lambda r: (r.pid, r.address))
    return out


class TableOwner(NamedTuple):
    """Whose page table a page is: an mm, the level, and the addresses it translates."""

    mm: int
    """Address of the ``struct mm_struct`` (``init_mm``: the kernel's own tables)."""
    pids: Tuple[int, ...]
    """Thread-group IDs of the processes using that mm (empty for ``init_mm`` and mms no process uses)."""
    level: PtLevel
    start: int
    end: int
    """``[start, end)``: the virtual addresses the table translates; for a deposited table, those of the
    PMD table whose list holds it (on powerpc, whose PMD tables are fragments sharing their page's list,
    the first such table; all of the user half where the kernel keeps one list per mm)."""
    deposited: bool = False
    """An empty PTE table kept for a PMD-mapped THP (``pgtable_trans_huge_deposit()``), reached from its
    PMD table's ``pmd_huge_pte``, not from an entry."""


class _Deposit(NamedTuple):
    # Where pgtable_trans_huge_deposit() keeps the PTE tables deposited for PMD-mapped THPs.
    in_mm: bool
    """One list per mm (``mm->pmd_huge_pte``: no split PMD locks), not one per PMD table's ptdesc."""
    head: int
    """Offset of ``pmd_huge_pte`` in ``struct mm_struct`` or in the PMD table's ``struct ptdesc``/``page``."""
    in_table: bool
    """``pgtable_t`` is ``pte_t *`` (powerpc): the list_head is the deposited table's own first 16
    bytes (radix__pgtable_trans_huge_deposit()), not its page's ``lru``/``pt_list``."""
    link: int
    """Offset of ``lru``/``pt_list`` in the ``struct ptdesc``/``page`` (unused if :attr:`in_table`)."""


def _deposit_layout(prog: Program) -> Optional[_Deposit]:
    try:
        target = prog.type("pgtable_t").type.type.unqualified()
        in_table = not (target.kind in (TypeKind.STRUCT, TypeKind.UNION)
                        and target.tag in ("page", "ptdesc"))
    except (LookupError, AttributeError):
        in_table = False
    mm_t = prog.type("struct mm_struct")
    for name in ("struct ptdesc", "struct page"):
        try:
            t = prog.type(name)
            link = offsetof(t, "pt_list" if t.has_member("pt_list") else "lru")
            if mm_t.has_member("pmd_huge_pte"):
                return _Deposit(True, offsetof(mm_t, "pmd_huge_pte"), in_table, link)
            return _Deposit(False, offsetof(t, "pmd_huge_pte"), in_table, link)
        except (LookupError, ValueError):
            continue
    return None


def page_table_owners(prog: Program, pfns: Optional[Iterable[int]] = None) -> Dict[int, List[TableOwner]]:
    """
    Whose page tables pages are: every table reachable from every process's mm (its user half), from the
    mms no process uses (the kernel's private ones, a lazy-TLB mm of an exited process, x86's
    ``pgd_list``) and from ``init_mm`` (the kernel's half), by one read per table. A table shared between
    mms (hugetlb PMD sharing) has one owner per mm.

    :param pfns: only these PFNs (default: every table found)
    :return: PFN -> its owners; a page-table page that no mm reaches (freed by RCU, an EFI or other
        private mm) is absent
    """
    from drgn.helpers.linux.mm import follow_phys, virt_to_phys

    from drgn_ptwalk.arch import ArchDecoder, get_decoder
    from drgn_ptwalk.walk import TableGuard, iter_tables, make_reader, mm_table_guard

    dec = get_decoder(prog)
    ps = dec.page_size
    want = None if pfns is None else set(pfns)
    out: Dict[int, List[TableOwner]] = defaultdict(list)
    top = dec.user_range()[1]
    # x86's root table covers both halves (the kernel's from index n/2, sign-extended); arm64's kernel
    # root (TTBR1) covers the kernel half alone.
    both = dec.levels[0][2] << dec.levels[0][1] > top
    read = make_reader(prog, dec)  # ppc64's and s390x's tables are big-endian: read as little-endian
    ptr = struct.Struct(struct_order(prog) + "Q")  # a kernel pointer in memory (big-endian on s390x)
    ext = (1 << 64) - 2 * top

    def canon(a: int) -> int:
        return a + ext if both and a >= top else a

    deposit = _deposit_layout(prog)
    vmemmap = page_layout(prog)

    def deposited(mm: int, pids: Tuple[int, ...], head: int, base: int, end: int) -> None:
        # *head* holds pmd_huge_pte (pgtable_t): the newest deposited table, linked to the others in a
        # circular list.
        if deposit is None:
            return
        try:
            first = ptr.unpack(prog.read(head, 8))[0]
            cur, n = first, 0
            while cur and n < 1 << 16:
                if deposit.in_table:
                    pfn = virt_to_phys(prog, cur).value_() // ps
                    nxt = ptr.unpack(prog.read(cur, 8))[0]
                else:
                    pfn = (cur - vmemmap.vmemmap) // vmemmap.size
                    nxt = ptr.unpack(prog.read(cur + deposit.link, 8))[0] - deposit.link
                if want is None or pfn in want:
                    out[pfn].append(TableOwner(mm, pids, PtLevel.PTE, canon(base), canon(end - 1) + 1, True))
                cur, n = nxt, n + 1
                if cur == first:
                    break
        except FaultError:
            return

    pmd_pages: Set[int] = set()  # PMD-table pages whose ptdesc's list was read (fragments share one)

    def walk(d: "ArchDecoder", mmo: Object, pids: Tuple[int, ...], root: int, base: int, lo: int, hi: int) -> None:
        mm = mmo.value_()
        # A process's mm: the walker's guards and its table budget (mm->pgtables_bytes); the kernel's own
        # mms (whose tables may be accounted to init_mm) and mms no process uses: loops and tables in two
        # places only (init_mm's: loops and tables at two levels).
        guard = (mm_table_guard(mmo, d, root, True) if pids
                 else TableGuard(d.levels, root, None, mm != kernel[0]))
        for t in iter_tables(d, read, root, True, lo, hi, base=base, guard=guard):
            if t.error is not None:
                continue  # not a table of this mm: the walker's guards refuse it (a loop, a second place)
            pfn = t.addr // ps
            # every page the table fills: s390x's region and segment tables are 16 KiB (an order-2 folio
            # whose tail pages are PGTABLE pages too), its page tables 2 KiB (one in a page)
            for p in range(pfn, (t.addr + t.entries * 8 - 1) // ps + 1):
                if want is None or p in want:
                    out[p].append(TableOwner(mm, pids, t.level, canon(t.base),
                                             canon(t.base + (t.entries << t.shift) - 1) + 1))
            if (t.level == PtLevel.PMD and pids and deposit is not None and not deposit.in_mm
                    and pfn not in pmd_pages):
                pmd_pages.add(pfn)
                deposited(mm, pids, vmemmap.vmemmap + pfn * vmemmap.size + deposit.head, t.base,
                          t.base + (t.entries << t.shift))

    # (mm, pids, base of the root, [lo, hi) walked in the root's own address space)
    roots = [(mm, tuple(pid for pid, _ in procs), 0, 0, top) for mm, procs in _Mms(prog).by_mm.items()]
    init_mm = prog["init_mm"].address_of_()
    kernel = [init_mm.value_()]
    # The kernel's private mms: x86 text poking (poking_mm; text_poke_mm since commit a5c832e0476e
    # ("x86/alternatives: Rename 'poking_mm' to 'text_poke_mm'"), v6.16), EFI runtime
    # services, Intel TXT.
    for name in ("poking_mm", "text_poke_mm", "efi_mm", "tboot_mm"):
        try:
            obj = prog[name]
            kernel.append(obj.value_() if obj.type_.unqualified().kind == TypeKind.POINTER
                          else obj.address_of_().value_())
        except (KeyError, LookupError, FaultError):
            pass
    # powerpc's text patching: one temporary mm per CPU (code-patching.c's cpu_patching_context.mm,
    # with the radix MMU).
    try:
        ctx = prog["cpu_patching_context"]
        if ctx.type_.has_member("mm"):
            from drgn.helpers.linux.cpumask import for_each_possible_cpu
            from drgn.helpers.linux.percpu import per_cpu

            kernel.extend(per_cpu(ctx, cpu).mm.value_() for cpu in for_each_possible_cpu(prog))
    except (KeyError, LookupError, FaultError):
        pass
    for mm in kernel[1:]:
        if mm:
            roots.append((mm, (), 0, 0, top))
    listed = {mm for mm, *_ in roots} | {kernel[0]}
    roots.extend((mm, (), 0, 0, top) for mm in _unattached_mms(prog) if mm not in listed)
    kstart, kend = dec.kernel_range()
    roots.append((kernel[0], (), 0, top, 2 * top) if both else (kernel[0], (), kstart, kstart, kend))
    seen: Set[Tuple[int, int]] = set()
    for mm, pids, base, lo, hi in roots:
        try:
            mmo = Object(prog, "struct mm_struct *", mm)
            root, physical = dec.root(mmo)
            if not physical:  # the direct map, or the kernel image (x86's init_top_pgt)
                root = follow_phys(init_mm, root).value_()
            # the depth of this mm's own tables (s390x: its ASCE type, 3 to 5 levels; the kernel's too),
            # and the addresses its root covers
            d = dec.for_mm(mmo)
        except (FaultError, ValueError, LookupError):
            continue
        if d is not dec and (base, lo) == (0, 0) and hi == top:
            hi = d.user_range()[1]
        elif d is not dec and not both and (base, lo, hi) == (kstart, kstart, kend):
            lo, hi = d.kernel_range()
            base = lo
        if (root, lo) in seen:  # tboot_mm and init_mm share swapper's tables
            continue
        seen.add((root, lo))
        walk(d, mmo, pids, root, base, lo, hi)
        if pids and deposit is not None and deposit.in_mm:
            deposited(mm, pids, mm + deposit.head, lo, hi)
    return dict(out)


def _unattached_mms(prog: Program) -> List[int]:
    """
    The mms no process uses whose tables still exist: the one a CPU's kernel thread borrowed (lazy TLB:
    an exited process's mm lives on, with its root table, until that CPU runs a process again; the
    scheduler's ``rq->prev_mm`` between a switch and its end), and on x86 every other mm with a root
    table (``pgd_list`` holds each PGD, its ``pt_mm`` the mm: one pinned by mmgrab() after its process
    exited).
    """
    from drgn.helpers.linux.cpumask import for_each_possible_cpu
    from drgn.helpers.linux.list import list_for_each
    from drgn.helpers.linux.percpu import per_cpu

    out: List[int] = []
    try:
        rqs = prog["runqueues"]
        prev = rqs.type_.has_member("prev_mm")
        for cpu in for_each_possible_cpu(prog):
            rq = per_cpu(rqs, cpu)
            curr = rq.curr
            if curr and not curr.mm:
                out.append(curr.active_mm.value_())
            if prev:
                out.append(rq.prev_mm.value_())
    except (KeyError, LookupError, FaultError):
        pass
    try:
        head = prog["pgd_list"].address_of_()
        # The list links ptdesc->pt_list, pt_mm its mm: the same words as struct page's lru and pt_mm
        # before "x86: convert various functions to use ptdescs" (Vishal Moola, v6.6).
        try:
            desc, link = prog.type("struct ptdesc"), "pt_list"
        except LookupError:
            desc, link = prog.type("struct page"), "lru"
        delta = offsetof(desc, "pt_mm") - offsetof(desc, link)
        for node in list_for_each(head):
            out.append(struct.unpack(struct_order(prog) + "Q", prog.read(node.value_() + delta, 8))[0])
    except (KeyError, LookupError, FaultError):
        pass
    return list(dict.fromkeys(mm for mm in out if mm))


class PageKind(NamedTuple):
    """What a page is."""

    pfn: int
    kind: str
    """``"free"``, ``"slab"``, ``"page_table"``, ``"page_cache"``, ``"shmem"``, ``"anon"``, ``"ksm"``,
    ``"hugetlb"``, ``"hugetlb_free"``, ``"zero_page"``, ``"reserved"``, ``"hwpoison"``, ``"offline"``,
    ``"hole"`` (no online ``struct page``) or ``"kernel"`` (allocated, none of these)."""
    detail: str
    """Buddy order, slab cache name, file path and offset, ...; ``""`` if nothing more is known."""
    kpageflags: int
    """The page's /proc/kpageflags value."""


def _owner_text(prog: Program, owners: List[TableOwner]) -> str:
    o = owners[0]
    if o.deposited:
        return (f"PTE table deposited for the THP at {o.start:#x} of pid "
                + ",".join(str(p) for p in o.pids[:4]))
    if not o.pids:
        who = ("the kernel (init_mm)" if o.mm == prog["init_mm"].address_of_().value_()
               else f"mm {o.mm:#x} (no process uses it)")
    else:
        who = "pid " + ",".join(str(p) for p in o.pids[:4]) + ("..." if len(o.pids) > 4 else "")
    more = f" (+{len(owners) - 1} more mm)" if len(owners) > 1 else ""
    return f"{o.level.name} table of {who} for {o.start:#x}-{o.end:#x}{more}"


def page_kind(prog: Program, pfn: int, owners: Optional[Dict[int, List[TableOwner]]] = None) -> PageKind:
    """
    What *pfn* is (see :class:`PageKind`), from its /proc/kpageflags value and its ``struct page``.

    :param pfn: a page frame number
    :param owners: :func:`page_table_owners` of the PFNs asked about, when many are (a page table's owner
        is otherwise found by a walk of every mm's tables for this PFN alone)
    :return: its kind, the detail of that kind and its kpageflags value
    :raises ArgumentError: if *pfn* is negative
    """
    if pfn < 0:
        raise ArgumentError(f"bad PFN {pfn:#x}")
    # the value (b"" past where the file ends: 0)
    flags = int.from_bytes(one_file(prog, pfn, pfn + 1, "kpageflags", kernel_order=False), "little")
    if pfn >= max_dump_pfn(prog) or not pfn_online(prog, pfn):
        return PageKind(pfn, "hole", "", flags)

    def has(name: str) -> bool:
        return bool(flags >> KPF[name] & 1)

    if has("HWPOISON"):
        return PageKind(pfn, "hwpoison", "", flags)
    head = compound_head_pfn(prog, pfn)
    page = _page(prog, head)
    if has("BUDDY"):
        # is_free_buddy_page(): the PageBuddy head covering it; its order is page->private.
        ctx = kpage_context(prog)
        detail = ""
        for k in range(ctx.max_order + 1):
            h = pfn & ~((1 << k) - 1)
            try:
                b = read_struct_pages(prog, h, 1)
            except FaultError:
                break
            order = _U64.unpack_from(b, ctx.private)[0]
            if page_type_is(ctx, _U32.unpack_from(b, ctx.lay.mapcount)[0], "buddy") and order >= k:
                detail = f"order {order} block at PFN {h:#x}"
                break
        return PageKind(pfn, "free", detail, flags)
    if has("ZERO_PAGE"):
        return PageKind(pfn, "zero_page", "huge zero folio" if has("THP") else "", flags)
    if has("SLAB"):
        try:
            slab = cast("struct slab *", page)
            name = slab.slab_cache.name.string_().decode(errors="replace")
        except (LookupError, FaultError):
            name = ""
        return PageKind(pfn, "slab", name, flags)
    if has("PGTABLE"):
        mine = (page_table_owners(prog, [pfn]) if owners is None else owners).get(pfn)
        return PageKind(pfn, "page_table", _owner_text(prog, mine) if mine else "no mm reaches it", flags)
    if has("OFFLINE"):
        return PageKind(pfn, "offline", "", flags)
    mapping = page.mapping.value_()
    file_detail = ""
    if mapping and not mapping & 3:
        try:
            host = Object(prog, "struct address_space *", mapping).host
            ps = 1 << prog["PAGE_SHIFT"].value_()
            order = folio_order(prog, head)
            pgoff = _pgoff(prog, has("HUGE"), _index(page), 1 << order, pfn - head)
            file_detail = f"{_file_name(host)} offset {pgoff * ps:#x}"
        except (LookupError, FaultError, ValueError):
            pass
    if has("HUGE"):
        mapped = has("MMAP") or page._refcount.counter.value_() > 0
        detail = file_detail or f"order {folio_order(prog, head)} folio at PFN {head:#x}"
        return PageKind(pfn, "hugetlb" if mapped else "hugetlb_free", detail, flags)
    if has("ANON") and page.mapping.value_() & 3 == 3:
        return PageKind(pfn, "ksm", "", flags)
    if has("ANON"):
        return PageKind(pfn, "anon", "", flags)
    if mapping and not mapping & 3:
        return PageKind(pfn, "shmem" if has("SWAPBACKED") else "page_cache", file_detail, flags)
    # Kernel page tables set up early (and x86's PGDs and P4Ds) carry no PGTABLE type: a page no other
    # state claims is looked up among the tables.
    mine = (page_table_owners(prog, [pfn]) if owners is None else owners).get(pfn)
    if mine:
        return PageKind(pfn, "page_table", _owner_text(prog, mine), flags)
    if has("RESERVED"):
        return PageKind(pfn, "reserved", "", flags)
    return PageKind(pfn, "kernel", "", flags)
