# SPDX-License-Identifier: LGPL-2.1-or-later
"""
VMA-level facts shared by the /proc/PID files: names and paths, flags,
page sizes, NUMA policy. Nothing here walks page tables; nothing here
formats whole lines (that is in the per-file modules).

Kernel-version differences are detected by feature and cached in
``prog.cache``; each branch names the kernel change it follows.
"""

import struct
from operator import itemgetter
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from drgn import FaultError, Object, Program, cast, container_of, offsetof, sizeof

from drgn_ptwalk._byteorder import byte_order, struct_order
from drgn_ptwalk.entry import PtLevel
from drgn_ptwalk.generations import generation
from drgn_ptwalk.procfs.common import VmaFieldError, reading, warn
from drgn_ptwalk.vmatree import checked_vmas

__all__ = (
    "VmaFacts",
    "VmaRaw",
    "VmaReader",
    "d_path_kernel",
    "file_user_inode",
    "file_user_path",
    "mangle_path",
    "mpol_to_str",
    "reader_root",
    "task_root",
    "vm_flag_bits",
    "vm_flag_mnemonics",
    "vma_facts",
    "vma_is_initial_heap",
    "vma_is_initial_stack",
    "vma_kernel_pagesize",
    "vma_name",
    "vma_raw",
    "vmas",
)

# The low vm_flags bits (0-31) have had these numbers in every kernel from v6.1 to v7.x (7.x only
# re-declares them as VMA_*_BIT enum values); version-dependent high bits come from vm_flag_bits().
VM_WRITE = 1 << 1
VM_SHARED = 1 << 3
VM_MAYSHARE = 1 << 7
VM_GROWSDOWN = 1 << 8
VM_PFNMAP = 1 << 10
VM_LOCKED = 1 << 13
VM_IO = 1 << 14
VM_SEQ_READ = 1 << 15
VM_RAND_READ = 1 << 16
VM_DONTEXPAND = 1 << 18
VM_HUGETLB = 1 << 22
VM_MIXEDMAP = 1 << 28
VM_HUGEPAGE = 1 << 29
VM_NOHUGEPAGE = 1 << 30


def _cached(prog: Program, key: str, compute):
    try:
        return prog.cache[key]
    except KeyError:
        value = prog.cache[key] = compute()
        return value


def _has_member(prog: Program, type_name: str, member: str) -> bool:
    try:
        return prog.type(type_name).has_member(member)
    except LookupError:
        return False


def _sym_name(prog: Program, addr: int) -> Optional[str]:
    # Cached by address: a callback (vm_operations_struct::get_policy of every shmem VMA) is looked up once,
    # not once per VMA (Program.symbol() by address costs milliseconds on a distribution vmlinux).
    if not addr:
        return None
    names: Dict[int, Optional[str]] = _cached(prog, "ptwalk_sym_names", dict)
    try:
        return names[addr]
    except KeyError:
        pass
    try:
        name: Optional[str] = prog.symbol(addr).name
    except LookupError:
        name = None
    names[addr] = name
    return name


def vmas(mm: Object) -> List[Object]:
    """
    The VMAs of *mm* in address order (the maple tree; the x86 gate VMA is
    not part of it), read with :func:`~drgn_ptwalk.vmatree.checked_vmas`
    (the reader the page-table walker uses: bounded, loop-safe).

    :param mm: ``struct mm_struct *``
    :raises VmaTreeError: if the VMA tree is unreadable or corrupt (with the
        address of the bad node or VMA and its level); no /proc file can be
        printed then
    """
    return list(checked_vmas(mm))


# ---------------------------------------------------------------------------
# Paths


def file_user_path(file: Object) -> Object:
    """
    ``file_user_path()``: the ``struct path *`` the user sees for *file*.

    :param file: ``struct file *``
    """
    prog = file.prog_
    # A backing file (FMODE_BACKING, overlayfs mmap) keeps the user's path in
    # struct backing_file::user_path (Generation.backing_user_path); before,
    # f_path was the user path.
    if generation(prog).backing_user_path:
        # FMODE_BACKING = 1 << 24 (include/linux/fs.h, v6.6..v7.2).
        if file.f_mode.value_() & (1 << 24):
            return container_of(file, "struct backing_file", "file").user_path.address_of_()
    return file.f_path.address_of_()


def file_user_inode(file: Object) -> Object:
    """
    ``file_user_inode()``: the ``struct inode *`` behind :func:`file_user_path`
    (``file_inode()`` for ordinary files).

    :param file: ``struct file *``
    """
    prog = file.prog_
    if generation(prog).backing_user_path:
        if file.f_mode.value_() & (1 << 24):
            return file_user_path(file).dentry.d_inode
    return file.f_inode


def task_root(task: Object) -> Optional[Object]:
    """
    The fs root (``struct path *``) of *task*, the root ``d_path()`` stops
    at; ``None`` if the task has no ``fs`` (exiting).

    :param task: ``struct task_struct *``
    """
    fs = task.fs.read_()
    if not fs:
        return None
    return fs.root.address_of_()


def default_root(prog: Program) -> Optional[Object]:
    """The fs root of PID 1 (else ``init_task``): the reader's root by default."""
    from drgn.helpers.linux.pid import find_task

    task = find_task(prog, 1)
    if not task:
        task = prog["init_task"].address_of_()
    return task_root(task)


