# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The values of /proc/kpageflags, kpagecount and kpagecgroup for a page, per kernel generation
(:attr:`~drgn_ptwalk.kpage.context.KpageContext.scheme`): ``stable_page_flags()``, ``kpagecount_read()``
and ``page_cgroup_ino()`` from a page's fields and its folio head's (decoded by
:func:`drgn_ptwalk.page.decode_head`).
"""

import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

from drgn import FaultError, Object, Program, offsetof

from drgn_ptwalk._kernel import cached
from drgn_ptwalk.kpage.context import (
    KPF,
    V61_MAPCOUNT_RESERVE,
    KpageContext,
    is_zero_pfn,
    mapcount_is_type,
    page_type_is,
    read_section_pages,
)
from drgn_ptwalk.page import decode_head

__all__ = ("Head", "HeadFields", "Section", "head_structs", "key_values", "memcg_ino")

_U64 = struct.Struct("<Q")


class Head(NamedTuple):
    pfn: int
    flags: int
    flags1: int
    """``page[1].flags`` (0 for a small folio)."""
    mapping: int
    refcount: int
    mapcount: int
    """Head ``_mapcount``/``page_type`` raw (signed)."""
    nr: int
    entire: int
    """``_entire_mapcount + 1`` (v6.1: ``compound_mapcount + 1``)."""
    large: int
    """``_large_mapcount + 1``."""
    hugetlb: bool
    memcg: int
    mapped_any: bool
    """v6.1 ``folio_mapped()`` of a large folio: some page's ``_mapcount >= 0``."""



class HeadFields:
    """Reads fields at given offsets of a buffer with as few :class:`struct.Struct` calls as they allow
    (one, unless fields overlap), in the order they were given; absent fields (offset ``None``) read as 0."""

    def __init__(self, fields: List[Tuple[Optional[int], str]]) -> None:
        self._n = len(fields)
        self.groups: List[Tuple[struct.Struct, List[int]]] = []
        todo = sorted((off, i, code) for i, (off, code) in enumerate(fields) if off is not None)
        while todo:
            fmt, pos, where, rest = "<", 0, [], []
            for off, i, code in todo:
                if off < pos:
                    rest.append((off, i, code))
                    continue
                fmt += f"{off - pos}x{code}" if off > pos else code
                pos = off + struct.calcsize(code)
                where.append(i)
            self.groups.append((struct.Struct(fmt), where))
            todo = rest

    def unpack_from(self, buf: bytes, at: int) -> List[int]:
        out = [0] * self._n
        for st, where in self.groups:
            for i, v in zip(where, st.unpack_from(buf, at)):
                out[i] = v
        return out



def head_structs(prog: Program, ctx: KpageContext) -> Tuple[HeadFields, HeadFields]:
    """The fields of a head and its next pages that its values depend on (with its PFN): (flags, mapping,
    mapcount, refcount, memcg_data), and of a large folio (order, entire + 1, large + 1 mapcounts, v6.1's
    compound destructor, ``page[1].flags``); :func:`~drgn_ptwalk.kpage.scan.head_states` reads them of
    many heads at once, as a head's state."""
    def make() -> Tuple[HeadFields, HeadFields]:
        lay = ctx.lay
        entire = lay.entire_mapcount if lay.entire_mapcount is not None else lay.compound_mapcount
        how, _, dtor = lay.hugetlb
        return (
            HeadFields([(lay.flags, "Q"), (lay.mapping, "Q"), (lay.mapcount, "i"), (lay.refcount, "i"),
                        (ctx.memcg, "Q")]),
            HeadFields([(lay.order_offset, "B"), (entire, "i"), (lay.large_mapcount, "i"),
                        (lay.size + dtor if how == "dtor" else None, "B"), (lay.size + lay.flags, "Q")]),
        )

    return cached(prog, "ptwalk_kpage_head_structs", make)


