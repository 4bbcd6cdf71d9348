# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Reading zsmalloc objects (the allocator behind zram and zswap) from a dump, without a drgn object per
page.

A zsmalloc *handle* (``unsigned long``) is the address of a word holding the object's location, ``obj``
(``handle_to_obj()``). ``obj`` packs the PFN of the page the object starts in and the object's index in
its zspage::

    obj = (pfn << OBJ_INDEX_BITS | obj_idx) << tag_shift
    OBJ_INDEX_BITS = BITS_PER_LONG - _PFN_BITS - tag_shift
    _PFN_BITS = MAX_POSSIBLE_PHYSMEM_BITS - PAGE_SHIFT

``tag_shift`` is ``OBJ_TAG_BITS`` (1) up to v6.1 (``location_to_obj()`` shifted the location left by it)
and 0 in v6.12 and later (``OBJ_TAG_MASK`` era: the tag lives only in the object's header word); the PFN is
``obj >> (BITS_PER_LONG - _PFN_BITS)`` either way. ``MAX_POSSIBLE_PHYSMEM_BITS`` is an arch macro
(x86_64 52; arm64 ``CONFIG_ARM64_PA_BITS`` in v6.1, 52 in v6.12+; others ``MAX_PHYSMEM_BITS``); no type or
symbol of the dump names it or the tag shift, so both are calibrated on the first object that tells them
apart and checked on every object: the page must be a page of a ``struct zspage`` (``page->private``) with
``ZSPAGE_MAGIC`` (0x58) of this pool, the index below the class's ``objs_per_zspage``, and the handle
recorded where ``obj_malloc()`` records it (``handle | OBJ_ALLOCATED_TAG`` in the object's header word, or
in the first page's ``index`` for a huge zspage). Measured on Debian's kernels: tag shift 1 on v6.1, 0 on v6.12
and v7.2; ``MAX_POSSIBLE_PHYSMEM_BITS`` 52 on x86_64 and arm64, 51 on ppc64le.

Since v7.3 the bits below the PFN may also hold the object's size class, above its index
(``[PFN | class_idx | obj_idx]``, ``ZS_OBJ_CLASS_BITS`` wide where a long has room for it, else 0): commit
"mm/zsmalloc: encode class index in obj value for lockless class lookup" (Wenchao Hao), v7.3; hash
unconfirmed (seen in Debian's 7.3~rc7 build: 9 class bits on x86_64 and arm64). ``ZS_OBJ_CLASS_BITS`` is
the width of ``struct zspage``'s ``class`` bit-field (``CLASS_BITS + 1``); whether the class is there is
calibrated like the rest, and where it is, it must name the zspage's own class.

The object's offset in its first page is ``(class->size * obj_idx) % PAGE_SIZE`` with ``class =
pool->size_class[zspage->class]``; an object that crosses the end of the page continues at the start of
the next page of the zspage, ``page->index`` (``struct page *``; v6.x's ``get_next_page()``, v6.16+'s
``zpdesc->next`` at the same place, ``ZPDESC_MATCH(__folio_index, next)``). Objects of non-huge zspages
start with a ``ZS_HANDLE_SIZE`` header word (the handle with ``OBJ_ALLOCATED_TAG``); huge zspages
(``zspage->huge``, one object per page) have none.
"""

import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

from drgn import FaultError, Object, Program, Type

from drgn_ptwalk.errors import ZsError
from drgn_ptwalk.page import page_layout, read_struct_pages

__all__ = ("ZsError", "ZsLocation", "ZsPool", "obj_location")

ZSPAGE_MAGIC = 0x58
"""``ZSPAGE_MAGIC`` (mm/zsmalloc.c, unchanged since v4.8)."""

OBJ_ALLOCATED_TAG = 1
"""Low bit of the handle recorded with an allocated object (``OBJ_ALLOCATED_TAG``, v4.8 on)."""

_LE_U64 = struct.Struct("<Q")
"""``struct page`` words as :func:`~drgn_ptwalk.page.read_struct_pages` returns them (byte-swapped to
little-endian on big-endian kernels)."""

_PHYSMEM_BITS_CANDIDATES = (52, 48, 46, 51, 53, 56, 47, 44, 42, 40, 36, 64)
"""``MAX_POSSIBLE_PHYSMEM_BITS`` values tried, in order (x86_64 and arm64 first: 52)."""


class ZsLocation(NamedTuple):
    """Where a zsmalloc object is."""

    pfn: int
    """PFN of the page the object starts in."""
    obj_idx: int
    """Index of the object in its zspage."""


def obj_location(obj: int, pfn_bits: int, tag_shift: int, bits_per_long: int = 64,
                 class_bits: int = 0) -> ZsLocation:
    """
    Decode an ``obj`` value (``obj_to_location()``).

    :param obj: the value the handle points to
    :param pfn_bits: ``_PFN_BITS`` (``MAX_POSSIBLE_PHYSMEM_BITS - PAGE_SHIFT``)
    :param tag_shift: ``OBJ_TAG_BITS`` up to v6.1, 0 after
    :param class_bits: ``ZS_OBJ_CLASS_BITS`` (v7.3+: the size class between the PFN and the index), 0 before
    """
    index_bits = bits_per_long - pfn_bits
    pfn = obj >> index_bits
    obj_idx = (obj & ((1 << (index_bits - class_bits)) - 1)) >> tag_shift
    return ZsLocation(pfn, obj_idx)


def _obj_class(obj: int, pfn_bits: int, class_bits: int, bits_per_long: int) -> int:
    """The size class index an ``obj`` value holds (v7.3+'s ``obj_to_class_idx()``; 0 if *class_bits* is)."""
    shift = bits_per_long - pfn_bits - class_bits
    return (obj >> shift) & ((1 << class_bits) - 1)


class _Layout(NamedTuple):
    page_size: int
    page_shift: int
    struct_page_size: int
    private_off: int
    index_off: int
    zspage_size: int
    bits_word_off: int
    huge_bit: int
    class_bit: int
    class_bits: int
    magic_bit: int
    magic_bits: int
    pool_off: int
    sizeclass_size_off: int
    sizeclass_objs_off: Optional[int]
    size_class_off: int
    word: struct.Struct
    u32: struct.Struct


def load_module_debug_info(prog: Program, type_name: str) -> bool:
    """
    Once per program, when a module's type (zram's, zsmalloc's) is missing: ask drgn to load the debug info
    of the loaded modules from its default places (``/usr/lib/debug/lib/modules/<release>/``, where
    Debian's ``linux-image-<release>-dbg`` puts it; a vmlinux given with ``-s`` turns that search off).

    :return: whether *type_name* is known now
    """
    import logging

    from drgn import MissingDebugInfoError

    if not prog.cache.get("ptwalk_module_debug_tried"):
        prog.cache["ptwalk_module_debug_tried"] = True
        log = logging.getLogger("drgn")
        level = log.level
        log.setLevel(logging.ERROR)  # "missing debugging symbols for <module>" of every other module
        try:
            prog.load_debug_info(None, default=True)
        except MissingDebugInfoError:
            pass
        except Exception:  # an unreadable file among the default places: the type stays missing
            pass
        finally:
            log.setLevel(level)
    try:
        prog.type(type_name)
        return True
    except LookupError:
        return False


def _has_type(prog: Program, name: str) -> bool:
    try:
        prog.type(name)
        return True
    except LookupError:
        return False


def _bitfield(t: Type, name: str) -> Tuple[int, int]:
    m = t.member(name)
    return m.bit_offset, m.bit_field_size or t.prog_.type("unsigned int").size * 8


def _layout(prog: Program) -> _Layout:
    try:
        return prog.cache["ptwalk_zs_layout"]
    except KeyError:
        pass
    if not _has_type(prog, "struct zspage"):
        load_module_debug_info(prog, "struct zspage")
    try:
        zspage = prog.type("struct zspage")
        size_class = prog.type("struct size_class")
        zs_pool = prog.type("struct zs_pool")
    except LookupError:
        raise ZsError("no debug info for zsmalloc (struct zspage): give the zsmalloc module's debug file with "
                      "-s (.../lib/modules/<release>/kernel/mm/zsmalloc.ko of Debian's linux-image-<release>-dbg)"
                      ) from None
    page = prog.type("struct page")
    try:
        index_off = page.member("index").bit_offset // 8
    except LookupError:
        index_off = page.member("__folio_index").bit_offset // 8
    huge_bit, _ = _bitfield(zspage, "huge")
    class_bit, class_bits = _bitfield(zspage, "class")
    magic_bit, magic_bits = _bitfield(zspage, "magic")
    bits_word_off = (huge_bit // 32) * 4
    try:
        objs_off: Optional[int] = size_class.member("objs_per_zspage").bit_offset // 8
    except LookupError:
        objs_off = None
    order = "<" if prog.platform.flags & prog.platform.flags.__class__.IS_LITTLE_ENDIAN else ">"
    lay = _Layout(
        page_size=prog["PAGE_SIZE"].value_(),
        page_shift=prog["PAGE_SHIFT"].value_(),
        struct_page_size=page.size,
        private_off=page.member("private").bit_offset // 8,
        index_off=index_off,
        zspage_size=zspage.size,
        bits_word_off=bits_word_off,
        huge_bit=huge_bit - bits_word_off * 8,
        class_bit=class_bit - bits_word_off * 8,
        class_bits=class_bits,
        magic_bit=magic_bit - bits_word_off * 8,
        magic_bits=magic_bits,
        pool_off=zspage.member("pool").bit_offset // 8,
        sizeclass_size_off=size_class.member("size").bit_offset // 8,
        sizeclass_objs_off=objs_off,
        size_class_off=zs_pool.member("size_class").bit_offset // 8,
        word=struct.Struct(order + "Q"),
        u32=struct.Struct(order + "I"),
    )
    prog.cache["ptwalk_zs_layout"] = lay
    return lay


def _field(word: int, bit: int, bits: int, little: bool) -> int:
    # Bit-field positions as drgn reports them are in the storage unit's byte order: for big-endian
    # targets bit 0 is the most significant bit of the 32-bit unit.
    if little:
        return (word >> bit) & ((1 << bits) - 1)
    return (word >> (32 - bit - bits)) & ((1 << bits) - 1)


class ZsPool:
    """
    One ``struct zs_pool``: reads its objects by handle.

    :param pool: ``struct zs_pool *``
    """

    def __init__(self, pool: Object) -> None:
        self.prog = pool.prog_
        self.address = pool.value_()
        self.lay = _layout(self.prog)
        self.little = self.lay.word.format.startswith("<")
        self.encoding: Optional[Tuple[int, int, int]] = None
        """(``_PFN_BITS``, tag shift, ``ZS_OBJ_CLASS_BITS``), once calibrated."""
        self._class_size: Dict[int, Tuple[int, Optional[int]]] = {}
        self.bits_per_long = self.prog.type("unsigned long").size * 8

    def _word(self, addr: int, physical: bool = False) -> int:
        return self.lay.word.unpack(self.prog.read(addr, 8, physical))[0]

    def _zspage_of(self, pfn: int) -> Optional[Tuple[int, int, bool, int]]:
        """
        (zspage address, class index, huge, ``page->index`` word) of page *pfn*, or None if it is not a page
        of a zspage of this pool.
        """
        lay = self.lay
        try:
            raw = read_struct_pages(self.prog, pfn, 1)
        except FaultError:
            return None
        zspage = _LE_U64.unpack_from(raw, lay.private_off)[0]
        index = _LE_U64.unpack_from(raw, lay.index_off)[0]
        if not zspage:
            return None
        try:
            zraw = self.prog.read(zspage, lay.zspage_size)
        except FaultError:
            return None
        bits = lay.u32.unpack_from(zraw, lay.bits_word_off)[0]
        if _field(bits, lay.magic_bit, lay.magic_bits, self.little) != ZSPAGE_MAGIC:
            return None
        if lay.word.unpack_from(zraw, lay.pool_off)[0] != self.address:
            return None
        cls = _field(bits, lay.class_bit, lay.class_bits, self.little)
        huge = bool(_field(bits, lay.huge_bit, 1, self.little))
        return zspage, cls, huge, index

    def _next_pfn(self, index: int) -> int:
        """PFN of the next page of a zspage from a page's ``index`` word (a ``struct page *``), or -1."""
        pl = page_layout(self.prog)
        if index >= pl.vmemmap and (index - pl.vmemmap) % pl.size == 0:
            return (index - pl.vmemmap) // pl.size
        return -1

    def _class(self, cls: int) -> Tuple[int, Optional[int]]:
        """(size, objs_per_zspage) of ``pool->size_class[cls]``."""
        try:
            return self._class_size[cls]
        except KeyError:
            pass
        lay = self.lay
        sc = self._word(self.address + lay.size_class_off + 8 * cls)
        size = lay.u32.unpack(self.prog.read(sc + lay.sizeclass_size_off, 4))[0]
        objs = None
        if lay.sizeclass_objs_off is not None:
            objs = lay.u32.unpack(self.prog.read(sc + lay.sizeclass_objs_off, 4))[0]
        r = self._class_size[cls] = (size, objs)
        return r

    def _locate(self, handle: int, obj: int) -> Tuple[ZsLocation, int, bool, int]:
        """
        The object of *handle*: (location, class index, huge, ``page->index`` of its first page), checked
        as the kernel would find it: a zspage page of this pool, an index below ``objs_per_zspage``, and the
        handle recorded where ``obj_malloc()`` records it (``handle | OBJ_ALLOCATED_TAG`` in the object's
        header word, or in the first page's ``index`` for a huge zspage).
        """
        encodings = [self.encoding] if self.encoding else [
            (bits - self.lay.page_shift, shift, class_bits) for bits in _PHYSMEM_BITS_CANDIDATES
            for shift in (1, 0) for class_bits in (0, self.lay.class_bits)
        ]
        tagged = handle | OBJ_ALLOCATED_TAG
        for pfn_bits, shift, class_bits in encodings:
            if class_bits >= self.bits_per_long - pfn_bits:
                continue
            loc = obj_location(obj, pfn_bits, shift, self.bits_per_long, class_bits)
            zs = self._zspage_of(loc.pfn)
            if zs is None:
                continue
            _, cls, huge, index = zs
            if class_bits and _obj_class(obj, pfn_bits, class_bits, self.bits_per_long) != cls:
                continue
            size, objs = self._class(cls)
            if objs is not None and loc.obj_idx >= objs:
                continue
            if huge:
                if index != tagged:
                    continue
            else:
                off = (size * loc.obj_idx) % self.lay.page_size
                try:
                    header = self._word((loc.pfn << self.lay.page_shift) + off, True)
                except FaultError:
                    continue
                if header != tagged:
                    continue
            if self.encoding is None and not huge and loc.obj_idx and cls:
                # Huge objects and index 0 do not tell the tag shift apart, class 0 not the class bits:
                # calibrate on others.
                self.encoding = (pfn_bits, shift, class_bits)
            return loc, cls, huge, index
        raise ZsError(f"handle {handle:#x} (obj {obj:#x}): no object of zs_pool {self.address:#x} records it "
                      "(a freed or corrupt handle, or a page not in the dump)")

    def read(self, handle: int, length: int) -> bytes:
        """
        The first *length* bytes of the object of *handle* (``zs_obj_read_begin()``/``zs_map_object()``,
        past the handle header).

        :param handle: the zsmalloc handle (``unsigned long``)
        :param length: bytes wanted (zram's stored size, zswap's ``entry->length``)
        :raises ZsError: if the handle, its page or its zspage cannot be read or make no sense
        """
        lay = self.lay
        try:
            obj = self._word(handle)
        except FaultError:
            raise ZsError(f"zsmalloc handle {handle:#x} cannot be read") from None
        loc, cls, huge, index = self._locate(handle, obj)
        size, _ = self._class(cls)
        if length > size:
            raise ZsError(f"object of {length} bytes in a {size}-byte size class (handle {handle:#x})")
        off = (size * loc.obj_idx) % lay.page_size
        if not huge:
            off += self.bits_per_long // 8
        pieces: List[bytes] = []
        first = min(length, lay.page_size - off)
        try:
            pieces.append(self.prog.read((loc.pfn << lay.page_shift) + off, first, True))
            if first < length:
                next_pfn = self._next_pfn(index)
                if next_pfn < 0:
                    raise ZsError(f"object at pfn {loc.pfn:#x}+{off:#x} spans two pages but its zspage has "
                                  "no next page")
                pieces.append(self.prog.read(next_pfn << lay.page_shift, length - first, True))
        except FaultError as e:
            raise ZsError(f"zsmalloc page at {e.address:#x} is not in the dump") from None
        return b"".join(pieces)
