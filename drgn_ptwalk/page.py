# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The one reader of ``struct page`` / folio state, by PFN: for the walker
(folio boundaries, the huge zero page, ``highest_memmap_pfn``) and for the
/proc builders (flags, refcount, mapcounts and their rules per kernel
generation).

Fields are read straight from the bytes of ``vmemmap[pfn]`` at the offsets
given by the debug info (:class:`PageLayout`, once per program): one
``prog.read()`` for one page or for a whole run of pages, no drgn Object per
page. Which members exist is :mod:`drgn_ptwalk.generations`' to say:

* v6.1: ``page_mapcount()`` with ``compound_mapcount`` (``page[1]``) and
  ``PageDoubleMap`` (the THP mapcount scheme before 6.2);
* v6.12: ``folio_precise_page_mapcount()`` / ``folio_mapcount()`` from
  ``_mapcount``, ``_entire_mapcount`` and ``_large_mapcount``;
* v7.x: the same plus ``_mm_ids`` (``folio_maybe_mapped_shared()``).
"""

import struct
from array import array
from collections import Counter
from itertools import repeat
from operator import and_
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from drgn import FaultError, Program, Type, TypeKind, offsetof, sizeof

from drgn_ptwalk._byteorder import is_big_endian
from drgn_ptwalk._kernel import KernelFacts, cached, const, kernel_facts, var
from drgn_ptwalk.generations import generation

__all__ = (
    "Folio",
    "FolioReader",
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
    entire_mapcount: Optional[int] = None
    """Offset from the head ``struct page`` of ``_entire_mapcount`` (v6.2+)."""
    large_mapcount: Optional[int] = None
    """... of ``_large_mapcount`` (v6.11+)."""
    compound_mapcount: Optional[int] = None
    """... of v6.1's ``compound_mapcount`` (``struct folio::_total_mapcount``)."""
    mm_ids: Optional[int] = None
    """... of ``_mm_ids`` (v6.15+)."""
    pg: Dict[str, int] = {}
    """``PG_<name>`` bit numbers of the page flags the readers test (those this kernel has)."""
    hugetlb: Tuple[str, int, int] = ("none", 0, 0)
    """How a hugetlb folio is told: ``("pgty", PGTY_hugetlb, offset of page_type)``, ``("dtor",
    HUGETLB_PAGE_DTOR, offset of compound_dtor in page[1])`` or ``("none", 0, 0)``."""
    swap_words: bool = False
    """A big-endian kernel: :func:`read_struct_pages` byte-swaps each 8-byte word (see
    :func:`page_layout`), and the offsets of the 4- and 1-byte fields are those of the swapped image."""


_PG_NAMES = ("referenced", "dirty", "active", "unevictable", "writeback", "swapbacked", "swapcache",
             "owner_priv_1", "reserved", "young", "double_map", "head", "hwpoison", "workingset",
             "anon_exclusive")


def _folio_offset(prog: Program, member: str, present: bool) -> Optional[int]:
    return offsetof(prog.type("struct folio"), member) if present else None


def _hugetlb_test(prog: Program, page: Type) -> Tuple[str, int, int]:
    try:
        if generation(prog).hugetlb_page_type:
            # v6.12+: PGTY_hugetlb page type in page_type >> 24.
            return ("pgty", prog.constant("PGTY_hugetlb").value_(), offsetof(page, "page_type"))
        # v6.1: page[1].compound_dtor == HUGETLB_PAGE_DTOR.
        return ("dtor", prog.constant("HUGETLB_PAGE_DTOR").value_(), offsetof(page, "compound_dtor"))
    except (LookupError, ValueError):
        return ("none", 0, 0)


def page_layout(prog: Program) -> PageLayout:
    """
    Return the :class:`PageLayout` of *prog* (cached).

    :return: the offsets and flag bits of ``struct page`` the readers need
    """
    return cached(prog, "ptwalk_page_layout", _page_layout, prog)