class Section:
    """The ``struct page`` bytes of one section and what is derived from them per page."""

    def __init__(self, prog: Program, ctx: KpageContext, base: int, n: int, which: Tuple[int, ...] = (0, 1, 2)) -> None:
        self.prog = prog
        self.ctx = ctx
        self.want = tuple(f in which for f in range(3))
        """Which of the three files' values :meth:`_compute` computes (the others are 0)."""
        self.base = base
        self.n = n
        s = ctx.lay.size
        self.buf = read_section_pages(prog, ctx, ctx.lay.vmemmap + base * s, n * s)
        self.heads: Dict[int, Head] = {}

    def page_bytes(self, pfn: int, count: int) -> bytes:
        ctx = self.ctx
        s = ctx.lay.size
        i = pfn - self.base
        if 0 <= i and i + count <= self.n:
            return self.buf[i * s : (i + count) * s]
        return read_section_pages(self.prog, ctx, ctx.lay.vmemmap + pfn * s, count * s)

    def head(self, pfn: int) -> Head:
        h = self.heads.get(pfn)
        if h is None:
            h = self.heads[pfn] = self._read_head(pfn)
        return h

    def _read_head(self, pfn: int) -> Head:
        ctx = self.ctx
        lay = ctx.lay
        s = lay.size
        i = pfn - self.base
        if 0 <= i and i + 3 <= self.n:
            b, at = self.buf, i * s
        else:
            try:
                b = self.page_bytes(pfn, 3)
            except FaultError:
                b = self.page_bytes(pfn, 1) + bytes(2 * s)
            at = 0
        f = decode_head(lay, b, at)
        memcg = _U64.unpack_from(b, at + ctx.memcg)[0] if ctx.memcg is not None else 0
        if not f.flags >> lay.pg_head & 1:
            return Head(pfn, f.flags, 0, f.mapping, f.refcount, f.mapcount, 1, 0, 0, False, memcg, False)
        mapped_any = False
        if ctx.scheme == "page" and not f.hugetlb and f.entire <= 0:
            # v6.1 folio_mapped(): any page's _mapcount >= 0 (the loop over the folio).
            try:
                fb = self.page_bytes(pfn, f.nr)
                mc = memoryview(fb).cast("i")[lay.mapcount // 4 :: s // 4]
                mapped_any = max(mc) >= 0
            except FaultError:
                mapped_any = False
        return Head(pfn, f.flags, f.flags1, f.mapping, f.refcount, f.mapcount & 0xFFFFFFFF, f.nr, f.entire, f.large,
                    f.hugetlb, memcg, mapped_any)

    def _compute(self, pfn: int, h: Head, is_head: bool, flags: int, raw_mc: int, covered: bool,
                 memcg: int, special: bool) -> Tuple[int, int, int]:
        ctx = self.ctx
        want = self.want
        if ctx.scheme == "page":
            return (self._flags_v61(pfn, h, is_head, flags, raw_mc, covered, special) if want[0] else 0,
                    self._count_v61(h, is_head, flags, raw_mc) if want[1] else 0,
                    self._cgroup(memcg) if want[2] else 0)
        return (self._flags_folio(pfn, h, is_head, flags, raw_mc, covered, special) if want[0] else 0,
                self._count_folio(h, raw_mc) if want[1] else 0, self._cgroup(h.memcg) if want[2] else 0)

    def _flags_v61(self, pfn: int, h: Head, is_head: bool, k: int, raw_mc: int, covered: bool,
                   special: bool) -> int:
        ctx = self.ctx
        pg = ctx.pg
        u = 0
        large = h.nr > 1 or bool(h.flags >> pg["head"] & 1)
        head_slab = bool(h.flags >> pg["slab"] & 1)
        # page_mapped(page) = folio_mapped(page_folio(page))
        if large:
            mapped = h.entire > 0 or (not h.hugetlb and h.mapped_any)
        else:
            mapped = raw_mc < 1 << 31
        if not head_slab and mapped:
            u |= 1 << KPF["MMAP"]
        if h.mapping & 1:
            u |= 1 << KPF["ANON"]
        if h.mapping & 3 == 3:
            u |= 1 << KPF["KSM"]
        tail = not is_head
        if large and is_head:
            u |= 1 << KPF["COMPOUND_HEAD"]
        if tail:
            u |= 1 << KPF["COMPOUND_TAIL"]
        compound = large
        if compound and h.hugetlb:
            u |= 1 << KPF["HUGE"]
        elif compound:
            if h.flags >> pg["lru"] & 1 or h.mapping & 1:
                u |= 1 << KPF["THP"]
            elif ctx.huge_zero is not None and h.pfn == ctx.huge_zero:
                u |= 1 << KPF["ZERO_PAGE"] | 1 << KPF["THP"]
        elif special and is_zero_pfn(ctx, pfn):
            u |= 1 << KPF["ZERO_PAGE"]
        if page_type_is(ctx, raw_mc, "buddy"):
            u |= 1 << KPF["BUDDY"]
        elif h.refcount == 0 and covered:
            u |= 1 << KPF["BUDDY"]
        if page_type_is(ctx, raw_mc, "offline"):
            u |= 1 << KPF["OFFLINE"]
        if page_type_is(ctx, raw_mc, "table"):
            u |= 1 << KPF["PGTABLE"]
        u |= (k >> pg["slab"] & 1) << KPF["SLAB"]
        if tail and head_slab:
            u |= 1 << KPF["SLAB"]
        sc = pg["swapcache"]
        if h.flags >> pg["swapbacked"] & 1 and h.flags >> sc & 1:
            u |= 1 << KPF["SWAPCACHE"]
        if "hwpoison" in pg:
            u |= (k >> pg["hwpoison"] & 1) << KPF["HWPOISON"]
        for kbit, pbit in ctx.copy:
            u |= (k >> pbit & 1) << kbit
        return u

    def _count_v61(self, h: Head, is_head: bool, k: int, raw_mc: int) -> int:
        ctx = self.ctx
        pg = ctx.pg
        signed = raw_mc - (1 << 32) if raw_mc >= 1 << 31 else raw_mc
        if h.flags >> pg["slab"] & 1 or signed < V61_MAPCOUNT_RESERVE:
            return 0
        ret = signed + 1
        large = h.nr > 1 or bool(h.flags >> pg["head"] & 1)
        if not large:
            return ret
        # __page_mapcount()
        if not h.mapping & 1 and not h.hugetlb:
            return ret
        ret += h.entire
        if "double_map" in pg and h.flags1 >> pg["double_map"] & 1:
            ret -= 1
        return ret & 0xFFFFFFFFFFFFFFFF

    def _flags_folio(self, pfn: int, h: Head, is_head: bool, own: int, raw_mc: int, covered: bool,
                     special: bool) -> int:
        ctx = self.ctx
        pg = ctx.pg
        k = h.flags
        u = 0
        large = bool(k >> pg["head"] & 1)
        # folio_mapped(): folio_mapcount() >= 1 (a small folio's _mapcount >= 0: page types are negative)
        mapped = h.large >= 1 if large else h.mapcount < 1 << 31
        if mapped:
            u |= 1 << KPF["MMAP"]
        if h.mapping & 1:
            u |= 1 << KPF["ANON"]
            # v6.12 tests "mapping & PAGE_MAPPING_KSM" (ANON | MOVABLE): true for every anonymous folio;
            # v7.x "(mapping & FOLIO_MAPPING_FLAGS) == FOLIO_MAPPING_KSM".
            if ctx.scheme == "folio" or h.mapping & 3 == 3:
                u |= 1 << KPF["KSM"]
        if is_head:
            u |= (k >> pg["head"] & 1) << KPF["COMPOUND_HEAD"]
        else:
            u |= 1 << KPF["COMPOUND_TAIL"]
        if h.hugetlb:
            u |= 1 << KPF["HUGE"]
        elif large and "large_rmappable" in pg and h.flags1 >> pg["large_rmappable"] & 1:
            u |= 1 << KPF["THP"]
        elif ctx.scheme == "snapshot":
            if special and ctx.huge_zero is not None and pfn & ~(ctx.hpage_pmd_nr - 1) == ctx.huge_zero:
                u |= 1 << KPF["ZERO_PAGE"] | 1 << KPF["THP"]
            elif special and is_zero_pfn(ctx, pfn):
                u |= 1 << KPF["ZERO_PAGE"]
        elif ctx.huge_zero is not None and h.pfn == ctx.huge_zero:
            u |= 1 << KPF["ZERO_PAGE"] | 1 << KPF["THP"]
        elif is_zero_pfn(ctx, h.pfn):
            u |= 1 << KPF["ZERO_PAGE"]
        if page_type_is(ctx, raw_mc, "buddy"):
            u |= 1 << KPF["BUDDY"]
        elif h.refcount == 0 and covered:
            u |= 1 << KPF["BUDDY"]
        # v6.12: PageOffline/PageTable of the page; v7.x: folio_test_offline/pgtable of the folio.
        tmc = h.mapcount if ctx.scheme == "snapshot" else raw_mc
        if page_type_is(ctx, tmc, "offline"):
            u |= 1 << KPF["OFFLINE"]
        if page_type_is(ctx, tmc, "table"):
            u |= 1 << KPF["PGTABLE"]
        if page_type_is(ctx, h.mapcount, "slab"):
            u |= 1 << KPF["SLAB"]
        sc = pg["swapcache"]
        if k >> pg["swapbacked"] & 1 and k >> sc & 1:
            u |= 1 << KPF["SWAPCACHE"]
        if "hwpoison" in pg:
            src = k if h.hugetlb else own
            u |= (src >> pg["hwpoison"] & 1) << KPF["HWPOISON"]
        for kbit, pbit in ctx.copy:
            u |= (k >> pbit & 1) << kbit
        return u

    def _count_folio(self, h: Head, raw_mc: int) -> int:
        mapcount = 0 if mapcount_is_type(raw_mc) else ((raw_mc + 1) & 0xFFFFFFFF)
        if mapcount >= 1 << 31:
            mapcount -= 1 << 32
        if h.flags >> self.ctx.pg["head"] & 1:
            mapcount += h.entire
        return mapcount & 0xFFFFFFFFFFFFFFFF

    def _cgroup(self, memcg_data: int) -> int:
        ctx = self.ctx
        if ctx.memcg is None or not memcg_data:
            return 0
        cache = self.prog.cache.setdefault("ptwalk_kpage_cgroup", {})
        ino = cache.get(memcg_data)
        if ino is None:
            ino = cache[memcg_data] = memcg_ino(self.prog, ctx, memcg_data)
        return ino


def memcg_ino(prog: Program, ctx: KpageContext, data: int) -> int:
    """``page_cgroup_ino()`` from a ``memcg_data`` value."""
    if data & ctx.memcg_objexts:
        return 0
    ptr = data & ~ctx.memcg_mask & 0xFFFFFFFFFFFFFFFF
    if not ptr:
        return 0
    if ctx.scheme == "snapshot" or data & ctx.memcg_kmem:
        # v7.x: memcg_data is always an obj_cgroup; before, only with MEMCG_DATA_KMEM.
        memcg = Object(prog, "struct obj_cgroup *", ptr).memcg.read_()
    else:
        memcg = Object(prog, "struct mem_cgroup *", ptr)
    for _ in range(64):
        if not memcg:
            return 0
        if memcg.css.flags.value_() & ctx.css_online:
            return memcg.css.cgroup.kn.id.value_()
        parent = memcg.css.parent.read_()
        if not parent:
            return 0
        memcg = Object(prog, "struct mem_cgroup *", parent.value_() - offsetof(prog.type("struct mem_cgroup"), "css"))
    return 0



def key_values(sec: Section, key: tuple, pfn: Optional[int]) -> Tuple[int, int, int]:
    owner, flags, _map3, _ref, raw_mc, covered, memcg = key
    special = pfn is not None
    if owner > 0:
        head = sec.head(owner - 1)
        p = pfn if pfn is not None else -1
        return sec._compute(p, head, False, flags, raw_mc, bool(covered), memcg, special)
    if owner < 0:
        hp = -owner - 1
        head = sec.head(hp)
        return sec._compute(hp, head, True, flags, raw_mc, bool(covered), memcg, special)
    # Its own folio: the head fields are the page's.
    h = Head(pfn if pfn is not None else -1, flags, 0, _map3, _ref, raw_mc, 1, 0, 0, False, memcg, False)
    return sec._compute(h.pfn, h, True, flags, raw_mc, bool(covered), memcg, special)
