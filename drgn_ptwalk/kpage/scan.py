# SPDX-License-Identifier: LGPL-2.1-or-later
"""
How the pages of a SPARSEMEM section are cut into runs of pages with equal values (see
:mod:`drgn_ptwalk.kpage`): the fields compared (:class:`Scan`), the two back-ends that compare them
(:class:`NumpyScan`, with numpy: each field read is copied out of the section by one strided pass and
every page compared with the one before it; :class:`BytesScan`, without: a stretch of pages is first
tested whole, and only stretches that differ are scanned byte lane by byte lane), chosen once per call
(:func:`backend`), and :func:`section_values`, the values of a section's pages from its runs.
"""

import struct
from array import array
from itertools import compress, count, repeat
from operator import gt, is_, itemgetter, mul, neg, sub
from typing import Dict, List, NamedTuple, Optional, Set, Tuple, Type, Union

from drgn import Program

from drgn_ptwalk._kernel import cached
from drgn_ptwalk.kpage.context import V61_TYPE_BASE, V61_TYPES, KpageContext, page_type_is
from drgn_ptwalk.kpage.rules import Section, head_structs, key_values

try:
    import numpy as _np
except ImportError:  # the same scans without it, on bytes and memoryviews (~1.5x the time on ELF dumps)
    _np = None  # type: ignore[assignment]

__all__ = ("BytesScan", "Memo", "NumpyScan", "Scan", "SectionScan", "backend", "dense", "head_states", "keys_at",
           "make_scan", "run_starts", "scan_for", "section_values")

_U64 = struct.Struct("<Q")

Covered = Union[bytes, bytearray]
"""One byte per page of a section, non-zero in free buddy blocks."""

_BIT0 = bytes(x & 1 for x in range(256))

def find_all(col: bytes, value: int) -> List[int]:
    out = []
    i = col.find(value)
    while i >= 0:
        out.append(i)
        i = col.find(value, i + 1)
    return out


def buddy_heads_np(ctx: KpageContext, cols: "Columns") -> List[int]:
    """:func:`buddy_heads_bytes` with numpy, on the section's ``page_type`` column."""
    raw, tmp, hit = cols.mapcount, cols.scratch32, cols.work.bools[0][: len(cols.mapcount)]
    if ctx.pgty:
        _np.equal(_np.right_shift(raw, _np.uint32(24), out=tmp), _np.uint32(ctx.pgty["buddy"]), out=hit)
    else:
        bits = _np.uint32(V61_TYPE_BASE | V61_TYPES["buddy"])
        _np.equal(_np.bitwise_and(raw, bits, out=tmp), _np.uint32(V61_TYPE_BASE), out=hit)
    return _np.flatnonzero(hit).tolist()


def buddy_heads_bytes(ctx: KpageContext, buf: bytes, n: int) -> List[int]:
    """Indexes of the pages of *buf* that may be ``PageBuddy()`` (a superset; C-level scans of the
    ``page_type`` bytes): v6.11+ top byte ``PGTY_buddy``; v6.1 top nibble 0xf and bit 7 clear."""
    s = ctx.lay.size
    top = buf[ctx.lay.mapcount + 3 :: s]
    if ctx.pgty:
        return find_all(top, ctx.pgty["buddy"])
    low = buf[ctx.lay.mapcount :: s].translate(_BIT7_CLEAR)
    hi = top.translate(_TOP_NIBBLE_F)
    both = (int.from_bytes(low, "little") & int.from_bytes(hi, "little")).to_bytes(n, "little")
    return find_all(both, 1)


_BIT7_CLEAR = bytes(int(not x & 0x80) for x in range(256))
_TOP_NIBBLE_F = bytes(int(x >= 0xF0) for x in range(256))


class Scan(NamedTuple):
    """How :func:`run_starts` compares the pages of a section (derived from a :class:`KpageContext`)."""

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


