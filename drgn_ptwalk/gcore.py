# SPDX-License-Identifier: LGPL-2.1-or-later
"""
An ELF core of one process from a dump, as the kernel's own coredump would have written it
(fs/binfmt_elf.c ``elf_core_dump()``, fs/coredump.c ``vma_dump_size()``, ``dump_vma_snapshot()``).

Layout, as the kernel's: the ELF header (``ET_CORE``, the architecture's ``e_machine``, 64-bit, the
kernel's byte order: big-endian for s390x), the program headers — ``PT_NOTE`` first, then one ``PT_LOAD``
per VMA in address order, the gate VMA (x86_64's ``[vsyscall]``) last — then the notes
(:mod:`drgn_ptwalk.corenotes`), then, from the next page boundary, each segment's bytes. A segment's
``p_filesz`` is what ``vma_dump_size()`` chooses from the task's ``coredump_filter`` (the ``MMF_DUMP_*``
bits of ``mm->flags``), ``VM_DONTDUMP``, ``VM_IO``, hugetlb and DAX; ``p_memsz`` is the VMA's size;
``p_flags`` its ``VM_READ``/``VM_WRITE``/``VM_EXEC``; ``p_align`` the page size. More than 65534 VMAs
use the kernel's extended numbering (``e_phnum = PN_XNUM`` and one section header holding the count).

Page bytes come from the process memory reader (:func:`drgn_ptwalk.usermem.user_pages`): a page it
cannot read (swapped to a device without an image, filtered out of the dump, hwpoisoned, ...) is a
hole in the file — zeros when read, never invented bytes — and a :class:`MissingRange` with its fate.
Pages never faulted in are holes too, as the kernel leaves them (``get_dump_page()`` returns no page
with ``FOLL_DUMP``). The file is written in one pass, one write per readable run, holes sought over.
"""

import json
import os
import struct
from typing import IO, Any, BinaryIO, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from drgn import FaultError, Object, Program

from drgn_ptwalk._byteorder import struct_order
from drgn_ptwalk.errors import ArgumentError

__all__ = (
    "CoreSegment",
    "GcoreResult",
    "MissingRange",
    "MMF_DUMP",
    "CoreFile",
    "core_segments",
    "coredump_filter",
    "format_summary",
    "gcore",
    "read_core",
    "vma_dump_size",
)

# include/linux/sched/coredump.h (v2.6.23 "coredump masking: add an interface for core dump filter",
# 3cb4a0bb1e77; the hugetlb bits e575f111dc0f v2.6.28, ELF headers 82df39738ba9 v2.6.24, DAX
# 5037835c1f3e v4.6; unchanged through v7.2): MMF_DUMP_FILTER_SHIFT = MMF_DUMPABLE_BITS = 2. They are
# macros (no debug info has them).
MMF_DUMP: Dict[str, int] = {
    "ANON_PRIVATE": 2,
    "ANON_SHARED": 3,
    "MAPPED_PRIVATE": 4,
    "MAPPED_SHARED": 5,
    "ELF_HEADERS": 6,
    "HUGETLB_PRIVATE": 7,
    "HUGETLB_SHARED": 8,
    "DAX_PRIVATE": 9,
    "DAX_SHARED": 10,
}
"""Bit numbers of the ``MMF_DUMP_*`` flags in ``mm->flags`` (``coredump_filter`` bit *n* is bit *n* + 2)."""
_MMF_DUMP_FILTER_SHIFT = 2
_MMF_DUMP_ALL = sum(1 << b for b in MMF_DUMP.values())

# include/linux/fs.h: S_DAX = 1 << 13 with CONFIG_FS_DAX (v4.x..v7.2).
_S_DAX = 1 << 13

# include/uapi/linux/elf.h
_PF_X, _PF_W, _PF_R = 1, 2, 4
_PT_LOAD, _PT_NOTE = 1, 4
_PN_XNUM = 0xFFFF
_EM = {"X86_64": 62, "AARCH64": 183, "PPC64": 21, "S390X": 22, "LOONGARCH64": 258}
_ELF_MAGIC = b"\x7fELF"
_EHDR_SIZE, _PHDR_SIZE, _SHDR_SIZE = 64, 56, 64


class CoreSegment(NamedTuple):
    """One ``PT_LOAD`` of the core: a VMA and how much of it is dumped."""

    start: int
    end: int
    vm_flags: int
    filesz: int
    """``vma_dump_size()``: 0, the first page (ELF headers), or ``end - start``."""
    offset: int
    """Where its bytes start in the file."""
    p_flags: int

    @property
    def memsz(self) -> int:
        return self.end - self.start


