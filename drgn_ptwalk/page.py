# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Fast ``struct page`` / folio access by PFN.

The fields the page-table code needs (flags, mapping, refcount, mapcount,
compound head) are read straight from the bytes of ``vmemmap[pfn]`` at the
offsets given by the debug info: one ``prog.read()`` for one page or for a
whole run of pages, no drgn Object per page.
"""

import struct
from typing import List, NamedTuple, Optional

from drgn import FaultError, Program, TypeKind, offsetof, sizeof

__all__ = (
    "PageInfo",
    "PageLayout",
    "compound_head_pfn",
    "folio_info",
    "folio_order",
    "folio_runs",
    "highest_memmap_pfn",
    "huge_zero_pfn",
    "page_info",
    "page_infos",
    "page_is_anon",
    "page_is_anon_exclusive",
    "page_is_ksm",
    "page_layout",
    "page_test_flag",
    "pages_all_order0",
    "read_struct_pages",
)

_U64 = struct.Struct("<Q")
_S32 = struct.Struct("<i")


class PageLayout(NamedTuple):
    """Where things are in ``struct page`` of this kernel."""

    vmemmap: int
    """Address of ``struct page`` for PFN 0."""
    size: int
    """``sizeof(struct page)``."""
    flags: int
    refcount: int
    mapcount: int
    mapping: int
    info: int
    """Offset of ``compound_info`` (7.1+) / ``compound_head``."""
    info_is_mask: bool
    """``compound_info`` may hold ``mask | 1`` instead of ``head | 1``."""
    fake_heads: bool
    """HVO "fake head" pages can exist (``compound_head`` era)."""
    pg_head: int
    order_offset: int
    """Offset from the head page of the byte holding the folio order."""


def page_layout(prog: Program) -> PageLayout:
    """Return the :class:`PageLayout` of *prog* (cached)."""
    try:
        return prog.cache["ptwalk_page_layout"]
    except KeyError:
        pass
    page = prog.type("struct page")
    # Linux commit d50569612c29 ("mm: rename the 'compound_head' field in
    # the 'struct page' to 'compound_info'"), v7.1; see drgn's helpers.
    member = "compound_info" if page.has_member("compound_info") else "compound_head"
    size = sizeof(page)
    # Since 8c846c879e22 ("mm: rework compound_head() for power-of-2
    # sizeof(struct page)"), v7.1, compound_info may encode a mask (HVO
    # compiled in, which also adds zone->vmemmap_tails) and fake heads are
    # gone; detected as drgn does.
    info_is_mask = (
        member == "compound_info"
        and size & (size - 1) == 0
        and prog.type("struct zone").has_member("vmemmap_tails")
    )
    # The folio order: struct folio::_flags_1 low byte since ebc1baf5c9b4
    # ("mm: free up a word in the first tail page"), v6.6; _folio_order
    # since 379708ffde1b ("mm: add the first tail page to struct folio"),
    # v6.1; page[1].compound_order before.
    folio = None
    try:
        folio = prog.type("struct folio")
    except LookupError:
        pass
    # 6.1 has both members (_flags_1 is then the first tail page's whole flags word, the order is in
    # _folio_order), so _folio_order is tested first.
    if folio is not None and folio.has_member("_folio_order"):
        order_offset = offsetof(folio, "_folio_order")
    elif folio is not None and folio.has_member("_flags_1"):
        order_offset = offsetof(folio, "_flags_1")
    else:
        order_offset = size + offsetof(page, "compound_order")
    mapcount_member = "_mapcount"
    layout = PageLayout(
        vmemmap=prog["vmemmap"].value_(),
        size=size,
        flags=offsetof(page, "flags"),
        refcount=offsetof(page, "_refcount"),
        mapcount=offsetof(page, mapcount_member),
        mapping=offsetof(page, "mapping"),
        info=offsetof(page, member),
        info_is_mask=info_is_mask,
        fake_heads=member == "compound_head",
        pg_head=prog["PG_head"].value_(),
        order_offset=order_offset,
    )
    prog.cache["ptwalk_page_layout"] = layout
    return layout


class PageInfo(NamedTuple):
    """The fields of one ``struct page`` that page-table code needs."""

    pfn: int
    flags: int
    refcount: int
    mapcount: int
    """``page->_mapcount`` as stored (-1 = unmapped)."""
    mapping: int
    info: int
    """``compound_info`` / ``compound_head`` raw value."""


_STRUCT_PAGE_SLACK = 2
"""Pages past ``highest_memmap_pfn`` a read may include: callers read the one or two ``struct page`` after
the one they need (fake-head test, first tail pages) and fall back when those fail."""


def read_struct_pages(prog: Program, pfn: int, n: int = 1) -> bytes:
    """
    Bytes of ``struct page`` for PFNs ``[pfn, pfn + n)``: one read.

    :raises drgn.FaultError: if the memory is not in the dump, or if *pfn* is
        negative or beyond ``highest_memmap_pfn`` (a garbage PFN from a
        corrupt entry: it has no ``struct page``), or the run goes more than
        two pages past it
    """
    lay = page_layout(prog)
    highest = highest_memmap_pfn(prog)
    if (pfn < 0 or pfn > highest or n < 0 or pfn + n > highest + 1 + _STRUCT_PAGE_SLACK
            or lay.vmemmap + (pfn + n) * lay.size > 1 << 64):
        addr = (lay.vmemmap + max(pfn, 0) * lay.size) & ((1 << 64) - 1)
        raise FaultError(
            f"no struct page for PFNs {pfn:#x}+{n} (highest_memmap_pfn is {highest:#x})", addr
        )
    return prog.read(lay.vmemmap + pfn * lay.size, n * lay.size)


def _decode(lay: PageLayout, buf: bytes, base: int, pfn: int) -> PageInfo:
    return PageInfo(
        pfn,
        _U64.unpack_from(buf, base + lay.flags)[0],
        _S32.unpack_from(buf, base + lay.refcount)[0],
        _S32.unpack_from(buf, base + lay.mapcount)[0],
        _U64.unpack_from(buf, base + lay.mapping)[0],
        _U64.unpack_from(buf, base + lay.info)[0],
    )


def page_info(prog: Program, pfn: int) -> PageInfo:
    """:class:`PageInfo` of one PFN."""
    lay = page_layout(prog)
    return _decode(lay, read_struct_pages(prog, pfn, 1), 0, pfn)


def page_infos(prog: Program, pfn: int, n: int) -> List[PageInfo]:
    """:class:`PageInfo` of PFNs ``[pfn, pfn + n)`` from one read."""
    lay = page_layout(prog)
    buf = read_struct_pages(prog, pfn, n)
    return [_decode(lay, buf, i * lay.size, pfn + i) for i in range(n)]


def _head_addr(lay: PageLayout, addr: int, info: int, flags: int, next_info: Optional[int]) -> int:
    # Address of the head struct page of the page at addr.
    if info & 1:
        return addr & info if lay.info_is_mask else info - 1
    if lay.fake_heads and flags & (1 << lay.pg_head) and next_info is not None:
        # HVO fake head: a tail page that reads as the head; the page after
        # it tells the truth (drgn's _page_is_fake_head()).
        if next_info & 1 and next_info - 1 != addr:
            return next_info - 1
    return addr


def compound_head_pfn(prog: Program, pfn: int) -> int:
    """PFN of the head page of the folio containing *pfn*."""
    lay = page_layout(prog)
    buf = read_struct_pages(prog, pfn, 2)
    s = lay.size
    info = _U64.unpack_from(buf, lay.info)[0]
    flags = _U64.unpack_from(buf, lay.flags)[0]
    nxt = _U64.unpack_from(buf, s + lay.info)[0]
    addr = lay.vmemmap + pfn * s
    return (_head_addr(lay, addr, info, flags, nxt) - lay.vmemmap) // s


def folio_info(prog: Program, pfn: int) -> PageInfo:
    """
    :class:`PageInfo` of the head page of the folio containing *pfn*: the
    page where folio-wide state (anon mapping, most flags) lives.
    """
    return page_info(prog, compound_head_pfn(prog, pfn))


# bytes.translate() tables: byte -> bit b of it (0 or 1).
_BIT_TABLES = [bytes((x >> b) & 1 for x in range(256)) for b in range(8)]


def pages_all_order0(lay: PageLayout, buf: bytes, n: int) -> bool:
    """
    Whether none of the first *n* ``struct page`` in *buf* is a tail page
    (``compound_info`` bit 0) or has ``PG_head`` (a head, or an HVO fake
    head): then each page is its own folio. Byte-level work at C speed: one
    strided slice per field, little-endian (x86-64, arm64).
    """
    s = lay.size
    end = n * s
    if 1 in buf[lay.info : end : s].translate(_BIT_TABLES[0]):
        return False
    hb = lay.flags + lay.pg_head // 8
    return 1 not in buf[hb : end : s].translate(_BIT_TABLES[lay.pg_head % 8])


def folio_runs(prog: Program, pfn: int, n: int) -> List[int]:
    """
    Split PFNs ``[pfn, pfn + n)`` into runs that belong to the same folio.

    :return: the lengths of the runs, in order (summing to *n*)
    """
    lay = page_layout(prog)
    s = lay.size
    try:
        buf = read_struct_pages(prog, pfn, n + 1)
    except FaultError:
        try:
            buf = read_struct_pages(prog, pfn, n) + bytes(s)
        except FaultError:
            return [1] * n
    if pages_all_order0(lay, buf, n):
        return [1] * n
    info_off, flags_off = lay.info, lay.flags
    base_addr = lay.vmemmap + pfn * s
    unpack = _U64.unpack_from
    runs = []
    prev_head = None
    run = 0
    for i in range(n):
        off = i * s
        info = unpack(buf, off + info_off)[0]
        if info & 1:
            head = (base_addr + off) & info if lay.info_is_mask else info - 1
        else:
            head = _head_addr(
                lay,
                base_addr + off,
                info,
                unpack(buf, off + flags_off)[0],
                unpack(buf, off + s + info_off)[0],
            )
        if head == prev_head:
            run += 1
        else:
            if run:
                runs.append(run)
            run = 1
            prev_head = head
    runs.append(run)
    return runs


def folio_order(prog: Program, head_pfn: int) -> int:
    """Order of the folio whose head page is *head_pfn* (0 if not a head)."""
    lay = page_layout(prog)
    buf = read_struct_pages(prog, head_pfn, 2)
    flags = _U64.unpack_from(buf, lay.flags)[0]
    if not flags & (1 << lay.pg_head):
        return 0
    return buf[lay.order_offset]


def page_test_flag(prog: Program, info: PageInfo, name: str) -> bool:
    """Whether page flag ``PG_<name>`` is set in *info* (False if unknown)."""
    key = "ptwalk_pg_" + name
    try:
        bit = prog.cache[key]
    except KeyError:
        try:
            bit = prog["PG_" + name].value_()
        except (KeyError, LookupError):
            bit = None
        prog.cache[key] = bit
    return bit is not None and bool(info.flags & (1 << bit))


def page_is_anon(info: PageInfo) -> bool:
    """``PageAnon()``: ``mapping`` has the anon bit (``PAGE_MAPPING_ANON``)."""
    return bool(info.mapping & 1)


def page_is_ksm(info: PageInfo) -> bool:
    """``PageKsm()``: ``mapping & 3 == 3`` (anon + movable/KSM bit)."""
    return info.mapping & 3 == 3


def page_is_anon_exclusive(prog: Program, info: PageInfo) -> bool:
    """``PageAnonExclusive()`` of an anonymous page."""
    return page_is_anon(info) and page_test_flag(prog, info, "anon_exclusive")


def highest_memmap_pfn(prog: Program) -> int:
    """``highest_memmap_pfn``: PFNs above it have no ``struct page``."""
    try:
        return prog.cache["ptwalk_highest_memmap_pfn"]
    except KeyError:
        pass
    try:
        value = prog["highest_memmap_pfn"].value_()
    except (KeyError, LookupError):
        value = (1 << 64) - 1
    prog.cache["ptwalk_highest_memmap_pfn"] = value
    return value


def huge_zero_pfn(prog: Program) -> Optional[int]:
    """PFN of the huge zero folio, or ``None`` if there is none."""
    try:
        return prog.cache["ptwalk_huge_zero_pfn"]
    except KeyError:
        pass
    pfn: Optional[int] = None
    try:
        # huge_zero_pfn exists up to 6.x (~0UL when unallocated).
        value = prog["huge_zero_pfn"].value_()
        if value != (1 << 64) - 1 and value != (1 << 32) - 1:
            pfn = value
    except (KeyError, LookupError):
        try:
            folio = prog["huge_zero_folio"].read_()
            if folio.type_.kind == TypeKind.POINTER and folio.value_():
                pfn = (folio.value_() - page_layout(prog).vmemmap) // page_layout(prog).size
        except (KeyError, LookupError, FaultError):
            pass
    prog.cache["ptwalk_huge_zero_pfn"] = pfn
    return pfn
