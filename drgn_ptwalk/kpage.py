# SPDX-License-Identifier: LGPL-2.1-or-later
"""
/proc/kpageflags, /proc/kpagecount and /proc/kpagecgroup from a dump (``fs/proc/page.c``): what reading
each file at offset ``start_pfn * 8`` returns, one u64 per PFN in the dumped kernel's byte order (big-endian
on s390x; :func:`kpage_values` gives the values as integers).

The ``struct page`` array is read one SPARSEMEM section at a time (one ``prog.read()`` per section), never
as drgn Objects. A page's values depend on a handful of its fields and, for a page of a large folio, on
its head; pages are cut into runs equal in those fields and each distinct state is computed once, so the
Python cost is per section and per run, not per page. Runs are found at C speed. With numpy, each field
read is copied out of the section by one strided pass and every page compared with the one before it.
Without numpy, a stretch of pages is first tested whole (equal ``struct page`` bytes, then strided
``memoryview`` compares of the few words that matter), and only stretches that differ are scanned byte
lane by byte lane (strided slices XORed as big integers) for where. Both give the same bytes
(tests/test_kpage.py checks it on every reference dump).

The rules follow ``stable_page_flags()``, ``kpagecount_read()`` and ``page_cgroup_ino()`` of each kernel
generation (:attr:`~drgn_ptwalk.generations.Generation.kpage_scheme`):

* ``"page"`` (v6.1): flags of the page itself, ``PageSlab``/``page_has_type`` pages count 0,
  ``page_mapcount()`` with ``compound_mapcount``, THP as ``PageLRU || PageAnon`` of the head,
  ``page_memcg_check()`` of the page itself;
* ``"folio"`` (v6.12): flags of the folio, ``KPF_THP`` for large rmappable folios,
  ``folio_precise_page_mapcount()``, ``folio_memcg_check()`` of the folio;
* ``"snapshot"`` (v7.x): the same on a ``snapshot_page()`` copy, with the zero pages told by PFN and
  page types tested on the folio.

What a dump cannot hold: ``KPF_IDLE`` kept in ``page_ext`` (32-bit kernels with ``CONFIG_PAGE_IDLE_FLAG``;
on 64-bit kernels ``PG_idle`` is a page flag and is read) — :func:`kpage_unsupported` names it;
ZONE_DEVICE sections (``pfn_to_online_page()``'s slow path) are not online memory and read as holes.

A big-endian kernel's (s390x) ``struct page`` array is read as a little-endian one's: each section's bytes
are byte-swapped word by word once, right after the read (the 8-byte fields then read as they do on a
little-endian kernel, and :func:`~drgn_ptwalk.page.page_layout` gives the 4- and 1-byte fields' offsets in
that swapped image), so every scan and rule below is the same code for both byte orders and a
little-endian kernel's path does no more work than before.
"""

import io
import struct
from array import array
from itertools import compress, count, repeat
from operator import gt, is_, itemgetter, mul, neg, sub

from typing import Dict, Iterator, List, NamedTuple, Optional, Set, Tuple

from drgn import FaultError, Object, Program, offsetof, sizeof

from drgn_ptwalk._byteorder import is_big_endian, struct_order
from drgn_ptwalk.generations import generation
from drgn_ptwalk.page import page_layout

try:
    import numpy as _np
except ImportError:  # the same scans without it, on bytes and memoryviews (~1.5x the time on ELF dumps)
    _np = None

__all__ = (
    "KPF",
    "KpageValues",
    "kpage_chunks",
    "kpage_values",
    "kpagecgroup",
    "kpagecount",
    "kpageflags",
    "kpage_unsupported",
    "max_dump_pfn",
    "pfn_online",
)

_U64 = struct.Struct("<Q")

KPF: Dict[str, int] = {
    "LOCKED": 0, "ERROR": 1, "REFERENCED": 2, "UPTODATE": 3, "DIRTY": 4, "LRU": 5, "ACTIVE": 6, "SLAB": 7,
    "WRITEBACK": 8, "RECLAIM": 9, "BUDDY": 10, "MMAP": 11, "ANON": 12, "SWAPCACHE": 13, "SWAPBACKED": 14,
    "COMPOUND_HEAD": 15, "COMPOUND_TAIL": 16, "HUGE": 17, "UNEVICTABLE": 18, "HWPOISON": 19, "NOPAGE": 20,
    "KSM": 21, "THP": 22, "OFFLINE": 23, "ZERO_PAGE": 24, "IDLE": 25, "PGTABLE": 26,
    "RESERVED": 32, "MLOCKED": 33, "MAPPEDTODISK": 34, "OWNER_2": 34, "PRIVATE": 35, "PRIVATE_2": 36,
    "OWNER_PRIVATE": 37, "ARCH": 38, "UNCACHED": 39, "SOFTDIRTY": 40, "ARCH_2": 41, "ARCH_3": 42,
}
"""``KPF_*`` bit numbers (include/uapi/linux/kernel-page-flags.h and include/linux/kernel-page-flags.h;
``KPF_MAPPEDTODISK`` became ``KPF_OWNER_2`` in v6.12, same bit)."""

# (KPF bit, PG_ name) pairs copied from the folio/page flags, in stable_page_flags() order; only those whose
# PG_ bit this kernel has are used (PG_uncached: CONFIG_ARCH_USES_PG_UNCACHED; PG_arch_2/3:
# CONFIG_ARCH_USES_PG_ARCH_2/3 (v6.1: CONFIG_64BIT); PG_error and PG_mappedtodisk: v6.1 only; PG_owner_2:
# v6.12+).
_COPY_V61 = (("LOCKED", "locked"), ("ERROR", "error"), ("DIRTY", "dirty"), ("UPTODATE", "uptodate"),
             ("WRITEBACK", "writeback"), ("LRU", "lru"), ("REFERENCED", "referenced"), ("ACTIVE", "active"),
             ("RECLAIM", "reclaim"), ("SWAPBACKED", "swapbacked"), ("UNEVICTABLE", "unevictable"),
             ("MLOCKED", "mlocked"), ("UNCACHED", "uncached"), ("RESERVED", "reserved"),
             ("MAPPEDTODISK", "mappedtodisk"), ("PRIVATE", "private"), ("PRIVATE_2", "private_2"),
             ("OWNER_PRIVATE", "owner_priv_1"), ("ARCH", "arch_1"), ("ARCH_2", "arch_2"))
_COPY_FOLIO = (("IDLE", "idle"), ("LOCKED", "locked"), ("DIRTY", "dirty"), ("UPTODATE", "uptodate"),
               ("WRITEBACK", "writeback"), ("LRU", "lru"), ("REFERENCED", "referenced"),
               ("ACTIVE", "active"), ("RECLAIM", "reclaim"), ("SWAPBACKED", "swapbacked"),
               ("UNEVICTABLE", "unevictable"), ("MLOCKED", "mlocked"), ("RESERVED", "reserved"),
               ("OWNER_2", "owner_2"), ("PRIVATE", "private"), ("PRIVATE_2", "private_2"),
               ("OWNER_PRIVATE", "owner_priv_1"), ("ARCH", "arch_1"), ("ARCH_2", "arch_2"),
               ("ARCH_3", "arch_3"))

# v6.1 page types (include/linux/page-flags.h: macros, so not in the debug info): a type is a bit
# *cleared* in page_type, which starts as 0xffffffff (PAGE_TYPE_BASE 0xf0000000, PG_buddy 0x80, PG_offline
# 0x100, PG_table 0x200; page_has_type(): (int)page_type < PAGE_MAPCOUNT_RESERVE (-128)). Replaced by
# PGTY_* read from the kernel (commit 4ffca5a96678 ("mm: support only one page_type per page"), v6.12).
_V61_TYPE_BASE = 0xF0000000
_V61_TYPES = {"buddy": 0x80, "offline": 0x100, "table": 0x200}
_V61_MAPCOUNT_RESERVE = -128