class MissingRange(NamedTuple):
    """Pages of a dumped segment whose bytes are not in the core (a hole) though the kernel's own core would
    have had them, and why. (Holes the kernel's core has too — a ``VM_IO``/``VM_PFNMAP`` mapping like
    vvar, a hugetlb page not faulted in — are counted in :attr:`GcoreResult.pages` but are not missing.)"""

    start: int
    end: int
    fate: str
    """The reader's :class:`~drgn_ptwalk.usermem.Fate` name (``"SWAP_DEVICE"``, ``"EXCLUDED"``, ...), or
    ``"GATE_UNMAPPED"`` for the x86_64 vsyscall page in ``vsyscall=xonly`` mode (not mapped: the
    kernel's own core has zeros there too)."""
    detail: str
    swap_type: Optional[int] = None
    swap_offset: Optional[int] = None
    pfn: Optional[int] = None


class GcoreResult(NamedTuple):
    """What :func:`gcore` wrote."""

    path: Optional[str]
    """The core's path (``None`` when written to a file object)."""
    pages: Dict[str, int]
    """Pages of the dumped segments per fate (the reader's :class:`~drgn_ptwalk.usermem.Fate` names),
    written or not."""
    missing: List[MissingRange]
    """The ranges left as holes for want of bytes, in address order."""
    bytes_written: int
    """Bytes of page data written (the file's size is larger: holes)."""
    file_size: int
    segments: List[CoreSegment]
    threads: int
    notes: List[Tuple[str, int, int]]
    """``(name, type, size)`` of each note, in file order."""
    errors: List[str]
    """What could not be read but did not stop the core (a thread's registers, the argument area)."""


# ---------------------------------------------------------------------------
# Segments


def coredump_filter(mm: Object) -> int:
    """``/proc/PID/coredump_filter``: the ``MMF_DUMP_*`` bits of ``mm->flags``, shifted down by
    ``MMF_DUMP_FILTER_SHIFT``.

    :param mm: ``struct mm_struct *``
    :return: the filter's bits (``MMF_DUMP_ANON_PRIVATE`` is bit 0)
    """
    return (_mm_flags(mm) & _MMF_DUMP_ALL) >> _MMF_DUMP_FILTER_SHIFT


def _mm_flags(mm: Object) -> int:
    from drgn_ptwalk.generations import generation

    flags = mm.flags
    if generation(mm.prog_).mm_flags_bitmap:
        # mm_flags_t: "mm: convert mm->flags to a bitmap" (Generation.mm_flags_bitmap); the MMF_DUMP
        # bits are in its first word.
        return flags.__mm_flags[0].value_()
    return flags.value_()


def _vm_bits(prog: Program) -> Dict[str, int]:
    from drgn_ptwalk.procfs.vma import vm_flag_bits

    b = vm_flag_bits(prog)
    return {k: 1 << b[k] for k in ("READ", "WRITE", "EXEC", "SHARED", "IO", "HUGETLB", "DONTDUMP")}


def _always_dump(vma: Object, gate: Optional[Object]) -> bool:
    """``always_dump_vma()``: the gate VMA, or a VMA whose ``vm_ops->name()`` names it (the vDSO, vvar
    and other special mappings: ``special_mapping_name()`` returns the mapping's name). No architecture
    of ours has an ``arch_vma_name()`` that names anything."""
    from drgn import cast

    from drgn_ptwalk._kernel import symbol_name

    if gate is not None and vma.value_() == gate.value_():
        return True
    ops = vma.vm_ops.read_()
    if not ops.value_():
        return False
    name_fn = ops.name.value_()
    if not name_fn:
        return False
    if symbol_name(vma.prog_, name_fn) == "special_mapping_name":
        sm = cast("struct vm_special_mapping *", vma.vm_private_data)
        return bool(sm.value_() and sm.name.value_())
    return True


