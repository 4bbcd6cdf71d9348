# SPDX-License-Identifier: LGPL-2.1-or-later
"""
A process's memory itself, from a dump: the bytes of any range of a task's address space, page by page
with each page's *fate* — where its bytes came from, or why there are none.

Built on :func:`~drgn_ptwalk.walk.pt_range_walk`: each entry of the walk says what the page table holds,
and each kind of entry is followed to the bytes the kernel would give the process on a read:

=================== ========= ===================================================================
fate                readable  what it means
=================== ========= ===================================================================
PRESENT             yes       mapped (a folio, or a PFN mapping of RAM): the bytes of its PFN
SWAPCACHE           yes       swapped out, its folio still in the swap cache: that folio's bytes
ZRAM                yes       swapped out to a zram device: the zsmalloc object, decompressed (or
                              stored uncompressed)
ZRAM_SAME           yes       swapped out to zram as a same-filled page: the fill word repeated
ZSWAP               yes       held by zswap: its object, decompressed
SWAP_IMAGE          yes       swapped out to a device whose image the caller gave: the slot's bytes
                              in the image (``swap_images``)
FILE_CACHE          yes       not mapped, in a file VMA: the page-cache folio a fault would map
FILE_ROOT           yes       a file page in no cache, or a page-cache page the dump excluded: the
                              file's bytes read under ``root`` on this machine (not from the dump; a
                              page dirty in memory may differ)
ZERO                yes       reads as zeros, as the kernel would give them: never faulted in an
                              anonymous VMA, a hole of a shmem file, a zero page swapped out
                              (``si->zeromap``, v6.12+)
MIGRATION           yes       under migration: the bytes of the PFN the migration entry names
SWAP_DEVICE         no        on a swap device the dump does not hold, at a known slot
ZRAM_WRITTEN_BACK   no        zram wrote it back to its backing device
FILE_NOT_CACHED     no        a file page in no cache (and no ``root`` to read it from, or beyond
                              the end of the file)
EXCLUDED            no        the dump has no such page: excluded by makedumpfile's filtering (the
                              detail says which kind of page it was, from its ``struct page``)
HWPOISON            no        hardware-poisoned: the kernel would send SIGBUS
DEVICE              no        device-private memory (lives on the device)
PFNMAP              no        a PFN/IO mapping whose memory is not in the dump, or a special
                              mapping or a driver's file mapping (dma-buf, a device) not populated
MARKER              no        a PTE marker (uffd-wp, guard, poisoned): no page
NO_VMA              no        outside every VMA: the kernel would fault (SIGSEGV)
ERROR               no        could not be read: a page table, a zsmalloc object, a decompression
                              (the detail says why)
=================== ========= ===================================================================

A page that cannot be read never stops the read: it comes back with its fate and ``data=None``.
Consecutive pages with the same fate and detail come back as one :class:`UserRange`, and a run of
present pages with consecutive PFNs is one physical read.
"""