def _page_layout(prog: Program) -> PageLayout:
    page = prog.type("struct page")
    gen = generation(prog)
    member = "compound_info" if gen.compound_info else "compound_head"
    size = sizeof(page)
    if gen.folio_order == "compound_order":
        order_offset = size + offsetof(page, "compound_order")
    else:
        order_offset = offsetof(prog.type("struct folio"), gen.folio_order)
    pg: Dict[str, int] = {}
    for name in _PG_NAMES:
        bit = const(prog, "PG_" + name)
        if bit is not None:
            pg[name] = bit
    # Big-endian kernels (s390x): read_struct_pages() byte-swaps each 8-byte word, which leaves the
    # 8-byte fields (flags, mapping, compound_info, _mm_ids; the folio order, the low byte of _flags_1)
    # where they are, as little-endian values, and moves a 4-byte field to offset ^ 4 and a 1-byte
    # field to offset ^ 7: the offsets below are those of the swapped image, so every reader decodes
    # it as it decodes a little-endian kernel's.
    big = is_big_endian(prog)

    def s4(off: int) -> int:
        return off ^ 4 if big else off

    def s4_opt(off: Optional[int]) -> Optional[int]:
        return off if off is None else s4(off)

    def s1(off: int) -> int:
        return off ^ 7 if big else off

    hugetlb = _hugetlb_test(prog, page)
    if big and hugetlb[0] == "pgty":
        hugetlb = (hugetlb[0], hugetlb[1], hugetlb[2] ^ 4)  # page_type: unsigned int
    elif big and hugetlb[0] == "dtor":
        hugetlb = (hugetlb[0], hugetlb[1], s1(hugetlb[2]))  # compound_dtor: unsigned char
    return PageLayout(
        vmemmap=prog["vmemmap"].value_(),
        size=size,
        flags=offsetof(page, "flags"),
        refcount=s4(offsetof(page, "_refcount")),
        mapcount=s4(offsetof(page, "_mapcount")),
        mapping=offsetof(page, "mapping"),
        info=offsetof(page, member),
        info_is_mask=gen.compound_info_mask,
        fake_heads=member == "compound_head",
        pg_head=prog["PG_head"].value_(),
        # compound_order (v6.1) is a byte of page[1]; later the low byte of folio->_flags_1.
        order_offset=s1(order_offset) if gen.folio_order == "compound_order" else order_offset,
        entire_mapcount=s4_opt(_folio_offset(prog, "_entire_mapcount", gen.entire_mapcount)),
        large_mapcount=s4_opt(_folio_offset(prog, "_large_mapcount", gen.large_mapcount)),
        compound_mapcount=s4_opt(_folio_offset(prog, "_total_mapcount", gen.compound_mapcount)),
        mm_ids=_folio_offset(prog, "_mm_ids", gen.mm_ids),
        pg=pg,
        hugetlb=hugetlb,
        swap_words=big,
    )


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

    :param pfn: the first PFN
    :param n: how many PFNs
    :return: ``n * sizeof(struct page)`` bytes
    :raises drgn.FaultError: if the memory is not in the dump, or if *pfn* is
        negative or beyond ``highest_memmap_pfn`` (a garbage PFN from a
        corrupt entry: it has no ``struct page``), or the run goes more than
        two pages past it
    """
    return read_pages(kernel_facts(prog), pfn, n)


def read_pages(facts: KernelFacts, pfn: int, n: int = 1) -> bytes:
    """:func:`read_struct_pages` with the program's :class:`~drgn_ptwalk._kernel.KernelFacts` at hand."""
    lay = facts.layout
    highest = facts.highest_memmap_pfn
    if (pfn < 0 or pfn > highest or n < 0 or pfn + n > highest + 1 + _STRUCT_PAGE_SLACK
            or lay.vmemmap + (pfn + n) * lay.size > 1 << 64):
        addr = (lay.vmemmap + max(pfn, 0) * lay.size) & ((1 << 64) - 1)
        raise FaultError(
            f"no struct page for PFNs {pfn:#x}+{n} (highest_memmap_pfn is {highest:#x})", addr
        )
    buf = facts.prog.read(lay.vmemmap + pfn * lay.size, n * lay.size)
    return swap_words(buf) if lay.swap_words else buf


def swap_words(buf: bytes) -> bytes:
    """*buf* (a multiple of 8 bytes) with each 8-byte word byte-swapped: how a big-endian kernel's
    ``struct page`` bytes are read (see :func:`page_layout`)."""
    words = array("Q", buf)
    words.byteswap()
    return words.tobytes()


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
    """
    :class:`PageInfo` of one PFN.

    :param pfn: a page frame number
    :return: its state
    """
    lay = page_layout(prog)
    return _decode(lay, read_struct_pages(prog, pfn, 1), 0, pfn)