def reader_root(task: Object, root: "str | Object | None" = None) -> Optional[Object]:
    """
    The fs root ``d_path()`` stops at when *task*'s files are printed.

    The kernel prints paths relative to the root of the process that reads
    the file: for ``cat /proc/PID/maps`` run on the host, that is PID 1's
    root, also for a task in a container (its overlayfs files come out as
    ``/ctr/merged/lib/libx.so``, or as far up as the container's mount tree
    goes when the host cannot reach it).

    :param task: ``struct task_struct *``
    :param root: ``None`` or ``"init"``: PID 1's root (what the kernel
        printed for a reader on the host); ``"task"``: the task's own root
        (the container's view, not what the kernel printed on the host); or
        a ``struct path *``
    """
    if root is None or root == "init":
        return default_root(task.prog_)
    if root == "task":
        return task_root(task)
    if isinstance(root, Object):
        return root
    raise ValueError(f"root must be 'init', 'task' or a struct path *, not {root!r}")


def _d_unlinked(dentry: Object) -> bool:
    # d_unlinked() = d_unhashed() && !IS_ROOT()
    unhashed = not dentry.d_hash.pprev.value_()
    return unhashed and dentry.value_() != dentry.d_parent.value_()


PATH_MAX = 4096


def _qstr(q: Object) -> bytes:
    n = q.len.value_()
    if n > PATH_MAX:
        raise VmaFieldError(q.address_ or 0, "dentry name", f"length {n} beyond PATH_MAX")
    return q.prog_.read(q.name.value_(), n)


def prog_read_cstr(ptr: Object, limit: int) -> bytes:
    """The NUL-terminated string at *ptr* (``char *``), at most *limit* bytes."""
    data = ptr.prog_.read(ptr.value_(), limit)
    return data.split(b"\0", 1)[0]


def _d_dname(dentry: Object, fn: str) -> Optional[bytes]:
    # The pseudo-filesystem names of fs/d_path.c, fs/anon_inodes.c, ...
    name = _qstr(dentry.d_name)
    if fn == "simple_dname":
        # shmem_file_setup()/alloc_file_pseudo(): "/dev/zero (deleted)",
        # "/memfd:x (deleted)", "/anon_hugepage (deleted)", "/SYSV... (deleted)"
        return b"/" + name + b" (deleted)"
    if fn == "anon_inodefs_dname":
        return b"anon_inode:" + name
    if fn == "pipefs_dname":
        return b"pipe:[%d]" % dentry.d_inode.i_ino.value_()
    if fn == "sockfs_dname":
        return b"socket:[%d]" % dentry.d_inode.i_ino.value_()
    if fn == "dmabuffs_dname":
        # "/%s:%s" of the dentry name ("dmabuf") and dmabuf->name (DMA_BUF_SET_NAME), cut to
        # DMA_BUF_NAME_LEN - 1 bytes, or "" (drivers/dma-buf/dma-buf.c).
        dmabuf = cast("struct dma_buf *", dentry.d_fsdata)
        buf_name = dmabuf.name.read_()
        label = prog_read_cstr(buf_name, 31) if buf_name.value_() else b""
        return b"/" + name + b":" + label
    return None


def d_path_kernel(path: Object, root: Optional[Object]) -> bytes:
    """
    ``d_path()`` as the kernel computes it for a reader whose fs root is
    *root*: pseudo-fs ``d_dname`` names, components up to *root* (or the
    global root), ``" (deleted)"`` for unlinked dentries.

    :param path: ``struct path *``
    :param root: ``struct path *`` of the reader's root, or ``None``
    """
    prog = path.prog_
    dentry = path.dentry.read_()
    vfsmnt = path.mnt.read_()
    d_op = dentry.d_op.read_()
    if d_op:
        fn = _sym_name(prog, d_op.d_dname.value_())
        # "(!IS_ROOT(dentry) || dentry != mnt->mnt_root)"
        if fn and (dentry.value_() != dentry.d_parent.value_() or dentry.value_() != vfsmnt.mnt_root.value_()):
            name = _d_dname(dentry, fn)
            if name is not None:
                return name
            # A d_dname we do not know: the path the dentry would have without it, and a warning.
            warn(f"dentry {dentry.value_():#x}: unknown d_dname callback {fn}; its name is printed as a "
                 "plain path")
    suffix = b" (deleted)" if _d_unlinked(dentry) else b""
    root_d = root.dentry.value_() if root is not None else 0
    root_m = root.mnt.value_() if root is not None else 0
    mnt = container_of(vfsmnt, "struct mount", "mnt")
    d = dentry.value_()
    m = vfsmnt.value_()
    parts: List[bytes] = []
    length = 0
    # __prepend_path()
    while d != root_d or m != root_m:
        if length > PATH_MAX:
            # Every step adds at least "/" (a crossed mount point too, within
            # two steps): a loop of dentries or mounts ends here.
            raise VmaFieldError(dentry.value_(), "dentry", "path longer than PATH_MAX (a d_parent/mount loop?)")
        length += 1
        dobj = Object(prog, "struct dentry *", d)
        if d == mnt.mnt.mnt_root.value_():
            parent = mnt.mnt_parent.read_()
            if parent.value_() != mnt.value_():
                d = mnt.mnt_mountpoint.value_()
                mnt = parent
                m = mnt.mnt.address_of_().value_()
                continue
            break  # global root
        p = dobj.d_parent.value_()
        if p == d:
            break  # escaped
        parts.append(_qstr(dobj.d_name))
        length += len(parts[-1])
        d = p
    if not parts:
        return b"/" + suffix
    return b"".join(b"/" + x for x in reversed(parts)) + suffix


def mangle_path(path: bytes, esc: bytes) -> bytes:
    """``mangle_path()``: every byte in *esc* becomes ``\\ooo``."""
    if not any(c in path for c in esc):
        return path
    return b"".join(b"\\%03o" % c if c in esc else bytes((c,)) for c in path)


# ---------------------------------------------------------------------------
# Names


