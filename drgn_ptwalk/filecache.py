# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The page cache by file: which inodes hold the cached pages of the machine (crash's ``files -p``, corelens'
``filecache``), the kernel's own structures read as ``cachestat()`` reads them.

Every super block on ``super_blocks`` is visited (mounted file systems, and the kernel's internal ones:
``shm_mnt``'s tmpfs with the memfds, SysV segments and shared anonymous mappings, the block devices'
``bdev`` file system with their buffer cache, hugetlbfs), and every inode on its ``s_inodes`` list whose
``i_data`` (``struct address_space``) holds an entry. Per inode: ``nrpages``; the page-cache ``xarray``
walked node by node (one read per ``struct xa_node``, decoded from bytes, no object per page): each folio's
order from its sibling entries (``xa_get_order()``), its dirty and writeback marks (``PAGECACHE_TAG_DIRTY``,
``PAGECACHE_TAG_WRITEBACK``, counted in pages as ``filemap_cachestat()`` counts them), value entries
(workingset shadows of evicted pages; swap entries in shmem); the processes mapping it (distinct mms on the
``i_mmap`` tree); the path as the kernel prints it (``d_path()`` of the inode's first dentry on a mount of
its super block, reachable from PID 1's root where one is; ``dev MAJ:MIN ino N`` when no dentry is left).

:func:`filecache` returns the files, per-super-block totals, and the sums beside the kernel's counters
(``NR_FILE_PAGES``, ``NR_SHMEM``, ``NR_FILE_DIRTY``, ``NR_WRITEBACK``, ``NR_SWAPCACHE``, folded with each
CPU's deltas as :func:`~drgn_ptwalk.memmap.memmap` folds them): :data:`COUNTER_RULES` says how they relate.
"""

import struct
from typing import Dict, Iterator, List, NamedTuple, Optional, Set, Tuple

from drgn import FaultError, Object, Program, container_of, offsetof, sizeof

from drgn_ptwalk._byteorder import struct_order

__all__ = (
    "COUNTER_RULES",
    "CachedFile",
    "FileCacheSummary",
    "SuperBlockCache",
    "filecache",
)

# include/linux/fs.h: PAGECACHE_TAG_DIRTY = XA_MARK_0, PAGECACHE_TAG_WRITEBACK = XA_MARK_1
_MARK_DIRTY = 0
_MARK_WRITEBACK = 1
_MAX_NODES = 1 << 22
"""At most this many xa_nodes per file (16 Gi pages of order-0 folios): beyond it the tree is corrupt."""


class CachedFile(NamedTuple):
    """One inode with page-cache entries (counts in pages of the kernel's ``PAGE_SIZE``)."""

    inode: int
    """``struct inode *``"""
    fstype: str
    """the super block's ``s_type->name`` (``ext4``, ``tmpfs``, ``bdev``, ...)"""
    dev: str
    """``MAJ:MIN`` of the super block's ``s_dev``"""
    ino: int
    kind: str
    """``file``; ``shmem`` (tmpfs), ``memfd``, ``sysv`` (SysV shm segment), ``shmem_anon``
    (``MAP_SHARED|MAP_ANONYMOUS``, ``/dev/zero``); ``bdev`` (a block device's buffer cache); ``hugetlbfs``"""
    path: str
    size: int
    """``i_size`` in bytes"""
    pages: int
    """``mapping->nrpages``: pages in the cache"""
    dirty: int
    """pages of folios marked ``PAGECACHE_TAG_DIRTY``"""
    writeback: int
    """pages of folios marked ``PAGECACHE_TAG_WRITEBACK``"""
    evicted: int
    """pages of value entries: workingset shadows (evicted pages the kernel remembers), or in shmem the
    pages out on swap (``cachestat()``'s ``nr_evicted``)"""
    mapped: int
    """processes (distinct mms) with a VMA of this file on its ``i_mmap`` tree"""
    folios: Tuple[Tuple[int, int], ...]
    """(order, number of folios) of the cached folios, by order"""
    error: Optional[str] = None
    """why the counts are incomplete (an unreadable xarray node, an inconsistent ``nrpages``), else ``None``"""


class SuperBlockCache(NamedTuple):
    """The cached pages of one super block (its files' sums)."""

    sb: int
    fstype: str
    dev: str
    mount: str
    """where it is mounted (PID 1's view), or ``""`` for an internal one"""
    files: int
    pages: int
    dirty: int
    writeback: int
    evicted: int


class FileCacheSummary(NamedTuple):
    files: List[CachedFile]
    """every cached inode, most pages first"""
    super_blocks: List[SuperBlockCache]
    """super blocks with cached pages, most pages first"""
    totals: Dict[str, int]
    """sums over the files: ``pages``, ``shmem`` (kinds shmem, memfd, sysv, shmem_anon), ``hugetlbfs``
    (kept out of ``pages``), ``dirty``, ``writeback``, ``evicted``, ``files``"""
    counters: Dict[str, Optional[int]]
    """the kernel's counters in pages: ``nr_file_pages``, ``nr_shmem``, ``nr_dirty``, ``nr_writeback``,
    ``nr_swapcache`` (``None`` where the kernel keeps none)"""
    page_size: int
    warnings: List[str]


COUNTER_RULES: Dict[str, str] = {
    "nr_file_pages": "NR_FILE_PAGES counts every page-cache page (shmem too, hugetlbfs not) and the swap "
                     "cache: totals.pages + nr_swapcache",
    "nr_shmem": "NR_SHMEM: the pages of shmem files (tmpfs, memfd, SysV, shared anonymous) in their cache: "
                "totals.shmem",
    "nr_dirty": "NR_FILE_DIRTY counts folios dirtied through a writeback-capable mapping (the DIRTY mark); "
                "shmem and ramfs folios are dirty without the mark or the count",
    "nr_writeback": "NR_WRITEBACK counts every folio under writeback, anonymous ones going to swap too: at "
                    "least totals.writeback",
}


class _Layout(NamedTuple):
    inode_size: int
    sb_list: int
    ino: int
    size: int
    dentry_first: int
    rdev: int
    xa_flags: int
    xa_head: int
    nrpages: int
    i_mmap: int
    node_size: int
    node_shift: int
    node_slots: int
    node_marks: int
    chunk: int
    mark_longs: int
    fmt: str
    """struct prefix of the kernel's byte order"""


def _layout(prog: Program) -> _Layout:
    try:
        return prog.cache["ptwalk_filecache_layout"]
    except KeyError:
        pass
    inode = prog.type("struct inode")
    node = prog.type("struct xa_node")
    slots = node.member("slots").type
    marks = node.member("marks").type
    chunk = slots.length or 64
    lay = _Layout(
        sizeof(inode),
        offsetof(inode, "i_sb_list"),
        offsetof(inode, "i_ino"),
        offsetof(inode, "i_size"),
        offsetof(inode, "i_dentry"),
        offsetof(inode, "i_rdev"),
        offsetof(inode, "i_data.i_pages.xa_flags"),
        offsetof(inode, "i_data.i_pages.xa_head"),
        offsetof(inode, "i_data.nrpages"),
        offsetof(inode, "i_data.i_mmap.rb_root.rb_node"),
        sizeof(node),
        offsetof(node, "shift"),
        offsetof(node, "slots"),
        offsetof(node, "marks"),
        chunk,
        sizeof(marks.type) // sizeof(prog.type("unsigned long")),
        struct_order(prog),
    )
    prog.cache["ptwalk_filecache_layout"] = lay
    return lay


def _gfp_bits_shift(prog: Program) -> int:
    """``__GFP_BITS_SHIFT``: where an xarray keeps the marks of its single head entry in ``xa_flags``
    (``XA_FLAGS_MARK()``). It moved with the GFP flags (26 in v6.1, ``___GFP_LAST_BIT`` from v6.9's
    "mm: enumerate all gfp flags"); after boot ``gfp_allowed_mask`` is ``__GFP_BITS_MASK``
    (``kernel_init_freeable()``), so its width is the shift on every kernel."""
    return int(prog["gfp_allowed_mask"].value_()).bit_length()


class _XaCount(NamedTuple):
    pages: int
    dirty: int
    writeback: int
    evicted: int
    folios: Dict[int, int]


def _xa_count(prog: Program, lay: _Layout, head: int, flags: int, head_marks_shift: int) -> _XaCount:
    """Walk one page-cache xarray from its head entry (``xa_head``), node by node."""
    pages = dirty = wb = evicted = 0
    folios: Dict[int, int] = {}
    if not head:
        return _XaCount(0, 0, 0, 0, folios)
    if head & 3 != 2:
        # A single entry at index 0 in the head, its marks in xa_flags
        if head & 1:
            return _XaCount(0, 0, 0, 1, folios)
        d = int(bool(flags >> (head_marks_shift + _MARK_DIRTY) & 1))
        w = int(bool(flags >> (head_marks_shift + _MARK_WRITEBACK) & 1))
        return _XaCount(1, d, w, 0, {0: 1})
    if head <= 4096:
        return _XaCount(0, 0, 0, 0, folios)
    chunk = lay.chunk
    slots_fmt = f"{lay.fmt}{chunk}Q"
    marks_fmt = f"{lay.fmt}{3 * lay.mark_longs}Q"
    chunk_shift = chunk.bit_length() - 1
    stack: List[Tuple[int, Optional[int]]] = [(head - 2, None)]
    seen: Set[int] = set()
    while stack:
        addr, want_shift = stack.pop()
        if addr in seen or len(seen) >= _MAX_NODES:
            raise ValueError(f"xa_node {addr:#x}: visited twice (a loop in the tree)")
        seen.add(addr)
        raw = prog.read(addr, lay.node_size)
        shift = raw[lay.node_shift]
        if want_shift is not None and shift != want_shift:
            raise ValueError(f"xa_node {addr:#x}: shift {shift}, its parent wants {want_shift}")
        slots = struct.unpack_from(slots_fmt, raw, lay.node_slots)
        marks = struct.unpack_from(marks_fmt, raw, lay.node_marks)
        dmark = marks[_MARK_DIRTY * lay.mark_longs]
        wmark = marks[_MARK_WRITEBACK * lay.mark_longs]
        i = 0
        while i < chunk:
            e = slots[i]
            if not e:
                i += 1
                continue
            if e & 3 == 2:
                if e > 4096:
                    if shift == 0:
                        raise ValueError(f"xa_node {addr:#x}: a node below a leaf node")
                    stack.append((e - 2, shift - chunk_shift))
                # siblings are counted with their entry; retry and zero entries hold nothing
                i += 1
                continue
            # a folio or a value entry: its siblings follow it (xa_mk_sibling(i))
            j = i + 1
            sib = (i << 2) | 2
            while j < chunk and slots[j] == sib:
                j += 1
            n = (j - i) << shift
            if e & 1:
                evicted += n
            else:
                pages += n
                order = (n.bit_length() - 1)
                folios[order] = folios.get(order, 0) + 1
                if dmark >> i & 1:
                    dirty += n
                if wmark >> i & 1:
                    wb += n
            i = j
    return _XaCount(pages, dirty, wb, evicted, folios)


def _dev(dev: int) -> str:
    # include/linux/kdev_t.h: MINORBITS 20
    return f"{dev >> 20}:{dev & 0xFFFFF}"


def _mapped(prog: Program, rb_root: int) -> int:
    """Distinct mms with a VMA on an ``i_mmap`` tree (``struct vm_area_struct``'s ``shared.rb``).

    :param rb_root: address of the ``struct rb_root``
    """
    from drgn.helpers.linux.rbtree import rbtree_inorder_for_each_entry

    mms = set()
    for n, vma in enumerate(rbtree_inorder_for_each_entry("struct vm_area_struct",
                                                           Object(prog, "struct rb_root *", rb_root), "shared.rb")):
        if n > 1 << 22:
            raise ValueError("i_mmap does not end (a loop?)")
        mms.add(vma.vm_mm.value_())
    return len(mms)


def _sb_mount(prog: Program, sb: Object, init_ns: int) -> Optional[Object]:
    """A ``struct mount *`` of *sb*: one in PID 1's mount namespace if there is one."""
    first = None
    try:
        for n, mnt in enumerate(_sb_mounts(sb)):
            if n > 1 << 20:
                break  # a loop: the mounts seen so far do
            if first is None:
                first = mnt
            if mnt.mnt_ns.value_() == init_ns:
                return mnt
    except FaultError:
        pass
    return first


def _sb_mounts(sb: Object) -> Iterator[Object]:
    """The ``struct mount *`` of *sb*. Since 09a1b33c080f ("preparations to taking MNT_WRITE_HOLD out of
    ->mnt_flags", v6.18) ``s_mounts`` is the first mount, the others linked by ``mnt_next_for_sb``; before
    it, a ``list_head`` of ``mnt_instance``."""
    from drgn import TypeKind
    from drgn.helpers.linux.list import list_for_each_entry

    head = sb.s_mounts
    if head.type_.kind == TypeKind.POINTER:
        mnt = head.read_()
        while mnt:
            yield mnt
            mnt = mnt.mnt_next_for_sb.read_()
    else:
        yield from list_for_each_entry("struct mount", head.address_of_(), "mnt_instance")


def _mount_path(prog: Program, mnt: Object, root: Optional[Object]) -> str:
    from drgn_ptwalk.procfs.vma import d_path_kernel

    path = Object(prog, "struct path", value={"mnt": mnt.mnt.address_of_(), "dentry": mnt.mnt.mnt_root})
    return d_path_kernel(path, root).decode("utf-8", "surrogateescape")


def _inode_path(prog: Program, first_alias: int, mnt: Optional[Object], root: Optional[Object]) -> Optional[str]:
    from drgn_ptwalk.procfs.vma import d_path_kernel

    if not first_alias or mnt is None:
        return None
    dentry = container_of(Object(prog, "struct hlist_node *", first_alias), "struct dentry", _d_alias(prog))
    path = Object(prog, "struct path", value={"mnt": mnt.mnt.address_of_(), "dentry": dentry})
    return d_path_kernel(path, root).decode("utf-8", "surrogateescape")


def _d_alias(prog: Program) -> str:
    """The member of ``struct dentry`` on its inode's ``i_dentry`` list: ``d_u.d_alias`` until the union
    holding it lost its name ``d_u`` (Debian's 7.2 has it anonymous, beside ``struct completion_list
    *waiters``; the commit is not pinned down here), then ``d_alias``. Detected by the member."""
    try:
        return prog.cache["ptwalk_d_alias"]
    except KeyError:
        pass
    try:
        prog.type("struct dentry").member("d_u")
        name = "d_u.d_alias"
    except LookupError:
        name = "d_alias"
    prog.cache["ptwalk_d_alias"] = name
    return name


def _super_blocks(prog: Program) -> Iterator[Object]:
    from drgn.helpers.linux.list import list_for_each_entry

    yield from list_for_each_entry("struct super_block", prog["super_blocks"].address_of_(), "s_list")


def _sb_inodes(prog: Program, sb: Object, lay: _Layout) -> Iterator[Tuple[int, bytes]]:
    """(address, bytes of ``struct inode``) of every inode on *sb*'s ``s_inodes`` list, one read each."""
    head = sb.s_inodes.address_of_().value_()
    fmt = lay.fmt + "Q"
    nxt = struct.unpack(fmt, prog.read(head, 8))[0]
    seen = 0
    while nxt != head:
        if not nxt:
            raise ValueError(f"super block {sb.value_():#x}: NULL in s_inodes")
        addr = nxt - lay.sb_list
        raw = prog.read(addr, lay.inode_size)
        yield addr, raw
        nxt = struct.unpack_from(fmt, raw, lay.sb_list)[0]
        seen += 1
        if seen > 1 << 26:
            raise ValueError(f"super block {sb.value_():#x}: s_inodes does not end (a loop?)")


def _shmem_kind(path: str) -> str:
    # simple_dname() names of shmem_file_setup()'s files (mm/shmem.c, ipc/shm.c, mm/memfd.c)
    if path.startswith("/memfd:"):
        return "memfd"
    if path.startswith("/SYSV"):
        return "sysv"
    if path.startswith("/dev/zero") or path.startswith("/anon_hugepage"):
        return "shmem_anon"
    return "shmem"


def _counters(prog: Program) -> Dict[str, Optional[int]]:
    # The fold of memmap's counters (global value + every CPU's delta).
    from drgn_ptwalk.memmap import vm_stat

    def node(item: str) -> Optional[int]:
        return vm_stat(prog, "vm_node_stat", item)

    return {
        "nr_file_pages": node("NR_FILE_PAGES"),
        "nr_shmem": node("NR_SHMEM"),
        "nr_dirty": node("NR_FILE_DIRTY"),
        "nr_writeback": node("NR_WRITEBACK"),
        "nr_swapcache": node("NR_SWAPCACHE"),
    }


_SHMEM_KINDS = ("shmem", "memfd", "sysv", "shmem_anon")


def filecache(prog: Program) -> FileCacheSummary:
    """
    Every cached inode of *prog*, most pages first, with per-super-block totals and the kernel's
    counters (see the module doc).

    An inode or super block that cannot be read is a warning (and, for an inode whose xarray breaks
    midway, a file with ``error`` set); the rest is exact.

    :return: the files, the per-super-block totals, the kernel's counters beside the sums, the warnings
    """
    from drgn.helpers.linux.pid import find_task

    from drgn_ptwalk.procfs.vma import default_root

    lay = _layout(prog)
    shift = _gfp_bits_shift(prog)
    page_size = 1 << prog["PAGE_SHIFT"].value_()
    root = default_root(prog)
    init_ns = 0
    init = find_task(prog, 1)
    if init:
        try:
            init_ns = init.nsproxy.mnt_ns.value_()
        except FaultError:
            pass
    try:
        shmem_aops = prog["shmem_aops"].address_of_().value_()
    except (KeyError, LookupError):
        shmem_aops = -1
    try:
        bdev_sb = prog["blockdev_superblock"].value_()
    except (KeyError, LookupError):
        bdev_sb = -1
    aops_off = offsetof(prog.type("struct inode"), "i_data.a_ops")
    rb_off = offsetof(prog.type("struct inode"), "i_data.i_mmap.rb_root")
    files: List[CachedFile] = []
    sbs: List[SuperBlockCache] = []
    warnings: List[str] = []
    fmt = lay.fmt
    for sb in _super_blocks(prog):
        try:
            sb_addr = sb.value_()
            fstype = sb.s_type.name.string_().decode("utf-8", "replace")
            dev = _dev(sb.s_dev.value_())
        except FaultError as e:
            warnings.append(f"super block {sb.value_():#x}: unreadable ({e})")
            continue
        mnt: Optional[Object] = None
        mnt_found = False
        sb_files: List[CachedFile] = []
        try:
            inodes = list(_sb_inodes(prog, sb, lay))
        except (FaultError, ValueError) as e:
            warnings.append(f"super block {sb_addr:#x} ({fstype} {dev}): inode list unreadable: {e}")
            inodes = []
        for addr, raw in inodes:
            head = struct.unpack_from(fmt + "Q", raw, lay.xa_head)[0]
            if not head:
                continue
            ino, size, first, nrpages, mmap_root, aops = (
                struct.unpack_from(fmt + "Q", raw, lay.ino)[0],
                struct.unpack_from(fmt + "q", raw, lay.size)[0],
                struct.unpack_from(fmt + "Q", raw, lay.dentry_first)[0],
                struct.unpack_from(fmt + "Q", raw, lay.nrpages)[0],
                struct.unpack_from(fmt + "Q", raw, lay.i_mmap)[0],
                struct.unpack_from(fmt + "Q", raw, aops_off)[0],
            )
            xa_flags = struct.unpack_from(fmt + "I", raw, lay.xa_flags)[0]
            error = None
            try:
                c = _xa_count(prog, lay, head, xa_flags, shift)
            except (FaultError, ValueError) as e:
                error = f"page cache xarray unreadable: {e}"
                c = _XaCount(0, 0, 0, 0, {})
            if error is None and c.pages != nrpages and fstype != "hugetlbfs":
                error = f"nrpages {nrpages} but {c.pages} pages in the xarray"
            if not mnt_found:
                mnt = _sb_mount(prog, sb, init_ns)
                mnt_found = True
            path = None
            try:
                path = _inode_path(prog, first, mnt, root)
            except (FaultError, ValueError) as e:
                warnings.append(f"inode {addr:#x}: path unreadable ({e})")
            if sb_addr == bdev_sb:
                kind = "bdev"
                rdev = struct.unpack_from(fmt + "I", raw, lay.rdev)[0]
                path = path or f"bdev {_dev(rdev)}"
            elif fstype == "hugetlbfs":
                kind = "hugetlbfs"
            elif aops == shmem_aops:
                kind = _shmem_kind(path or "")
            else:
                kind = "file"
            if path is None:
                path = f"dev {dev} ino {ino}"
            mapped = 0
            if mmap_root:
                try:
                    mapped = _mapped(prog, addr + rb_off)
                except (FaultError, ValueError) as e:
                    error = error or f"i_mmap unreadable: {e}"
            sb_files.append(CachedFile(addr, fstype, dev, ino, kind, path, size, nrpages, c.dirty, c.writeback,
                                       c.evicted, mapped, tuple(sorted(c.folios.items())), error))
        if sb_files:
            if not mnt_found:
                mnt = _sb_mount(prog, sb, init_ns)
            where = ""
            if mnt is not None and mnt.mnt_ns.value_() == init_ns and init_ns:
                try:
                    where = _mount_path(prog, mnt, root)
                except (FaultError, ValueError):
                    where = ""
            sbs.append(SuperBlockCache(sb_addr, fstype, dev, where, len(sb_files),
                                       sum(f.pages for f in sb_files), sum(f.dirty for f in sb_files),
                                       sum(f.writeback for f in sb_files), sum(f.evicted for f in sb_files)))
            files.extend(sb_files)
    files.sort(key=lambda f: (-f.pages, f.path, f.inode))
    sbs.sort(key=lambda s: (-s.pages, s.fstype, s.sb))
    cached = [f for f in files if f.kind != "hugetlbfs"]
    totals = {
        "files": len(files),
        "pages": sum(f.pages for f in cached),
        "shmem": sum(f.pages for f in cached if f.kind in _SHMEM_KINDS),
        "hugetlbfs": sum(f.pages for f in files if f.kind == "hugetlbfs"),
        "dirty": sum(f.dirty for f in cached),
        "writeback": sum(f.writeback for f in cached),
        "evicted": sum(f.evicted for f in cached),
    }
    return FileCacheSummary(files, sbs, totals, _counters(prog), page_size, warnings)

