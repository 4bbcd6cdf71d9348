# SPDX-License-Identifier: LGPL-2.1-or-later
"""
What the /proc/kpage* rules need of a kernel: the ``KPF_*`` bits, the page flags and types they copy or
test, and :class:`KpageContext` (the ``struct page`` layout of :func:`~drgn_ptwalk.page.page_layout` and
what only these files read: ``private``, ``memcg_data``, the zero pages, the section size ...), made once
per program.
"""

from typing import Dict, NamedTuple, Optional, Tuple

from drgn import Program, offsetof

from drgn_ptwalk._kernel import cached, const, kernel_facts, var
from drgn_ptwalk.page import PageLayout, swap_words

__all__ = ("KPF", "V61_MAPCOUNT_RESERVE", "V61_TYPES", "V61_TYPE_BASE", "KpageContext", "is_zero_pfn",
           "kpage_context", "mapcount_is_type", "page_type_is", "read_section_pages")

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
V61_TYPE_BASE = 0xF0000000
V61_TYPES = {"buddy": 0x80, "offline": 0x100, "table": 0x200}
V61_MAPCOUNT_RESERVE = -128

# include/linux/mmzone.h: "#define SUBSECTION_SHIFT 21" (f46edbd1b151 "mm/sparsemem: add helpers track
# active portions of a section at boot", v5.3), the same on every architecture.
SUBSECTION_SHIFT = 21


class KpageContext(NamedTuple):
    """What the kpage rules and scans read of a kernel (:func:`kpage_context`)."""

    lay: PageLayout
    """The ``struct page`` layout (flags, counts, mapping, compound info, the folio's fields); on a
    big-endian kernel the offsets of the word-swapped image (:attr:`PageLayout.swap_words`: the sections'
    bytes are swapped once per read, :func:`read_section_pages`, and the files' bytes swapped back to the
    kernel's byte order)."""
    scheme: str
    """:attr:`~drgn_ptwalk.generations.Generation.kpage_scheme`: ``"page"``, ``"folio"`` or
    ``"snapshot"``."""
    private: int
    """Offset of ``private`` (a free block's order)."""
    memcg: Optional[int]
    """Offset of ``memcg_data`` (``None`` without CONFIG_MEMCG: no /proc/kpagecgroup)."""
    pg: Dict[str, int]
    """``PG_*`` bit numbers of the flags the rules read (those this kernel has)."""
    copy: Tuple[Tuple[int, int], ...]
    """(KPF bit, PG bit) pairs copied."""
    pgty: Dict[str, int]
    """v6.11+: ``PGTY_*`` values (``page_type >> 24``); empty for v6.1's cleared-bit types."""
    pages_per_section: int
    pages_per_subsection: int
    """``PAGES_PER_SUBSECTION``: 2 MiB of pages (``SUBSECTION_SHIFT`` is 21 on every architecture, a
    ``#define`` the debug info does not hold), at most a section; a section has ``SUBSECTIONS_PER_SECTION``
    of them, fewer than its ``subsection_map`` has bits where the map is rounded up to whole longs (ppc64:
    8 subsections of a 16 MiB section)."""
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
    zero_nr: int = 1
    """How many zero pages there are from :attr:`zero_pfn`: ``(zero_page_mask >> PAGE_SHIFT) + 1`` where the
    architecture colours them (``__HAVE_COLOR_ZERO_PAGE``: s390, MIPS, LoongArch keep ``zero_page_mask``,
    and ``is_zero_pfn()`` is true for each), else 1."""


def is_zero_pfn(ctx: KpageContext, pfn: int) -> bool:
    """``is_zero_pfn()``: *pfn* is the zero page, or one of the coloured zero pages."""
    return ctx.zero_pfn is not None and 0 <= pfn - ctx.zero_pfn < (ctx.zero_nr or 1)


def page_type_is(ctx: KpageContext, raw: int, name: str) -> bool:
    """``Page<Type>()`` of a ``page_type``/``_mapcount`` value (*raw* unsigned 32-bit)."""
    if ctx.pgty:
        v = ctx.pgty.get(name)
        return v is not None and raw >> 24 == v
    bit = V61_TYPES[name]
    return raw & (V61_TYPE_BASE | bit) == V61_TYPE_BASE


def mapcount_is_type(raw: int) -> bool:
    """``page_mapcount_is_type(_mapcount + 1)`` (v6.11+): ``(int)_mapcount < PGTY_mapcount_underflow << 24``."""
    return (raw - (1 << 32) if raw >= 1 << 31 else raw) < -0x1000000


def read_section_pages(prog: Program, ctx: KpageContext, addr: int, size: int) -> bytes:
    """*size* bytes of ``struct page`` entries at *addr*: as read on a little-endian kernel; on a big-endian
    one each 8-byte word byte-swapped (see :attr:`KpageContext.lay`). No ``highest_memmap_pfn`` bound: a
    section's array is read whole."""
    buf = prog.read(addr, size)
    return swap_words(buf) if ctx.lay.swap_words else buf