def vma_is_initial_heap(vma: Object, mm: Object) -> bool:
    """
    Whether *vma* is the ``[heap]``.

    :param vma: ``struct vm_area_struct *``
    :param mm: ``struct mm_struct *``
    """
    prog = vma.prog_
    start, end = vma.vm_start.value_(), vma.vm_end.value_()
    brk, start_brk = mm.brk.value_(), mm.start_brk.value_()
    # vma_is_initial_heap() made the test strict (Generation.heap_strict);
    # before, task_mmu.c used "vm_start <= brk && vm_end >= start_brk".
    if generation(prog).heap_strict:
        return start < brk and end > start_brk
    return start <= brk and end >= start_brk


def vma_is_initial_stack(vma: Object, mm: Object) -> bool:
    """
    Whether *vma* holds ``mm->start_stack`` (the ``[stack]``).

    :param vma: ``struct vm_area_struct *``
    :param mm: ``struct mm_struct *``
    """
    s = mm.start_stack.value_()
    return vma.vm_start.value_() <= s <= vma.vm_end.value_()


def _vm_ops_name(vma: Object) -> Optional[bytes]:
    prog = vma.prog_
    ops = vma.vm_ops.read_()
    if not ops:
        return None
    fn = _sym_name(prog, ops.name.value_())
    if fn is None:
        return None
    if fn == "special_mapping_name":
        sm = cast("struct vm_special_mapping *", vma.vm_private_data)
        return sm.name.string_()
    if fn == "gate_vma_name":
        return b"[vsyscall]"
    warn(f"VMA at {vma.value_():#x} ({vma.vm_start.value_():#x}-{vma.vm_end.value_():#x}): unknown "
         f"vm_operations_struct::name {fn}; printed without that name")
    return None


def vma_name(vma: Object, mm: Object, root: Optional[Object]) -> Optional[bytes]:
    """
    The name /proc/PID/maps shows for *vma* (unescaped), or ``None``:
    ``get_vma_name()`` (v6.11+, inline in ``show_map_vma()`` before).

    :param vma: ``struct vm_area_struct *``
    :param mm: ``struct mm_struct *`` (the VMA's)
    :param root: reader's fs root for file paths (``struct path *``)
    """
    file = vma.vm_file.read_()
    if file:
        return d_path_kernel(file_user_path(file), root)
    name = _vm_ops_name(vma)
    if name is not None:
        return name
    if not vma.vm_mm.value_():
        return b"[vdso]"
    if vma_is_initial_heap(vma, mm):
        return b"[heap]"
    if vma_is_initial_stack(vma, mm):
        return b"[stack]"
    # anon_vma_name(): CONFIG_ANON_VMA_NAME is off in the kernels we know.
    try:
        anon_name = vma.anon_name.read_()
    except AttributeError:
        anon_name = None
    if anon_name is not None and anon_name.value_():
        return b"[anon:" + anon_name.name.string_() + b"]"
    return None


# ---------------------------------------------------------------------------
# Flags


def vm_flag_bits(prog: Program) -> Dict[str, int]:
    """
    Bit numbers of the ``VM_*`` flags of this kernel (names without the
    ``VM_`` prefix), for the flags whose bit moved between versions.
    """
    return _cached(prog, "ptwalk_vm_flag_bits", lambda: _vm_flag_bits(prog))


def _enum_bit(prog: Program, name: str) -> Optional[int]:
    try:
        return prog.constant(name).value_()
    except LookupError:
        return None


def _vm_flag_bits(prog: Program) -> Dict[str, int]:
    bits = {
        "READ": 0, "WRITE": 1, "EXEC": 2, "SHARED": 3, "MAYREAD": 4, "MAYWRITE": 5, "MAYEXEC": 6,
        "MAYSHARE": 7, "GROWSDOWN": 8, "UFFD_MISSING": 9, "PFNMAP": 10, "UFFD_WP": 12, "LOCKED": 13,
        "IO": 14, "SEQ_READ": 15, "RAND_READ": 16, "DONTCOPY": 17, "DONTEXPAND": 18, "LOCKONFAULT": 19,
        "ACCOUNT": 20, "NORESERVE": 21, "HUGETLB": 22, "SYNC": 23, "ARCH_1": 24, "WIPEONFORK": 25,
        "DONTDUMP": 26, "MIXEDMAP": 28, "HUGEPAGE": 29, "NOHUGEPAGE": 30, "MERGEABLE": 31,
    }
    # CONFIG_MEM_SOFT_DIRTY (x86 only among ours): VM_SOFTDIRTY = bit 27.
    if "clear_soft_dirty" in prog or "clear_soft_dirty_pmd" in prog:
        bits["SOFTDIRTY"] = 27
    arm64 = prog.platform is not None and prog.platform.arch.name == "AARCH64"
    layout = generation(prog).vm_flags_layout
    if layout == "enum":
        # v7.x: "mm: declare VMA flags by bit" turned VM_* into an enum of
        # VMA_*_BIT numbers (include/linux/mm.h DECLARE_VMA_BIT); read them.
        for name in ("UFFD_MINOR", "SEALED", "DROPPABLE", "ALLOW_ANY_UNCACHED", "MAYBE_GUARD",
                     "SHADOW_STACK", "MTE", "MTE_ALLOWED", "SOFTDIRTY"):
            b = _enum_bit(prog, f"VMA_{name}_BIT")
            if b is not None:
                bits[name] = b
        return bits
    if layout == "mseal":
        # v6.10+: 8be7258aad44 ("mseal: add mseal syscall"), v6.10: VM_SEALED
        # = bit 63; "mm: add MAP_DROPPABLE for designating
        # always-droppable mappings", v6.11: VM_DROPPABLE = bit 40; the
        # shadow-stack series moved VM_UFFD_MINOR_BIT to 38 (v6.6); arm64
        # POE ("arm64: add POIndex defines"/pkeys, v6.12) moved MTE to
        # HIGH_ARCH_4/5 = 36/37 ("ui" stays at 38).
        bits.update(UFFD_MINOR=38, SEALED=63, DROPPABLE=40, ALLOW_ANY_UNCACHED=39)
        if arm64:
            if "arch_pkeys_enabled" in prog or _has_member(prog, "struct thread_struct", "por_el0"):
                bits.update(MTE=36, MTE_ALLOWED=37)
            else:
                bits.update(MTE=32, MTE_ALLOWED=33)
        else:
            bits["SHADOW_STACK"] = 37
        return bits
    # v6.1: VM_UFFD_MINOR_BIT 37; arm64 VM_MTE 32 / VM_MTE_ALLOWED 33.
    bits["UFFD_MINOR"] = 37
    if arm64:
        bits.update(MTE=32, MTE_ALLOWED=33)
    return bits


