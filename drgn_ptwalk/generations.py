# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Kernel generations: every layout or rule that differs between the kernels drgn-ptwalk reads, what tells
them apart, and the kernel change each one follows, in one place.

:func:`generation` returns a :class:`Generation` for a program, computed once and cached in
``prog.cache``; the walker, the arch decoders, the ``struct page`` reader and the /proc builders ask it
instead of testing versions themselves. Each field is detected from the kernel's own types, members,
enumerators and functions, never from a version string. Where the change itself leaves no trace in the
debug info (a macro, an inline rule) a *proxy* is tested: a symbol that came with the same change; such
fields say "proxy". Where the commit hash could not be confirmed from the material at hand (the kernel
repository is not within reach of this project's tooling), the subject and release are given and the hash
is said to be unconfirmed.
"""

from typing import NamedTuple, Optional

from drgn import Program, TypeKind

from drgn_ptwalk._kernel import cached, const, has_member

__all__ = ("Generation", "generation")


def _has(prog: Program, name: str) -> bool:
    try:
        return name in prog
    except (LookupError, ValueError):
        return False


class Generation(NamedTuple):
    """What a kernel is, feature by feature (see each field)."""

    x86_saved_dirty: Optional[bool]
    """x86-64: bit 58 of a PTE is ``_PAGE_SAVED_DIRTY`` (counted by ``pte_dirty()``); before, it was
    ``_PAGE_DEVMAP``. Commit a6ab1b7a9b7c ("x86/mm: Introduce _PAGE_SAVED_DIRTY"), v6.6 (user shadow
    stacks). *Proxy*: ``arch_check_zapped_pte()``, from "mm: Warn on shadow stack memory in wrong vma" of
    the same series (the bit is a macro). ``None`` on other architectures."""

    arm64_v610_layout: Optional[bool]
    """arm64: the v6.10 software PTE bits (present-invalid is nG with VALID clear, uffd-wp bit 58, swap
    type bits 6-10, offset 12-61); before, PROT_NONE was bit 58, swap type bits 3-7, offset 8-57. Series
    "arm64/mm: Enable userfaultfd write-protect" (Ryan Roberts): commits f0f5863a0fb0 ("arm64/mm: Remove
    PTE_PROT_NONE bit") and 55564814a838 ("arm64/mm: Move PTE_PRESENT_INVALID to overlay PTE_NG"), v6.10.
    Detected from the kernel's own ``PAGE_NONE``, ``protection_map[VM_NONE]``: bit 58 set only in the old
    layout. ``None`` on other architectures."""

    compound_info: bool
    """``struct page::compound_info`` (else ``compound_head``): commit d50569612c29 ("mm: rename the
    'compound_head' field in the 'struct page' to 'compound_info'"), v7.1. The member itself."""

    compound_info_mask: bool
    """``compound_info`` may hold ``mask | 1`` instead of ``head | 1`` and HVO fake heads are gone:
    commit 8c846c879e22 ("mm: rework compound_head() for power-of-2 sizeof(struct page)"), v7.1. Detected
    as drgn does: ``compound_info``, a power-of-2 ``struct page`` and ``struct zone::vmemmap_tails``."""

    folio_order: str
    """Where the folio order byte is: ``"_folio_order"`` (``struct folio``, commit 379708ffde1b ("mm: add
    the first tail page to struct folio"), v6.1; 6.1 also has ``_flags_1``, so this is tested first),
    ``"_flags_1"`` (low byte, commit ebc1baf5c9b4 ("mm: free up a word in the first tail page"), v6.6) or
    ``"compound_order"`` (``page[1]``, before folios). The members themselves."""

    compound_mapcount: bool
    """v6.1's THP mapcount scheme: ``compound_mapcount`` in ``page[1]`` (``struct folio::
    _total_mapcount``) and ``PageDoubleMap``; replaced by ``_entire_mapcount`` in commit cb67f4282bf9
    ("mm,thp,rmap: simplify compound page mapcount handling"), v6.2 (Hugh Dickins). The member itself."""

    entire_mapcount: bool
    """``struct folio::_entire_mapcount`` (v6.2, see :attr:`compound_mapcount`). The member itself."""

    large_mapcount: bool
    """``struct folio::_large_mapcount``: commit 05c5323b2a34 ("mm: track mapcount of large folios in
    single value"), v6.10 (David Hildenbrand). The member itself."""

    mm_ids: bool
    """``struct folio::_mm_ids`` (``folio_maybe_mapped_shared()``): commit 6af8cb80d3a9 ("mm/rmap: basic
    MM owner tracking for large folios (!hugetlb)"), v6.15 (David Hildenbrand). The member itself."""

    hugetlb_page_type: bool
    """A hugetlb folio is page type ``PGTY_hugetlb`` (``page_type >> 24``, v6.12's layout of page types);
    before (v6.1), ``page[1].compound_dtor == HUGETLB_PAGE_DTOR``. The enumerator ``PGTY_hugetlb``
    itself."""

    precise_mapcount: bool
    """smaps and pagemap use ``folio_precise_page_mapcount()`` (smaps: a non-present entry is "maybe
    shared"; pagemap: ``PM_MMAP_EXCLUSIVE`` only for present entries, per page of a PMD-mapped THP; shmem
    swap counted ``1 << order`` per entry): David Hildenbrand's mapcount series, v6.10-v6.12 (commit
    2c1f057e5be6 ("fs/proc/task_mmu: properly detect PM_MMAP_EXCLUSIVE per page of PMD-mapped THPs"),
    v6.11; the other commits' hashes unconfirmed).
    *Proxy*: the function ``folio_precise_page_mapcount`` (the rules are in task_mmu.c)."""

    smaps_ksm_line: bool
    """smaps prints a ``KSM:`` line: ``struct mem_size_stats::ksm``, commit 8b47933544a6 ("proc/ksm: add
    ksm stats to /proc/pid/smaps"), v6.6 (Stefan Roesch). The member itself."""

    mthp: bool
    """THPeligible asks ``thp_vma_allowable_orders()`` (multi-size THP) instead of
    ``hugepage_vma_check()``: commit 3485b88390b0 ("mm: thp: introduce multi-size THP sysfs interface"),
    v6.8. The function ``__thp_vma_allowable_orders`` itself."""

    thp_eligible_width8: bool
    """smaps prints ``THPeligible:    %8u`` (v6.1: ``%d``): commit daa60ae64c65 ("mm,thp: fix smaps
    THPeligible output alignment"), v6.6 (Hugh Dickins). *Proxy*: :attr:`smaps_ksm_line`, of the same
    release (a format string has no type to detect)."""

    tva_enum: bool
    """``enum tva_type`` (``TVA_SMAPS`` an enumerator, ``TVA_ENFORCE_SYSFS`` gone): "mm/huge_memory:
    convert "tva_flags" to "enum tva_type"" (v6.18; hash unconfirmed), with the v6.18 THP rules that came
    with it (shmem orders masked by the asked ones, ``MMF_DISABLE_THP_EXCEPT_ADVISED``,
    ``file_thp_enabled()`` for large-folio file systems). The enumerators themselves for the enum; the
    rules that came with it are *proxied* by it."""

    tmpfs_mmap_orders: bool
    """A tmpfs mapping may have every large-folio order its mount allows, not the PMD order alone
    (``shmem_huge_global_enabled()``: ``huge=always`` gives ``THP_ORDERS_ALL_FILE_DEFAULT``,
    ``huge=within_size`` the orders that end within ``i_size``, ``huge=advise`` all of them with
    ``MADV_HUGEPAGE``): "mm: shmem: fix the strategy for the tmpfs 'huge=' options" (Baolin Wang, v6.18;
    hash unconfirmed), which dropped the PMD-only rule for mappings that commit acd7ccb284b8 ("mm: shmem:
    add large folio support for tmpfs", v6.14) kept. *Proxy*: :attr:`tva_enum`, of the same release (the
    rule is in a static function; no type changed)."""

    mm_flags_bitmap: bool
    """``mm_struct::flags`` is ``mm_flags_t`` (a struct holding a bitmap): "mm: replace mm->flags with
    bitmap entirely and set to 64 bits" (Lorenzo Stoakes, last of the series "mm: make mm->flags a bitmap
    and 64-bit on all arches", v6.18; hash unconfirmed). The type itself."""

    heap_strict: bool
    """``[heap]`` is ``vma_is_initial_heap()`` (``vm_start < brk && vm_end > start_brk``): commit
    11250fd12eb8 ("mm: factor out VMA stack and heap checks"), v6.7; before, ``<=``/``>=``. The function
    itself."""

    backing_user_path: bool
    """A backing file (``FMODE_BACKING``, overlayfs mmap) keeps the user's path in ``struct
    backing_file::user_path``: commit def3ae83da02 ("fs: store real path instead of fake path in backing
    file f_path"), v6.7. The member itself."""

    vm_flags_layout: str
    """Where the high ``VM_*`` bits are: ``"enum"`` (v7.x "mm: declare VMA flags by bit": ``VMA_*_BIT``
    enumerators, read from the kernel; the enumerator ``VMA_UFFD_MINOR_BIT`` itself), ``"mseal"``
    (commit 8be7258aad44 ("mseal: add mseal syscall"), v6.10: ``VM_SEALED`` bit 63, ``VM_DROPPABLE`` 40,
    ``VM_UFFD_MINOR`` 38; *proxy*: the syscall ``__x64_sys_mseal``/``__arm64_sys_mseal``, the bits being
    macros) or ``"v6.1"`` (``VM_UFFD_MINOR`` bit 37)."""

    swap_table: bool
    """Swap counts live in the cluster's swap table (``struct swap_cluster_info::table`` and
    ``extend_table``), not in ``swap_map``: commit 0d6af9bcf383 ("mm, swap: use the swap table to track
    the swap count"), v7.1 (Kairui Song; ``table`` itself came with the v6.18 swap-table series). The
    members themselves."""

    kpage_scheme: str
    """How fs/proc/page.c reads a page: ``"snapshot"`` (``stable_page_flags()`` and kpagecount on a
    ``snapshot_page()`` copy, zero pages told by PFN, offline/page-table types tested on the folio, kpagecount
    ``folio_precise_page_mapcount()`` under CONFIG_PAGE_MAPCOUNT: the ``snapshot_page()`` series (Luiz
    Capitulino, v6.17: "mm/util: introduce snapshot_page()", "proc: kpagecount: use snapshot_page()", "fs:
    stable_page_flags(): use snapshot_page()"; hashes unconfirmed); the function ``snapshot_page``
    itself), ``"folio"`` (the folio's flags, ``KPF_THP`` for large rmappable folios, kpagecount
    ``folio_precise_page_mapcount()``: commit dee3d0bef2b0 ("proc: rewrite stable_page_flags()"), v6.10
    (Matthew Wilcox); *proxy*: the ``PGTY_*`` page-type enumeration, commit 4ffca5a96678 ("mm: support
    only one page_type per page"), v6.12, so v6.10-v6.11 are read as ``"page"``) or ``"page"`` (v6.1: the
    page's own flags, ``page_mapcount()``). CONFIG_NO_PAGE_MAPCOUNT (kpagecount = the folio's average
    mapcount, v6.15+) leaves no trace in the debug info and is not Debian's: not detected."""

    kpage_holes_zero: bool
    """A PFN without an online ``struct page`` reads as 0 in all three files, /proc/kpageflags included
    (``kpage_read()``, which came with "fs/proc/page: Refactoring to reduce code duplication." (Liu Ye,
    posted March 2025; release and hash unconfirmed), returns 0 for them); before, /proc/kpageflags said
    ``KPF_NOPAGE`` (``stable_page_flags(NULL)``). The function ``kpage_read`` itself."""

    hugetlb_huge_index: bool
    """A hugetlb folio's ``index`` counts huge pages (``page_to_pgoff()`` goes through
    ``hugetlb_basepage_index()``, anonymous ones are placed by ``linear_hugepage_index()``); since
    commit a08c7193e4f1 ("mm/filemap: remove hugetlb special casing in filemap.c"), v6.7 (Sidhartha
    Kumar), it counts base pages like every other page cache folio. The function
    ``hugetlb_basepage_index`` itself."""


def _arm64_v610_layout(prog: Program) -> bool:
    try:
        page_none = prog["protection_map"][0].pgprot.value_()
    except (KeyError, LookupError, AttributeError):
        return True
    return not page_none >> 58 & 1


def _compound_info_mask(prog: Program) -> bool:
    if not has_member(prog, "struct page", "compound_info"):
        return False
    size = prog.type("struct page").size
    return size & (size - 1) == 0 and has_member(prog, "struct zone", "vmemmap_tails")


def _folio_order(prog: Program) -> str:
    if has_member(prog, "struct folio", "_folio_order"):
        return "_folio_order"
    if has_member(prog, "struct folio", "_flags_1"):
        return "_flags_1"
    return "compound_order"


def _mm_flags_bitmap(prog: Program) -> bool:
    try:
        t = prog.type("struct mm_struct").member("flags").type
    except LookupError:
        return False
    while t.kind == TypeKind.TYPEDEF:
        t = t.type
    return t.kind == TypeKind.STRUCT


def _vm_flags_layout(prog: Program) -> str:
    if const(prog, "VMA_UFFD_MINOR_BIT") is not None:
        return "enum"
    if _has(prog, "__x64_sys_mseal") or _has(prog, "__arm64_sys_mseal"):
        return "mseal"
    return "v6.1"


def _detect(prog: Program) -> Generation:
    arch = prog.platform.arch.name if prog.platform else ""
    mthp = _has(prog, "__thp_vma_allowable_orders")
    tva_enum = const(prog, "TVA_SMAPS") is not None and const(prog, "TVA_ENFORCE_SYSFS") is None
    return Generation(
        x86_saved_dirty=_has(prog, "arch_check_zapped_pte") if arch == "X86_64" else None,
        arm64_v610_layout=_arm64_v610_layout(prog) if arch == "AARCH64" else None,
        compound_info=has_member(prog, "struct page", "compound_info"),
        compound_info_mask=_compound_info_mask(prog),
        folio_order=_folio_order(prog),
        compound_mapcount=has_member(prog, "struct folio", "_total_mapcount"),
        entire_mapcount=has_member(prog, "struct folio", "_entire_mapcount"),
        large_mapcount=has_member(prog, "struct folio", "_large_mapcount"),
        mm_ids=has_member(prog, "struct folio", "_mm_ids"),
        hugetlb_page_type=const(prog, "PGTY_hugetlb") is not None,
        precise_mapcount=_has(prog, "folio_precise_page_mapcount"),
        smaps_ksm_line=has_member(prog, "struct mem_size_stats", "ksm"),
        mthp=mthp,
        thp_eligible_width8=has_member(prog, "struct mem_size_stats", "ksm"),
        tva_enum=tva_enum,
        tmpfs_mmap_orders=tva_enum,
        mm_flags_bitmap=_mm_flags_bitmap(prog),
        heap_strict=_has(prog, "vma_is_initial_heap"),
        backing_user_path=has_member(prog, "struct backing_file", "user_path"),
        vm_flags_layout=_vm_flags_layout(prog),
        swap_table=has_member(prog, "struct swap_cluster_info", "table")
        and has_member(prog, "struct swap_cluster_info", "extend_table"),
        kpage_scheme="snapshot" if _has(prog, "snapshot_page")
        else "folio" if const(prog, "PGTY_buddy") is not None else "page",
        kpage_holes_zero=_has(prog, "kpage_read"),
        hugetlb_huge_index=_has(prog, "hugetlb_basepage_index"),
    )


def generation(prog: Program) -> Generation:
    """The :class:`Generation` of the kernel in *prog* (computed once, cached in ``prog.cache``)."""
    return cached(prog, "ptwalk_generation", _detect, prog)