def vma_dump_size(vma: Object, mm_flags: int, *, all_pages: bool = False,
                  gate: Optional[Object] = None, first_bytes: Any = None) -> int:
    """
    ``vma_dump_size()``: how many bytes of *vma* the kernel's coredump writes.

    ``always_dump_vma()`` (vDSO, special mappings, the gate VMA) -> whole; ``VM_DONTDUMP`` -> 0; DAX ->
    whole if ``MMF_DUMP_DAX_SHARED``/``PRIVATE`` else 0; hugetlb -> whole if ``MMF_DUMP_HUGETLB_SHARED``/
    ``PRIVATE`` else 0; ``VM_IO`` -> 0; shared -> whole if ``MMF_DUMP_ANON_SHARED`` (file with no links:
    shmem, memfd, SysV shm) or ``MMF_DUMP_MAPPED_SHARED``; private with an ``anon_vma`` (written to) and
    ``MMF_DUMP_ANON_PRIVATE`` -> whole; anonymous -> 0; file-backed and ``MMF_DUMP_MAPPED_PRIVATE`` ->
    whole; with ``MMF_DUMP_ELF_HEADERS``, the first page of a readable mapping at file offset 0 of an
    executable file, or (``dump_vma_snapshot()``) of one whose first bytes are the ELF magic.

    :param vma: ``struct vm_area_struct *``
    :param mm_flags: ``mm->flags`` (the first word)
    :param all_pages: dump as if every filter bit were set (still not ``VM_IO``/``VM_DONTDUMP``)
    :param gate: the gate VMA of the process, if any (always dumped whole)
    :param first_bytes: ``callable(address) -> Optional[bytes]``: the VMA's first 4 bytes, or ``None``
        if not readable (``copy_from_user()`` failing: not dumped)
    :return: the bytes dumped from the VMA's start: 0, one page, or the whole VMA
    """
    prog = vma.prog_
    if all_pages:
        mm_flags |= _MMF_DUMP_ALL
    vm = _vm_bits(prog)
    start, end = vma.vm_start.value_(), vma.vm_end.value_()
    whole = end - start

    def dump(name: str) -> bool:
        return bool(mm_flags >> MMF_DUMP[name] & 1)

    if _always_dump(vma, gate):
        return whole
    flags = vma.vm_flags.value_()
    if flags & vm["DONTDUMP"]:
        return 0
    file = vma.vm_file.read_()
    shared = bool(flags & vm["SHARED"])
    if file.value_() and file.f_mapping.host.i_flags.value_() & _S_DAX:
        return whole if dump("DAX_SHARED" if shared else "DAX_PRIVATE") else 0
    if flags & vm["HUGETLB"]:
        return whole if dump("HUGETLB_SHARED" if shared else "HUGETLB_PRIVATE") else 0
    if flags & vm["IO"]:
        return 0
    if shared:
        anon = file.f_inode.i_nlink.value_() == 0
        return whole if dump("ANON_SHARED" if anon else "MAPPED_SHARED") else 0
    if vma.anon_vma.value_() and dump("ANON_PRIVATE"):
        return whole
    if not file.value_():
        return 0
    if dump("MAPPED_PRIVATE"):
        return whole
    if dump("ELF_HEADERS") and vma.vm_pgoff.value_() == 0 and flags & vm["READ"]:
        page = _page_size(prog)
        if file.f_inode.i_mode.value_() & 0o111:
            return page
        data = first_bytes(start) if first_bytes is not None else None
        return page if data is not None and data[:4] == _ELF_MAGIC else 0
    return 0


def _page_size(prog: Program) -> int:
    return prog["PAGE_SIZE"].value_()


def _vm_to_pflags(prog: Program, flags: int) -> int:
    vm = _vm_bits(prog)
    return ((_PF_R if flags & vm["READ"] else 0) | (_PF_W if flags & vm["WRITE"] else 0)
            | (_PF_X if flags & vm["EXEC"] else 0))


class _Seg(NamedTuple):
    vma: Object
    start: int
    end: int
    vm_flags: int
    filesz: int
    gate: bool


def _segments(mm: Object, all_pages: bool, first_bytes: Any) -> List[_Seg]:
    from drgn_ptwalk.procfs.maps import gate_vma
    from drgn_ptwalk.vmatree import checked_vma_ranges

    prog = mm.prog_
    gate = gate_vma(prog, mm)
    mm_flags = _mm_flags(mm)
    out = []
    for vma, vs, ve in checked_vma_ranges(mm):
        size = vma_dump_size(vma, mm_flags, all_pages=all_pages, gate=gate, first_bytes=first_bytes)
        out.append(_Seg(vma, vs, ve, vma.vm_flags.value_(), size, False))
    if gate is not None:
        # coredump_next_vma(): the gate VMA comes after the mm's own.
        out.append(_Seg(gate, gate.vm_start.value_(), gate.vm_end.value_(), gate.vm_flags.value_(),
                        gate.vm_end.value_() - gate.vm_start.value_(), True))
    return out


def core_segments(task: Object, *, all_pages: bool = False, swap_images: Optional[Mapping[int, Any]] = None,
                  root: Optional[str] = None) -> List[CoreSegment]:
    """
    The ``PT_LOAD`` segments :func:`gcore` writes for *task*, with ``offset`` 0 (the layout is made
    when the notes are known).

    :param task: ``struct task_struct *``
    :param all_pages: see :func:`gcore`
    :param swap_images: see :func:`gcore`
    :param root: see :func:`gcore`
    :return: one segment per VMA, in address order
    """
    from drgn_ptwalk.tasks import task_mm

    mm = task_mm(task)
    prog = mm.prog_
    segs = _segments(mm, all_pages, _first_bytes_reader(task, swap_images, root))
    return [CoreSegment(s.start, s.end, s.vm_flags, s.filesz, 0, _vm_to_pflags(prog, s.vm_flags)) for s in segs]


# ---------------------------------------------------------------------------
# Reading