class _Ctx(NamedTuple):
    scheme: str
    size: int
    flags: int
    refcount: int
    mapcount: int
    """Offset of ``_mapcount`` / ``page_type`` (one union in every supported kernel)."""
    mapping: int
    private: int
    info: int
    info_is_mask: bool
    memcg: Optional[int]
    """Offset of ``memcg_data`` (``None`` without CONFIG_MEMCG: no /proc/kpagecgroup)."""
    order_offset: int
    entire_mapcount: Optional[int]
    large_mapcount: Optional[int]
    compound_mapcount: Optional[int]
    compound_dtor: Optional[int]
    """v6.1: offset in ``page[1]`` of ``compound_dtor``, and :attr:`hugetlb_dtor` its hugetlb value."""
    hugetlb_dtor: int
    pg: Dict[str, int]
    copy: Tuple[Tuple[int, int], ...]
    """(KPF bit, PG bit) pairs copied."""
    pgty: Dict[str, int]
    """v6.11+: ``PGTY_*`` values (``page_type >> 24``); empty for v6.1's cleared-bit types."""
    vmemmap: int
    pages_per_section: int
    max_order: int
    """Highest buddy order (``MAX_ORDER - 1`` in v6.1, ``MAX_PAGE_ORDER`` later)."""
    zero_pfn: Optional[int]
    huge_zero: Optional[int]
    """PFN of the huge zero folio (``None``: none allocated)."""
    hpage_pmd_nr: int
    nopage: int
    """/proc/kpageflags of a hole: ``KPF_NOPAGE``, or 0 (:attr:`Generation.kpage_holes_zero`)."""
    hvo: bool
    """HVO fake heads may exist (``hugetlb_optimize_vmemmap_key`` enabled, v6.1-v7.0)."""
    memcg_objexts: int
    memcg_kmem: int
    memcg_mask: int
    css_online: int
    swap: bool = False
    """A big-endian kernel: ``struct page`` bytes are swapped word by word once per read
    (:func:`_read_pages`), and the files' bytes are swapped back to its byte order (:func:`kpage_chunks`)."""
    zero_nr: int = 1
    """How many zero pages there are from :attr:`zero_pfn`: ``(zero_page_mask >> PAGE_SHIFT) + 1`` where the
    architecture colours them (``__HAVE_COLOR_ZERO_PAGE``: s390, MIPS, LoongArch keep ``zero_page_mask``,
    and ``is_zero_pfn()`` is true for each), else 1."""


def _is_zero_pfn(ctx: _Ctx, pfn: int) -> bool:
    """``is_zero_pfn()``: *pfn* is the zero page, or one of the coloured zero pages."""
    return ctx.zero_pfn is not None and 0 <= pfn - ctx.zero_pfn < (ctx.zero_nr or 1)


def _read_pages(prog: Program, ctx: _Ctx, addr: int, size: int) -> bytes:
    """*size* bytes of ``struct page`` entries at *addr*: as read on a little-endian kernel; on a big-endian
    one each 8-byte word byte-swapped (see the module doc)."""
    buf = prog.read(addr, size)
    if ctx.swap:
        return _swap_words(buf)
    return buf


def _swap_words(buf: bytes) -> bytes:
    """*buf* (a multiple of 8 bytes) with each 8-byte word byte-swapped."""
    words = array("Q")
    words.frombytes(buf)
    words.byteswap()
    return words.tobytes()


def _const(prog: Program, name: str) -> Optional[int]:
    try:
        return prog.constant(name).value_()
    except LookupError:
        return None


def _var(prog: Program, name: str) -> Optional[Object]:
    try:
        return prog[name]
    except KeyError:
        return None


def _ctx(prog: Program) -> _Ctx:
    try:
        return prog.cache["ptwalk_kpage_ctx"]
    except KeyError:
        pass
    gen = generation(prog)
    lay = page_layout(prog)
    page = prog.type("struct page")
    pg: Dict[str, int] = {}
    for name in ("locked", "error", "referenced", "uptodate", "dirty", "lru", "active", "slab", "writeback",
                 "reclaim", "swapbacked", "swapcache", "unevictable", "mlocked", "uncached", "hwpoison",
                 "reserved", "mappedtodisk", "owner_2", "private", "private_2", "owner_priv_1", "arch_1",
                 "arch_2", "arch_3", "idle", "head", "double_map", "large_rmappable"):
        v = _const(prog, "PG_" + name)
        if v is not None:
            pg[name] = v
    scheme = gen.kpage_scheme
    copy = tuple((KPF[k], pg[p]) for k, p in (_COPY_V61 if scheme == "page" else _COPY_FOLIO) if p in pg)
    pgty: Dict[str, int] = {}
    if gen.hugetlb_page_type:
        for name in ("buddy", "offline", "table", "hugetlb", "slab"):
            v = _const(prog, "PGTY_" + name)
            if v is not None:
                pgty[name] = v
    memcg = offsetof(page, "memcg_data") if page.has_member("memcg_data") else None
    objexts = _const(prog, "MEMCG_DATA_OBJEXTS")
    if objexts is None:
        objexts = _const(prog, "MEMCG_DATA_OBJCGS") or 0
    nr_flags = _const(prog, "__NR_OBJEXTS_FLAGS") or _const(prog, "__NR_MEMCG_DATA_FLAGS") or 4
    # Zero pages: zero_page_pfn ("mm: rename my_zero_pfn() to zero_pfn()", v7.x; hash unconfirmed), zero_pfn.
    zp = _var(prog, "zero_page_pfn") or _var(prog, "zero_pfn")
    zero_pfn = zp.value_() if zp is not None else None
    # Coloured zero pages (__HAVE_COLOR_ZERO_PAGE): one per colour, zero_page_mask covering them.
    zmask = _var(prog, "zero_page_mask")
    zero_nr = (zmask.value_() >> prog["PAGE_SHIFT"].value_()) + 1 if zmask is not None else 1
    huge_zero: Optional[int] = None
    if gen.kpage_scheme == "snapshot":
        v = _var(prog, "huge_zero_pfn")
        if v is not None and v.value_() != (1 << 64) - 1:
            huge_zero = v.value_()
    else:
        for name in ("huge_zero_folio", "huge_zero_page"):
            v = _var(prog, name)
            if v is not None:
                if v.value_():
                    huge_zero = (v.value_() - lay.vmemmap) // lay.size
                break
    shift = prog["PAGE_SHIFT"].value_()
    try:
        pmd_shift = prog["PMD_SHIFT"].value_()
    except (KeyError, LookupError):
        # PMD_SHIFT is a macro; on powerpc it depends on the MMU (PTE_INDEX_SIZE is __pte_index_size:
        # 5 bits with 64K radix pages), so the decoder's geometry, not PAGE_SHIFT alone, gives it.
        from drgn_ptwalk.arch import get_decoder
        from drgn_ptwalk.entry import PtLevel

        try:
            pmd_shift = get_decoder(prog).level_shift(PtLevel.PMD)
        except (NotImplementedError, ValueError, LookupError):
            pmd_shift = shift + (shift - 3)
    try:
        section_bits = prog["SECTION_SIZE_BITS"].value_()
    except (KeyError, LookupError):
        from drgn_ptwalk._compat import vmcoreinfo_number

        # drgn 0.0.31 has no SECTION_SIZE_BITS object; the kernel's VMCOREINFO has the number.
        section_bits = vmcoreinfo_number(prog, "SECTION_SIZE_BITS")
        if section_bits is None:
            raise LookupError("SECTION_SIZE_BITS: neither drgn nor the kernel's VMCOREINFO has it")
    # MAX_PAGE_ORDER (v6.8+) / MAX_ORDER - 1 (v6.1: MAX_ORDER is the exclusive bound) are macros:
    # the free_area array has one entry per order.
    max_order = prog.type("struct zone").member("free_area").type.length - 1
    hvo = False
    key = _var(prog, "hugetlb_optimize_vmemmap_key")
    if key is not None and not gen.compound_info_mask:
        try:
            hvo = key.key.enabled.counter.value_() > 0
        except (AttributeError, LookupError):
            hvo = True
    compound_dtor = None
    hugetlb_dtor = 0
    if page.has_member("compound_dtor") and _const(prog, "HUGETLB_PAGE_DTOR") is not None:
        compound_dtor = offsetof(page, "compound_dtor")
        if lay.swap_words:  # a byte, in the word-swapped image of a big-endian kernel's page
            compound_dtor ^= 7
        hugetlb_dtor = _const(prog, "HUGETLB_PAGE_DTOR") or 0
    ctx = _Ctx(
        scheme=scheme,
        size=lay.size,
        flags=lay.flags,
        refcount=lay.refcount,
        mapcount=lay.mapcount,
        mapping=lay.mapping,
        private=offsetof(page, "private"),
        info=lay.info,
        info_is_mask=lay.info_is_mask,
        memcg=memcg,
        order_offset=lay.order_offset,
        entire_mapcount=lay.entire_mapcount,
        large_mapcount=lay.large_mapcount,
        compound_mapcount=lay.compound_mapcount,
        compound_dtor=compound_dtor,
        hugetlb_dtor=hugetlb_dtor,
        pg=pg,
        copy=copy,
        pgty=pgty,
        vmemmap=lay.vmemmap,
        pages_per_section=1 << (section_bits - shift),
        max_order=max_order,
        zero_pfn=zero_pfn,
        huge_zero=huge_zero,
        hpage_pmd_nr=1 << (pmd_shift - shift),
        nopage=0 if gen.kpage_holes_zero else 1 << KPF["NOPAGE"],
        hvo=hvo,
        memcg_objexts=objexts,
        memcg_kmem=_const(prog, "MEMCG_DATA_KMEM") or 0,
        memcg_mask=nr_flags - 1,
        css_online=_const(prog, "CSS_ONLINE") or 2,
        swap=lay.swap_words,
        zero_nr=zero_nr,
    )
    prog.cache["ptwalk_kpage_ctx"] = ctx
    return ctx


