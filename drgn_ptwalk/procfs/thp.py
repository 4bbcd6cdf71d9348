# SPDX-License-Identifier: LGPL-2.1-or-later
"""
``THPeligible`` of smaps: whether the kernel would allow a (multi-size) THP
in a VMA, as ``show_smap()`` asks it.

* v6.1: ``hugepage_vma_check(vma, vm_flags, smaps=true, in_pf=false,
  enforce_sysfs=true)`` (PMD size only).
* v6.8+: ``thp_vma_allowable_orders(vma, vm_flags, TVA_SMAPS |
  TVA_ENFORCE_SYSFS, THP_ORDERS_ALL)`` ("mm: thp: introduce multi-size THP
  sysfs interface", v6.8; detected by ``__thp_vma_allowable_orders``).
* v7.x differences: the shmem branch masks by the requested orders, the
  ``MMF_DISABLE_THP_EXCEPT_ADVISED`` prctl bit, and ``file_thp_enabled()``
  for regular files whose mapping supports PMD-size folios; a tmpfs mapping
  gets every order its ``huge=`` mount option allows, not the PMD order alone
  (:func:`_shmem_global_orders`), so a VMA smaller than a PMD can be eligible.
"""

from typing import Optional

from drgn import Object, Program, ProgramFlags, cast

from drgn_ptwalk.generations import generation
from drgn_ptwalk.procfs.vma import (
    VM_DONTEXPAND,
    VM_GROWSDOWN,
    VM_HUGEPAGE,
    VM_HUGETLB,
    VM_IO,
    VM_MIXEDMAP,
    VM_NOHUGEPAGE,
    VM_PFNMAP,
    VM_RAND_READ,
    VM_SEQ_READ,
    VmaRaw,
    _page_size,
)

__all__ = ("thp_eligible",)

VM_NO_KHUGEPAGED = VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP
VM_NO_KHUGEPAGED |= VM_HUGETLB
S_DAX = 1 << 13
S_IFMT = 0o170000
S_IFREG = 0o100000
# SHMEM_HUGE_* (mm/shmem.c / shmem_fs.h)
SHMEM_HUGE_NEVER, SHMEM_HUGE_ALWAYS, SHMEM_HUGE_WITHIN_SIZE, SHMEM_HUGE_ADVISE = 0, 1, 2, 3
SHMEM_HUGE_DENY, SHMEM_HUGE_FORCE = -1, -2


def _const(prog: Program, name: str, default: Optional[int] = None) -> Optional[int]:
    # Enumerators never change: looked up once per program (THPeligible asks them for every VMA).
    cache = prog.cache.setdefault("ptwalk_thp_consts", {})
    try:
        v = cache[name]
    except KeyError:
        try:
            v = prog.constant(name).value_()
        except LookupError:
            v = None
        cache[name] = v
    return default if v is None else v


def _global(prog: Program, name: str, default: int) -> int:
    """The integer variable *name* (sysfs settings: ``transparent_hugepage_flags``, ``huge_*_orders_*``,
    ``shmem_huge``), *default* if the kernel has none. Read once per dump (THPeligible asks them for every
    VMA); a live kernel's are read each time, as an admin may change them."""
    cache = prog.cache.get("ptwalk_thp_globals")
    if cache is None:
        cache = prog.cache["ptwalk_thp_globals"] = {} if not prog.flags & ProgramFlags.IS_LIVE else False
    if cache is not False and name in cache:
        return cache[name]
    try:
        v = prog[name].value_()
    except LookupError:
        v = default
    if cache is not False:
        cache[name] = v
    return v


def _thp_flags(prog: Program) -> int:
    return _global(prog, "transparent_hugepage_flags", 0)


def _global_enabled(prog: Program) -> bool:
    f = _thp_flags(prog)
    return bool(f & (1 << _const(prog, "TRANSPARENT_HUGEPAGE_FLAG", 1)
                     | 1 << _const(prog, "TRANSPARENT_HUGEPAGE_REQ_MADV_FLAG", 2)))


def _global_always(prog: Program) -> bool:
    return bool(_thp_flags(prog) & (1 << _const(prog, "TRANSPARENT_HUGEPAGE_FLAG", 1)))