def _reader_kwargs(swap_images: Optional[Mapping[int, Any]], root: Optional[str]) -> Dict[str, Any]:
    kw: Dict[str, Any] = {}
    if swap_images:
        kw["swap_images"] = swap_images
    if root is not None:
        kw["root"] = root
    return kw


def _first_bytes_reader(task: Object, swap_images: Optional[Mapping[int, Any]], root: Optional[str]) -> Any:
    from drgn_ptwalk.usermem import user_pages

    kw = _reader_kwargs(swap_images, root)
    ps = _page_size(task.prog_)

    def first_bytes(addr: int) -> Optional[bytes]:
        try:
            for r in user_pages(task, addr, addr + ps, **kw):
                return r.data[:4] if r.data is not None else None
        except FaultError:
            return None
        return None

    return first_bytes


def _read_args(task: Object, mm: Object, kw: Dict[str, Any], errors: List[str]) -> bytes:
    """The first ``ELF_PRARGSZ - 1`` bytes of the argument area, up to the first byte the reader cannot
    read (the rest is left out, not made up: the kernel's ``copy_from_user()`` would have failed)."""
    from drgn_ptwalk.corenotes import ELF_PRARGSZ
    from drgn_ptwalk.usermem import user_pages

    start, end = mm.arg_start.value_(), mm.arg_end.value_()
    n = min(max(end - start, 0), ELF_PRARGSZ - 1)
    if not n:
        return b""
    ps = _page_size(mm.prog_)
    buf = bytearray(n)
    have = 0
    try:
        for r in user_pages(task, start & ~(ps - 1), (start + n + ps - 1) & ~(ps - 1), **kw):
            lo, hi = max(r.start, start), min(r.end, start + n)
            if lo >= hi:
                continue
            if r.data is None or lo != start + have:
                errors.append(f"argument area {lo:#x}-{hi:#x}: {r.fate.name} ({r.detail}); psargs ends before it")
                break
            buf[lo - start:hi - start] = r.data[lo - r.start:hi - r.start]
            have = hi - start
    except FaultError as e:
        errors.append(f"argument area not readable: {e}")
    return bytes(buf[:have])


# include/linux/sched.h: PF_IO_WORKER 0x10 (v5.12), PF_USER_WORKER 0x4000 (54e6842d0775 "fork/vm: Move
# common PF_IO_WORKER behavior to new flag", v6.4); unchanged through v7.2.
_PF_IO_WORKER = 0x00000010
_PF_USER_WORKER = 0x00004000


def _threads(task: Object, mm: Object) -> List[Object]:
    """
    The threads the kernel's core has: the dumping thread (*task*) first, then the others of its group
    that use *mm*, in group order. A user worker that is not an io_uring worker (v6.4+ ``vhost-<pid>``)
    "does not participate in coredumps" (``zap_process()``): left out.
    """
    from drgn_ptwalk.tasks import thread_group

    leader = task.group_leader.read_()
    out = [task]
    for t in thread_group(leader):
        if t.value_() == task.value_() or t.mm.value_() != mm.value_():
            continue
        if t.flags.value_() & (_PF_USER_WORKER | _PF_IO_WORKER) == _PF_USER_WORKER:
            continue
        out.append(t)
    return out


def _files(task: Object, segs: Sequence[_Seg]) -> List[Tuple[int, int, int, bytes]]:
    """
    ``NT_FILE`` entries: the file-backed VMAs with the path ``file_path(vma->vm_file)`` gives in the
    dumping task: relative to the task's own root, and ``f_path`` itself — for an overlayfs mapping
    (a backing file, v6.6+) the file in its layer, where /proc/PID/maps shows the overlay's path
    (``file_user_path()``).
    """
    from drgn_ptwalk.procfs.vma import d_path_kernel, task_root

    root = task_root(task)
    out = []
    for s in segs:
        if s.gate:
            continue
        file = s.vma.vm_file.read_()
        if not file.value_():
            continue
        path = d_path_kernel(file.f_path.address_of_(), root)
        out.append((s.start, s.end, s.vma.vm_pgoff.value_(), path))
    return out


# ---------------------------------------------------------------------------
# Writing


def _elf_header(prog: Program, phnum: int, shoff: int, e_flags: int) -> bytes:
    o = struct_order(prog)
    arch = prog.platform.arch.name if prog.platform is not None else "UNKNOWN"
    machine = _EM.get(arch)
    if machine is None:
        raise NotImplementedError(f"gcore: no ELF machine for architecture {arch}")
    ident = _ELF_MAGIC + bytes([2, 2 if o == ">" else 1, 1, 0]) + bytes(8)
    e_phnum = _PN_XNUM if phnum >= _PN_XNUM else phnum
    shnum = 1 if shoff else 0
    return ident + struct.pack(o + "HHIQQQIHHHHHH", 4, machine, 1, 0, _EHDR_SIZE, shoff, e_flags, _EHDR_SIZE,
                               _PHDR_SIZE, e_phnum, _SHDR_SIZE if shoff else 0, shnum, 0)