def vm_flag_mnemonics(prog: Program) -> Tuple[str, ...]:
    """
    ``mnemonics[BITS_PER_LONG]`` of ``show_smap_vma_flags()``: the VmFlags
    name of every bit (``"??"`` for unnamed bits, ``""`` for hidden ones).
    """
    return _cached(prog, "ptwalk_vm_mnemonics", lambda: _vm_flag_mnemonics(prog))


def _vm_flag_mnemonics(prog: Program) -> Tuple[str, ...]:
    bits = vm_flag_bits(prog)
    arm64 = prog.platform is not None and prog.platform.arch.name == "AARCH64"
    m = ["??"] * 64
    names = {
        "READ": "rd", "WRITE": "wr", "EXEC": "ex", "SHARED": "sh", "MAYREAD": "mr", "MAYWRITE": "mw",
        "MAYEXEC": "me", "MAYSHARE": "ms", "GROWSDOWN": "gd", "PFNMAP": "pf", "LOCKED": "lo", "IO": "io",
        "SEQ_READ": "sr", "RAND_READ": "rr", "DONTCOPY": "dc", "DONTEXPAND": "de", "ACCOUNT": "ac",
        "NORESERVE": "nr", "HUGETLB": "ht", "SYNC": "sf", "ARCH_1": "ar", "WIPEONFORK": "wf",
        "DONTDUMP": "dd", "SOFTDIRTY": "sd", "MIXEDMAP": "mm", "HUGEPAGE": "hg", "NOHUGEPAGE": "nh",
        "MERGEABLE": "mg", "UFFD_MISSING": "um", "UFFD_WP": "uw", "UFFD_MINOR": "ui",
        "DROPPABLE": "dp", "SEALED": "sl", "SHADOW_STACK": "ss", "MAYBE_GUARD": "gu",
        "MTE": "mt", "MTE_ALLOWED": "",
    }
    for flag, mn in names.items():
        b = bits.get(flag)
        if b is not None:
            m[b] = mn
    # "lf" for VM_LOCKONFAULT: absent from v6.1's table, present in v6.12
    # (added with the mseal-era table rework; feature-tested together).
    if "UFFD_MINOR" in bits and bits["UFFD_MINOR"] == 37:
        m[bits["LOCKONFAULT"]] = "??"
    else:
        m[bits["LOCKONFAULT"]] = "lf"
    if arm64:
        # VM_ARM64_BTI (ARCH_1) overrides "ar" with "bt".
        m[bits["ARCH_1"]] = "bt"
    # Protection-key bits are hidden (shown as ProtectionKey): x86 32..35,
    # arm64 POE 32..34 (v6.12+).
    if arm64:
        if bits.get("MTE") == 36:
            for b in (32, 33, 34):
                m[b] = ""
    else:
        for b in (32, 33, 34, 35):
            m[b] = ""
    return tuple(m)


def vm_flags_string(vma: Object) -> str:
    """The ``VmFlags:`` mnemonics of *vma*, each followed by a space."""
    mn = vm_flag_mnemonics(vma.prog_)
    flags = vma.vm_flags.value_()
    return "".join(mn[b] + " " for b in range(64) if flags >> b & 1 and mn[b])


# ---------------------------------------------------------------------------
# Page sizes


def vma_kernel_pagesize(vma: Object) -> int:
    """
    ``vma_kernel_pagesize()``: the hugetlb page size for hugetlb VMAs, else
    ``PAGE_SIZE``.

    :param vma: ``struct vm_area_struct *``
    """
    prog = vma.prog_
    ops = vma.vm_ops.read_()
    if ops:
        fn = _sym_name(prog, ops.pagesize.value_())
        if fn == "shm_pagesize":
            # ipc/shm.c: SysV shm forwards to the segment's own file (shmem: none; SHM_HUGETLB:
            # hugetlbfs), through struct shm_file_data in file->private_data.
            with reading(vma, "vm_file->private_data (struct shm_file_data)"):
                ops = _shm_file_vm_ops(vma)
            fn = _sym_name(prog, ops.pagesize.value_()) if ops else None
        if fn == "hugetlb_vm_op_pagesize":
            return hugetlb_vma_page_size(vma)
        if fn is not None:
            # A callback we do not know: the generic answer from the backing file, and a warning.
            size = hugetlb_vma_page_size(vma) if _on_hugetlbfs(vma) else _page_size(prog)
            warn(f"VMA at {vma.value_():#x} ({vma.vm_start.value_():#x}-{vma.vm_end.value_():#x}): unknown "
                 f"vm_operations_struct::pagesize {fn}; assumed {size >> 10} kB from its file")
            return size
    return _page_size(prog)


def _shm_file_vm_ops(vma: Object) -> Object:
    # shm_file_data(file): *(struct shm_file_data **)&file->private_data; its vm_ops are the ops of
    # the segment's shmem or hugetlbfs file.
    sfd = cast("struct shm_file_data *", vma.vm_file.private_data)
    return sfd.vm_ops.read_()