def kpage_unsupported(prog: Program) -> List[str]:
    """
    What of the three files this kernel keeps outside a dump's reach (empty on 64-bit kernels): each
    entry names the bit or file and why.
    """
    out = []
    ctx = _ctx(prog)
    if "idle" not in ctx.pg and _var(prog, "page_idle_ops") is not None:
        out.append("KPF_IDLE: the idle bit is in page_ext (CONFIG_PAGE_IDLE_FLAG on a 32-bit kernel), "
                   "not read")
    if ctx.memcg is None:
        out.append("/proc/kpagecgroup: no CONFIG_MEMCG, the kernel has no such file")
    return out


def max_dump_pfn(prog: Program) -> int:
    """``get_max_dump_pfn()``: where the files end (``max_pfn`` rounded up to a SPARSEMEM section)."""
    pps = _ctx(prog).pages_per_section
    return -(-prog["max_pfn"].value_() // pps) * pps


# ---------------------------------------------------------------------------------------------------------
# sections

def _section_state(prog: Program, nr: int) -> Tuple[bool, Optional[bytes]]:
    """(online, subsection map bytes or ``None`` when the whole section is valid) of section *nr*."""
    return _section_states(prog, nr, nr + 1)[0]


def _section_states(prog: Program, lo: int, hi: int) -> List[Tuple[bool, Optional[bytes]]]:
    """(online, subsection map bytes or ``None`` when the whole section is valid) of sections ``[lo, hi)``:
    ``SECTION_IS_ONLINE`` and ``SECTION_HAS_MEM_MAP`` set, and the subsection map, early sections' too:
    ``pfn_to_online_page()`` tests ``pfn_section_valid()`` whatever ``SECTION_IS_EARLY`` says
    (b13bc35193d9 "mm/hotplug: invalid PFNs from pfn_to_online_page()", v5.12; only ``pfn_valid()``
    takes an early section whole). A hole inside an early section (LoongArch's virt machine: RAM ends at
    256 MiB in a 512 MiB section) reads 0 in the kernel's kpageflags. The ``struct mem_section`` entries
    are read in bulk (one read per root: a root's entries are contiguous, ``SECTIONS_PER_ROOT`` of them
    with SPARSEMEM_EXTREME, all of them without)."""
    from drgn_ptwalk._compat import nr_to_section, section_flags

    flags = section_flags(prog)
    online_bits = flags["SECTION_IS_ONLINE"] | flags["SECTION_HAS_MEM_MAP"]
    ms_type = prog.type("struct mem_section")
    size = ms_type.size
    map_off = offsetof(ms_type, "section_mem_map")
    usage_off = offsetof(ms_type, "usage") if ms_type.has_member("usage") else None
    smap_off = smap_size = None
    if usage_off is not None:
        usage_type = prog.type("struct mem_section_usage")
        if usage_type.has_member("subsection_map"):
            smap_off = offsetof(usage_type, "subsection_map")
            smap_size = sizeof(usage_type.member("subsection_map").type)
    per_root = prog["PAGE_SIZE"].value_() // size
    u64 = struct.Struct(struct_order(prog) + "Q")
    big = is_big_endian(prog)
    out: List[Tuple[bool, Optional[bytes]]] = []
    nr = lo
    while nr < hi:
        count = min(hi, (nr // per_root + 1) * per_root) - nr
        ms = nr_to_section(prog, nr)
        if not ms:
            out.extend([(False, None)] * count)
            nr += count
            continue
        raw = prog.read(ms.value_(), count * size)
        for k in range(count):
            value = u64.unpack_from(raw, k * size + map_off)[0]
            if value & online_bits != online_bits:
                out.append((False, None))
            elif smap_off is None:
                out.append((True, None))
            else:
                usage = u64.unpack_from(raw, k * size + usage_off)[0]
                try:
                    smap = prog.read(usage + smap_off, smap_size) if usage else None
                except FaultError:
                    smap = None
                # a bitmap of unsigned longs: bit i in byte i // 8 once its words are little-endian
                out.append((True, _swap_words(smap) if big and smap is not None else smap))
        nr += count
    return out


def pfn_online(prog: Program, pfn: int) -> bool:
    """``pfn_to_online_page(pfn) != NULL``: *pfn* is online memory with a ``struct page``."""
    ctx = _ctx(prog)
    if pfn < 0:
        return False
    online, smap = _section_state(prog, pfn // ctx.pages_per_section)
    if not online or smap is None:
        return online
    sub = ctx.pages_per_section // (len(smap) * 8)
    i = (pfn % ctx.pages_per_section) // max(sub, 1)
    return bool(smap[i // 8] >> (i % 8) & 1)


# ---------------------------------------------------------------------------------------------------------
# the values of one section


class _Head(NamedTuple):
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


class _Fields:
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


def _head_structs(prog: Program, ctx: _Ctx) -> Tuple[_Fields, _Fields]:
    """What :meth:`_Section._read_head` reads of a head and its next pages: (flags, mapping, mapcount,
    refcount, memcg_data), and of a large folio (order, entire + 1, large + 1 mapcounts, v6.1's compound
    destructor, ``page[1].flags``)."""
    st = prog.cache.get("ptwalk_kpage_head_structs")
    if st is None:
        entire = ctx.entire_mapcount if ctx.entire_mapcount is not None else ctx.compound_mapcount
        st = prog.cache["ptwalk_kpage_head_structs"] = (
            _Fields([(ctx.flags, "Q"), (ctx.mapping, "Q"), (ctx.mapcount, "i"), (ctx.refcount, "i"),
                     (ctx.memcg, "Q")]),
            _Fields([(ctx.order_offset, "B"), (entire, "i"), (ctx.large_mapcount, "i"),
                     (ctx.size + ctx.compound_dtor if ctx.compound_dtor is not None else None, "B"),
                     (ctx.size + ctx.flags, "Q")]),
        )
    return st


def _ptype(ctx: _Ctx, raw: int, name: str) -> bool:
    """``Page<Type>()`` of a ``page_type``/``_mapcount`` value (*raw* unsigned 32-bit)."""
    if ctx.pgty:
        v = ctx.pgty.get(name)
        return v is not None and raw >> 24 == v
    bit = _V61_TYPES[name]
    return raw & (_V61_TYPE_BASE | bit) == _V61_TYPE_BASE


def _mapcount_is_type(raw: int) -> bool:
    """``page_mapcount_is_type(_mapcount + 1)`` (v6.11+): ``(int)_mapcount < PGTY_mapcount_underflow << 24``."""
    return (raw - (1 << 32) if raw >= 1 << 31 else raw) < -0x1000000


class _Section:
    """The ``struct page`` bytes of one section and what is derived from them per page."""

    def __init__(self, prog: Program, ctx: _Ctx, base: int, n: int, which: Tuple[int, ...] = (0, 1, 2)) -> None:
        self.prog = prog
        self.ctx = ctx
        self.want = tuple(f in which for f in range(3))
        """Which of the three files' values :meth:`_compute` computes (the others are 0)."""
        self.base = base
        self.n = n
        s = ctx.size
        self.buf = _read_pages(prog, ctx, ctx.vmemmap + base * s, n * s)
        self.heads: Dict[int, _Head] = {}

    def page_bytes(self, pfn: int, count: int) -> bytes:
        ctx = self.ctx
        s = ctx.size
        i = pfn - self.base
        if 0 <= i and i + count <= self.n:
            return self.buf[i * s : (i + count) * s]
        return _read_pages(self.prog, ctx, ctx.vmemmap + pfn * s, count * s)

    def head(self, pfn: int) -> _Head:
        h = self.heads.get(pfn)
        if h is None:
            h = self.heads[pfn] = self._read_head(pfn)
        return h

    def _read_head(self, pfn: int) -> _Head:
        ctx = self.ctx
        s = ctx.size
        small, large_st = _head_structs(self.prog, ctx)
        i = pfn - self.base
        if 0 <= i and i + 3 <= self.n:
            b, at = self.buf, i * s
        else:
            try:
                b = self.page_bytes(pfn, 3)
            except FaultError:
                b = self.page_bytes(pfn, 1) + bytes(2 * s)
            at = 0
        flags, mapping, raw_mc, refcount, memcg = small.unpack_from(b, at)
        if not flags >> ctx.pg["head"] & 1:
            return _Head(pfn, flags, 0, mapping, refcount, raw_mc, 1, 0, 0, False, memcg, False)
        order, entire, large_mc, dtor, flags1 = large_st.unpack_from(b, at)
        nr = 1 << order
        # the mapcounts start at -1
        entire = entire + 1 if ctx.entire_mapcount is not None or ctx.compound_mapcount is not None else 0
        large_mc = large_mc + 1 if ctx.large_mapcount is not None else 0
        if ctx.pgty:
            v = ctx.pgty.get("hugetlb")
            hugetlb = v is not None and (raw_mc & 0xFFFFFFFF) >> 24 == v
        elif ctx.compound_dtor is not None:
            hugetlb = dtor == ctx.hugetlb_dtor
        else:
            hugetlb = False
        mapped_any = False
        if ctx.scheme == "page" and not hugetlb and entire <= 0:
            # v6.1 folio_mapped(): any page's _mapcount >= 0 (the loop over the folio).
            try:
                fb = self.page_bytes(pfn, nr)
                mc = memoryview(fb).cast("i")[ctx.mapcount // 4 :: s // 4]
                mapped_any = max(mc) >= 0
            except FaultError:
                mapped_any = False
        return _Head(pfn, flags, flags1, mapping, refcount, raw_mc & 0xFFFFFFFF, nr, entire, large_mc, hugetlb,
                     memcg, mapped_any)

    def _compute(self, pfn: int, h: _Head, is_head: bool, flags: int, raw_mc: int, covered: bool,
                 memcg: int, special: bool) -> Tuple[int, int, int]:
        ctx = self.ctx
        want = self.want
        if ctx.scheme == "page":
            return (self._flags_v61(pfn, h, is_head, flags, raw_mc, covered, special) if want[0] else 0,
                    self._count_v61(h, is_head, flags, raw_mc) if want[1] else 0,
                    self._cgroup(memcg) if want[2] else 0)
        return (self._flags_folio(pfn, h, is_head, flags, raw_mc, covered, special) if want[0] else 0,
                self._count_folio(h, raw_mc) if want[1] else 0, self._cgroup(h.memcg) if want[2] else 0)

    def _flags_v61(self, pfn: int, h: _Head, is_head: bool, k: int, raw_mc: int, covered: bool,
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
        elif special and _is_zero_pfn(ctx, pfn):
            u |= 1 << KPF["ZERO_PAGE"]
        if _ptype(ctx, raw_mc, "buddy"):
            u |= 1 << KPF["BUDDY"]
        elif h.refcount == 0 and covered:
            u |= 1 << KPF["BUDDY"]
        if _ptype(ctx, raw_mc, "offline"):
            u |= 1 << KPF["OFFLINE"]
        if _ptype(ctx, raw_mc, "table"):
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

    def _count_v61(self, h: _Head, is_head: bool, k: int, raw_mc: int) -> int:
        ctx = self.ctx
        pg = ctx.pg
        signed = raw_mc - (1 << 32) if raw_mc >= 1 << 31 else raw_mc
        if h.flags >> pg["slab"] & 1 or signed < _V61_MAPCOUNT_RESERVE:
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

    def _flags_folio(self, pfn: int, h: _Head, is_head: bool, own: int, raw_mc: int, covered: bool,
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
            elif special and _is_zero_pfn(ctx, pfn):
                u |= 1 << KPF["ZERO_PAGE"]
        elif ctx.huge_zero is not None and h.pfn == ctx.huge_zero:
            u |= 1 << KPF["ZERO_PAGE"] | 1 << KPF["THP"]
        elif _is_zero_pfn(ctx, h.pfn):
            u |= 1 << KPF["ZERO_PAGE"]
        if _ptype(ctx, raw_mc, "buddy"):
            u |= 1 << KPF["BUDDY"]
        elif h.refcount == 0 and covered:
            u |= 1 << KPF["BUDDY"]
        # v6.12: PageOffline/PageTable of the page; v7.x: folio_test_offline/pgtable of the folio.
        tmc = h.mapcount if ctx.scheme == "snapshot" else raw_mc
        if _ptype(ctx, tmc, "offline"):
            u |= 1 << KPF["OFFLINE"]
        if _ptype(ctx, tmc, "table"):
            u |= 1 << KPF["PGTABLE"]
        if _ptype(ctx, h.mapcount, "slab"):
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

    def _count_folio(self, h: _Head, raw_mc: int) -> int:
        mapcount = 0 if _mapcount_is_type(raw_mc) else ((raw_mc + 1) & 0xFFFFFFFF)
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
            ino = cache[memcg_data] = _memcg_ino(self.prog, ctx, memcg_data)
        return ino


def _memcg_ino(prog: Program, ctx: _Ctx, data: int) -> int:
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


# ---------------------------------------------------------------------------------------------------------
# bulk


_BIT0 = bytes(x & 1 for x in range(256))


class KpageValues(NamedTuple):
    """The three files for PFNs ``[start, start + len(flags))``: one value per PFN each (``array("Q")`` of
    integers, whatever the dumped kernel's byte order)."""

    start: int
    flags: array
    count: array
    cgroup: array


def _find_all(col: bytes, value: int) -> List[int]:
    out = []
    i = col.find(value)
    while i >= 0:
        out.append(i)
        i = col.find(value, i + 1)
    return out


def _buddy_heads(ctx: _Ctx, buf: bytes, n: int, cols: Optional["_Columns"] = None) -> List[int]:
    """Indexes of the pages of *buf* that may be ``PageBuddy()`` (a superset; C-level scans of the
    ``page_type`` bytes): v6.11+ top byte ``PGTY_buddy``; v6.1 top nibble 0xf and bit 7 clear."""
    if cols is not None:
        raw, tmp, hit = cols.mapcount, cols.scratch32, cols.work.bools[0][: len(cols.mapcount)]
        if ctx.pgty:
            _np.equal(_np.right_shift(raw, _np.uint32(24), out=tmp), _np.uint32(ctx.pgty["buddy"]), out=hit)
        else:
            bits = _np.uint32(_V61_TYPE_BASE | _V61_TYPES["buddy"])
            _np.equal(_np.bitwise_and(raw, bits, out=tmp), _np.uint32(_V61_TYPE_BASE), out=hit)
        return _np.flatnonzero(hit).tolist()
    s = ctx.size
    top = buf[ctx.mapcount + 3 :: s]
    if ctx.pgty:
        return _find_all(top, ctx.pgty["buddy"])
    low = buf[ctx.mapcount :: s].translate(_BIT7_CLEAR)
    hi = top.translate(_TOP_NIBBLE_F)
    both = (int.from_bytes(low, "little") & int.from_bytes(hi, "little")).to_bytes(n, "little")
    return _find_all(both, 1)


_BIT7_CLEAR = bytes(int(not x & 0x80) for x in range(256))
_TOP_NIBBLE_F = bytes(int(x >= 0xF0) for x in range(256))


class _Scan(NamedTuple):
    """How :func:`_run_starts` compares the pages of a section (derived from a :class:`_Ctx`)."""

    fields: Tuple[Tuple[int, str, Tuple[Tuple[int, Optional[bytes]], ...]], ...]
    """The fields of a ``struct page`` a page's values are computed from (pages equal there, in their
    folio and in free-block coverage have equal values): flags, mapping (its type bits are read),
    mapcount/page type, memcg_data (for kpagecgroup only), each as (offset in ``struct page``,
    ``memoryview`` format compared, the bytes of it that matter: (offset, ``bytes.translate`` table keeping
    the bits read, or ``None`` for all of them)). A strided compare costs ~3 ns per page and field
    whatever the field's width."""
    refcount: Tuple[int, str, Tuple[Tuple[int, Optional[bytes]], ...]]
    """``_refcount``, the same way: read by one rule only, a free block's tail page with no reference is
    a free page (``KPF_BUDDY``), so compared only where free blocks cover pages."""
    head: Tuple[int, bytes]
    """The byte of ``flags`` with ``PG_head`` and the table translating it to 0/1."""
    memcg: bool
    """``memcg_data`` is among :attr:`fields` (only kpagecgroup reads it)."""
    flag_mask: int
    """The ``flags`` bits any rule reads."""


def _scan(ctx: _Ctx, memcg: bool = True) -> _Scan:
    mask = 0
    for bit in ctx.pg.values():
        mask |= 1 << bit
    flag_lanes: List[Tuple[int, Optional[bytes]]] = []
    for b in range(8):
        m = mask >> (8 * b) & 0xFF
        if m:
            flag_lanes.append((ctx.flags + b, None if m == 0xFF else bytes(x & m for x in range(256))))
    fields = [(ctx.flags, "Q", tuple(flag_lanes)), (ctx.mapping, "Q", ((ctx.mapping, _AND3),)),
              (ctx.mapcount, "I", tuple((ctx.mapcount + b, None) for b in range(4)))]
    if memcg and ctx.memcg is not None:
        fields.append((ctx.memcg, "Q", tuple((ctx.memcg + b, None) for b in range(8))))
    refcount = (ctx.refcount, "I", tuple((ctx.refcount + b, None) for b in range(4)))
    hb = ctx.pg["head"]
    head = (ctx.flags + hb // 8, bytes((x >> (hb % 8)) & 1 for x in range(256)))
    return _Scan(tuple(fields), refcount, head, memcg and ctx.memcg is not None, mask)


_DENSE_MIN = 256
"""A range of pages with changes this long or shorter is scanned byte lane by byte lane (:func:`_dense`);
a longer one is halved first, as most of it is usually one run."""
_DENSE_GAP = 256
"""Ranges with changes fewer pages apart than this are scanned as one (a scan's fixed cost, in pages)."""
_SHORT = 16
"""Stretches this long or shorter are not compared whole first (a compare's fixed cost, in pages)."""


class _Work:
    """Arrays the numpy scans write into, made once per call for sections of *n* pages: numpy's fresh
    arrays of a section's size each cost more in page faults (new memory from the allocator, section after
    section) than the pass that fills them."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.u64 = [_np.empty(n, _np.uint64) for _ in range(6)]
        self.u32 = [_np.empty(n, _np.uint32) for _ in range(4)]
        self.u8 = _np.empty(n, _np.uint8)
        self.bools = [_np.empty(n, _np.bool_) for _ in range(2)]
        self.owner_array = array("q", bytes(8 * n))
        """Owner codes (see :func:`_section_values`), as the code that follows the scans reads them."""
        self.owner = _np.frombuffer(self.owner_array, dtype=_np.int64)
        """The same memory, written by the numpy scans."""
        self.owners_set = False
        """:attr:`owner` is not all 0."""


class _Columns:
    """One section's ``struct page`` fields that the scans read, as numpy arrays (with numpy installed):
    each made once, by one strided pass over the section's bytes, into *work*'s arrays (valid until the
    next section's columns are made)."""

    def __init__(self, ctx: _Ctx, scan: _Scan, buf: bytes, work: Optional[_Work] = None) -> None:
        n = len(buf) // ctx.size
        if work is None or work.n < n:
            work = _Work(n)
        self.work = work
        q = _np.frombuffer(buf, dtype="<u8").reshape(n, ctx.size // 8)
        u64 = [a[:n] for a in work.u64]
        u32 = [a[:n] for a in work.u32]
        # The narrowest columns that hold what is read (less memory for every later pass over them):
        # the low half of flags when no bit read is above it (the page flags proper, PG_* < 32 so far),
        # the low byte of mapping.
        if scan.flag_mask >> 32:
            self.flags = _np.bitwise_and(q[:, ctx.flags // 8], _np.uint64(scan.flag_mask), out=u64[0])
        else:
            w = _np.frombuffer(buf, dtype="<u4").reshape(n, ctx.size // 4)
            self.flags = _np.bitwise_and(w[:, ctx.flags // 4], _np.uint32(scan.flag_mask), out=u32[3])
        """``flags``, the bits any rule reads."""
        b = _np.frombuffer(buf, dtype=_np.uint8).reshape(n, ctx.size)
        self.mapping = _np.bitwise_and(b[:, ctx.mapping], _np.uint8(3), out=work.u8[:n])
        """The type bits of ``mapping``."""
        self.mapcount = u32[0]
        self._refcount = u32[1]
        self._both: Optional["_np.ndarray"] = None
        if ctx.refcount == ctx.mapcount + 4 and ctx.mapcount % 8 == 0:
            # _mapcount and _refcount side by side (every 64-bit layout so far): one pass reads both
            self._both = u64[2]
            _np.copyto(self._both, q[:, ctx.mapcount // 8])
            _np.copyto(self.mapcount, self._both, casting="unsafe")  # the low half
        else:
            w = _np.frombuffer(buf, dtype="<u4").reshape(n, ctx.size // 4)
            _np.copyto(self.mapcount, w[:, ctx.mapcount // 4])
            _np.copyto(self._refcount, w[:, ctx.refcount // 4])
        self._refcount_made = self._both is None
        self.memcg = None
        if scan.memcg:
            self.memcg = u64[3]
            _np.copyto(self.memcg, q[:, ctx.memcg // 8])
        self.scratch64 = u64[4]
        self.scratch32 = u32[2]
        self._info = u64[5]
        self._buf = q
        self._info_off = ctx.info // 8
        self.owner: Optional["_np.ndarray"] = None
        """The owner code of every page, once :func:`_section_values` has set it (a change starts a run)."""

    def info(self) -> "_np.ndarray":
        """The word that holds a tail's head (``compound_head``/``compound_info``) of every page."""
        _np.copyto(self._info, self._buf[:, self._info_off])
        return self._info

    @property
    def refcount(self) -> "_np.ndarray":
        if not self._refcount_made:
            _np.copyto(self._refcount, _np.right_shift(self._both, _np.uint64(32), out=self.scratch64),
                       casting="unsafe")
            self._refcount_made = True
        return self._refcount


def _run_starts(ctx: _Ctx, scan: _Scan, buf: bytes, known: List[int], covered: Optional[bytes] = None,
                cols: Optional[_Columns] = None) -> List[int]:
    """
    Indexes where a run of pages with equal :attr:`_Scan.fields` starts (and equal ``_refcount`` where
    *covered* — one byte per page, non-zero in free blocks — says so), *known* included (sorted: the
    first and the end of the pages looked at, and where the folio or free-block coverage changes); the end
    is the last one returned. With numpy (*cols*, or made here), every page is compared with the one
    before it, field by field, at C speed; without, by :func:`_run_starts_bytes`.
    """
    if _np is None:
        return _run_starts_bytes(ctx, scan, buf, known, covered)
    if cols is None:
        cols = _Columns(ctx, scan, buf)
    lo, hi = known[0], known[-1]
    if hi - lo < 2:
        return known
    # d[i]: page lo + 1 + i starts a run
    d, tmp = (b[: hi - lo - 1] for b in cols.work.bools)

    def changes(col: "_np.ndarray", out: "_np.ndarray") -> "_np.ndarray":
        c = col[lo:hi]
        return _np.not_equal(c[1:], c[:-1], out=out)

    changes(cols.flags, d)
    if cols.owner is not None:
        d |= changes(cols.owner, tmp)
    d |= changes(cols.mapping, tmp)
    d |= changes(cols.mapcount, tmp)
    if cols.memcg is not None:
        d |= changes(cols.memcg, tmp)
    if covered is not None and covered.find(1, lo, hi) >= 0:
        free = _np.frombuffer(covered, dtype=_np.bool_)[lo:hi]
        changes(cols.refcount, tmp)
        tmp &= free[1:]
        tmp &= free[:-1]
        d |= tmp
    d[_np.array(known[1:-1], dtype=_np.intp) - (lo + 1)] = True
    return [lo, *(_np.flatnonzero(d) + (lo + 1)).tolist(), hi]


def _run_starts_bytes(ctx: _Ctx, scan: _Scan, buf: bytes, known: List[int],
                      covered: Optional[bytes] = None) -> List[int]:
    """
    Indexes where a run of pages with equal :attr:`_Scan.fields` starts (and equal ``_refcount`` where
    *covered* — one byte per page, non-zero in free blocks — says so), *known* included (sorted: the
    first and the end of the pages looked at, and where the folio or free-block coverage changes); the end
    is the last one returned. Each stretch between two known starts is checked whole at C speed, first as
    equal ``struct page`` bytes (free blocks, reserved ranges), then field by field (strided
    ``memoryview`` compares); only stretches that differ are scanned for where.
    """
    s = ctx.size
    mv = memoryview(buf)
    cols = [(mv.cast(fmt)[off // struct.calcsize(fmt) :: s // struct.calcsize(fmt)], lanes)
            for off, fmt, lanes in scan.fields]
    roff, rfmt, rlanes = scan.refcount
    rsize = struct.calcsize(rfmt)
    rc = mv.cast(rfmt)[roff // rsize :: s // rsize]

    def uniform(a: int, b: int) -> bool:
        """Pages ``a + 1 .. b - 1`` equal to the page before each."""
        if b - a < 2 or buf.startswith(mv[(a + 1) * s : b * s], a * s):
            return True
        for c, _ in cols:
            if c[a + 1 : b] != c[a : b - 1]:
                return False
        return not (covered is not None and covered.find(1, a, b) >= 0 and rc[a + 1 : b] != rc[a : b - 1])

    bad: List[List[int]] = []
    found = set(known)
    for a, b in zip(known, known[1:]):
        # A stretch's first page often differs from the rest (a free block's head): if the whole stretch
        # is not one run but all of it after its first page is, the second page starts a run. Short
        # stretches (small folios, one after the other) go to the lane scan as they are.
        if b - a > _SHORT:
            if uniform(a, b):
                continue
            if uniform(a + 1, b):
                found.add(a + 1)
                continue
        elif b - a < 2:
            continue
        if bad and a - bad[-1][1] < _DENSE_GAP:
            bad[-1][1] = b
        else:
            bad.append([a, b])
    if not bad and len(found) == len(known):
        return known

    # Each stretch that differs is halved until short, the halves that differ kept (a stack, not a
    # recursive closure: its reference cycle would keep the section's bytes until the garbage collector
    # ran, and each section's read would then take fresh memory).
    while bad:
        a, b = bad.pop()
        if b - a <= _DENSE_MIN:
            # only the fields that change somewhere here are scanned
            lanes = [lane for c, field in cols if c[a + 1 : b] != c[a : b - 1] for lane in field]
            if covered is not None and covered.find(1, a, b) >= 0 and rc[a + 1 : b] != rc[a : b - 1]:
                lanes += rlanes
            found.update(_dense(lanes, buf, s, a, b))
            continue
        mid = (a + b) // 2
        found.add(mid)
        bad.extend([x, y] for x, y in ((a, mid), (mid, b)) if not uniform(x, y))
    return sorted(found)


def _dense(lanes: List[Tuple[int, Optional[bytes]]], buf: bytes, s: int, a: int, b: int) -> List[int]:
    """Pages ``p`` of ``(a, b)`` whose *lanes* (see :attr:`_Scan.words`) differ from page ``p - 1``'s:
    each lane (one byte per page, a strided slice) is XORed with itself shifted by a page, as one big
    integer."""
    acc = 0
    for off, table in lanes:
        lane = buf[a * s + off : b * s : s]
        if table is not None:
            lane = lane.translate(table)
        v = int.from_bytes(lane, "little")
        acc |= v ^ (v >> 8)
    d = acc.to_bytes(b - a, "little")[: b - a - 1].translate(_NONZERO)
    return list(compress(range(a + 1, b), d))


_NONZERO = bytes(int(x != 0) for x in range(256))
_AND3 = bytes(x & 3 for x in range(256))


class _Memo:
    """What one call keeps across sections: the values of each run state, packed, and a small number for
    each distinct head state (a run's state then hashes as a flat tuple of ints)."""

    def __init__(self) -> None:
        self.values: Dict[tuple, Tuple[bytes, bytes, bytes]] = {}
        self.head_ids: Dict[tuple, int] = {}
        self.next_id = count()
        self.work: Optional[_Work] = None
        """The numpy scans' arrays (see :class:`_Work`)."""


def _owners(sec: "_Section", buf: bytes, info_q: memoryview, known: List[int],
            head: Tuple[int, bytes]) -> Tuple[array, List[int]]:
    """
    The owner code of every page of a section (see :func:`_section_values`) and the indexes of its
    folios' heads, with bytes scans: where the folio changes is added to *known*.
    """
    ctx, base, n, s = sec.ctx, sec.base, sec.n, sec.ctx.size
    owner = array("q", [0]) * n
    head_at = _find_all(buf[head[0] :: s].translate(head[1]), 1)
    # Tails follow their head: a section with no head has tails only if its first page is one (a folio
    # from an earlier section, e.g. a 1 GiB hugetlb page).
    if head_at or info_q[0] & 1:
        tails = buf[ctx.info :: s].translate(_BIT0)
    else:
        tails = b""
    heads: List[int] = []
    for i in head_at:
        if not tails[i]:
            owner[i] = -(base + i + 1)
            known += (i, i + 1)
            if ctx.hvo and i + 1 < n and info_q[i + 1] & 1:
                real = (info_q[i + 1] - 1 - ctx.vmemmap) // s
                if real != base + i:
                    owner[i] = real + 1  # an HVO fake head: a tail of that head
                    continue
            heads.append(i)
    i = tails.find(1)
    while i >= 0:
        info = info_q[i]
        addr = ctx.vmemmap + (base + i) * s
        head_addr = addr & info if ctx.info_is_mask else info - 1
        hp = (head_addr - ctx.vmemmap) // s
        end = tails.find(0, i)
        if end < 0:
            end = n
        if ctx.info_is_mask:
            h = sec.head(hp)
            end = min(end, hp + h.nr - base)
            if end <= i:
                end = i + 1
        elif info_q[i + 1 : end] != info_q[i : end - 1]:
            # tails naming another head follow: this head's run ends where they start
            j = i + 1
            while j < end and info_q[j] == info:
                j += 1
            end = j
        owner[i:end] = array("q", [hp + 1]) * (end - i)
        known += (i, end)
        i = tails.find(1, end)
    return owner, heads


def _owners_np(ctx: _Ctx, cols: "_Columns", work: "_Work", base: int, n: int,
               first_is_tail: int) -> Tuple[array, List[int]]:
    """:func:`_owners` with numpy: each tail's head from its own word (as ``page_folio()`` reads it), the
    owner codes set in *work*'s array and given to *cols* (its changes start runs: nothing is added to
    ``known``)."""
    owner = work.owner[:n]
    if work.owners_set:  # by the last section
        owner.fill(0)
        work.owners_set = False
    # (np.flatnonzero of a bool array: ~10x faster than of integers)
    hit = work.bools[1][:n]
    heads = _np.flatnonzero(_np.not_equal(_np.bitwise_and(cols.flags, 1 << ctx.pg["head"],
                                                          out=cols.scratch64[:n].view(cols.flags.dtype)[:n]),
                                          0, out=hit))
    if not len(heads) and not first_is_tail:
        return work.owner_array, []  # all 0: no run starts where the folio changes
    cols.owner = owner
    work.owners_set = True
    info = cols.info()
    s = ctx.size
    vmemmap = _np.uint64(ctx.vmemmap)
    # Every page's code from its word, kept for the tails (whole-array operations: tails are often most of
    # a section, and indexing them costs more).
    tail = _np.not_equal(_np.bitwise_and(info, _np.uint64(1), out=cols.scratch64), 0, out=hit)
    if ctx.info_is_mask:
        addr = _np.arange(base, base + n, dtype=_np.uint64)
        addr *= _np.uint64(s)
        addr += vmemmap
        head_addr = _np.bitwise_and(addr, info, out=addr)
    else:
        head_addr = _np.subtract(info, _np.uint64(1), out=cols.scratch64)
    # signed, as the Python ints of the scans without numpy
    code = _np.subtract(head_addr, vmemmap, out=head_addr).view(_np.int64)
    code //= s
    code += 1
    _np.multiply(code, tail, out=owner)
    heads = heads[(info[heads] & _np.uint64(1)) == 0]
    owner[heads] = -(base + heads + 1)
    if ctx.hvo and len(heads):
        # an HVO fake head: its next page a tail of another head, whose tail it is too
        cand = heads[heads + 1 < n]
        cand = cand[(info[cand + 1] & _np.uint64(1)) != 0]
        if len(cand):
            real = (info[cand + 1] - _np.uint64(1) - vmemmap).view(_np.int64) // s
            fake = real != base + cand
            owner[cand[fake]] = real[fake] + 1
            heads = _np.setdiff1d(heads, cand[fake], assume_unique=True)
    return work.owner_array, heads.tolist()


def _section_values(prog: Program, ctx: _Ctx, scan: _Scan, base: int, n: int, valid: Optional[bytes],
                    memo: _Memo, lo: int, hi: int,
                    which: Tuple[int, ...]) -> List[bytes]:
    """
    The bytes of the files *which* (indexes into :data:`_FILES`) for pages ``[lo, hi)`` of one section:
    pages are cut into runs whose fields (flags, mapping type bits, refcount, mapcount/page type,
    memcg_data, folio, free-buddy coverage) are all equal, found at C speed; each distinct run state is
    computed once (*memo*: the values of each state, packed), and the runs are expanded into the files'
    bytes at C speed too (no Python per run once its state is known).
    """
    sec = _Section(prog, ctx, base, n, which)
    s = ctx.size
    buf = sec.buf
    mv = memoryview(buf)
    q = mv.cast("Q")
    w = mv.cast("I")
    info_q = q[ctx.info // 8 :: s // 8]
    npc = None
    if _np is not None:
        npc = _Columns(ctx, scan, buf, memo.work)
        memo.work = npc.work
    # Which folio each page belongs to: 0 = its own (order 0), -(pfn + 1) = a head, head pfn + 1 = a tail.
    # known: where owner or covered may change.
    known = [0, n]
    if npc is not None:
        owner, heads = _owners_np(ctx, npc, memo.work, base, n, info_q[0] & 1)
    else:
        owner, heads = _owners(sec, buf, info_q, known, scan.head)

    # Free buddy blocks: is_free_buddy_page() for pages not PageBuddy themselves.
    covered = bytearray(n)
    for i in _buddy_heads(ctx, buf, n, npc):
        if _ptype(ctx, w[i * s // 4 + ctx.mapcount // 4], "buddy"):
            order = _U64.unpack_from(buf, i * s + ctx.private)[0]
            pfn = base + i
            tz = (pfn & -pfn).bit_length() - 1 if pfn else ctx.max_order
            k = min(order, tz, ctx.max_order)
            covered[i : i + (1 << k)] = b"\1" * len(covered[i : i + (1 << k)])
            # the head page (PageBuddy, its order) alone, then its tails (equal struct pages as a rule)
            known += (i, min(i + 1, n), min(i + (1 << k), n))

    starts = _run_starts(ctx, scan, buf, sorted({x for x in known if lo < x < hi} | {lo, hi}), covered, npc)
    cols = (q[ctx.flags // 8 :: s // 8], mv[ctx.mapping :: s], w[ctx.refcount // 4 :: s // 4],
            w[ctx.mapcount // 4 :: s // 4],
            q[ctx.memcg // 8 :: s // 8] if ctx.memcg is not None and scan.memcg else None)
    firsts = starts[:-1]
    if npc is not None:
        at = _np.array(firsts, dtype=_np.intp)
        # (a section without folios has every owner code 0: npc.owner is not set)
        owners = npc.owner[at].tolist() if npc.owner is not None else [0] * len(firsts)
        keys = _keys_np(npc, owners, covered, at, _head_states(sec, heads, owner, firsts, memo, owners))
    else:
        keys = _keys_at(cols, owner, covered, firsts, _head_states(sec, heads, owner, firsts, memo))
    known_values = memo.values
    values = list(map(known_values.get, keys))
    if None in values:
        for r in compress(range(len(values)), map(is_, values, repeat(None))):
            key = keys[r]
            vals = known_values.get(key)  # computed for an earlier run of this section
            if vals is None:
                # the values of a state are computed from one run of it (its folio's head read)
                f, c, g = _key_values(sec, (owner[firsts[r]],) + key[2:], None)
                vals = known_values[key] = (_U64.pack(f), _U64.pack(c), _U64.pack(g))
            values[r] = vals
    lengths = list(map(sub, starts[1:], firsts))
    out = [b"".join(map(mul, map(itemgetter(f), values), lengths)) for f in which]
    # PFN-dependent checks: the zero page and the huge zero folio.
    special = set()
    if ctx.zero_pfn is not None:
        special.update(range(ctx.zero_pfn, ctx.zero_pfn + (ctx.zero_nr or 1)))
    if ctx.huge_zero is not None:
        special.update(range(ctx.huge_zero, ctx.huge_zero + ctx.hpage_pmd_nr))
    patch = sorted(pfn - base for pfn in special if lo <= pfn - base < hi)
    if patch or (valid is not None and valid.find(0, lo, hi) >= 0):
        edit = [bytearray(b) for b in out]
        for i in patch:
            vals3 = _key_values(sec, _keys_at(cols, owner, covered, [i])[0], base + i)
            for e, f in zip(edit, which):
                _U64.pack_into(e, (i - lo) * 8, vals3[f])
        if valid is not None:
            # holes: the runs of invalid subsections
            i = valid.find(0, lo, hi)
            while i >= 0:
                end = valid.find(1, i, hi)
                if end < 0:
                    end = hi
                for e, f in zip(edit, which):
                    e[(i - lo) * 8 : (end - lo) * 8] = (_U64.pack(ctx.nopage) if f == 0 else bytes(8)) * (end - i)
                i = valid.find(0, end, hi)
        out = [bytes(e) for e in edit]
    return out


def _keys_at(cols: Tuple[memoryview, memoryview, memoryview, memoryview, Optional[memoryview]], owner: array,
             covered: bytearray, idx: List[int], heads: Optional[Dict[int, object]] = None) -> List[tuple]:
    """
    The state of pages *idx* of a section, one tuple each: the fields their values are computed from
    (see :func:`_key_values`) after the page's owner code (see :func:`_section_values`), or, with *heads*
    (:func:`_head_states`), after (is a tail, the state of its folio's head) — PFN-free, so the pages of
    folios alike share one state. *cols* are the strided views of the section's ``flags``, ``mapping``
    (low byte), ``_refcount``, ``_mapcount`` and ``memcg_data`` (``None``: 0, without CONFIG_MEMCG or
    when kpagecgroup is not wanted).
    """
    flags, mapping, refcount, mapcount, memcg = cols
    owners = list(map(owner.__getitem__, idx))
    lead: tuple = (owners,) if heads is None else (map(gt, owners, repeat(0)), map(heads.__getitem__, owners))
    # map()s of __getitem__: the tuples are made at C speed (a list comprehension costs ~1 µs per run).
    # _refcount is read only in free blocks (see _Scan.refcount), where covered is 1: elsewhere it is 0
    # here, as a run there may hold pages with other counts.
    return list(zip(*lead, map(flags.__getitem__, idx), map(_AND3.__getitem__, map(mapping.__getitem__, idx)),
                    map(mul, map(refcount.__getitem__, idx), map(covered.__getitem__, idx)),
                    map(mapcount.__getitem__, idx), map(covered.__getitem__, idx),
                    map(memcg.__getitem__, idx) if memcg is not None else repeat(0)))


def _keys_np(cols: _Columns, owners: List[int], covered: bytearray, at: "_np.ndarray",
             heads: Dict[int, object]) -> List[tuple]:
    """:func:`_keys_at` with *heads* for the pages *at* (their owner codes *owners*), the fields taken from
    numpy *cols* (``flags`` masked: the bits no rule reads make no state of their own)."""
    free = _np.frombuffer(covered, dtype=_np.uint8)[at]
    free_l = free.tolist()
    refs = (cols.refcount[at] * free).tolist() if any(free_l) else repeat(0)
    return list(zip(map(gt, owners, repeat(0)), map(heads.__getitem__, owners), cols.flags[at].tolist(),
                    cols.mapping[at].tolist(), refs, cols.mapcount[at].tolist(), free_l,
                    cols.memcg[at].tolist() if cols.memcg is not None else repeat(0)))


def _head_states(sec: "_Section", heads: List[int], owner: array, firsts: List[int],
                 memo: Optional[_Memo] = None, owners: Optional[List[int]] = None) -> Dict[int, object]:
    """
    Owner code -> the state of the folio's head, for the owners of the runs starting at *firsts*: the
    raw fields :meth:`_Section._read_head` reads (a head's values and its tails' depend on them alone,
    besides the zero pages' PFNs), unpacked at C speed for the *heads* of this section (indexes); for a
    folio whose head is elsewhere, near the section's end or a zero page: ``("pfn", code)``, one state per
    folio. 0 (a page that is its own folio) -> ``None``. With *memo*, each head state is its number there
    (the same for the same state in every section of a call). *owners*: the owner codes at *firsts*, if
    known.
    """
    ctx = sec.ctx
    s = ctx.size
    buf = sec.buf
    special: Set[int] = {p for p in (ctx.huge_zero,) if p is not None}
    if ctx.zero_pfn is not None:
        special.update(range(ctx.zero_pfn, ctx.zero_pfn + (ctx.zero_nr or 1)))
    ok = [i for i in heads if i + 3 <= sec.n and sec.base + i not in special]
    states: Dict[int, object] = {0: None}
    if ok:
        small, large = _head_structs(sec.prog, ctx)
        offs = [i * s for i in ok]
        raws = list(zip(*(map(st.unpack_from, repeat(buf), offs) for st, _ in small.groups + large.groups)))
        if ctx.scheme == "page":
            # v6.1's folio_mapped() reads every page's _mapcount (_Head.mapped_any): per folio
            raws = [r + (sec.head(sec.base + i).mapped_any,) for r, i in zip(raws, ok)]
        if memo is not None:
            raws = list(map(memo.head_ids.setdefault, raws, memo.next_id))
        codes = [sec.base + i + 1 for i in ok]
        states.update(zip(codes, raws))
        states.update(zip(map(neg, codes), raws))
    for code in set(map(owner.__getitem__, firsts) if owners is None else owners).difference(states):
        states[code] = ("pfn", code)
    return states


def _key_values(sec: _Section, key: tuple, pfn: Optional[int]) -> Tuple[int, int, int]:
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
    h = _Head(pfn if pfn is not None else -1, flags, 0, _map3, _ref, raw_mc, 1, 0, 0, False, memcg, False)
    return sec._compute(h.pfn, h, True, flags, raw_mc, bool(covered), memcg, special)


_FILES = ("kpageflags", "kpagecount", "kpagecgroup")
"""The three files, in the order of :class:`KpageValues`' arrays and of a state's values."""


def _scan_for(prog: Program, ctx: _Ctx, memcg: bool) -> _Scan:
    key = "ptwalk_kpage_scan_memcg" if memcg else "ptwalk_kpage_scan_nomemcg"
    scan = prog.cache.get(key)
    if scan is None:
        scan = prog.cache[key] = _scan(ctx, memcg)
    return scan



def _chunks(prog: Program, start: int, end: int, which: Tuple[int, ...]) -> Iterator[Tuple[int, List[bytes]]]:
    """
    The files *which* (indexes into :data:`_FILES`) for PFNs ``[start, end)`` (cut at
    :func:`max_dump_pfn`), a section at a time: (first PFN, the values of each file as little-endian
    u64s; :func:`kpage_chunks` gives them in the kernel's byte order).
    """
    if start < 0 or end < start:
        raise ValueError(f"bad PFN range {start:#x}-{end:#x}")
    ctx = _ctx(prog)
    end = min(end, max_dump_pfn(prog))
    # memcg_data is read (a run boundary where it changes) only for kpagecgroup
    scan = _scan_for(prog, ctx, 2 in which)
    # A run's state (see _keys_at) holds for the whole call (a folio read per folio names it by PFN).
    memo = _Memo()
    pps = ctx.pages_per_section
    first_nr = start // pps
    states = _section_states(prog, first_nr, -(-end // pps)) if end > start else []
    pfn = start
    while pfn < end:
        nr = pfn // pps
        base = nr * pps
        online, smap = states[nr - first_nr]
        lo, hi = pfn - base, min(end, base + pps) - base
        if not online:
            yield pfn, [(_U64.pack(ctx.nopage) if f == 0 else bytes(8)) * (hi - lo) for f in which]
        else:
            valid = None
            if smap is not None:
                sub_ = pps // (len(smap) * 8) if len(smap) * 8 <= pps else pps
                bits = int.from_bytes(smap, "little")
                nsub = pps // sub_
                if bits & ((1 << nsub) - 1) != (1 << nsub) - 1:
                    valid = bytearray(pps)
                    for b in range(nsub):
                        if bits >> b & 1:
                            valid[b * sub_ : (b + 1) * sub_] = b"\1" * sub_
            yield pfn, _section_values(prog, ctx, scan, base, pps, bytes(valid) if valid is not None else None,
                                       memo, lo, hi, which)
        pfn = base + hi


def kpage_values(prog: Program, start: int, end: int) -> KpageValues:
    """
    /proc/kpageflags, kpagecount and kpagecgroup for PFNs ``[start, end)`` (cut at
    :func:`max_dump_pfn`, where the kernel's files end), computed in one pass.

    :raises ValueError: if the range is negative or reversed
    :raises drgn.FaultError: if an online section's ``struct page`` array is not in the dump
    """
    if start < 0 or end < start:
        raise ValueError(f"bad PFN range {start:#x}-{end:#x}")
    total = max(min(end, max_dump_pfn(prog)) - start, 0)
    # The arrays are made whole first and filled a section at a time: growing them section by section
    # costs more than computing the values.
    out = KpageValues(start, array("Q", [0]) * total, array("Q", [0]) * total, array("Q", [0]) * total)
    views = [memoryview(a).cast("B") for a in out[1:]]
    try:
        for pfn, data in _chunks(prog, start, end, (0, 1, 2)):
            at = (pfn - start) * 8
            for view, b in zip(views, data):
                view[at : at + len(b)] = b
    finally:
        for view in views:
            view.release()
    return out


def kpage_chunks(prog: Program, file: str, start_pfn: int, end_pfn: int) -> Iterator[Tuple[int, bytes]]:
    """
    One of the files (``"kpageflags"``, ``"kpagecount"`` or ``"kpagecgroup"``) for PFNs
    ``[start_pfn, end_pfn)`` a SPARSEMEM section at a time: (first PFN, its bytes: u64s in the dumped
    kernel's byte order, as the file's). For writing a large range out without holding all of it (a 1 TiB
    machine's /proc/kpageflags is 2 GiB).

    :raises ValueError: if *file* is not one of the three, or the range is negative or reversed (on the
        first item)
    :raises drgn.FaultError: if an online section's ``struct page`` array is not in the dump
    """
    return _file_chunks(prog, file, start_pfn, end_pfn, True)


def _file_chunks(prog: Program, file: str, start_pfn: int, end_pfn: int,
                 kernel_order: bool) -> Iterator[Tuple[int, bytes]]:
    """:func:`kpage_chunks`, or with *kernel_order* false the values as little-endian u64s (the same
    bytes on a little-endian kernel)."""
    if file not in _FILES:
        raise ValueError(f"no such file: {file!r} (one of {', '.join(_FILES)})")
    swap = kernel_order and is_big_endian(prog)
    for pfn, data in _chunks(prog, start_pfn, end_pfn, (_FILES.index(file),)):
        yield pfn, _swap_words(data[0]) if swap else data[0]


def _one_file(prog: Program, start: int, end: int, file: str, kernel_order: bool = True) -> bytes:
    # Each section's bytes are copied out and dropped at once (their memory is reused: a join of all of
    # them would hold twice the output); the buffer is sized once (grown write by write, it was copied
    # as it grew: a fifth of the time on a 10 GiB dump), and getvalue() hands it over.
    chunks = _file_chunks(prog, file, start, end, kernel_order)
    first = next(chunks, None)  # the range is checked here
    out = io.BytesIO()
    if first is not None:
        out.seek((min(end, max_dump_pfn(prog)) - start) * 8 - 1)
        out.write(b"\0")
        out.seek(0)
        out.write(first[1])
    for _, data in chunks:
        out.write(data)
    out.truncate()
    return out.getvalue()


def kpageflags(prog: Program, start_pfn: int, end_pfn: int) -> bytes:
    """
    What reading /proc/kpageflags at ``start_pfn * 8`` for ``end_pfn - start_pfn`` entries returns (cut at
    :func:`max_dump_pfn`, where the file ends): u64s in the dumped kernel's byte order (big-endian on
    s390x). Computes this file alone; :func:`kpage_values` computes the three in one pass, as values.

    :raises ValueError: if the range is negative or reversed
    :raises drgn.FaultError: if an online section's ``struct page`` array is not in the dump
    """
    return _one_file(prog, start_pfn, end_pfn, "kpageflags")


def kpagecount(prog: Program, start_pfn: int, end_pfn: int) -> bytes:
    """What reading /proc/kpagecount at ``start_pfn * 8`` returns (see :func:`kpageflags`)."""
    return _one_file(prog, start_pfn, end_pfn, "kpagecount")


def kpagecgroup(prog: Program, start_pfn: int, end_pfn: int) -> bytes:
    """What reading /proc/kpagecgroup at ``start_pfn * 8`` returns (see :func:`kpageflags`)."""
    return _one_file(prog, start_pfn, end_pfn, "kpagecgroup")