import enum
import os
import struct
from typing import (
    Any,
    BinaryIO,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from drgn import FaultError, Object, Program

from drgn_ptwalk.entry import PtEntry, PtType
from drgn_ptwalk.errors import ArgumentError
from drgn_ptwalk.page import compound_head_pfn, folio_order, page_info, page_layout, read_struct_pages
from drgn_ptwalk.tasks import task_mm
from drgn_ptwalk.walk import pt_range_walk

__all__ = ("Fate", "READABLE_FATES", "UserRange", "UserRead", "read_user", "user_pages")


class Fate(enum.Enum):
    """What a page of a user range is, and where its bytes came from (see the module doc)."""

    PRESENT = "present"
    SWAPCACHE = "swapcache"
    ZRAM = "zram"
    ZRAM_SAME = "zram_same"
    ZSWAP = "zswap"
    SWAP_IMAGE = "swap_image"
    FILE_CACHE = "file_cache"
    FILE_ROOT = "file_root"
    ZERO = "zero"
    MIGRATION = "migration"
    SWAP_DEVICE = "swap_device"
    ZRAM_WRITTEN_BACK = "zram_written_back"
    FILE_NOT_CACHED = "file_not_cached"
    EXCLUDED = "excluded"
    HWPOISON = "hwpoison"
    DEVICE = "device"
    PFNMAP = "pfnmap"
    MARKER = "marker"
    NO_VMA = "no_vma"
    ERROR = "error"


READABLE_FATES = frozenset((Fate.PRESENT, Fate.SWAPCACHE, Fate.ZRAM, Fate.ZRAM_SAME, Fate.ZSWAP,
                            Fate.SWAP_IMAGE, Fate.FILE_CACHE, Fate.FILE_ROOT, Fate.ZERO, Fate.MIGRATION))
"""The fates whose pages have bytes."""


class UserRange(NamedTuple):
    """A run of pages of one fate, in address order."""

    start: int
    """First address."""
    end: int
    """Address after the last."""
    fate: Fate
    data: Optional[bytes]
    """``end - start`` bytes when :attr:`readable`, else None."""
    pfn: Optional[int] = None
    """PFN of the first page when the bytes (or the missing page) have one: present, swap cache, page
    cache, migration, excluded, hwpoison, device pages; consecutive over the range."""
    swap_type: Optional[int] = None
    """Swap type of swapped-out pages."""
    swap_offset: Optional[int] = None
    """Swap offset of the first page (consecutive over the range)."""
    detail: str = ""
    """Human words: ``"on swap device 1 (/dev/vdc), slot 0x123"``, ``"lz4, 812 bytes"``, ..."""

    @property
    def readable(self) -> bool:
        """Whether :attr:`data` holds the bytes."""
        return self.fate in READABLE_FATES

    @property
    def size(self) -> int:
        return self.end - self.start


class UserRead(NamedTuple):
    """What :func:`read_user` returns."""

    data: bytes
    """The bytes of the range, zero-filled where a page is unreadable."""
    ranges: List[UserRange]
    """Each page's fate, as runs, covering the range exactly."""


# ---------------------------------------------------------------------------------------------------------
# Swap devices


SWP_TYPE_SHIFT = 58
"""``SWP_TYPE_SHIFT`` on 64-bit (``BITS_PER_XA_VALUE - MAX_SWAPFILES_SHIFT`` = 63 - 5, v4.x to v7.x): a
``swp_entry_t`` is ``type << 58 | offset``."""
SWAP_ADDRESS_SPACE_SHIFT = 14
"""``SWAP_ADDRESS_SPACE_SHIFT`` (v4.11 on): swap cache address spaces and zswap trees per 2**14 slots."""
SWAP_MAGIC = b"SWAPSPACE2"
"""The magic at the end of the first page of a swap area (``union swap_header``, mkswap)."""


class _SwapImage(NamedTuple):
    file: BinaryIO
    path: str
    owned: bool


class _SwapDev:
    """What the reader needs of one swap type: its name, zram device, zeromap, image."""

    def __init__(self, prog: Program, type: int) -> None:
        self.type = type
        self.name = f"type {type}"
        self.si: Optional[Object] = None
        self.zram = None
        self.zram_error: Optional[str] = None
        self.zeromap = 0
        self.max = 0
        try:
            if not 0 <= type < len(prog["swap_info"]):
                raise IndexError(type)
            si = prog["swap_info"][type].read_()
            if si.value_():
                self.si = si
                self.max = si.max.value_()
                self.name = _swap_name(si)
                try:
                    self.zeromap = si.zeromap.value_()
                except AttributeError:
                    pass
        except (FaultError, IndexError):
            pass
        if self.si is not None:
            from drgn_ptwalk.zram import ZramError, zram_of_swap

            try:
                self.zram = zram_of_swap(self.si)
            except (ZramError, LookupError, FaultError, AttributeError, ValueError) as e:
                self.zram_error = str(e)


def _swap_name(si: Object) -> str:
    from drgn.helpers.linux.fs import d_path

    try:
        return d_path(si.swap_file.f_path).decode(errors="replace")
    except (FaultError, ValueError, LookupError, AttributeError):
        try:
            return si.bdev.bd_disk.disk_name.string_().decode(errors="replace")
        except (FaultError, AttributeError):
            return "?"


def _check_image(prog: Program, type: int, src: "Union[str, os.PathLike, BinaryIO]", page_size: int) -> _SwapImage:
    """Open and check a swap image: the SWAPSPACE2 magic, and the size of the device in the dump."""
    if isinstance(src, (str, bytes, os.PathLike)):
        path = os.fsdecode(src)
        f: BinaryIO = open(path, "rb")
        owned = True
    else:
        f, path, owned = src, getattr(src, "name", "<file>"), False
    try:
        nr = len(prog["swap_info"])
        if not 0 <= type < nr:
            raise ArgumentError(f"swap image {path}: there is no swap type {type} (MAX_SWAPFILES is {nr})")
        si = prog["swap_info"][type].read_()
        if not si.value_() or not si.max.value_():
            raise ArgumentError(f"swap image {path}: swap type {type} is not in use in the dump")
        dev_pages = si.max.value_()
        f.seek(0)
        header = f.read(page_size)
        if len(header) < page_size or header[page_size - len(SWAP_MAGIC):] != SWAP_MAGIC:
            raise ArgumentError(f"swap image {path}: no SWAPSPACE2 magic at the end of its first "
                             f"{page_size}-byte page: not a swap area (of this page size)")
        last_le, last_be = struct.unpack_from("<I", header, 1028)[0], struct.unpack_from(">I", header, 1028)[0]
        size = f.seek(0, os.SEEK_END)
        if dev_pages - 1 not in (last_le, last_be) or size < dev_pages * page_size:
            raise ArgumentError(f"swap image {path}: {size} bytes, header last_page {last_le}; swap device {type} "
                             f"({_swap_name(si)}) in the dump has {dev_pages} pages "
                             f"({dev_pages * page_size} bytes): not an image of it")
    except BaseException:
        if owned:
            f.close()
        raise
    return _SwapImage(f, path, owned)


# ---------------------------------------------------------------------------------------------------------
# The reader


class _Reader:
    """One :func:`user_pages` call's state: caches per VMA and per swap type, the dump's facts."""

    def __init__(self, prog: Program, images: Dict[int, _SwapImage], root: Optional[str]) -> None:
        self.prog = prog
        self.images = images
        self.root = root
        self.page_size = prog["PAGE_SIZE"].value_()
        self.page_shift = prog["PAGE_SHIFT"].value_()
        self.little = bool(prog.platform.flags & prog.platform.flags.__class__.IS_LITTLE_ENDIAN)
        self.swapdevs: Dict[int, _SwapDev] = {}
        self.swapcache_mode: Optional[int] = None
        """Which index the swap cache's xarray uses, once known: 0 the offset (v6.1), 1 the offset within
        its address space (v6.12's ``swap_cache_index()``)."""
        self.vmas: Dict[int, "_Vma"] = {}
        self.zero = bytes(self.page_size)
        page_t = prog.type("struct page")
        self.private_off = page_t.member("private").bit_offset // 8
        try:
            self.index_off = page_t.member("index").bit_offset // 8
        except LookupError:
            self.index_off = page_t.member("__folio_index").bit_offset // 8

    # Physical reads ------------------------------------------------------------------------------------

    def read_phys(self, pfn: int, n: int) -> List[Tuple[int, int, Optional[bytes]]]:
        """
        Read PFNs ``[pfn, pfn + n)``: ``(pfn, n, bytes or None)`` runs, None where the dump has no page.
        One read when all is there; a missing page costs one read per page until the next present one.
        """
        out: List[Tuple[int, int, Optional[bytes]]] = []
        shift = self.page_shift
        read = self.prog.read
        end = pfn + n
        while pfn < end:
            try:
                out.append((pfn, end - pfn, read(pfn << shift, (end - pfn) << shift, True)))
                return out
            except FaultError as e:
                bad = max(pfn, min(end - 1, e.address >> shift)) if e.address >= (pfn << shift) else pfn
            if bad > pfn:
                try:
                    out.append((pfn, bad - pfn, read(pfn << shift, (bad - pfn) << shift, True)))
                except FaultError:
                    bad = pfn
            missing = bad
            while missing < end:
                try:
                    read(missing << shift, 1, True)
                    break
                except FaultError:
                    missing += 1
            if missing == bad:  # the reported address was wrong: the page reads alone
                missing = bad + 1
                try:
                    out.append((bad, 1, read(bad << shift, 1 << shift, True)))
                    pfn = missing
                    continue
                except FaultError:
                    pass
            out.append((bad, missing - bad, None))
            pfn = missing
        return out

    def page_kind(self, pfn: int) -> str:
        """Which kind of page *pfn* was, from its ``struct page`` (for EXCLUDED's words)."""
        try:
            info = page_info(self.prog, compound_head_pfn(self.prog, pfn))
        except FaultError:
            return "its struct page is not in the dump either"
        if info.mapping & 1:
            return "an anonymous page"
        if info.mapping:
            return "a page-cache (file or shmem) page"
        if info.refcount == 0:
            return "a free page"
        return "a page with no mapping (kernel, zero or special page)"

    def excluded(self, pfn: int, what: str = "") -> str:
        return f"{what}the dump has no such page: excluded by makedumpfile's filtering ({self.page_kind(pfn)})"

    # Swap ----------------------------------------------------------------------------------------------

    def swapdev(self, type: int) -> _SwapDev:
        try:
            return self.swapdevs[type]
        except KeyError:
            d = self.swapdevs[type] = _SwapDev(self.prog, type)
            return d

    def _folio_swap_pfn(self, page_addr: int, type: int, offset: int) -> Optional[int]:
        """PFN of the page of swap slot (type, offset) in the swap-cache folio at *page_addr*, checked
        against the folio's ``swap`` entry (``page->private`` of the head)."""
        lay = page_layout(self.prog)
        if page_addr < lay.vmemmap or (page_addr - lay.vmemmap) % lay.size:
            return None
        head = compound_head_pfn(self.prog, (page_addr - lay.vmemmap) // lay.size)
        raw = read_struct_pages(self.prog, head, 1)
        val = struct.unpack_from("<Q", raw, self.private_off)[0]
        if val >> SWP_TYPE_SHIFT != type:
            return None
        first = val & ((1 << SWP_TYPE_SHIFT) - 1)
        nr = 1 << folio_order(self.prog, head)
        if not first <= offset < first + nr:
            return None
        return head + offset - first

    def swap_cache_pfn(self, type: int, offset: int) -> Optional[int]:
        """
        PFN of the swap-cache page of slot (*type*, *offset*), or None.

        Where ``swapper_spaces`` exists (v6.1, v6.12) the swap cache is
        ``swapper_spaces[type][offset >> SWAP_ADDRESS_SPACE_SHIFT]``, an ``address_space`` whose xarray is
        indexed by the whole offset (v6.1) or by the offset within the space (v6.12's
        ``swap_cache_index()``); both are tried. Where ``struct swap_cluster_info`` has ``table`` (Kairui Song's
        and Chris Li's swap table series, v6.18: "mm, swap: use the swap table for the swap cache and switch
        API"; read here on v7.1's source and v7.2 dumps) it is the cluster's table, ``si->cluster_info[offset /
        SWAPFILE_CLUSTER].table[offset % SWAPFILE_CLUSTER]`` (``SWAPFILE_CLUSTER`` from ``sizeof(struct
        swap_table)``): ``pfn << 2 | 0b10`` with a count in the top bits (v7.1's ``pfn_to_swp_tb()``), a
        folio pointer (the series' first form), a shadow (bit 0) or 0. Whatever was found, the folio's
        ``swap`` entry (``page->private`` of its head) must name the slot.
        """
        prog = self.prog
        try:
            if "swapper_spaces" in prog:
                from drgn.helpers.linux.xarray import xa_is_value, xa_load

                i = offset >> SWAP_ADDRESS_SPACE_SHIFT
                if i >= prog["nr_swapper_spaces"][type].value_():
                    return None
                space = prog["swapper_spaces"][type][i]
                indexes = (offset, offset & ((1 << SWAP_ADDRESS_SPACE_SHIFT) - 1))
                # Once a folio was found by one indexing, only that one is tried (a miss, the common case,
                # then costs one lookup).
                modes = (0, 1) if self.swapcache_mode is None else (self.swapcache_mode,)
                for mode in modes:
                    e = xa_load(space.i_pages.address_of_(), indexes[mode])
                    if e.value_() and not xa_is_value(e):
                        pfn = self._folio_swap_pfn(e.value_(), type, offset)
                        if pfn is not None:
                            if indexes[0] != indexes[1]:
                                self.swapcache_mode = mode
                            return pfn
                return None
            dev = self.swapdev(type)
            if dev.si is None or not dev.si.cluster_info:
                return None
            try:
                cluster_t = prog.type("struct swap_cluster_info")
                if not cluster_t.has_member("table"):
                    return None
                per_cluster = prog.type("struct swap_table").size // 8
            except LookupError:
                return None
            ci = dev.si.cluster_info[offset // per_cluster]
            table = ci.table.value_()
            if not table:
                return None
            raw = prog.read(table + 8 * (offset % per_cluster), 8)
            v = struct.unpack("<Q" if self.little else ">Q", raw)[0]
            if not v or v & 1:
                return None
            if v & 3 == 2:
                pfn = (v & ((1 << 60) - 1)) >> 2
                lay = page_layout(prog)
                return self._folio_swap_pfn(lay.vmemmap + pfn * lay.size, type, offset)
            return self._folio_swap_pfn(v, type, offset)
        except (FaultError, LookupError, ValueError):
            return None

    def swap_page(self, type: int, offset: int) -> Tuple[Fate, Optional[bytes], Optional[int], str]:
        """One swapped-out page: (fate, bytes, pfn, detail), trying the swap cache, the zeromap, zswap,
        zram and the caller's image in the order ``swap_read_folio()`` would."""
        dev = self.swapdev(type)
        ps = self.page_size
        stale = ""
        pfn = self.swap_cache_pfn(type, offset)
        if pfn is not None:
            got = self.read_phys(pfn, 1)
            if got[0][2] is not None:
                return Fate.SWAPCACHE, got[0][2], pfn, f"swap cache of swap device {type} ({dev.name})"
            stale = "; its swap-cache page (maybe newer) is not in the dump"
        if dev.zeromap:
            try:
                word = struct.unpack("<Q" if self.little else ">Q",
                                     self.prog.read(dev.zeromap + (offset // 64) * 8, 8))[0]
                if word >> (offset % 64) & 1:
                    return Fate.ZERO, self.zero, None, f"a zero-filled page swapped out: in {dev.name}'s zeromap{stale}"
            except FaultError:
                pass
        from drgn_ptwalk.zswap import ZswapError, zswap_load

        try:
            zp = zswap_load(self.prog, type, offset)
            if zp is not None:
                return Fate.ZSWAP, zp.data, None, zp.detail + stale
        except ZswapError as e:
            return Fate.ERROR, None, None, f"in zswap but unreadable: {e}"
        if dev.zram is not None:
            from drgn_ptwalk.zram import ZramError

            try:
                p = dev.zram.read_page(offset)
                return (Fate.ZRAM_SAME if p.same else Fate.ZRAM), p.data, None, f"{dev.zram.name}: {p.detail}{stale}"
            except ZramError as e:
                msg = str(e)
                if "written back" in msg:
                    return Fate.ZRAM_WRITTEN_BACK, None, None, msg
                return Fate.ERROR, None, None, f"in zram but unreadable: {msg}"
        if dev.zram_error:
            return Fate.ERROR, None, None, dev.zram_error
        img = self.images.get(type)
        if img is not None:
            try:
                img.file.seek(offset * ps)
                data = img.file.read(ps)
            except OSError as e:
                return Fate.ERROR, None, None, f"swap image {img.path}: {e}"
            if len(data) == ps:
                return Fate.SWAP_IMAGE, data, None, f"from the image {img.path} of swap device {type}{stale}"
            return Fate.ERROR, None, None, f"swap image {img.path} ends before slot {offset:#x}"
        return Fate.SWAP_DEVICE, None, None, f"on swap device {type} ({dev.name}){stale}"

    # VMAs and the page cache ---------------------------------------------------------------------------

    def vma(self, addr: int) -> "_Vma":
        try:
            return self.vmas[addr]
        except KeyError:
            v = self.vmas[addr] = _Vma(self, Object(self.prog, "struct vm_area_struct *", addr))
            return v

    def file_page(self, vma: "_Vma", addr: int) -> Tuple[Fate, Optional[bytes], Optional[int], Optional[int],
                                                         Optional[int], str]:
        """A not-mapped page of a file VMA: (fate, bytes, pfn, swap type, swap offset, detail)."""
        index = vma.pgoff + ((addr - vma.start) >> self.page_shift)
        if vma.i_size is not None and not vma.shmem and index << self.page_shift >= vma.i_size:
            return Fate.FILE_NOT_CACHED, None, None, None, None, f"beyond the end of {vma.path} (a read would SIGBUS)"
        from drgn.helpers.linux.xarray import xa_is_value, xa_load, xa_to_value

        assert vma.mapping is not None
        try:
            e = xa_load(vma.mapping.i_pages.address_of_(), index)
            v = e.value_()
        except FaultError as ex:
            return Fate.ERROR, None, None, None, None, f"page cache of {vma.path} unreadable at {ex.address:#x}"
        where = vma.path
        excluded: Optional[Tuple[int, str]] = None
        if v and xa_is_value(e):
            if vma.shmem:
                val = xa_to_value(e).value_()
                t, off = val >> SWP_TYPE_SHIFT, val & ((1 << SWP_TYPE_SHIFT) - 1)
                fate, data, pfn, detail = self.swap_page(t, off)
                return fate, data, pfn, t, off, f"shmem {where}, swapped out: {detail}"
            v = 0
            shadow = " (evicted: a workingset shadow entry)"
        else:
            shadow = ""
        if v:
            try:
                lay = page_layout(self.prog)
                head = compound_head_pfn(self.prog, (v - lay.vmemmap) // lay.size)
                raw = read_struct_pages(self.prog, head, 1)
                first = struct.unpack_from("<Q", raw, self.index_off)[0]
                nr = 1 << folio_order(self.prog, head)
                if first <= index < first + nr:
                    pfn = head + index - first
                    got = self.read_phys(pfn, 1)
                    if got[0][2] is not None:
                        return Fate.FILE_CACHE, got[0][2], pfn, None, None, f"page cache of {where}"
                    excluded = (pfn, self.excluded(pfn, f"page cache of {where}: "))
                else:
                    shadow = " (the folio the page cache holds there does not cover the index: a corrupt cache)"
            except FaultError:
                shadow = " (its folio's struct page is not in the dump)"
        if vma.shmem and not shadow and excluded is None:
            return Fate.ZERO, self.zero, None, None, None, f"a hole of shmem {where}: reads as zeros"
        if self.root is not None and (not vma.shmem or excluded is not None):
            data, why = self.root_page(vma, index)
            if data is not None:
                if excluded is not None:
                    why += "; the dump excluded its page-cache page"
                return Fate.FILE_ROOT, data, None, None, None, why
            shadow += f"; {why}"
        if excluded is not None:
            return Fate.EXCLUDED, None, excluded[0], None, None, excluded[1] + shadow
        return Fate.FILE_NOT_CACHED, None, None, None, None, f"{where} is not in the page cache{shadow}"

    def root_page(self, vma: "_Vma", index: int) -> Tuple[Optional[bytes], str]:
        """Page *index* of *vma*'s file read under ``root``: (bytes or None, words)."""
        if self.root is None or not vma.path.startswith("/"):
            return None, f"no file to read under {self.root} for {vma.path}"
        local = os.path.join(self.root, vma.path.lstrip("/"))
        try:
            with open(local, "rb") as f:
                f.seek(index << self.page_shift)
                data = f.read(self.page_size)
        except OSError as ex:
            return None, f"{local}: {ex.strerror}"
        return data + bytes(self.page_size - len(data)), f"read from {local} on this machine (not from the dump)"

    def excluded_file_pages(self, vma: "_Vma", start: int, pfn: int, n: int) -> Iterator["_Piece"]:
        """
        Present pages of a file VMA the dump does not hold: with ``root``, the page-cache pages among them
        (not anonymous COW copies) are read from the file under it (a page dirty in memory may differ).
        """
        shift = self.page_shift
        for i in range(n):
            a = start + (i << shift)
            info = None
            try:
                info = page_info(self.prog, compound_head_pfn(self.prog, pfn + i))
            except FaultError:
                pass
            if info is not None and info.mapping and not info.mapping & 1:
                index = vma.pgoff + ((a - vma.start) >> shift)
                data, why = self.root_page(vma, index)
                if data is not None:
                    yield (a, a + (1 << shift), Fate.FILE_ROOT, data, None, None, None,
                           f"{why}; the dump excluded its page-cache page")
                    continue
            yield a, a + (1 << shift), Fate.EXCLUDED, None, pfn + i, None, None, self.excluded(pfn + i)


def _reads_folios(mapping: Object) -> bool:
    """Whether ``mapping->a_ops`` reads pages into the page cache (``read_folio``, v5.19+; ``readpage``)."""
    try:
        aops = mapping.a_ops.read_()
        if not aops.value_():
            return False
        for name in ("read_folio", "readpage"):
            try:
                return bool(getattr(aops, name).value_())
            except AttributeError:
                continue
    except FaultError:
        pass
    return False


class _Vma:
    """The facts of one VMA the reader needs (one drgn object per VMA, not per page)."""

    def __init__(self, r: _Reader, vma: Object) -> None:
        prog = r.prog
        self.start = vma.vm_start.value_()
        self.pgoff = vma.vm_pgoff.value_()
        flags = vma.vm_flags.value_()
        self.hugetlb = bool(flags & (1 << 22))  # VM_HUGETLB
        self.anonymous = not vma.vm_ops.value_()  # vma_is_anonymous()
        file = vma.vm_file.read_()
        self.file = bool(file.value_())
        self.shmem = False
        self.path = ""
        self.i_size: Optional[int] = None
        self.mapping: Optional[Object] = None
        self.pagecache = False
        """Whether a fault maps the file's page cache (``a_ops->read_folio``/``readpage``, or shmem); a
        driver's file (dma-buf, a device) fills its mapping itself."""
        if self.file:
            from drgn.helpers.linux.fs import d_path

            self.mapping = file.f_mapping.read_()
            try:
                self.shmem = self.mapping.a_ops.value_() == prog["shmem_aops"].address_of_().value_()
            except (KeyError, LookupError):
                self.shmem = False
            try:
                self.path = d_path(file.f_path).decode(errors="replace")
            except (FaultError, ValueError, LookupError):
                self.path = f"file {file.value_():#x}"
            try:
                self.i_size = self.mapping.host.i_size.value_()
            except (FaultError, AttributeError):
                self.i_size = None
            self.pagecache = self.shmem or _reads_folios(self.mapping)


MAX_RUN_PAGES = 1024
"""Pages of bytes one :class:`UserRange` holds at most (4 MiB of 4 KiB pages): a 1 GiB hugetlb folio or a
never-faulted anonymous gigabyte comes back in pieces, so memory stays bounded."""

_Piece = Tuple[int, int, Fate, Optional[bytes], Optional[int], Optional[int], Optional[int], str]
"""(start, end, fate, data, pfn, swap type, swap offset, detail) of one page or run before merging."""


class _Merger:
    """Joins consecutive pieces of one fate and detail whose PFNs and swap offsets continue."""

    __slots__ = ("cur", "page_shift", "max_bytes")

    def __init__(self, page_shift: int) -> None:
        self.cur: Optional[List] = None
        self.page_shift = page_shift
        self.max_bytes = MAX_RUN_PAGES << page_shift

    def add(self, piece: _Piece) -> Optional[UserRange]:
        """Take a piece; return the run it ends, if it ends one."""
        start, end, fate, data, pfn, st, so, detail = piece
        cur = self.cur
        if cur is not None:
            n = (cur[1] - cur[0]) >> self.page_shift
            if (cur[1] == start and cur[2] is fate and cur[7] == detail and cur[5] == st
                    and (data is None or end - cur[0] <= self.max_bytes)
                    and (pfn is None) == (cur[4] is None) and (pfn is None or cur[4] + n == pfn)
                    and (so is None) == (cur[6] is None) and (so is None or cur[6] + n == so)):
                cur[1] = end
                if data is not None:
                    cur[3].append(data)
                return None
        self.cur = [start, end, fate, [data] if data is not None else [], pfn, st, so, detail]
        return None if cur is None else _range(cur, self.page_shift)

    def flush(self) -> Optional[UserRange]:
        """The run in progress, if any."""
        cur, self.cur = self.cur, None
        return None if cur is None else _range(cur, self.page_shift)


def _merge(pieces: Iterator[_Piece], page_shift: int) -> Iterator[UserRange]:
    """Join consecutive pieces of one fate and detail whose PFNs and swap offsets continue."""
    m = _Merger(page_shift)
    for piece in pieces:
        done = m.add(piece)
        if done is not None:
            yield done
    last = m.flush()
    if last is not None:
        yield last


def _range(cur: List, page_shift: int) -> UserRange:
    data = None
    fate = cur[2]
    detail = cur[7]
    if fate in READABLE_FATES:
        data = cur[3][0] if len(cur[3]) == 1 else b"".join(cur[3])
    elif fate is Fate.SWAP_DEVICE and cur[6] is not None:
        n = (cur[1] - cur[0]) >> page_shift
        slots = f"slot {cur[6]:#x}" if n == 1 else f"slots {cur[6]:#x}-{cur[6] + n - 1:#x}"
        detail = detail.replace(")", f"), {slots}", 1)
    return UserRange(cur[0], cur[1], fate, data, cur[4], cur[5], cur[6], detail)


_PAGE_ERRORS = (FaultError, LookupError, ValueError, AttributeError, OverflowError, struct.error)
"""What reading one page's swap slot or page-cache entry may raise on corrupt kernel data: that page gets an
ERROR fate and the read goes on."""


def _why(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, FaultError):
        text = f"memory at {e.address:#x} is not in the dump"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _chunked(r: _Reader, pfn: int, n: int) -> Iterator[Tuple[int, int, Optional[bytes]]]:
    for i in range(0, n, MAX_RUN_PAGES):
        yield from r.read_phys(pfn + i, min(MAX_RUN_PAGES, n - i))


def _pieces(r: _Reader, entries: Iterable[PtEntry]) -> Iterator[_Piece]:
    shift = r.page_shift
    ps = r.page_size
    for e in entries:
        t = e.type
        if e.vma is None:
            what = "" if t == PtType.NONE else f" (a stray {t.name.lower()} entry is there)"
            yield e.start, e.end, Fate.NO_VMA, None, None, None, None, f"outside every VMA{what}"
            continue
        if t == PtType.FOLIO or t == PtType.PFN or t == PtType.MIGRATION:
            assert e.pfn is not None
            a = e.start
            for pfn, n, data in _chunked(r, e.pfn, e.nr_pages):
                b = a + (n << shift)
                if data is not None:
                    if t == PtType.MIGRATION:
                        yield (a, b, Fate.MIGRATION, data, pfn, None, None,
                               f"under migration ({e.kind}): the page the migration entry names")
                    else:
                        yield a, b, Fate.PRESENT, data, pfn, None, None, "" if t == PtType.FOLIO else "PFN mapping"
                elif t == PtType.PFN:
                    yield (a, b, Fate.PFNMAP, None, pfn, None, None,
                           f"PFN mapping of pfn {pfn:#x}: no such page in the dump (device or I/O memory, "
                           "or RAM excluded by makedumpfile's filtering)")
                elif r.root is not None and r.vma(e.vma).file:
                    yield from r.excluded_file_pages(r.vma(e.vma), a, pfn, n)
                else:
                    yield a, b, Fate.EXCLUDED, None, pfn, None, None, r.excluded(pfn)
                a = b
        elif t == PtType.SWAP:
            assert e.swap_type is not None and e.swap_offset is not None
            for i in range(e.nr_pages):
                a = e.start + (i << shift)
                off = e.swap_offset + i
                try:
                    fate, data, spfn, detail = r.swap_page(e.swap_type, off)
                except _PAGE_ERRORS as ex:
                    fate, data, spfn, detail = Fate.ERROR, None, None, f"swap slot unreadable: {_why(ex)}"
                yield a, a + ps, fate, data, spfn, e.swap_type, off, detail
        elif t == PtType.NONE:
            vma = r.vma(e.vma)
            if vma.file and not vma.hugetlb and not vma.pagecache:
                yield (e.start, e.end, Fate.PFNMAP, None, None, None, None,
                       f"a mapping of {vma.path} its driver fills on fault (no page cache): not read")
            elif vma.file and not vma.hugetlb:
                for a in range(e.start, e.end, ps):
                    try:
                        fate, data, fpfn, st, so, detail = r.file_page(vma, a)
                    except _PAGE_ERRORS as ex:
                        fate, data, fpfn, st, so = Fate.ERROR, None, None, None, None
                        detail = f"page cache of {vma.path} unreadable: {_why(ex)}"
                    yield a, a + ps, fate, data, fpfn, st, so, detail
            elif vma.hugetlb:
                yield (e.start, e.end, Fate.FILE_NOT_CACHED, None, None, None, None,
                       "hugetlb page not faulted in: not read")
            elif vma.anonymous:
                step = MAX_RUN_PAGES << shift
                for a in range(e.start, e.end, step):
                    b = min(a + step, e.end)
                    yield (a, b, Fate.ZERO, r.zero * ((b - a) >> shift), None, None, None,
                           "never faulted: reads as zeros")
            else:
                yield (e.start, e.end, Fate.PFNMAP, None, None, None, None,
                       "special mapping not populated (its fault handler would fill it): not read")
        elif t == PtType.HWPOISON:
            yield (e.start, e.end, Fate.HWPOISON, None, e.pfn, None, None,
                   f"hardware-poisoned page (pfn {e.pfn:#x}): a read would SIGBUS")
        elif t == PtType.DEVICE:
            yield (e.start, e.end, Fate.DEVICE, None, e.pfn, None, None,
                   f"device entry ({e.kind}, pfn {e.pfn:#x}): the page lives in device memory or is held by a "
                   "device")
        elif t == PtType.MARKER:
            yield e.start, e.end, Fate.MARKER, None, None, None, None, f"PTE marker {e.kind}: no page"
        else:
            where = f"table {e.table:#x}: " if e.table is not None else ""
            yield e.start, e.end, Fate.ERROR, None, None, None, None, f"{where}{e.reason}"


def _mm_of(task_or_mm: Object) -> Object:
    name = task_or_mm.type_.type_name()
    if "task_struct" in name:
        return task_mm(task_or_mm)
    return task_or_mm


def user_pages(
    task_or_mm: Object,
    start: Optional[int] = None,
    end: Optional[int] = None,
    *,
    swap_images: Optional[Mapping[int, "Union[str, os.PathLike, BinaryIO]"]] = None,
    root: Optional[str] = None,
    vma_ranges: Optional[Sequence[Tuple[Object, int, int]]] = None,
) -> Generator[UserRange, None, None]:
    """
    The pages of ``[start, end)`` of a task's address space with their fates and bytes, as runs.

    >>> for r in user_pages(find_target(prog, 1234), 0x7f0000000000, 0x7f0000010000):
    ...     print(hex(r.start), r.fate.name, r.detail)

    :param task_or_mm: ``struct task_struct *`` or ``struct mm_struct *``
    :param start: first address (rounded down to a page); default 0
    :param end: end address (rounded up to a page); default ``mm->task_size``
    :param swap_images: swap type -> an image of that swap device (a path, or a binary file open for
        reading): pages on the device are read from it at ``offset * PAGE_SIZE``
    :param root: a directory where file VMAs' files are found by their path: pages in no cache are read
        from there (:attr:`Fate.FILE_ROOT`)
    :param vma_ranges: the VMAs as :func:`~drgn_ptwalk.vmatree.checked_vma_ranges` gives them, if read
        already
    :return: :class:`UserRange` runs covering the range in address order
    :raises NoMmError: for a kernel thread or an exited task
    :raises ArgumentError: for a bad range, or a swap image that is not an image of its device (wrong size,
        no swap signature)
    """
    mm = _mm_of(task_or_mm)
    prog = mm.prog_
    ps = prog["PAGE_SIZE"].value_()
    if start is not None:
        start -= start % ps
    if end is not None:
        end += -end % ps
    images: Dict[int, _SwapImage] = {}
    try:
        for t, src in (swap_images or {}).items():
            images[int(t)] = _check_image(prog, int(t), src, ps)
    except BaseException:
        for img in images.values():
            if img.owned:
                img.file.close()
        raise
    return _user_pages(prog, mm, start, end, images, root, vma_ranges)


def _user_pages(prog: Program, mm: Object, start: Optional[int], end: Optional[int], images: Dict[int, _SwapImage],
                root: Optional[str], vma_ranges: Optional[Sequence[Tuple[Object, int, int]]],
                ) -> Generator[UserRange, None, None]:
    try:
        r = _Reader(prog, images, root)
        entries = pt_range_walk(mm, start, end, split_folios=False, vma_ranges=vma_ranges)
        merger = _Merger(r.page_shift)
        # The hot path: a present run the dump holds is one read and one UserRange, made without the
        # per-piece machinery (a 1.57M-page task is mostly such runs).
        read = prog.read
        shift = r.page_shift
        max_bytes = MAX_RUN_PAGES << shift
        folio = PtType.FOLIO
        present = Fate.PRESENT
        new = tuple.__new__
        for e in entries:
            if e.type is folio and e.vma is not None and e.end - e.start <= max_bytes:
                try:
                    data = read(e.pfn << shift, e.end - e.start, True)
                except FaultError:
                    pass
                else:
                    done = merger.flush()
                    if done is not None:
                        yield done
                    yield new(UserRange, (e.start, e.end, present, data, e.pfn, None, None, ""))
                    continue
            for piece in _pieces(r, (e,)):
                done = merger.add(piece)
                if done is not None:
                    yield done
        last = merger.flush()
        if last is not None:
            yield last
    finally:
        for img in images.values():
            if img.owned:
                img.file.close()


def read_user(task_or_mm: Object, address: int, size: int, **kwargs: Any) -> UserRead:
    """
    The bytes of ``[address, address + size)`` of a task's address space, zero-filled where a page is
    unreadable, and every page's fate (the ranges are cut to the requested bytes).

    :param task_or_mm: ``struct task_struct *`` or ``struct mm_struct *``
    :param address: first address
    :param size: how many bytes
    :param kwargs: as :func:`user_pages` (``swap_images``, ``root``, ``vma_ranges``)
    :return: the bytes and the fates of the pages they come from
    :raises ArgumentError: for a negative size, a range beyond the user address space, a bad swap image
    """
    if size < 0:
        raise ArgumentError(f"negative size {size}")
    if size == 0:
        return UserRead(b"", [])
    end = address + size
    ps = _mm_of(task_or_mm).prog_["PAGE_SIZE"].value_()
    out = bytearray(size)
    ranges: List[UserRange] = []
    for r in user_pages(task_or_mm, address, end, **kwargs):
        a, b = max(r.start, address), min(r.end, end)
        if a >= b:
            continue
        data = None
        if r.data is not None:
            data = r.data[a - r.start:b - r.start]
            out[a - address:b - address] = data
        if (a, b) != (r.start, r.end):
            shift = (a - r.start) // ps
            r = r._replace(start=a, end=b, data=data,
                           pfn=None if r.pfn is None else r.pfn + shift,
                           swap_offset=None if r.swap_offset is None else r.swap_offset + shift)
        ranges.append(r)
    return UserRead(bytes(out), ranges)