def _disabled_by_hw(prog: Program) -> bool:
    # TRANSPARENT_HUGEPAGE_UNSUPPORTED (v6.8+); TRANSPARENT_HUGEPAGE_NEVER_DAX (v6.1).
    bit = _const(prog, "TRANSPARENT_HUGEPAGE_UNSUPPORTED")
    if bit is None:
        bit = _const(prog, "TRANSPARENT_HUGEPAGE_NEVER_DAX")
    return bit is not None and bool(_thp_flags(prog) & (1 << bit))


def _pmd_order(prog: Program) -> int:
    cache = prog.cache.setdefault("ptwalk_thp_consts", {})
    try:
        return cache[" pmd_order"]
    except KeyError:
        from drgn_ptwalk.arch import get_decoder
        from drgn_ptwalk.entry import PtLevel

        dec = get_decoder(prog)
        v = cache[" pmd_order"] = dec.level_shift(PtLevel.PMD) - dec.page_shift
        return v


def _vma_is_anonymous(vma: Object, raw: Optional[VmaRaw] = None) -> bool:
    return not (vma.vm_ops.value_() if raw is None else raw.ops)


def _vma_is_dax(vma: Object, raw: Optional[VmaRaw] = None) -> bool:
    if raw is not None and not raw.file:
        return False
    f = vma.vm_file.read_()
    return bool(f) and bool(f.f_inode.i_flags.value_() & S_DAX)


def _shmem_file(vma: Object, raw: Optional[VmaRaw] = None) -> bool:
    if raw is not None and not raw.file:
        return False
    f = vma.vm_file.read_()
    if not f:
        return False
    aops = _shmem_aops(vma.prog_)
    return aops is not None and f.f_mapping.a_ops.value_() == aops


def _shmem_aops(prog: Program) -> Optional[int]:
    # The address of shmem_aops (a symbol's address: once per program).
    cache = prog.cache.setdefault("ptwalk_thp_consts", {})
    try:
        return cache[" shmem_aops"]
    except KeyError:
        try:
            v: Optional[int] = prog["shmem_aops"].address_of_().value_()
        except LookupError:
            v = None
        cache[" shmem_aops"] = v
        return v


def _tva_enum(prog: Program) -> bool:
    # The v6.18 THP rules (Generation.tva_enum).
    return generation(prog).tva_enum


def _mm_flags(mm: Object) -> int:
    flags = mm.flags
    if generation(mm.prog_).mm_flags_bitmap:
        # mm_flags_t (Generation.mm_flags_bitmap).
        return flags.__mm_flags[0].value_()
    return flags.value_()


def _mm_thp_disabled(vma: Object, vm_flags: int) -> bool:
    """``vma_thp_disabled()``: VM_NOHUGEPAGE or the prctl MMF bits."""
    prog = vma.prog_
    if vm_flags & VM_NOHUGEPAGE:
        return True
    mmflags = _mm_flags(vma.vm_mm)
    # MMF_DISABLE_THP = 24 (v6.1, v6.12). v6.18 "prctl: extend
    # PR_SET_THP_DISABLE to optionally exclude VM_HUGEPAGE": bit 24 is
    # MMF_DISABLE_THP_COMPLETELY and bit 23 MMF_DISABLE_THP_EXCEPT_ADVISED
    # (ignored for VM_HUGEPAGE VMAs). Both are macros, not in debug info.
    if mmflags >> 24 & 1:
        return True
    if _tva_enum(prog) and mmflags >> 23 & 1 and not vm_flags & VM_HUGEPAGE:
        return True
    return False


def _temporary_stack(vm_flags: int) -> bool:
    # vma_is_temporary_stack(): VM_GROWSDOWN and VM_STACK_INCOMPLETE_SETUP.
    if not vm_flags & VM_GROWSDOWN:
        return False
    return vm_flags & (VM_SEQ_READ | VM_RAND_READ) == (VM_SEQ_READ | VM_RAND_READ)


def _i_size(inode: Object) -> int:
    return inode.i_size.value_()


def _shmem_sb_huge(inode: Object) -> int:
    sbinfo = cast("struct shmem_sb_info *", inode.i_sb.s_fs_info)
    return sbinfo.huge.value_()


def _shmem_huge(prog: Program) -> int:
    return _global(prog, "shmem_huge", SHMEM_HUGE_NEVER)