def page_infos(prog: Program, pfn: int, n: int) -> List[PageInfo]:
    """
    :class:`PageInfo` of PFNs ``[pfn, pfn + n)`` from one read.

    :param pfn: the first PFN
    :param n: how many PFNs
    :return: one state per PFN
    """
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
    """
    PFN of the head page of the folio containing *pfn*.

    :param pfn: a page frame number
    :return: the head page's PFN (*pfn* itself for an order-0 page)
    """
    return folio_head_pfn(kernel_facts(prog), pfn)


def folio_head_pfn(facts: KernelFacts, pfn: int) -> int:
    """:func:`compound_head_pfn` with the program's facts at hand."""
    lay = facts.layout
    buf = read_pages(facts, pfn, 2)
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

    :param pfn: a page frame number
    :return: the head page's state
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

    :param lay: the layout (:func:`page_layout`)
    :param buf: ``struct page`` bytes (:func:`read_struct_pages`)
    :param n: how many pages of *buf*
    :return: whether every page is its own folio
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

    :param pfn: the first PFN
    :param n: how many PFNs
    :return: the lengths of the runs, in order (summing to *n*)
    """
    facts = kernel_facts(prog)
    lay = facts.layout
    s = lay.size
    try:
        buf = read_pages(facts, pfn, n + 1)
    except FaultError:
        try:
            buf = read_pages(facts, pfn, n) + bytes(s)
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
    """
    Order of the folio whose head page is *head_pfn* (0 if not a head).

    :param head_pfn: the PFN of a folio's head page
    :return: the folio's order
    """
    lay = page_layout(prog)
    buf = read_struct_pages(prog, head_pfn, 2)
    flags = _U64.unpack_from(buf, lay.flags)[0]
    if not flags & (1 << lay.pg_head):
        return 0
    return buf[lay.order_offset]


def page_test_flag(prog: Program, info: PageInfo, name: str) -> bool:
    """
    Whether page flag ``PG_<name>`` is set in *info* (False if this kernel has no such flag).

    :param info: the page's state (:func:`page_info`)
    :param name: the flag's name without ``PG_``
    :return: whether it is set
    """
    bit = page_layout(prog).pg.get(name)
    return bit is not None and bool(info.flags & (1 << bit))


def page_is_anon(info: PageInfo) -> bool:
    """
    ``PageAnon()``: ``mapping`` has the anon bit (``PAGE_MAPPING_ANON``).

    :param info: the page's state (:func:`page_info`)
    :return: whether the page is anonymous
    """
    return bool(info.mapping & 1)


def page_is_anon_exclusive(prog: Program, info: PageInfo) -> bool:
    """
    ``PageAnonExclusive()`` of an anonymous page.

    :param info: the page's state (:func:`page_info`)
    :return: whether the page is exclusive to one process
    """
    return page_is_anon(info) and page_test_flag(prog, info, "anon_exclusive")


def highest_memmap_pfn(prog: Program) -> int:
    """
    ``highest_memmap_pfn``: PFNs above it have no ``struct page``.

    :return: the highest PFN with a ``struct page``
    """

    def read() -> int:
        v = var(prog, "highest_memmap_pfn")
        return (1 << 64) - 1 if v is None else v.value_()

    return cached(prog, "ptwalk_highest_memmap_pfn", read)


def huge_zero_pfn(prog: Program) -> Optional[int]:
    """
    PFN of the huge zero folio, or ``None`` if there is none.

    :return: its PFN, or ``None``
    """
    return cached(prog, "ptwalk_huge_zero_pfn", _huge_zero_pfn, prog)


def _huge_zero_pfn(prog: Program) -> Optional[int]:
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
    return pfn


class FolioHead(NamedTuple):
    """What :func:`decode_head` reads of a folio's head page and the two after it (the fields of
    :class:`Folio`, in its order, and ``page[1].flags``)."""

    nr: int
    """Pages of the folio: ``1 << order`` of a head (``PG_head``), else 1."""
    flags: int
    """Head page flags."""
    refcount: int
    mapping: int
    mapcount: int
    """Head ``_mapcount`` (``page_type``) as stored, signed."""
    entire: int
    """``_entire_mapcount + 1`` (v6.1: ``compound_mapcount + 1``); 0 for small folios."""
    large: int
    """``_large_mapcount + 1``; 0 for small folios or before v6.11."""
    mm_ids: int
    """``_mm_ids`` (v6.15+), else 0."""
    hugetlb: bool
    """A hugetlb folio: ``PGTY_hugetlb`` (v6.12+) or v6.1's ``HUGETLB_PAGE_DTOR`` in ``page[1]``."""
    flags1: int
    """``page[1].flags`` (``PG_double_map``, ``PG_large_rmappable``); 0 for small folios."""


