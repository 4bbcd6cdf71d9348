# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Folio facts the /proc files need (flags, refcount, mapcounts), read raw from
``struct page`` bytes at debug-info offsets, per kernel generation:

* v6.1: ``page_mapcount()`` with ``compound_mapcount`` (``page[1]``) and
  ``PageDoubleMap`` (the THP mapcount scheme before 6.2);
* v6.12: ``folio_precise_page_mapcount()`` / ``folio_mapcount()`` from
  ``_mapcount``, ``_entire_mapcount`` and ``_large_mapcount``;
* v7.x: the same plus ``_mm_ids`` (``folio_maybe_mapped_shared()``).
"""

import struct
from collections import Counter
from itertools import repeat
from operator import and_
from typing import Dict, List, NamedTuple, Optional, Tuple

from drgn import FaultError, Program, offsetof

from drgn_ptwalk.page import compound_head_pfn, page_layout, pages_all_order0, read_struct_pages

__all__ = ("Folio", "FolioReader")

_U64 = struct.Struct("<Q")
_S32 = struct.Struct("<i")


class _Layout(NamedTuple):
    order: int  # offset from the head struct page of the folio order byte
    entire_mapcount: Optional[int]  # offset from the head struct page
    large_mapcount: Optional[int]
    compound_mapcount: Optional[int]  # v6.1 page[1].compound_mapcount
    mm_ids: Optional[int]
    pg: Dict[str, int]


def _folio_offset(prog: Program, member: str) -> Optional[int]:
    try:
        return offsetof(prog.type("struct folio"), member)
    except (LookupError, ValueError):
        return None


def _layout(prog: Program) -> _Layout:
    try:
        return prog.cache["ptwalk_procfs_folio_layout"]
    except KeyError:
        pass
    pg: Dict[str, int] = {}
    for name in ("referenced", "dirty", "active", "unevictable", "writeback", "swapbacked", "swapcache",
                 "owner_priv_1", "reserved", "young", "double_map", "head", "hwpoison", "workingset",
                 "anon_exclusive"):
        try:
            pg[name] = prog.constant("PG_" + name).value_()
        except LookupError:
            pass
    # v6.1: compound_mapcount lives in page[1] (struct folio calls it
    # _total_mapcount); "mm,thp,rmap: simplify compound page mapcount
    # handling" (v6.2) replaced it by _entire_mapcount and dropped
    # PageDoubleMap.
    compound_mapcount = _folio_offset(prog, "_total_mapcount")
    lay = _Layout(
        # The folio order byte: one rule for walker and procfs (drgn_ptwalk.page).
        order=page_layout(prog).order_offset,
        entire_mapcount=_folio_offset(prog, "_entire_mapcount"),
        # "mm: track mapcount of large folios in single value", v6.11.
        large_mapcount=_folio_offset(prog, "_large_mapcount"),
        compound_mapcount=compound_mapcount,
        # "mm/rmap: basic MM owner tracking for large folios (!hugetlb)",
        # v6.15.
        mm_ids=_folio_offset(prog, "_mm_ids"),
        pg=pg,
    )
    prog.cache["ptwalk_procfs_folio_layout"] = lay
    return lay


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


def _group(keys: List[Tuple[int, ...]], pfn: int) -> List[Tuple[Tuple[int, ...], int, int]]:
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
        self.lay = _layout(prog)
        self.plain = page_layout(prog)
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
            pl = self.plain
            try:
                buf = read_struct_pages(self.prog, pfn, 3)
            except FaultError:
                buf = None
            if (buf is not None and not _U64.unpack_from(buf, pl.info)[0] & 1
                    and not _U64.unpack_from(buf, pl.flags)[0] >> pl.pg_head & 1):
                # Neither a tail nor a (fake) head: its own folio, and the
                # bytes _read() wants are those just read.
                self.head_of[pfn] = pfn
                f = self.cache[pfn] = self._read(pfn, buf)
                return f
            head = compound_head_pfn(self.prog, pfn)
            self.head_of[pfn] = head
        try:
            return self.cache[head]
        except KeyError:
            pass
        f = self._read(head)
        self.cache[head] = f
        return f

    def _read(self, head: int, buf: Optional[bytes] = None) -> Folio:
        pl = self.plain
        lay = self.lay
        s = pl.size
        if buf is None:
            try:
                buf = read_struct_pages(self.prog, head, 3)
            except FaultError:
                buf = read_struct_pages(self.prog, head, 1) + bytes(2 * s)
        flags = _U64.unpack_from(buf, pl.flags)[0]
        is_head = bool(flags >> pl.pg_head & 1)
        order = buf[lay.order] if is_head else 0
        nr = 1 << order
        entire = large = mm_ids = 0
        double_map = False
        hugetlb = False
        if is_head:
            if lay.entire_mapcount is not None:
                entire = _S32.unpack_from(buf, lay.entire_mapcount)[0] + 1
            elif lay.compound_mapcount is not None:
                entire = _S32.unpack_from(buf, lay.compound_mapcount)[0] + 1
            if lay.large_mapcount is not None:
                large = _S32.unpack_from(buf, lay.large_mapcount)[0] + 1
            if lay.mm_ids is not None:
                mm_ids = _U64.unpack_from(buf, lay.mm_ids)[0]
            dm = lay.pg.get("double_map")
            if dm is not None:
                # PAGEFLAG(DoubleMap, double_map, PF_SECOND): page[1].flags
                double_map = bool(_U64.unpack_from(buf, s + pl.flags)[0] >> dm & 1)
            hugetlb = self._is_hugetlb(buf)
        return Folio(
            head,
            nr,
            flags,
            _S32.unpack_from(buf, pl.refcount)[0],
            _U64.unpack_from(buf, pl.mapping)[0],
            _S32.unpack_from(buf, pl.mapcount)[0],
            entire,
            large,
            mm_ids,
            double_map,
            hugetlb,
        )

    def _is_hugetlb(self, buf: bytes) -> bool:
        prog = self.prog
        try:
            kind = prog.cache["ptwalk_procfs_hugetlb_test"]
        except KeyError:
            kind = None
            try:
                # v6.12+: PGTY_hugetlb page type in page_type >> 24.
                kind = ("pgty", prog.constant("PGTY_hugetlb").value_(),
                        offsetof(prog.type("struct page"), "page_type"))
            except (LookupError, ValueError):
                try:
                    # v6.1: page[1].compound_dtor == HUGETLB_PAGE_DTOR.
                    kind = ("dtor", prog.constant("HUGETLB_PAGE_DTOR").value_(),
                            offsetof(prog.type("struct page"), "compound_dtor"))
                except (LookupError, ValueError):
                    kind = ("none", 0, 0)
            prog.cache["ptwalk_procfs_hugetlb_test"] = kind
        how, value, off = kind
        if how == "pgty":
            return (_U64.unpack_from(buf, off)[0] & 0xFFFFFFFF) >> 24 == value
        if how == "dtor":
            return buf[self.plain.size + off] == value
        return False

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
        pl = self.plain
        s = pl.size
        buf = read_struct_pages(self.prog, pfn, n)
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
        pl = self.plain
        s = pl.size
        keys = [
            (_U64.unpack_from(buf, i * s + pl.flags)[0] & flag_mask, _U64.unpack_from(buf, i * s + pl.mapping)[0] & 3,
             _S32.unpack_from(buf, i * s + pl.refcount)[0], _S32.unpack_from(buf, i * s + pl.mapcount)[0])
            for i in range(n)
        ]
        return _group(keys, pfn)

    def mapcounts(self, pfn: int, n: int) -> List[int]:
        """``page->_mapcount`` as stored for PFNs ``[pfn, pfn + n)``."""
        pl = self.plain
        buf = read_struct_pages(self.prog, pfn, n)
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