_PG_NAMES = ("locked", "error", "referenced", "uptodate", "dirty", "lru", "active", "slab", "writeback",
             "reclaim", "swapbacked", "swapcache", "unevictable", "mlocked", "uncached", "hwpoison",
             "reserved", "mappedtodisk", "owner_2", "private", "private_2", "owner_priv_1", "arch_1",
             "arch_2", "arch_3", "idle", "head", "double_map", "large_rmappable")


def kpage_context(prog: Program) -> KpageContext:
    """The :class:`KpageContext` of *prog* (made once)."""
    return cached(prog, "ptwalk_kpage_ctx", _context, prog)


def _context(prog: Program) -> KpageContext:
    facts = kernel_facts(prog)
    gen = facts.generation
    lay = facts.layout
    page = prog.type("struct page")
    pg: Dict[str, int] = {}
    for name in _PG_NAMES:
        v = const(prog, "PG_" + name)
        if v is not None:
            pg[name] = v
    scheme = gen.kpage_scheme
    copy = tuple((KPF[k], pg[p]) for k, p in (_COPY_V61 if scheme == "page" else _COPY_FOLIO) if p in pg)
    pgty: Dict[str, int] = {}
    if gen.hugetlb_page_type:
        for name in ("buddy", "offline", "table", "hugetlb", "slab"):
            v = const(prog, "PGTY_" + name)
            if v is not None:
                pgty[name] = v
    memcg = offsetof(page, "memcg_data") if page.has_member("memcg_data") else None
    objexts = const(prog, "MEMCG_DATA_OBJEXTS")
    if objexts is None:
        objexts = const(prog, "MEMCG_DATA_OBJCGS") or 0
    nr_flags = const(prog, "__NR_OBJEXTS_FLAGS") or const(prog, "__NR_MEMCG_DATA_FLAGS") or 4
    # Zero pages: zero_page_pfn ("mm: rename my_zero_pfn() to zero_pfn()", v7.x; hash unconfirmed), zero_pfn.
    zp = var(prog, "zero_page_pfn") or var(prog, "zero_pfn")
    zero_pfn = zp.value_() if zp is not None else None
    shift = facts.page_shift
    # Coloured zero pages (__HAVE_COLOR_ZERO_PAGE): one per colour, zero_page_mask covering them.
    zmask = var(prog, "zero_page_mask")
    zero_nr = (zmask.value_() >> shift) + 1 if zmask is not None else 1
    huge_zero: Optional[int] = None
    if gen.kpage_scheme == "snapshot":
        v = var(prog, "huge_zero_pfn")
        if v is not None and v.value_() != (1 << 64) - 1:
            huge_zero = v.value_()
    else:
        for name in ("huge_zero_folio", "huge_zero_page"):
            v = var(prog, name)
            if v is not None:
                if v.value_():
                    huge_zero = (v.value_() - lay.vmemmap) // lay.size
                break
    try:
        pmd_shift = prog["PMD_SHIFT"].value_()
    except (KeyError, LookupError):
        # PMD_SHIFT is a macro; on powerpc it depends on the MMU (PTE_INDEX_SIZE is __pte_index_size:
        # 5 bits with 64K radix pages), so the decoder's geometry, not PAGE_SHIFT alone, gives it.
        from drgn_ptwalk.entry import PtLevel

        try:
            pmd_shift = facts.decoder.level_shift(PtLevel.PMD)
        except (NotImplementedError, ValueError, LookupError):
            pmd_shift = shift + (shift - 3)
    try:
        section_bits = prog["SECTION_SIZE_BITS"].value_()
    except (KeyError, LookupError):
        # drgn 0.0.31 has no SECTION_SIZE_BITS object; the kernel's VMCOREINFO has the number.
        bits = facts.number("SECTION_SIZE_BITS")
        if bits is None:
            raise LookupError("SECTION_SIZE_BITS: neither drgn nor the kernel's VMCOREINFO has it") from None
        section_bits = bits
    # MAX_PAGE_ORDER (v6.8+) / MAX_ORDER - 1 (v6.1: MAX_ORDER is the exclusive bound) are macros:
    # the free_area array has one entry per order.
    max_order = prog.type("struct zone").member("free_area").type.length - 1
    hvo = False
    key = var(prog, "hugetlb_optimize_vmemmap_key")
    if key is not None and not gen.compound_info_mask:
        try:
            hvo = key.key.enabled.counter.value_() > 0
        except (AttributeError, LookupError):
            hvo = True
    return KpageContext(
        lay=lay,
        scheme=scheme,
        private=offsetof(page, "private"),
        memcg=memcg,
        pg=pg,
        copy=copy,
        pgty=pgty,
        pages_per_section=1 << (section_bits - shift),
        pages_per_subsection=1 << (min(SUBSECTION_SHIFT, section_bits) - shift),
        max_order=max_order,
        zero_pfn=zero_pfn,
        huge_zero=huge_zero,
        hpage_pmd_nr=1 << (pmd_shift - shift),
        nopage=0 if gen.kpage_holes_zero else 1 << KPF["NOPAGE"],
        hvo=hvo,
        memcg_objexts=objexts,
        memcg_kmem=const(prog, "MEMCG_DATA_KMEM") or 0,
        memcg_mask=nr_flags - 1,
        css_online=const(prog, "CSS_ONLINE") or 2,
        zero_nr=zero_nr,
    )