def _on_hugetlbfs(vma: Object) -> bool:
    prog = vma.prog_
    file = vma.vm_file.read_()
    if not file:
        return False
    hugetlbfs = _cached(prog, "ptwalk_hugetlbfs_fs_type", lambda: _symbol_range(prog, "hugetlbfs_fs_type"))[0]
    return bool(hugetlbfs) and file.f_inode.i_sb.s_type.value_() == hugetlbfs


def _page_size(prog: Program) -> int:
    from drgn_ptwalk.arch import get_decoder

    return get_decoder(prog).page_size


def _symbol_range(prog: Program, name: str) -> Tuple[int, int]:
    try:
        sym = prog.symbol(name)
        return sym.address, sym.address + sym.size
    except LookupError:
        return 0, 0


def hugetlb_vma_hstate(vma: Object) -> Object:
    """
    ``hstate_vma()``: ``struct hstate *`` of a hugetlb VMA.

    :raises VmaFieldError: if ``vm_file`` is not a hugetlbfs file (garbage
        ``vm_flags`` or ``vm_file``) or the hstate is not one of ``hstates[]``
    """
    prog = vma.prog_
    with reading(vma, "vm_file->f_inode->i_sb (hugetlb VMA)"):
        inode = vma.vm_file.f_inode.read_()
        sb = inode.i_sb.read_()
        fs_type = sb.s_type.value_()
        hugetlbfs = _cached(prog, "ptwalk_hugetlbfs_fs_type", lambda: _symbol_range(prog, "hugetlbfs_fs_type"))[0]
        if hugetlbfs and fs_type != hugetlbfs:
            raise VmaFieldError(vma.value_(), "VMA", f"VM_HUGETLB set but vm_file is not on hugetlbfs "
                                                     f"(super_block {sb.value_():#x} s_type {fs_type:#x})")
        hstate = cast("struct hugetlbfs_sb_info *", sb.s_fs_info).hstate.read_()
    lo, hi = _cached(prog, "ptwalk_hstates", lambda: _symbol_range(prog, "hstates"))
    if hi and not lo <= hstate.value_() < hi:
        raise VmaFieldError(vma.value_(), "VMA", f"hugetlbfs hstate {hstate.value_():#x} is not in hstates[]")
    return hstate


def hugetlb_vma_page_size(vma: Object) -> int:
    """``huge_page_size(hstate_vma(vma))``."""
    hstate = hugetlb_vma_hstate(vma)
    with reading(vma, f"hstate {hstate.value_():#x} order"):
        order = hstate.order.value_()
    if order >= 64:
        raise VmaFieldError(vma.value_(), "VMA", f"hugetlb hstate order {order} makes no sense")
    return _page_size(vma.prog_) << order


def _pmd_share_rule(prog: Program) -> Tuple[str, int]:
    # Where hugetlb_pmd_shared() reads its count, by the kernel's layout:
    # * "share": the PMD table's ptdesc (v6.6+) or struct page (v6.1 stable backport) has
    #   pt_share_count, the number of other mms sharing the table: 59d9094df3d7 ("mm: hugetlb:
    #   independent PMD page table shared count", v6.13, backported to stable), with
    #   hugetlb_pmd_shared() testing it since "mm/hugetlb: fix hugetlb_pmd_shared()" (David
    #   Hildenbrand, v6.19, backported to stable with it). Stable kernels between the two tested the
    #   refcount, which sharing no longer raised; those are not told apart here (no type changed).
    # * "refcount": page_count() of the table page > 1, from 3489dbb696d2 ("mm: hugetlb: proc: check
    #   for hugetlb shared PMD in /proc/PID/smaps", v6.2, backported to v6.1).
    # * "none": no PMD sharing (!CONFIG_HUGETLB_PMD_PAGE_TABLE_SHARING): hugetlb_pmd_shared() is
    #   false. powerpc never selects ARCH_WANT_HUGE_PMD_SHARE (arch/powerpc/Kconfig), and its kernels
    #   build huge_pmd_share() as a stub, so the architecture is what tells.
    for type_name in ("struct ptdesc", "struct page"):
        try:
            off = prog.type(type_name).member("pt_share_count").offset
            return "share", off
        except LookupError:
            continue
    if prog.platform is not None and prog.platform.arch.name == "PPC64":
        return "none", 0
    return "refcount", prog.type("struct page").member("_refcount").offset