def read_head_pages(facts: KernelFacts, pfn: int) -> bytes:
    """The three ``struct page`` from *pfn* that :func:`decode_head` reads (the last two zeros if they
    cannot be read: a head near the end of memory).

    :raises drgn.FaultError: if the first cannot be read
    """
    try:
        return read_pages(facts, pfn, 3)
    except FaultError:
        return read_pages(facts, pfn, 1) + bytes(2 * facts.layout.size)


def decode_head(lay: PageLayout, buf: bytes, at: int = 0) -> FolioHead:
    """
    Decode the folio head whose ``struct page`` starts at offset *at* of *buf* (as
    :func:`read_struct_pages` returns them; three pages from there: the head's order, mapcounts and
    hugetlb mark are in the first tails). The one decoder of a folio head: :class:`FolioReader` and
    :mod:`drgn_ptwalk.kpage` build on it.
    """
    flags = _U64.unpack_from(buf, at + lay.flags)[0]
    refcount = _S32.unpack_from(buf, at + lay.refcount)[0]
    mapping = _U64.unpack_from(buf, at + lay.mapping)[0]
    mapcount = _S32.unpack_from(buf, at + lay.mapcount)[0]
    if not flags >> lay.pg_head & 1:
        return FolioHead(1, flags, refcount, mapping, mapcount, 0, 0, 0, False, 0)
    entire = large = mm_ids = 0
    # the mapcounts start at -1
    if lay.entire_mapcount is not None:
        entire = _S32.unpack_from(buf, at + lay.entire_mapcount)[0] + 1
    elif lay.compound_mapcount is not None:
        entire = _S32.unpack_from(buf, at + lay.compound_mapcount)[0] + 1
    if lay.large_mapcount is not None:
        large = _S32.unpack_from(buf, at + lay.large_mapcount)[0] + 1
    if lay.mm_ids is not None:
        mm_ids = _U64.unpack_from(buf, at + lay.mm_ids)[0]
    how, value, off = lay.hugetlb
    if how == "pgty":
        hugetlb = (_U64.unpack_from(buf, at + off)[0] & 0xFFFFFFFF) >> 24 == value
    elif how == "dtor":
        hugetlb = buf[at + lay.size + off] == value
    else:
        hugetlb = False
    return FolioHead(1 << buf[at + lay.order_offset], flags, refcount, mapping, mapcount, entire, large, mm_ids,
                     hugetlb, _U64.unpack_from(buf, at + lay.size + lay.flags)[0])


class Folio(NamedTuple):
    """The state of one folio (its head page and first tail pages)."""

    head: int
    """PFN of the head page."""
    nr: int
    """Number of pages (1 for small folios)."""
    flags: int
    """Head page flags."""
    refcount: int
    mapping: int
    mapcount: int
    """Head ``_mapcount`` as stored."""
    entire_mapcount: int
    """``_entire_mapcount + 1`` (v6.1: ``compound_mapcount + 1``); 0 for small folios."""
    large_mapcount: int
    """``_large_mapcount + 1``; 0 for small folios or before v6.11."""
    mm_ids: int
    """``_mm_ids`` (v6.15+), else 0."""
    double_map: bool
    """v6.1 ``PageDoubleMap(head)``."""
    hugetlb: bool

    @property
    def large(self) -> bool:
        return self.nr > 1

    @property
    def anon(self) -> bool:
        return bool(self.mapping & 1)

    @property
    def ksm(self) -> bool:
        return self.mapping & 3 == 3


_CACHE_LIMIT = 1 << 16
# bytes.translate() tables: byte -> byte & mask.
_AND_TABLES = [bytes(x & m for x in range(256)) for m in range(256)]


def _group(keys: Sequence[Tuple[int, ...]], pfn: int) -> List[Tuple[Tuple[int, ...], int, int]]:
    """``[(key, pfn + index of its first occurrence, count)]`` of *keys* (C-level dict building)."""
    counts = Counter(keys)
    n = len(keys)
    first = dict(zip(reversed(keys), range(n - 1, -1, -1)))
    return [(k, pfn + first[k], c) for k, c in counts.items()]