def _shmem_huge_global_enabled(vma: Object, inode: Object, index: int, vm_flags: int) -> bool:
    # shmem_is_huge() (v6.1) / shmem_huge_global_enabled() (v6.12+), no force.
    prog = vma.prog_
    if inode.i_mode.value_() & S_IFMT != S_IFREG:
        return False
    if _mm_thp_disabled(vma, vm_flags):
        return False
    sh = _shmem_huge(prog)
    if sh == SHMEM_HUGE_DENY:
        return False
    if sh == SHMEM_HUGE_FORCE:
        return True
    huge = _shmem_sb_huge(inode)
    ps = _page_size(prog)
    nr = 1 << _pmd_order(prog)
    if huge == SHMEM_HUGE_ALWAYS:
        return True
    if huge == SHMEM_HUGE_WITHIN_SIZE:
        idx = -(-(index + 1) // nr) * nr
        i_size = -(-_i_size(inode) // ps) * ps
        if i_size // ps >= idx:
            return True
        huge = SHMEM_HUGE_ADVISE
    if huge == SHMEM_HUGE_ADVISE:
        return bool(vm_flags & VM_HUGEPAGE)
    return False


def _orders_var(prog: Program, name: str) -> int:
    return _global(prog, name, 0)


def _highest(orders: int) -> int:
    return orders.bit_length() - 1


def _suitable(vma: Object, order: int, raw: Optional[VmaRaw] = None) -> bool:
    # thp_vma_suitable_order(vma, vm_end - (PAGE_SIZE << order), order)
    prog = vma.prog_
    ps = _page_size(prog)
    size = ps << order
    start, end = (vma.vm_start.value_(), vma.vm_end.value_()) if raw is None else (raw.start, raw.end)
    if not _vma_is_anonymous(vma, raw):
        if ((start // ps) - (vma.vm_pgoff.value_() if raw is None else raw.pgoff)) % (size // ps):
            return False
    # Unsigned long arithmetic, wrap-around included: for a VMA that ends below one huge page (possible
    # near address 0 with 16K pages, whose PMD is 32M) vm_end - size wraps, haddr + size wraps to 0,
    # and the kernel calls the order suitable.
    mask = (1 << 64) - 1
    addr = (end - size) & mask
    haddr = addr & ~(size - 1) & mask
    return start <= haddr and (haddr + size) & mask <= end


def thp_eligible(vma: Object, raw: Optional[VmaRaw] = None) -> bool:
    """
    The ``THPeligible`` value of *vma*.

    :param vma: ``struct vm_area_struct *``
    :param raw: its fields (:func:`~drgn_ptwalk.procfs.vma.vma_raw`), if
        read already: then only what they point to is read
    """
    prog = vma.prog_
    if not (vma.vm_mm.value_() if raw is None else raw.mm):
        return False
    if generation(prog).mthp:
        return _allowable_orders(vma, raw) != 0
    return _hugepage_vma_check(vma, raw)


def _hugepage_vma_check(vma: Object, raw: Optional[VmaRaw] = None) -> bool:
    # v6.1 mm/huge_memory.c hugepage_vma_check(smaps=true, in_pf=false,
    # enforce_sysfs=true).
    prog = vma.prog_
    vm_flags = vma.vm_flags.value_() if raw is None else raw.flags
    if _mm_thp_disabled(vma, vm_flags):
        return False
    if _disabled_by_hw(prog):
        return False
    if _vma_is_dax(vma, raw):
        return False
    if vm_flags & VM_NO_KHUGEPAGED:
        return False
    if not _suitable(vma, _pmd_order(prog), raw):
        return False
    if _shmem_file(vma, raw):
        return _shmem_huge_global_enabled(vma, vma.vm_file.f_inode, vma.vm_pgoff.value_(), vm_flags)
    if not _global_enabled(prog) or (not vm_flags & VM_HUGEPAGE and not _global_always(prog)):
        return False
    # file_thp_enabled(): CONFIG_READ_ONLY_THP_FOR_FS is off in Debian.
    if not _vma_is_anonymous(vma, raw):
        return False
    if _temporary_stack(vm_flags):
        return False
    return True


def _file_thp_enabled(vma: Object) -> bool:
    prog = vma.prog_
    # v7.x: any regular, non-anonymous file whose mapping allows PMD-size
    # folios ("mm: ... file_thp_enabled() for large folio capable file
    # systems"); before, only CONFIG_READ_ONLY_THP_FOR_FS (off in Debian).
    if _tva_enum(prog):
        f = vma.vm_file.read_()
        if not f:
            return False
        inode = f.f_inode
        if inode.i_mode.value_() & S_IFMT != S_IFREG:
            return False
        flags = f.f_mapping.flags.value_()
        mn = (flags >> 16) & 0x1F
        mx = (flags >> 21) & 0x1F
        pmd = _pmd_order(prog)
        return mn <= pmd <= mx
    return False


def _allowable_orders(vma: Object, raw: Optional[VmaRaw] = None) -> int:
    prog = vma.prog_
    vm_flags = vma.vm_flags.value_() if raw is None else raw.flags
    pmd = _pmd_order(prog)
    all_orders = (1 << (pmd + 1)) - 1
    anon = _vma_is_anonymous(vma, raw)
    orders = all_orders | (1 << (pmd + 9))  # THP_ORDERS_ALL incl. PUD
    if anon:
        # thp_vma_allowable_orders() inline: sysfs per-order masks.
        mask = _orders_var(prog, "huge_anon_orders_always")
        if vm_flags & VM_HUGEPAGE:
            mask |= _orders_var(prog, "huge_anon_orders_madvise")
        if _global_always(prog) or (vm_flags & VM_HUGEPAGE and _global_enabled(prog)):
            mask |= _orders_var(prog, "huge_anon_orders_inherit")
        orders &= mask
        if not orders:
            return 0
    # supported orders
    if anon:
        supported = all_orders & ~3  # THP_ORDERS_ALL_ANON: 2..PMD_ORDER
    elif _vma_is_dax(vma, raw) or ((vma.vm_file.value_() if raw is None else raw.file)
                                   and vm_flags & (VM_PFNMAP | VM_MIXEDMAP)):
        supported = (1 << pmd) | (1 << (pmd + 9))  # THP_ORDERS_ALL_SPECIAL
    else:
        # THP_ORDERS_ALL_FILE_DEFAULT: 1..MAX_PAGECACHE_ORDER
        # (min(MAX_XAS_ORDER = 11, PMD order)).
        supported = _file_default_orders(pmd)
    orders &= supported
    if not orders:
        return 0
    if _disabled_by_hw(prog) or _mm_thp_disabled(vma, vm_flags):
        return 0
    if _vma_is_dax(vma, raw):
        return 0
    # VM_NO_KHUGEPAGED is not checked for smaps.
    order = _highest(orders)
    while orders:
        if _suitable(vma, order, raw):
            break
        orders &= ~(1 << order)
        order = _highest(orders)
    if not orders:
        return 0
    if _shmem_file(vma, raw):
        inode = vma.vm_file.f_inode
        shm = _shmem_allowable_huge_orders(vma, inode, vma.vm_pgoff.value_(), vm_flags)
        # v7.x returns "orders & shmem_allowable_huge_orders()"; v6.12 the
        # shmem orders alone. Told apart by TVA enum (v6.18 "mm: convert
        # tva_flags to enum tva_type").
        if _tva_enum(prog):
            return orders & shm
        return shm
    if not anon:
        if not _global_enabled(prog) or (not vm_flags & VM_HUGEPAGE and not _global_always(prog)):
            return 0
        ops = vma.vm_ops.read_()
        if ops and ops.huge_fault.value_():
            return orders
        if _file_thp_enabled(vma):
            return orders
        return 0
    if _temporary_stack(vm_flags):
        return 0
    return orders


_MAX_XAS_ORDER = 11
"""``MAX_XAS_ORDER`` (``XA_CHUNK_SHIFT * 2 - 1``, 6-bit chunks without ``CONFIG_BASE_SMALL``):
``MAX_PAGECACHE_ORDER`` is ``min(MAX_XAS_ORDER, HPAGE_PMD_ORDER)``."""


def _file_default_orders(pmd: int) -> int:
    """``THP_ORDERS_ALL_FILE_DEFAULT``: orders 1 to ``MAX_PAGECACHE_ORDER``."""
    return ((1 << (min(_MAX_XAS_ORDER, pmd) + 1)) - 1) & ~1


def _orders_within_size(inode: Object, orders: int, index: int, ps: int) -> int:
    """``shmem_get_orders_within_size(inode, orders, index, 0)``: *orders* from the highest whose folio at
    *index* ends within ``i_size`` down (0 if none does)."""
    i_pages = -(-_i_size(inode) // ps)
    while orders:
        order = _highest(orders)
        if i_pages >= -(-(index + 1) // (1 << order)) * (1 << order):
            return orders
        orders &= ~(1 << order)
    return 0


def _shmem_global_orders(vma: Object, inode: Object, index: int, vm_flags: int) -> int:
    """
    ``shmem_huge_global_enabled(inode, index, 0, false, vma, vm_flags)`` (v6.12+, no forced collapse): the
    orders the mount's ``huge=`` allows a mapping of this file, overridden by ``shmem_enabled``'s ``deny``
    and ``force``.

    * v6.12 (to v6.17): the PMD order alone, and none where it is above ``MAX_PAGECACHE_ORDER`` (64 KiB
      arm64 pages);
    * v6.18+ (:attr:`~drgn_ptwalk.generations.Generation.tmpfs_mmap_orders`): ``huge=always`` every order
      of ``THP_ORDERS_ALL_FILE_DEFAULT``, ``huge=within_size`` those whose folio at *index* ends within
      ``i_size`` (else as ``advise``), ``huge=advise`` all of them with ``VM_HUGEPAGE``; ``force`` the PMD
      order.

    :param inode: ``struct inode *`` of the shmem file
    :param index: the page offset asked about (``vma->vm_pgoff``)
    """
    prog = vma.prog_
    if inode.i_mode.value_() & S_IFMT != S_IFREG:
        return 0
    pmd = _pmd_order(prog)
    maybe_pmd = 0 if pmd > _MAX_XAS_ORDER else 1 << pmd
    sh = _shmem_huge(prog)
    if sh == SHMEM_HUGE_DENY:
        return 0
    if sh == SHMEM_HUGE_FORCE:
        return maybe_pmd
    huge = _shmem_sb_huge(inode)
    ps = _page_size(prog)
    if generation(prog).tmpfs_mmap_orders:
        every = _file_default_orders(pmd)
        if huge == SHMEM_HUGE_ALWAYS:
            return every
        if huge == SHMEM_HUGE_WITHIN_SIZE:
            within = _orders_within_size(inode, every, index, ps)
            if within:
                return within
            huge = SHMEM_HUGE_ADVISE
        if huge == SHMEM_HUGE_ADVISE and vm_flags & VM_HUGEPAGE:
            return every
        return 0
    if huge == SHMEM_HUGE_ALWAYS:
        return maybe_pmd
    if huge == SHMEM_HUGE_WITHIN_SIZE:
        if _orders_within_size(inode, 1 << pmd, index, ps):
            return maybe_pmd
        huge = SHMEM_HUGE_ADVISE
    if huge == SHMEM_HUGE_ADVISE and vm_flags & VM_HUGEPAGE:
        return maybe_pmd
    return 0


def _shmem_allowable_huge_orders(vma: Object, inode: Object, index: int, vm_flags: int) -> int:
    """``shmem_allowable_huge_orders(inode, vma, index, 0, false)`` (v6.12+): a tmpfs file's mapping gets
    what its mount allows (:func:`_shmem_global_orders`); anonymous shared memory its per-size
    ``hugepages-*/shmem_enabled`` orders (``always``, ``within_size``, ``advise`` with ``VM_HUGEPAGE``,
    ``inherit`` when the top-level ``shmem_enabled`` allows it)."""
    prog = vma.prog_
    pmd = _pmd_order(prog)
    mask = _orders_var(prog, "huge_shmem_orders_always")
    within = _orders_var(prog, "huge_shmem_orders_within_size")
    if _disabled_by_hw(prog) or _mm_thp_disabled(vma, vm_flags):
        return 0
    global_orders = _shmem_global_orders(vma, inode, index, vm_flags)
    anon_ops = 0
    try:
        anon_ops = prog["shmem_anon_vm_ops"].address_of_().value_()
    except LookupError:
        pass
    if vma.vm_ops.value_() != anon_ops:
        return global_orders
    sh = _shmem_huge(prog)
    if sh == SHMEM_HUGE_DENY:
        return 0
    if sh == SHMEM_HUGE_FORCE:
        return _orders_var(prog, "huge_shmem_orders_inherit")
    mask |= _orders_within_size(inode, within, index, _page_size(prog))
    if vm_flags & VM_HUGEPAGE:
        mask |= _orders_var(prog, "huge_shmem_orders_madvise")
    if global_orders:
        mask |= _orders_var(prog, "huge_shmem_orders_inherit")
    return _file_default_orders(pmd) & mask