def make_scan(ctx: KpageContext, memcg: bool = True) -> Scan:
    mask = 0
    for bit in ctx.pg.values():
        mask |= 1 << bit
    flag_lanes: List[Tuple[int, Optional[bytes]]] = []
    for b in range(8):
        m = mask >> (8 * b) & 0xFF
        if m:
            flag_lanes.append((ctx.lay.flags + b, None if m == 0xFF else bytes(x & m for x in range(256))))
    fields = [(ctx.lay.flags, "Q", tuple(flag_lanes)), (ctx.lay.mapping, "Q", ((ctx.lay.mapping, _AND3),)),
              (ctx.lay.mapcount, "I", tuple((ctx.lay.mapcount + b, None) for b in range(4)))]
    if memcg and ctx.memcg is not None:
        fields.append((ctx.memcg, "Q", tuple((ctx.memcg + b, None) for b in range(8))))
    refcount = (ctx.lay.refcount, "I", tuple((ctx.lay.refcount + b, None) for b in range(4)))
    hb = ctx.pg["head"]
    head = (ctx.lay.flags + hb // 8, bytes((x >> (hb % 8)) & 1 for x in range(256)))
    return Scan(tuple(fields), refcount, head, memcg and ctx.memcg is not None, mask)


_DENSE_MIN = 256
"""A range of pages with changes this long or shorter is scanned byte lane by byte lane (:func:`dense`);
a longer one is halved first, as most of it is usually one run."""
_DENSE_GAP = 256
"""Ranges with changes fewer pages apart than this are scanned as one (a scan's fixed cost, in pages)."""
_SHORT = 16
"""Stretches this long or shorter are not compared whole first (a compare's fixed cost, in pages)."""


class Work:
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
        """Owner codes (see :func:`section_values`), as the code that follows the scans reads them."""
        self.owner = _np.frombuffer(self.owner_array, dtype=_np.int64)
        """The same memory, written by the numpy scans."""
        self.owners_set = False
        """:attr:`owner` is not all 0."""


class Columns:
    """One section's ``struct page`` fields that the scans read, as numpy arrays (with numpy installed):
    each made once, by one strided pass over the section's bytes, into *work*'s arrays (valid until the
    next section's columns are made)."""

    def __init__(self, ctx: KpageContext, scan: Scan, buf: bytes, work: Optional[Work] = None) -> None:
        n = len(buf) // ctx.lay.size
        if work is None or work.n < n:
            work = Work(n)
        self.work = work
        q = _np.frombuffer(buf, dtype="<u8").reshape(n, ctx.lay.size // 8)
        u64 = [a[:n] for a in work.u64]
        u32 = [a[:n] for a in work.u32]
        # The narrowest columns that hold what is read (less memory for every later pass over them):
        # the low half of flags when no bit read is above it (the page flags proper, PG_* < 32 so far),
        # the low byte of mapping.
        if scan.flag_mask >> 32:
            self.flags = _np.bitwise_and(q[:, ctx.lay.flags // 8], _np.uint64(scan.flag_mask), out=u64[0])
        else:
            w = _np.frombuffer(buf, dtype="<u4").reshape(n, ctx.lay.size // 4)
            self.flags = _np.bitwise_and(w[:, ctx.lay.flags // 4], _np.uint32(scan.flag_mask), out=u32[3])
        """``flags``, the bits any rule reads."""
        b = _np.frombuffer(buf, dtype=_np.uint8).reshape(n, ctx.lay.size)
        self.mapping = _np.bitwise_and(b[:, ctx.lay.mapping], _np.uint8(3), out=work.u8[:n])
        """The type bits of ``mapping``."""
        self.mapcount = u32[0]
        self._refcount = u32[1]
        self._both: Optional["_np.ndarray"] = None
        if ctx.lay.refcount == ctx.lay.mapcount + 4 and ctx.lay.mapcount % 8 == 0:
            # _mapcount and _refcount side by side (every 64-bit layout so far): one pass reads both
            self._both = u64[2]
            _np.copyto(self._both, q[:, ctx.lay.mapcount // 8])
            _np.copyto(self.mapcount, self._both, casting="unsafe")  # the low half
        else:
            w = _np.frombuffer(buf, dtype="<u4").reshape(n, ctx.lay.size // 4)
            _np.copyto(self.mapcount, w[:, ctx.lay.mapcount // 4])
            _np.copyto(self._refcount, w[:, ctx.lay.refcount // 4])
        self._refcount_made = self._both is None
        self.memcg = None
        if scan.memcg and ctx.memcg is not None:  # (scan.memcg: the kernel has memcg_data)
            self.memcg = u64[3]
            _np.copyto(self.memcg, q[:, ctx.memcg // 8])
        self.scratch64 = u64[4]
        self.scratch32 = u32[2]
        self._info = u64[5]
        self._buf = q
        self._info_off = ctx.lay.info // 8
        self.owner: Optional["_np.ndarray"] = None
        """The owner code of every page, once :func:`section_values` has set it (a change starts a run)."""

    def info(self) -> "_np.ndarray":
        """The word that holds a tail's head (``compound_head``/``compound_info``) of every page."""
        _np.copyto(self._info, self._buf[:, self._info_off])
        return self._info

    @property
    def refcount(self) -> "_np.ndarray":
        if not self._refcount_made and self._both is not None:
            _np.copyto(self._refcount, _np.right_shift(self._both, _np.uint64(32), out=self.scratch64),
                       casting="unsafe")
            self._refcount_made = True
        return self._refcount


def run_starts(ctx: KpageContext, scan: Scan, buf: bytes, known: List[int],
               covered: Optional[Covered] = None) -> List[int]:
    """:func:`run_starts_np` or :func:`run_starts_bytes`, as :func:`backend` chooses."""
    if backend() is NumpyScan:
        return run_starts_np(ctx, scan, buf, known, covered, Columns(ctx, scan, buf))
    return run_starts_bytes(ctx, scan, buf, known, covered)


def run_starts_np(ctx: KpageContext, scan: Scan, buf: bytes, known: List[int], covered: Optional[Covered],
                  cols: Columns) -> List[int]:
    """
    Indexes where a run of pages with equal :attr:`Scan.fields` starts (and equal ``_refcount`` where
    *covered* — one byte per page, non-zero in free blocks — says so), *known* included (sorted: the
    first and the end of the pages looked at, and where the folio or free-block coverage changes); the end
    is the last one returned. With numpy (*cols*: the section's columns), every page is compared with the
    one before it, field by field, at C speed.
    """
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


def run_starts_bytes(ctx: KpageContext, scan: Scan, buf: bytes, known: List[int],
                      covered: Optional[Covered] = None) -> List[int]:
    """
    Indexes where a run of pages with equal :attr:`Scan.fields` starts (and equal ``_refcount`` where
    *covered* — one byte per page, non-zero in free blocks — says so), *known* included (sorted: the
    first and the end of the pages looked at, and where the folio or free-block coverage changes); the end
    is the last one returned. Each stretch between two known starts is checked whole at C speed, first as
    equal ``struct page`` bytes (free blocks, reserved ranges), then field by field (strided
    ``memoryview`` compares); only stretches that differ are scanned for where.
    """
    s = ctx.lay.size
    mv = memoryview(buf)
    cols = [(mv.cast(fmt)[off // struct.calcsize(fmt) :: s // struct.calcsize(fmt)], lanes)  # type: ignore[call-overload]
            for off, fmt, lanes in scan.fields]
    roff, rfmt, rlanes = scan.refcount
    rsize = struct.calcsize(rfmt)
    rc = mv.cast(rfmt)[roff // rsize :: s // rsize]  # type: ignore[call-overload]

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
            found.update(dense(lanes, buf, s, a, b))
            continue
        mid = (a + b) // 2
        found.add(mid)
        bad.extend([x, y] for x, y in ((a, mid), (mid, b)) if not uniform(x, y))
    return sorted(found)


def dense(lanes: List[Tuple[int, Optional[bytes]]], buf: bytes, s: int, a: int, b: int) -> List[int]:
    """Pages ``p`` of ``(a, b)`` whose *lanes* (see :attr:`Scan.words`) differ from page ``p - 1``'s:
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


class Memo:
    """What one call keeps across sections: the values of each run state, packed, and a small number for
    each distinct head state (a run's state then hashes as a flat tuple of ints)."""

    def __init__(self) -> None:
        self.values: Dict[tuple, Tuple[bytes, bytes, bytes]] = {}
        self.head_ids: Dict[tuple, int] = {}
        self.next_id = count()
        self.work: Optional[Work] = None
        """The numpy scans' arrays (see :class:`Work`)."""


def owners_bytes(sec: Section, buf: bytes, info_q: memoryview, known: List[int],
            head: Tuple[int, bytes]) -> Tuple[array, List[int]]:
    """
    The owner code of every page of a section (see :func:`section_values`) and the indexes of its
    folios' heads, with bytes scans: where the folio changes is added to *known*.
    """
    ctx, base, n, s = sec.ctx, sec.base, sec.n, sec.ctx.lay.size
    owner = array("q", [0]) * n
    head_at = find_all(buf[head[0] :: s].translate(head[1]), 1)
    # Tails follow their head: a section with no head has tails only if its first page is one (a folio
    # from an earlier section, e.g. a 1 GiB hugetlb page).
    if head_at or info_q[0] & 1:
        tails = buf[ctx.lay.info :: s].translate(_BIT0)
    else:
        tails = b""
    heads: List[int] = []
    for i in head_at:
        if not tails[i]:
            owner[i] = -(base + i + 1)
            known += (i, i + 1)
            if ctx.hvo and i + 1 < n and info_q[i + 1] & 1:
                real = (info_q[i + 1] - 1 - ctx.lay.vmemmap) // s
                if real != base + i:
                    owner[i] = real + 1  # an HVO fake head: a tail of that head
                    continue
            heads.append(i)
    i = tails.find(1)
    while i >= 0:
        info = info_q[i]
        addr = ctx.lay.vmemmap + (base + i) * s
        head_addr = addr & info if ctx.lay.info_is_mask else info - 1
        hp = (head_addr - ctx.lay.vmemmap) // s
        end = tails.find(0, i)
        if end < 0:
            end = n
        if ctx.lay.info_is_mask:
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


def owners_np(ctx: KpageContext, cols: Columns, work: Work, base: int, n: int,
               first_is_tail: int) -> Tuple[array, List[int]]:
    """:func:`owners_bytes` with numpy: each tail's head from its own word (as ``page_folio()`` reads it), the
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
    s = ctx.lay.size
    vmemmap = _np.uint64(ctx.lay.vmemmap)
    # Every page's code from its word, kept for the tails (whole-array operations: tails are often most of
    # a section, and indexing them costs more).
    tail = _np.not_equal(_np.bitwise_and(info, _np.uint64(1), out=cols.scratch64), 0, out=hit)
    if ctx.lay.info_is_mask:
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


def section_values(prog: Program, ctx: KpageContext, scan: Scan, base: int, n: int, valid: Optional[bytes],
                   memo: Memo, lo: int, hi: int, which: Tuple[int, ...],
                   scanner: Type["SectionScan"]) -> List[bytes]:
    """
    The bytes of the files *which* (indexes into :data:`_FILES`) for pages ``[lo, hi)`` of one section:
    pages are cut into runs whose fields (flags, mapping type bits, refcount, mapcount/page type,
    memcg_data, folio, free-buddy coverage) are all equal, found at C speed; each distinct run state is
    computed once (*memo*: the values of each state, packed), and the runs are expanded into the files'
    bytes at C speed too (no Python per run once its state is known). *scanner*: the back-end
    (:func:`backend`).
    """
    sec = Section(prog, ctx, base, n, which)
    s = ctx.lay.size
    buf = sec.buf
    mv = memoryview(buf)
    q = mv.cast("Q")
    w = mv.cast("I")
    info_q = q[ctx.lay.info // 8 :: s // 8]
    sc = scanner(sec, scan, memo)
    # Which folio each page belongs to: 0 = its own (order 0), -(pfn + 1) = a head, head pfn + 1 = a tail.
    # known: where owner or covered may change.
    known = [0, n]
    owner, heads = sc.owners(info_q, known)

    # Free buddy blocks: is_free_buddy_page() for pages not PageBuddy themselves.
    covered = bytearray(n)
    for i in sc.buddy_heads():
        if page_type_is(ctx, w[i * s // 4 + ctx.lay.mapcount // 4], "buddy"):
            order = _U64.unpack_from(buf, i * s + ctx.private)[0]
            pfn = base + i
            tz = (pfn & -pfn).bit_length() - 1 if pfn else ctx.max_order
            k = min(order, tz, ctx.max_order)
            covered[i : i + (1 << k)] = b"\1" * len(covered[i : i + (1 << k)])
            # the head page (PageBuddy, its order) alone, then its tails (equal struct pages as a rule)
            known += (i, min(i + 1, n), min(i + (1 << k), n))

    starts = sc.run_starts( sorted({x for x in known if lo < x < hi} | {lo, hi}), covered)
    cols = (q[ctx.lay.flags // 8 :: s // 8], mv[ctx.lay.mapping :: s], w[ctx.lay.refcount // 4 :: s // 4],
            w[ctx.lay.mapcount // 4 :: s // 4],
            q[ctx.memcg // 8 :: s // 8] if ctx.memcg is not None and scan.memcg else None)
    firsts = starts[:-1]
    keys = sc.keys(cols, owner, covered, firsts, heads)
    known_values = memo.values
    values = list(map(known_values.get, keys))
    if None in values:
        for r in compress(range(len(values)), map(is_, values, repeat(None))):
            key = keys[r]
            vals = known_values.get(key)  # computed for an earlier run of this section
            if vals is None:
                # the values of a state are computed from one run of it (its folio's head read)
                f, c, g = key_values(sec, (owner[firsts[r]],) + key[2:], None)
                vals = known_values[key] = (_U64.pack(f), _U64.pack(c), _U64.pack(g))
            values[r] = vals
    lengths = list(map(sub, starts[1:], firsts))
    out = [b"".join(map(mul, map(itemgetter(f), values), lengths)) for f in which]  # type: ignore[arg-type]
    # PFN-dependent checks: the zero page and the huge zero folio.
    special: Set[int] = set()
    if ctx.zero_pfn is not None:
        special.update(range(ctx.zero_pfn, ctx.zero_pfn + (ctx.zero_nr or 1)))
    if ctx.huge_zero is not None:
        special.update(range(ctx.huge_zero, ctx.huge_zero + ctx.hpage_pmd_nr))
    patch = sorted(pfn - base for pfn in special if lo <= pfn - base < hi)
    if patch or (valid is not None and valid.find(0, lo, hi) >= 0):
        edit = [bytearray(b) for b in out]
        for i in patch:
            vals3 = key_values(sec, keys_at(cols, owner, covered, [i])[0], base + i)
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


def keys_at(cols: Tuple[memoryview, memoryview, memoryview, memoryview, Optional[memoryview]], owner: array,
             covered: bytearray, idx: List[int], heads: Optional[Dict[int, object]] = None) -> List[tuple]:
    """
    The state of pages *idx* of a section, one tuple each: the fields their values are computed from
    (see :func:`key_values`) after the page's owner code (see :func:`section_values`), or, with *heads*
    (:func:`head_states`), after (is a tail, the state of its folio's head) — PFN-free, so the pages of
    folios alike share one state. *cols* are the strided views of the section's ``flags``, ``mapping``
    (low byte), ``_refcount``, ``_mapcount`` and ``memcg_data`` (``None``: 0, without CONFIG_MEMCG or
    when kpagecgroup is not wanted).
    """
    flags, mapping, refcount, mapcount, memcg = cols
    owners = list(map(owner.__getitem__, idx))
    lead: tuple = (owners,) if heads is None else (map(gt, owners, repeat(0)), map(heads.__getitem__, owners))
    # map()s of __getitem__: the tuples are made at C speed (a list comprehension costs ~1 µs per run).
    # _refcount is read only in free blocks (see Scan.refcount), where covered is 1: elsewhere it is 0
    # here, as a run there may hold pages with other counts.
    return list(zip(*lead, map(flags.__getitem__, idx), map(_AND3.__getitem__, map(mapping.__getitem__, idx)),
                    map(mul, map(refcount.__getitem__, idx), map(covered.__getitem__, idx)),
                    map(mapcount.__getitem__, idx), map(covered.__getitem__, idx),
                    map(memcg.__getitem__, idx) if memcg is not None else repeat(0)))


def keys_np(cols: Columns, owners: List[int], covered: bytearray, at: "_np.ndarray",
             heads: Dict[int, object]) -> List[tuple]:
    """:func:`keys_at` with *heads* for the pages *at* (their owner codes *owners*), the fields taken from
    numpy *cols* (``flags`` masked: the bits no rule reads make no state of their own)."""
    free = _np.frombuffer(covered, dtype=_np.uint8)[at]
    free_l = free.tolist()
    refs = (cols.refcount[at] * free).tolist() if any(free_l) else repeat(0)
    return list(zip(map(gt, owners, repeat(0)), map(heads.__getitem__, owners), cols.flags[at].tolist(),
                    cols.mapping[at].tolist(), refs, cols.mapcount[at].tolist(), free_l,
                    cols.memcg[at].tolist() if cols.memcg is not None else repeat(0)))


def head_states(sec: Section, heads: List[int], owner: array, firsts: List[int],
                 memo: Optional[Memo] = None, owners: Optional[List[int]] = None) -> Dict[int, object]:
    """
    Owner code -> the state of the folio's head, for the owners of the runs starting at *firsts*: the
    raw fields :meth:`Section._read_head` reads (a head's values and its tails' depend on them alone,
    besides the zero pages' PFNs), unpacked at C speed for the *heads* of this section (indexes); for a
    folio whose head is elsewhere, near the section's end or a zero page: ``("pfn", code)``, one state per
    folio. 0 (a page that is its own folio) -> ``None``. With *memo*, each head state is its number there
    (the same for the same state in every section of a call). *owners*: the owner codes at *firsts*, if
    known.
    """
    ctx = sec.ctx
    s = ctx.lay.size
    buf = sec.buf
    special: Set[int] = {p for p in (ctx.huge_zero,) if p is not None}
    if ctx.zero_pfn is not None:
        special.update(range(ctx.zero_pfn, ctx.zero_pfn + (ctx.zero_nr or 1)))
    ok = [i for i in heads if i + 3 <= sec.n and sec.base + i not in special]
    states: Dict[int, object] = {0: None}
    if ok:
        small, large = head_structs(sec.prog, ctx)
        offs = [i * s for i in ok]
        raws = list(zip(*(map(st.unpack_from, repeat(buf), offs) for st, _ in small.groups + large.groups)))
        if ctx.scheme == "page":
            # v6.1's folio_mapped() reads every page's _mapcount (Head.mapped_any): per folio
            raws = [r + (sec.head(sec.base + i).mapped_any,) for r, i in zip(raws, ok)]
        if memo is not None:
            raws = list(map(memo.head_ids.setdefault, raws, memo.next_id))
        codes = [sec.base + i + 1 for i in ok]
        states.update(zip(codes, raws))
        states.update(zip(map(neg, codes), raws))
    for code in set(map(owner.__getitem__, firsts) if owners is None else owners).difference(states):
        states[code] = ("pfn", code)
    return states


def scan_for(prog: Program, ctx: KpageContext, memcg: bool) -> Scan:
    """:func:`make_scan` of *ctx*, once per program (with or without ``memcg_data``)."""
    return cached(prog, "ptwalk_kpage_scan_memcg" if memcg else "ptwalk_kpage_scan_nomemcg", make_scan, ctx, memcg)


class SectionScan:
    """A scan back-end: finds one section's folios, free blocks, runs and run states (*sec*'s pages, the
    fields of *scan*; *memo* kept across the sections of a call)."""

    def __init__(self, sec: Section, scan: Scan, memo: Memo) -> None:
        self.sec = sec
        self.scan = scan
        self.memo = memo

    def owners(self, info_q: memoryview, known: List[int]) -> Tuple[array, List[int]]:
        """The owner code of every page (see :func:`section_values`) and the indexes of the folio heads;
        where the folio changes may be added to *known*."""
        raise NotImplementedError

    def buddy_heads(self) -> List[int]:
        """Indexes of the pages that may be ``PageBuddy()`` (a superset)."""
        raise NotImplementedError

    def run_starts(self, known: List[int], covered: Optional[Covered]) -> List[int]:
        """:func:`run_starts_bytes` / :func:`run_starts_np` of the section."""
        raise NotImplementedError

    def keys(self, views: Tuple[memoryview, memoryview, memoryview, memoryview, Optional[memoryview]],
             owner: array, covered: bytearray, firsts: List[int], heads: List[int]) -> List[tuple]:
        """The state of the runs starting at *firsts* (see :func:`keys_at`)."""
        raise NotImplementedError


class BytesScan(SectionScan):
    """The scans on bytes and ``memoryview``\\ s (without numpy)."""

    def owners(self, info_q: memoryview, known: List[int]) -> Tuple[array, List[int]]:
        return owners_bytes(self.sec, self.sec.buf, info_q, known, self.scan.head)

    def buddy_heads(self) -> List[int]:
        return buddy_heads_bytes(self.sec.ctx, self.sec.buf, self.sec.n)

    def run_starts(self, known: List[int], covered: Optional[Covered]) -> List[int]:
        return run_starts_bytes(self.sec.ctx, self.scan, self.sec.buf, known, covered)

    def keys(self, views: Tuple[memoryview, memoryview, memoryview, memoryview, Optional[memoryview]],
             owner: array, covered: bytearray, firsts: List[int], heads: List[int]) -> List[tuple]:
        return keys_at(views, owner, covered, firsts, head_states(self.sec, heads, owner, firsts, self.memo))


class NumpyScan(SectionScan):
    """The scans with numpy: the section's fields as columns (:class:`Columns`), each made by one strided
    pass."""

    def __init__(self, sec: Section, scan: Scan, memo: Memo) -> None:
        super().__init__(sec, scan, memo)
        self.cols = Columns(sec.ctx, scan, sec.buf, memo.work)
        memo.work = self.cols.work

    def owners(self, info_q: memoryview, known: List[int]) -> Tuple[array, List[int]]:
        sec = self.sec
        return owners_np(sec.ctx, self.cols, self.cols.work, sec.base, sec.n, info_q[0] & 1)

    def buddy_heads(self) -> List[int]:
        return buddy_heads_np(self.sec.ctx, self.cols)

    def run_starts(self, known: List[int], covered: Optional[Covered]) -> List[int]:
        return run_starts_np(self.sec.ctx, self.scan, self.sec.buf, known, covered, self.cols)

    def keys(self, views: Tuple[memoryview, memoryview, memoryview, memoryview, Optional[memoryview]],
             owner: array, covered: bytearray, firsts: List[int], heads: List[int]) -> List[tuple]:
        npc = self.cols
        at = _np.array(firsts, dtype=_np.intp)
        # (a section without folios has every owner code 0: npc.owner is not set)
        owners = npc.owner[at].tolist() if npc.owner is not None else [0] * len(firsts)
        return keys_np(npc, owners, covered, at, head_states(self.sec, heads, owner, firsts, self.memo, owners))


def backend() -> Type[SectionScan]:
    """The scan back-end: :class:`NumpyScan` with numpy installed, else :class:`BytesScan` (the same
    values; tests/test_kpage.py checks it on every reference dump)."""
    return BytesScan if _np is None else NumpyScan