class FolioReader:
    """
    Reads folios by PFN with a per-instance cache (one instance per
    /proc file generation, so the state is a consistent snapshot).
    """

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.facts = kernel_facts(prog)
        self.lay = self.facts.layout
        self.cache: Dict[int, Folio] = {}
        self.head_of: Dict[int, int] = {}
        # flag mask -> [(offset in struct page of a flags byte, its mask as a translate table)]
        self._flag_cols: Dict[int, List[Tuple[int, bytes]]] = {}

    def test(self, folio: Folio, name: str) -> bool:
        """Whether head flag ``PG_<name>`` is set."""
        bit = self.lay.pg.get(name)
        return bit is not None and bool(folio.flags >> bit & 1)

    def folio(self, pfn: int) -> Folio:
        """
        The :class:`Folio` containing *pfn*.

        :raises drgn.FaultError: if the ``struct page`` is not in the dump
        """
        head = self.head_of.get(pfn)
        if head is None:
            if len(self.head_of) >= _CACHE_LIMIT:
                # Pure memoization: bounded so memory does not grow with the pages walked.
                self.head_of.clear()
                self.cache.clear()
            pl = self.lay
            try:
                buf = read_pages(self.facts, pfn, 3)
            except FaultError:
                buf = None
            if (buf is not None and not _U64.unpack_from(buf, pl.info)[0] & 1
                    and not _U64.unpack_from(buf, pl.flags)[0] >> pl.pg_head & 1):
                # Neither a tail nor a (fake) head: its own folio, and the
                # bytes _read() wants are those just read.
                self.head_of[pfn] = pfn
                f = self.cache[pfn] = self._read(pfn, buf)
                return f
            head = folio_head_pfn(self.facts, pfn)
            self.head_of[pfn] = head
        try:
            return self.cache[head]
        except KeyError:
            pass
        f = self._read(head)
        self.cache[head] = f
        return f

    def _read(self, head: int, buf: Optional[bytes] = None) -> Folio:
        if buf is None:
            buf = read_head_pages(self.facts, head)
        h = decode_head(self.lay, buf, 0)
        dm = self.lay.pg.get("double_map")
        # PAGEFLAG(DoubleMap, double_map, PF_SECOND): page[1].flags
        return Folio(head, *h[:8], dm is not None and bool(h.flags1 >> dm & 1), h.hugetlb)

    def flag_mask(self, *names: str) -> int:
        """The mask of head flags ``PG_<name>`` (those this kernel has)."""
        mask = 0
        for name in names:
            bit = self.lay.pg.get(name)
            if bit is not None:
                mask |= 1 << bit
        return mask

    def order0_classes(self, pfn: int, n: int, flag_mask: int) -> Optional[List[Tuple[Tuple[int, ...], int, int]]]:
        """
        Group PFNs ``[pfn, pfn + n)`` by everything a /proc file reads of an
        order-0 folio: ``flags & flag_mask``, the ``mapping`` type bits
        (anon, KSM), ``_refcount`` and ``_mapcount``. Pages of a class are
        accounted alike, so a caller accounts one page of each class and
        multiplies: the whole run costs one read of its ``struct page`` entries
        and C-level scans, not Python steps per page.

        :return: ``[(key, pfn of the first page of the class, number of
            pages), ...]``, or ``None`` if a page is part of a large folio
            (or may be: ``PG_head`` or a compound tail; the caller then
            splits the run by folio)
        :raises drgn.FaultError: if the ``struct page`` entries cannot be read
        """
        pl = self.lay
        s = pl.size
        buf = read_pages(self.facts, pfn, n)
        if not pages_all_order0(pl, buf, n):
            return None
        if s % 8 or pl.flags % 8 or pl.mapping % 8 or pl.refcount % 4 or pl.mapcount % 4:
            return self._classes_slow(buf, pfn, n, flag_mask)
        mv = memoryview(buf)
        q = mv.cast("Q")
        w = mv.cast("i")
        flags = q[pl.flags // 8 :: s // 8]
        mapping = q[pl.mapping // 8 :: s // 8]
        ref = w[pl.refcount // 4 :: s // 4]
        mc = w[pl.mapcount // 4 :: s // 4]
        # The common case: all pages alike. Each column compared with itself
        # shifted by one page (C loops): the flags only in the bytes holding
        # bits of flag_mask, the mapping in its type bits, the counts whole.
        if mc[1:] == mc[:-1] and ref[1:] == ref[:-1]:
            cols = self._flag_cols.get(flag_mask)
            if cols is None:
                cols = self._flag_cols[flag_mask] = [
                    (pl.flags + b, _AND_TABLES[flag_mask >> (8 * b) & 0xFF])
                    for b in range(8) if flag_mask >> (8 * b) & 0xFF
                ]
            for off, table in cols:
                col = buf[off::s].translate(table)
                if col[1:] != col[:-1]:
                    break
            else:
                col = buf[pl.mapping :: s].translate(_AND_TABLES[3])
                if col[1:] == col[:-1]:
                    key = (flags[0] & flag_mask, mapping[0] & 3, ref[0], mc[0])
                    return [(key, pfn, n)]
        keys = list(zip(map(and_, flags.tolist(), repeat(flag_mask)), map(and_, mapping.tolist(), repeat(3)),
                        ref.tolist(), mc.tolist()))
        return _group(keys, pfn)

    def _classes_slow(self, buf: bytes, pfn: int, n: int, flag_mask: int) -> List[Tuple[Tuple[int, ...], int, int]]:
        pl = self.lay
        s = pl.size
        keys = [
            (_U64.unpack_from(buf, i * s + pl.flags)[0] & flag_mask, _U64.unpack_from(buf, i * s + pl.mapping)[0] & 3,
             _S32.unpack_from(buf, i * s + pl.refcount)[0], _S32.unpack_from(buf, i * s + pl.mapcount)[0])
            for i in range(n)
        ]
        return _group(keys, pfn)

    def mapcounts(self, pfn: int, n: int) -> List[int]:
        """``page->_mapcount`` as stored for PFNs ``[pfn, pfn + n)``."""
        pl = self.lay
        buf = read_pages(self.facts, pfn, n)
        return [_S32.unpack_from(buf, i * pl.size + pl.mapcount)[0] for i in range(n)]

    # Mapcount rules.
    def precise_page_mapcounts(self, folio: Folio, pfn: int, n: int) -> List[int]:
        """
        Per-page mapcount of PFNs ``[pfn, pfn + n)`` of *folio*:
        ``folio_precise_page_mapcount()`` (v6.12+) or ``page_mapcount()``
        (v6.1).
        """
        raw = self.mapcounts(pfn, n)
        if self.lay.entire_mapcount is not None:
            extra = folio.entire_mapcount if folio.large else 0
            # page_mapcount_is_type(): page types live in _mapcount.
            return [(0 if m < -0x10000 else m + 1) + extra for m in raw]
        # v6.1 __page_mapcount(): file THP subpage _mapcount includes PMD maps.
        if not folio.large:
            return [m + 1 for m in raw]
        if not folio.anon and not folio.hugetlb:
            return [m + 1 for m in raw]
        extra = folio.entire_mapcount - (1 if folio.double_map else 0)
        return [m + 1 + extra for m in raw]

    def folio_mapcount(self, folio: Folio) -> int:
        """``folio_mapcount()`` (v6.12+; v6.1: total via ``page_mapcount`` of the head)."""
        if not folio.large:
            return 0 if folio.mapcount < -0x10000 else folio.mapcount + 1
        if self.lay.large_mapcount is not None:
            return folio.large_mapcount
        return self.precise_page_mapcounts(folio, folio.head, 1)[0]

    def likely_mapped_shared(self, folio: Folio) -> bool:
        """
        ``folio_likely_mapped_shared()`` (v6.12) / ``folio_maybe_mapped_shared()``
        (v6.15+, MM ids).
        """
        mapcount = self.folio_mapcount(folio)
        if not folio.large or folio.hugetlb:
            return mapcount > 1
        if self.lay.mm_ids is not None:
            if mapcount <= 1:
                return False
            # FOLIO_MM_IDS_SHARED_BITNUM = 63 (mm_types.h).
            return bool(folio.mm_ids >> 63 & 1)
        if mapcount <= 1:
            return False
        if folio.entire_mapcount or mapcount > folio.nr:
            return True
        return self.mapcounts(folio.head, 1)[0] > 0