def _e_flags(prog: Program, mm: Object) -> int:
    """``ELF_CORE_EFLAGS``: ppc64 writes 2 for an ELFv2 task (``is_elf2_task()``: ``TIF_ELF2ABI``), which
    every little-endian ppc64 task is; 0 elsewhere."""
    arch = prog.platform.arch.name if prog.platform is not None else ""
    if arch == "PPC64" and struct_order(prog) == "<":
        return 2
    return 0


def _extnum_shdr(prog: Program, phnum: int) -> bytes:
    """``fill_extnum_info()``: the one section header of a core with ``e_phnum == PN_XNUM``, whose
    ``sh_info`` holds the real number of program headers."""
    return struct.pack(struct_order(prog) + "IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, phnum, 0, 0)


def _phdr(prog: Program, p_type: int, flags: int, offset: int, vaddr: int, filesz: int, memsz: int,
          align: int) -> bytes:
    return struct.pack(struct_order(prog) + "IIQQQQQQ", p_type, flags, offset, vaddr, 0, filesz, memsz, align)


def gcore(task: Object, path_or_file: Union[str, "os.PathLike[str]", BinaryIO], *, all_pages: bool = False,
          swap_images: Optional[Mapping[int, Any]] = None, root: Optional[str] = None,
          report: Optional[Union[str, "os.PathLike[str]"]] = None) -> GcoreResult:
    """
    Write an ELF core of *task*'s process, as the kernel's coredump would have (see the module doc).

    A path is written under a temporary name (``PATH.tmp``) and renamed when complete; on any error the
    temporary file is removed and nothing is left under *path*. A file object must be seekable (holes are
    sought over); it is written from its current position 0 on.

    :param task: ``struct task_struct *`` of the dumping thread (its notes come first); the process's
        other threads follow
    :param path_or_file: where to write the core: a path, or a binary file open for writing
    :param all_pages: dump every VMA whole, as if every ``coredump_filter`` bit were set (``VM_IO`` and
        ``VM_DONTDUMP`` VMAs stay empty, as the kernel's rule has them)
    :param swap_images: swap type -> swap device image (path or binary file), for pages on a swap device
    :param root: a directory holding the files of file-backed mappings, for file pages not in the page
        cache (the reader's ``root``)
    :param report: write every missing range as JSON Lines here (``start``, ``end``, ``fate``, ``detail``,
        ``swap_type``, ``swap_offset``, ``pfn``)
    :raises NoMmError: for a kernel thread or an exited task
    :raises OSError: if the file cannot be written
    :raises ArgumentError: for a swap image that is not an image of its device (the reader's check)
    :return: what was written: pages per fate, the missing ranges, the segments, sizes, threads, notes and
        errors
    """
    from drgn_ptwalk.tasks import task_mm

    mm = task_mm(task)
    opened: List[IO[bytes]] = []
    try:
        images: Dict[int, Any] = {}
        for t, src in (swap_images or {}).items():
            if isinstance(src, (str, os.PathLike)):
                # Opened once for every segment's read (the reader opens a path at each call).
                opened.append(open(src, "rb"))
                src = opened[-1]
            images[int(t)] = src
        return _gcore(task, mm, path_or_file, all_pages, images, root, report)
    finally:
        for img in opened:
            img.close()


def _gcore(task: Object, mm: Object, path_or_file: Union[str, "os.PathLike[str]", BinaryIO], all_pages: bool,
           swap_images: Mapping[int, Any], root: Optional[str],
           report: Optional[Union[str, "os.PathLike[str]"]]) -> GcoreResult:
    from drgn_ptwalk.corenotes import core_notes, encode_notes
    from drgn_ptwalk.usermem import user_pages

    prog = task.prog_
    kw = _reader_kwargs(swap_images, root)
    errors: List[str] = []
    ps = _page_size(prog)
    if swap_images:
        # The reader checks each image against its device when called: a wrong one fails here, before
        # anything is read or written.
        user_pages(task, 0, ps, **kw).close()
    segs = _segments(mm, all_pages, _first_bytes_reader(task, swap_images, root))
    threads = _threads(task, mm)
    notes = core_notes(threads, mm, _read_args(task, mm, kw, errors), _files(task, segs), ps, errors)
    note_bytes = encode_notes(prog, notes)

    phnum = len(segs) + 1
    offset = _EHDR_SIZE + phnum * _PHDR_SIZE
    note_off = offset
    dataoff = (offset + len(note_bytes) + ps - 1) // ps * ps
    out_segs = []
    off = dataoff
    for s in segs:
        out_segs.append(CoreSegment(s.start, s.end, s.vm_flags, s.filesz, off, _vm_to_pflags(prog, s.vm_flags)))
        off += s.filesz
    data_end = off
    shoff = data_end if phnum >= _PN_XNUM else 0
    file_size = data_end + (_SHDR_SIZE if shoff else 0)

    head = [_elf_header(prog, phnum, shoff, _e_flags(prog, mm)),
            _phdr(prog, _PT_NOTE, 0, note_off, 0, len(note_bytes), 0, 0)]
    head += [_phdr(prog, _PT_LOAD, c.p_flags, c.offset, c.start, c.filesz, c.memsz, ps) for c in out_segs]
    head.append(note_bytes)
    header = b"".join(head)

    if isinstance(path_or_file, (str, os.PathLike)):
        path = os.fspath(path_or_file)
        tmp = path + ".tmp"
        rtmp = os.fspath(report) + ".tmp" if report is not None else None
        try:
            with open(tmp, "wb") as f, (open(rtmp, "w") if rtmp else _null()) as rep:
                pages, missing, written = _write(task, f, header, segs, out_segs, shoff, phnum, file_size, kw, rep)
            os.replace(tmp, path)
            if rtmp and report is not None:
                os.replace(rtmp, os.fspath(report))
        finally:
            for t in (tmp, rtmp):
                if t and os.path.exists(t):
                    os.unlink(t)
        where: Optional[str] = path
    else:
        where = None
        if report is not None:
            rtmp = os.fspath(report) + ".tmp"
            try:
                with open(rtmp, "w") as rep:
                    pages, missing, written = _write(task, path_or_file, header, segs, out_segs, shoff, phnum,
                                                     file_size, kw, rep)
                os.replace(rtmp, os.fspath(report))
            finally:
                if os.path.exists(rtmp):
                    os.unlink(rtmp)
        else:
            pages, missing, written = _write(task, path_or_file, header, segs, out_segs, shoff, phnum, file_size,
                                             kw, None)
    return GcoreResult(where, pages, missing, written, file_size, out_segs, len(threads),
                       [(n.name.decode(), n.type, len(n.desc)) for n in notes], errors)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


def _write(task: Object, f: IO[bytes], header: bytes, segs: Sequence[_Seg], out_segs: Sequence[CoreSegment],
           shoff: int, phnum: int, file_size: int, kw: Dict[str, Any],
           rep: Optional[IO[str]]) -> Tuple[Dict[str, int], List[MissingRange], int]:
    prog = task.prog_
    ps = _page_size(prog)
    pages: Dict[str, int] = {}
    missing: List[MissingRange] = []
    f.seek(0)
    f.write(header)
    f.flush()
    try:
        fd: Optional[int] = f.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    written = 0

    def put(data: bytes, at: int) -> None:
        if fd is not None:
            mv = memoryview(data)
            while mv:
                n = os.pwrite(fd, mv, at)
                mv = mv[n:]
                at += n
        else:
            f.seek(at)
            f.write(data)

    def miss(m: MissingRange) -> None:
        if missing and missing[-1].end == m.start and missing[-1].fate == m.fate and missing[-1].detail == m.detail \
                and m.swap_type is None and m.pfn is None:
            missing[-1] = missing[-1]._replace(end=m.end)
        else:
            missing.append(m)
        pages[m.fate] = pages.get(m.fate, 0) + (m.end - m.start) // ps

    from drgn_ptwalk.usermem import user_pages

    for s, c in zip(segs, out_segs):
        if not c.filesz:
            continue
        end = s.start + c.filesz
        if s.gate:
            written += _write_gate(prog, s, c, put, miss, pages)
            continue
        special = _special_mapping_pages(s.vma)
        kernel_holes = _kernel_hole_fates(prog, s)
        for r in _pages(user_pages, task, s, end, kw):
            fate = r.fate.name
            if special is not None and fate in ("ZERO", "PFNMAP"):
                # Not faulted in: the bytes a fault would map, as the kernel's coredump faults them in.
                written += _write_special(s, c, r, special, put, pages, miss)
                continue
            if r.data is None:
                if fate in kernel_holes:
                    pages[fate] = pages.get(fate, 0) + (r.end - r.start) // ps
                else:
                    miss(MissingRange(r.start, r.end, fate, r.detail, r.swap_type, r.swap_offset, r.pfn))
                continue
            pages[fate] = pages.get(fate, 0) + (r.end - r.start) // ps
            if fate == "ZERO":
                continue  # never faulted in: a hole, as the kernel leaves it
            put(r.data, c.offset + (r.start - s.start))
            written += r.end - r.start
    if shoff:
        put(_extnum_shdr(prog, phnum), shoff)
    if rep is not None:
        for m in missing:
            rep.write(json.dumps({"start": m.start, "end": m.end, "fate": m.fate, "detail": m.detail,
                                  "swap_type": m.swap_type, "swap_offset": m.swap_offset, "pfn": m.pfn}) + "\n")
    if fd is not None:
        os.ftruncate(fd, file_size)
    else:
        f.seek(0, os.SEEK_END)
        if f.tell() < file_size:
            f.truncate(file_size)
    f.flush()
    return pages, missing, written


def _pages(user_pages: Any, task: Object, s: _Seg, end: int, kw: Dict[str, Any]) -> Iterator[Any]:
    try:
        return iter(user_pages(task, s.start, end, vma_ranges=[(s.vma, s.start, s.end)], **kw))
    except TypeError:
        return iter(user_pages(task, s.start, end, **kw))


def _kernel_hole_fates(prog: Program, s: _Seg) -> Tuple[str, ...]:
    """
    The reader's fates of pages that the kernel's own core has as holes too, in this segment: not missing.
    ``get_dump_page()`` (``FOLL_DUMP``) gives no page for a ``VM_IO``/``VM_PFNMAP`` mapping (vvar: the
    reader's ``PFNMAP``) nor for a hugetlb page not faulted in (the reader's ``FILE_NOT_CACHED``); the
    kernel skips them (``dump_skip()``).
    """
    from drgn_ptwalk.procfs.vma import vm_flag_bits

    b = vm_flag_bits(prog)
    out: List[str] = []
    if s.vm_flags & ((1 << b["IO"]) | (1 << b["PFNMAP"])):
        out.append("PFNMAP")
    if s.vm_flags & (1 << b["HUGETLB"]):
        out.append("FILE_NOT_CACHED")
    return tuple(out)


def _special_mapping_pages(vma: Object) -> Optional[Any]:
    """
    For a special mapping (``_install_special_mapping()``: the vDSO) the page a fault would map at each
    page offset, as ``special_mapping_fault()`` finds it: ``vm_special_mapping::pages[pgoff]``, or x86's
    ``vdso_fault()`` (``mm->context.vdso_image->data + (pgoff << PAGE_SHIFT)``). The kernel's coredump
    faults these in (``get_dump_page()``); a dump has them only where the process touched them. ``None``
    for other VMAs (and for mappings whose fault inserts a PFN, like vvar: ``get_dump_page()`` fails on
    those, a hole in the kernel's core too).

    :return: ``callable(pgoff) -> Optional[bytes]``
    """
    from drgn import cast

    from drgn_ptwalk._kernel import symbol_name

    prog = vma.prog_
    ops = vma.vm_ops.read_()
    if not ops.value_() or symbol_name(prog, ops.name.value_()) != "special_mapping_name":
        return None
    sm = cast("struct vm_special_mapping *", vma.vm_private_data)
    ps = _page_size(prog)
    fault = sm.fault.value_() if _has(sm, "fault") else 0
    if fault:
        if symbol_name(prog, fault) != "vdso_fault" or not _has(vma.vm_mm.context, "vdso_image"):
            return None
        image = vma.vm_mm.context.vdso_image.read_()
        if not image.value_():
            return None
        data, size = image.data.value_(), image.size.value_()

        def from_image(pgoff: int) -> Optional[bytes]:
            if pgoff * ps >= size:
                return None
            return prog.read(data + pgoff * ps, ps)

        return from_image
    pages = sm.pages.read_()
    if not pages.value_():
        return None
    from drgn.helpers.linux.mm import page_to_phys

    def from_pages(pgoff: int) -> Optional[bytes]:
        for i in range(pgoff + 1):
            if not pages[i].value_():
                return None
        return prog.read(page_to_phys(pages[pgoff]).value_(), ps, True)

    return from_pages


def _has(obj: Object, member: str) -> bool:
    try:
        obj.member_(member)
    except LookupError:
        return False
    return True


def _write_special(s: _Seg, c: CoreSegment, r: Any, special: Any, put: Any, pages: Dict[str, int],
                   miss: Any) -> int:
    """Pages of a special mapping not faulted in: the bytes a fault would map (fate ``SPECIAL``), else what
    the reader said (a hole)."""
    prog = s.vma.prog_
    ps = _page_size(prog)
    pgoff0 = s.vma.vm_pgoff.value_()
    fate = r.fate.name
    n = 0
    for addr in range(r.start, r.end, ps):
        try:
            data = special(pgoff0 + (addr - s.start) // ps)
        except FaultError:
            data = None
        if data is None:
            if r.data is None and fate not in _kernel_hole_fates(prog, s):
                miss(MissingRange(addr, addr + ps, fate, r.detail))
            else:
                pages[fate] = pages.get(fate, 0) + 1
            continue
        put(data, c.offset + (addr - s.start))
        pages["SPECIAL"] = pages.get("SPECIAL", 0) + 1
        n += ps
    return n


def _write_gate(prog: Program, s: _Seg, c: CoreSegment, put: Any, miss: Any, pages: Dict[str, int]) -> int:
    """The x86_64 vsyscall page: mapped (``vsyscall=emulate``) it is ``__vsyscall_page``'s bytes through the
    fixmap, which ``get_gate_page()`` reads; in ``xonly`` mode nothing is mapped and the kernel's core has a
    hole there too."""
    from drgn_ptwalk._compat import type_unaliased

    mode = prog["vsyscall_mode"]
    names = {e.value: e.name for e in (type_unaliased(mode.type_).enumerators or ())}
    if names.get(mode.value_()) == "EMULATE":
        try:
            data = prog.read(s.start, c.filesz)
        except FaultError as e:
            miss(MissingRange(s.start, s.end, "GATE_UNMAPPED", f"vsyscall page not readable: {e}"))
            return 0
        put(data, c.offset)
        pages["PRESENT"] = pages.get("PRESENT", 0) + c.filesz // _page_size(prog)
        return c.filesz
    miss(MissingRange(s.start, s.end, "GATE_UNMAPPED",
                      "vsyscall=xonly: no page is mapped there (the kernel's core has zeros too)"))
    return 0


def format_summary(res: GcoreResult) -> str:
    """
    A few lines for a person: what was written, the pages per fate, what is missing and why.

    :param res: what :func:`gcore` returned
    :return: the lines, each ending with a newline
    """
    dumped = sum(1 for s in res.segments if s.filesz)
    lines = [f"gcore: {res.path or 'core'}: {res.threads} thread(s), {len(res.segments)} segments "
             f"({dumped} with data), {res.file_size} bytes ({res.bytes_written} of page data)"]
    if res.pages:
        lines.append("pages: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(res.pages.items(),
                                                                                 key=lambda kv: -kv[1])))
    if res.missing:
        by: Dict[str, int] = {}
        for m in res.missing:
            by[m.fate] = by.get(m.fate, 0) + 1
        lines.append(f"missing (holes): {len(res.missing)} range(s): "
                     + ", ".join(f"{k.lower()} {v}" for k, v in sorted(by.items())))
    for e in res.errors:
        lines.append("warning: " + e)
    return "\n".join(lines) + "\n"