def hugetlb_pmd_shared(mm: Object, addr: int, level: PtLevel = PtLevel.PMD) -> bool:
    """
    ``hugetlb_pmd_shared()`` for the hugetlb entry of *addr* at *level*:
    whether the share count of the page-table page holding the entry is set
    (a PMD table shared with other mms by ``huge_pmd_share()``).

    The kernel asks this of every hugetlb entry, whatever table holds it,
    but only PMD tables set the count up (``pagetable_pmd_ctor()``). For a
    PUD-level (1 GiB) or PTE-level (arm64 contiguous) entry the word holds
    what the page's previous user left in ``page->index``, and smaps and
    pagemap print accordingly; so it is read here at the entry's own level.

    :param mm: ``struct mm_struct *``
    :param level: level of the hugetlb entry (:attr:`PtEntry.level`)
    :raises FaultError: if the table's ``struct page`` cannot be read
    """
    from drgn.helpers.linux.mm import pfn_to_page

    from drgn_ptwalk.walk import table_of

    prog = mm.prog_
    kind, off = _cached(prog, "ptwalk_pmd_share_rule", lambda: _pmd_share_rule(prog))
    if kind == "none":
        return False
    table = table_of(mm, addr, level)
    if table is None:
        return False
    page = pfn_to_page(prog, table // _page_size(prog)).value_()
    count = int.from_bytes(prog.read(page + off, 4), byte_order(prog), signed=True)
    return count != 0 if kind == "share" else count > 1


def is_vm_hugetlb_page(vma: Object) -> bool:
    """``is_vm_hugetlb_page()``: ``VM_HUGETLB`` set."""
    return bool(vma.vm_flags.value_() & (1 << 22))


# ---------------------------------------------------------------------------
# NUMA policy


class _PolicyInfo(NamedTuple):
    default_policy: int
    preferred: Tuple[int, int]  # [start, end) of preferred_node_policy[]


def _policy_info(prog: Program) -> _PolicyInfo:
    try:
        dp = prog["default_policy"].address_of_().value_()
    except LookupError:
        dp = 0
    try:
        # preferred_node_policy[MAX_NUMNODES]: the symbol size bounds it.
        sym = prog.symbol("preferred_node_policy")
        start = sym.address
        end = start + sym.size
    except LookupError:
        start = end = 0
    return _PolicyInfo(dp, (start, end))


_POLICY_MODES = ("default", "prefer", "bind", "interleave", "local", "prefer (many)", "weighted interleave")


def vma_policy(vma: Object, addr: Optional[int] = None) -> Object:
    """
    ``__get_vma_policy(vma, addr)``: ``struct mempolicy *`` (may be NULL).

    :param vma: ``struct vm_area_struct *``
    """
    prog = vma.prog_
    ops = vma.vm_ops.read_()
    if addr is None:
        addr = vma.vm_start.value_()
    if ops:
        fn = _sym_name(prog, ops.get_policy.value_())
        if fn == "shm_get_policy":
            # ipc/shm.c: the segment file's get_policy (shmem's shared policy), else vma->vm_policy.
            with reading(vma, "vm_file->private_data (struct shm_file_data)"):
                sops = _shm_file_vm_ops(vma)
            fn = _sym_name(prog, sops.get_policy.value_()) if sops else None
            if fn is None:
                return _vm_policy(vma)
        if fn == "shmem_get_policy":
            return _shmem_get_policy(vma, addr)
        if fn is not None:
            warn(f"VMA at {vma.value_():#x} ({vma.vm_start.value_():#x}-{vma.vm_end.value_():#x}): unknown "
                 f"vm_operations_struct::get_policy {fn}; vma->vm_policy printed")
    return _vm_policy(vma)


def _vm_policy(vma: Object) -> Object:
    try:
        return vma.vm_policy.read_()
    except AttributeError:  # !CONFIG_NUMA
        return Object(vma.prog_, "struct mempolicy *", 0)


def _shmem_get_policy(vma: Object, addr: int) -> Object:
    # shmem_get_policy() -> mpol_shared_policy_lookup(&info->policy, index):
    # the sp_node whose [start, end) holds index in the inode's rb-tree.
    from drgn.helpers.linux.rbtree import rbtree_inorder_for_each_entry

    prog = vma.prog_
    inode = vma.vm_file.f_inode
    info = container_of(inode, "struct shmem_inode_info", "vfs_inode")
    ps = _page_size(prog)
    index = ((addr - vma.vm_start.value_()) // ps) + vma.vm_pgoff.value_()
    sp = info.policy
    if not sp.root.rb_node.value_():
        return Object(prog, "struct mempolicy *", 0)
    for n in rbtree_inorder_for_each_entry("struct sp_node", sp.root.address_of_(), "nd"):
        if n.start.value_() <= index < n.end.value_():
            return n.policy.read_()
    return Object(prog, "struct mempolicy *", 0)


def _nodelist(prog: Program, nodes: Object) -> str:
    # %*pbl of a nodemask_t (bitmap_list_string()).
    from drgn.helpers.linux.nodemask import for_each_node_mask

    ids = list(for_each_node_mask(nodes))
    out = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out)


def mpol_to_str(pol: Object) -> str:
    """
    ``mpol_to_str()``: "default", "bind=static:0-1", ...

    :param pol: ``struct mempolicy *`` (NULL means the default policy)
    """
    prog = pol.prog_
    info = _cached(prog, "ptwalk_policy_info", lambda: _policy_info(prog))
    p = pol.value_()
    if not p or p == info.default_policy or info.preferred[0] <= p < info.preferred[1]:
        return "default"
    mode = pol.mode.value_()
    flags = pol.flags.value_()
    if mode >= len(_POLICY_MODES):
        return "unknown"
    # MPOL_WEIGHTED_INTERLEAVE (6) exists since fa3bea4e1f82 ("mm/mempolicy:
    # introduce MPOL_WEIGHTED_INTERLEAVE for weighted interleaving"), v6.9.
    s = _POLICY_MODES[mode]
    nodes = ""
    if mode in (1, 2, 3, 5, 6):
        nodes = _nodelist(prog, pol.nodes)
    MODE_FLAGS = (1 << 15) | (1 << 14) | (1 << 13)
    mf = flags & MODE_FLAGS
    if mf:
        s += "="
        if flags & (1 << 15):
            s += "static"
        elif flags & (1 << 14):
            s += "relative"
        if flags & (1 << 13):
            if mf & (mf - 1):
                s += "|"
            s += "balancing"
    if nodes:
        s += ":" + nodes
    return s[:63]


class VmaFacts(NamedTuple):
    """What the maps header line of one VMA shows."""

    start: int
    end: int
    flags: int
    pgoff: int
    dev: int
    ino: int
    name: Optional[bytes]


def vma_facts(vma: Object, mm: Object, root: Optional[Object]) -> VmaFacts:
    """
    :class:`VmaFacts` of *vma* (``show_map_vma()``).

    :param vma: ``struct vm_area_struct *``
    :param mm: ``struct mm_struct *``
    :param root: reader's fs root (``struct path *``) for file names
    :raises VmaFieldError: if a field cannot be read (garbage pointers)
    """
    prog = vma.prog_
    with reading(vma, "vm_file"):
        file = vma.vm_file.read_()
    dev = ino = pgoff = 0
    if file:
        with reading(vma, f"the inode of vm_file {file.value_():#x}"):
            inode = file_user_inode(file)
            dev = inode.i_sb.s_dev.value_()
            ino = inode.i_ino.value_()
            pgoff = vma.vm_pgoff.value_() * _page_size(prog)
    with reading(vma, "vm_start/vm_end/vm_flags"):
        start, end, flags = vma.vm_start.value_(), vma.vm_end.value_(), vma.vm_flags.value_()
    with reading(vma, "its name (file path, vm_ops, anon name)"):
        name = vma_name(vma, mm, root)
    return VmaFacts(start, end, flags, pgoff, dev, ino, name)


# ---------------------------------------------------------------------------
# Bulk reads: the facts of many VMAs of one mm


class VmaRaw(NamedTuple):
    """The ``struct vm_area_struct`` fields the /proc files print or follow, from one read."""

    start: int
    end: int
    mm: int
    flags: int
    pgoff: int
    file: int
    ops: int
    private_data: int
    anon_name: int
    """``vma->anon_name`` (0 without ``CONFIG_ANON_VMA_NAME``)."""
    policy: int
    """``vma->vm_policy`` (0 without ``CONFIG_NUMA``)."""


_new_raw = tuple.__new__

_RAW_FIELDS = ("vm_start", "vm_end", "vm_mm", "vm_flags", "vm_pgoff", "vm_file", "vm_ops", "vm_private_data",
               "anon_name", "vm_policy")


class _RawLayout(NamedTuple):
    base: int
    size: int
    unpack: Callable[[bytes], Tuple[int, ...]]
    """The :class:`VmaRaw` fields from the bytes at *base* (0 for a member the kernel does not have)."""
    u64: Callable[[bytes], Tuple[int]]
    """A pointer's bytes to its value."""
    ops_name: int
    """Offsets in ``struct vm_operations_struct`` of ``name`` and ``pagesize``."""
    ops_pagesize: int


def _raw_layout(prog: Program) -> _RawLayout:
    def compute() -> _RawLayout:
        t = prog.type("struct vm_area_struct")
        offs = []
        for name in _RAW_FIELDS:
            try:
                # Through anonymous unions (vm_start/vm_end, vm_flags) too.
                offs.append((offsetof(t, name), sizeof(t.member(name).type)))
            except LookupError:  # anon_name without CONFIG_ANON_VMA_NAME, vm_policy without CONFIG_NUMA
                offs.append((0, 0))
        base = min(o for o, n in offs if n)
        top = max(o + n for o, n in offs if n)
        # One struct.unpack of the members in address order, then put in VmaRaw's order (a missing member:
        # the 0 appended at the end).
        present = sorted((o, n, i) for i, (o, n) in enumerate(offs) if n)
        fmt = struct_order(prog)
        pos = base
        for o, n, _ in present:
            fmt += f"{o - pos}x" + {1: "B", 2: "H", 4: "I", 8: "Q"}[n]
            pos = o + n
        where = {i: k for k, (_, _, i) in enumerate(present)}
        pick = itemgetter(*(where.get(i, len(present)) for i in range(len(_RAW_FIELDS))))
        unpack = struct.Struct(fmt).unpack_from

        def decode(raw: bytes) -> Tuple[int, ...]:
            return pick(unpack(raw) + (0,))

        ops = prog.type("struct vm_operations_struct")
        return _RawLayout(base, top - base, decode, struct.Struct(struct_order(prog) + "Q").unpack,
                          offsetof(ops, "name"), offsetof(ops, "pagesize"))

    return _cached(prog, "ptwalk_procfs_vma_raw_layout", compute)


def vma_raw(prog: Program, addr: int) -> VmaRaw:
    """
    The :class:`VmaRaw` fields of the ``struct vm_area_struct`` at *addr*,
    from one read of its bytes.

    :raises FaultError: if they cannot be read
    """
    lay = _raw_layout(prog)
    return _new_raw(VmaRaw, lay.unpack(prog.read(addr + lay.base, lay.size)))


class VmaReader:
    """
    The per-VMA facts of the /proc files for the VMAs of one mm, read in
    bulk: one read of each ``vm_area_struct``
    (:func:`vma_raw`), the mm's heap and stack bounds read once, and each
    file's device, inode and path, each ``vm_operations_struct``'s
    callbacks and each special mapping's name computed once per reader.
    Anything unusual (a field that cannot be read, a callback it does not
    know, an anonymous VMA name) goes to the one-VMA functions
    (:func:`vma_facts`, :func:`vma_kernel_pagesize`), which give the same
    answer, warnings and errors.

    Make one per file printed: on a live kernel what it caches may change
    between two files.

    :param mm: ``struct mm_struct *``
    :param root: reader's fs root (``struct path *``) for file names
    """

    def __init__(self, mm: Object, root: Optional[Object]) -> None:
        prog = mm.prog_
        self.prog = prog
        self.mm = mm
        self.root = root
        self.lay = _raw_layout(prog)
        self.page_size = _page_size(prog)
        self.heap_strict = generation(prog).heap_strict
        self.bounds: Optional[Tuple[int, int, int]] = None
        try:
            self.bounds = (mm.brk.value_(), mm.start_brk.value_(), mm.start_stack.value_())
        except FaultError:
            pass  # each VMA then asks the one-VMA functions, which report it
        self._files: Dict[int, Tuple[int, int, bytes]] = {}
        self._paths: Dict[int, bytes] = {}
        self._ops: Dict[int, Tuple[Optional[str], Optional[str]]] = {}
        self._special: Dict[int, bytes] = {}
        self._flag_strings: Dict[int, str] = {}

    def raw(self, vma: Object) -> Optional[VmaRaw]:
        """:func:`vma_raw` of *vma*, ``None`` if it cannot be read."""
        try:
            return vma_raw(self.prog, vma.value_())
        except FaultError:
            return None

    def vmas(self) -> List[Tuple[Object, int, int, Optional[VmaRaw]]]:
        """
        The VMAs of the mm as :func:`~drgn_ptwalk.vmatree.checked_vma_ranges`
        gives them, each with its :class:`VmaRaw` from the read that checks it
        (``None`` if unreadable).

        :raises VmaTreeError: if the VMA tree is corrupt
        """
        from drgn_ptwalk.vmatree import checked_vma_reads

        lay = self.lay
        out: List[Tuple[Object, int, int, Optional[VmaRaw]]] = []
        for vma, vs, ve, b in checked_vma_reads(self.mm, (lay.base, lay.size)):
            out.append((vma, vs, ve, self.raw(vma) if b is None else _new_raw(VmaRaw, lay.unpack(b))))
        return out

    def _ops_names(self, ops: int) -> Tuple[Optional[str], Optional[str]]:
        # The symbols of vm_ops->name and vm_ops->pagesize. FaultError if unreadable.
        try:
            return self._ops[ops]
        except KeyError:
            pass
        prog, lay = self.prog, self.lay
        name = lay.u64(prog.read(ops + lay.ops_name, 8))[0]
        pagesize = lay.u64(prog.read(ops + lay.ops_pagesize, 8))[0]
        v = self._ops[ops] = (_sym_name(prog, name), _sym_name(prog, pagesize))
        return v

    def facts(self, vma: Object, raw: Optional[VmaRaw] = None) -> VmaFacts:
        """
        :func:`vma_facts` of *vma* (*raw*: its :meth:`raw`, if read already).

        :raises VmaFieldError: if a field cannot be read (garbage pointers)
        """
        if raw is None:
            raw = self.raw(vma)
        if raw is None or self.bounds is None:
            return vma_facts(vma, self.mm, self.root)
        prog = self.prog
        if raw.file:
            got = self._files.get(raw.file)
            if got is None:
                file = Object(prog, "struct file *", raw.file)
                with reading(vma, f"the inode of vm_file {raw.file:#x}"):
                    inode = file_user_inode(file)
                    dev = inode.i_sb.s_dev.value_()
                    ino = inode.i_ino.value_()
                with reading(vma, "its name (file path, vm_ops, anon name)"):
                    path = d_path_kernel(file_user_path(file), self.root)
                got = self._files[raw.file] = (dev, ino, path)
            return VmaFacts(raw.start, raw.end, raw.flags, raw.pgoff * self.page_size, got[0], got[1], got[2])
        name: Optional[bytes] = None
        if raw.ops:
            try:
                fn = self._ops_names(raw.ops)[0]
            except FaultError:
                return vma_facts(vma, self.mm, self.root)
            if fn == "special_mapping_name":
                name = self._special.get(raw.private_data)
                if name is None:
                    with reading(vma, "its name (file path, vm_ops, anon name)"):
                        sm = Object(prog, "struct vm_special_mapping *", raw.private_data)
                        name = sm.name.string_()
                    self._special[raw.private_data] = name
            elif fn == "gate_vma_name":
                name = b"[vsyscall]"
            elif fn is not None:
                return vma_facts(vma, self.mm, self.root)  # a callback we do not know: warns
        if name is None:
            if not raw.mm:
                name = b"[vdso]"
            elif self.initial_heap(raw):
                name = b"[heap]"
            elif self.initial_stack(raw):
                name = b"[stack]"
            elif raw.anon_name:
                return vma_facts(vma, self.mm, self.root)
        return VmaFacts(raw.start, raw.end, raw.flags, 0, 0, 0, name)

    def initial_heap(self, raw: VmaRaw) -> bool:
        """:func:`vma_is_initial_heap` (the reader's mm bounds must be known: :attr:`bounds`)."""
        brk, start_brk, _ = self.bounds  # type: ignore[misc]
        s, e = raw.start, raw.end
        return (s < brk and e > start_brk) if self.heap_strict else (s <= brk and e >= start_brk)

    def initial_stack(self, raw: VmaRaw) -> bool:
        """:func:`vma_is_initial_stack` (the reader's mm bounds must be known: :attr:`bounds`)."""
        return raw.start <= self.bounds[2] <= raw.end  # type: ignore[index]

    def file_path(self, file: int) -> bytes:
        """``d_path()`` of the ``struct file *`` *file* for the reader's root, once per file.

        :raises FaultError: if it cannot be read
        """
        try:
            return self._paths[file]
        except KeyError:
            p = self._paths[file] = d_path_kernel(file_user_path(Object(self.prog, "struct file *", file)), self.root)
            return p

    def kernel_pagesize(self, vma: Object, raw: VmaRaw) -> int:
        """:func:`vma_kernel_pagesize` of *vma*."""
        if not raw.ops:
            return self.page_size
        try:
            if self._ops_names(raw.ops)[1] is None:
                return self.page_size
        except FaultError:
            pass
        return vma_kernel_pagesize(vma)

    def flags_string(self, flags: int) -> str:
        """:func:`vm_flags_string` of a VMA whose ``vm_flags`` are *flags*."""
        try:
            return self._flag_strings[flags]
        except KeyError:
            mn = vm_flag_mnemonics(self.prog)
            s = self._flag_strings[flags] = "".join(mn[b] + " " for b in range(64) if flags >> b & 1 and mn[b])
            return s