class CoreFile(NamedTuple):
    """An ELF core read back (:func:`read_core`)."""

    byte_order: str
    """``"<"`` or ``">"``."""
    machine: int
    e_flags: int
    phdrs: List[Tuple[int, int, int, int, int, int, int]]
    """``(p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz, p_align)`` of each program header (the
    real count with extended numbering)."""
    notes: List[Tuple[bytes, int, bytes]]
    """``(name, type, desc)`` of each note of every ``PT_NOTE``, in file order."""


def read_core(path_or_file: Union[str, "os.PathLike[str]", BinaryIO]) -> CoreFile:
    """
    Read the headers and notes of a 64-bit ELF core (any byte order), with extended numbering: what
    :func:`gcore` wrote, for tests and checks.

    :param path_or_file: the core: a path, or a binary file open for reading (read from offset 0)
    :return: its ELF header fields, program headers and notes
    :raises ArgumentError: if it is not a 64-bit ELF core
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as fp:
            return read_core(fp)
    f: IO[bytes] = path_or_file
    f.seek(0)
    ident = f.read(16)
    if ident[:4] != _ELF_MAGIC or ident[4] != 2 or ident[5] not in (1, 2):
        raise ArgumentError("not a 64-bit ELF file")
    o = ">" if ident[5] == 2 else "<"
    (e_type, machine, _, _, phoff, shoff, e_flags, _, _, phnum, _, shnum, _) = struct.unpack(
        o + "HHIQQQIHHHHHH", f.read(_EHDR_SIZE - 16))
    if e_type != 4:
        raise ArgumentError(f"not a core file (e_type {e_type})")
    if phnum == _PN_XNUM and shoff and shnum:
        f.seek(shoff)
        phnum = struct.unpack(o + "IIQQQQIIQQ", f.read(_SHDR_SIZE))[7]
    f.seek(phoff)
    raw = f.read(phnum * _PHDR_SIZE)
    phdrs = []
    for i in range(phnum):
        p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, p_align = struct.unpack_from(
            o + "IIQQQQQQ", raw, i * _PHDR_SIZE)
        phdrs.append((p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz, p_align))
    notes = []
    for p_type, _, p_offset, _, p_filesz, _, _ in phdrs:
        if p_type != _PT_NOTE:
            continue
        f.seek(p_offset)
        data = f.read(p_filesz)
        pos = 0
        while pos + 12 <= len(data):
            namesz, descsz, n_type = struct.unpack_from(o + "III", data, pos)
            pos += 12
            name = data[pos:pos + namesz].rstrip(b"\0")
            pos += (namesz + 3) & ~3
            notes.append((name, n_type, data[pos:pos + descsz]))
            pos += (descsz + 3) & ~3
    return CoreFile(o, machine, e_flags, phdrs, notes)
