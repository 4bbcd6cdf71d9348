# SPDX-License-Identifier: LGPL-2.1-or-later
"""
pt_range_walk: what the page tables of an mm really hold over a range.

A Python take on the kernel RFC "Implement a new generic pagewalk API"
(linux-mm, April 2026): walk ``[start, end)`` of a ``struct mm_struct *`` and
yield :class:`~drgn_ptwalk.entry.PtEntry` objects in address order, covering
the range without gaps or overlaps, typed NONE / FOLIO / MARKER / PFN / SWAP
/ MIGRATION / DEVICE / HWPOISON (and ERROR for tables that cannot be read).

Design:

* The range is cut at VMA boundaries first; every entry lies in one VMA (or
  in a gap between VMAs, ``vma=None``). Gaps are walked too, so stray
  entries outside any VMA are seen; normally they are one NONE entry each.
  ``init_mm`` has no VMAs: kernel ranges come back with ``vma=None``, and
  runs of consecutive PFNs there are not cut at folio boundaries.
* Holes (``pte_none()``, empty or missing tables) are coalesced into one NONE
  entry per hole per VMA.
* Each table page is read with one ``prog.read()`` and decoded with
  ``struct`` when its slots are needed one by one; the last table of each
  level is cached, so neighbouring VMAs do not read it again. Bit positions
  live in :mod:`drgn_ptwalk.arch`.
* Batching (``batch=True``): consecutive PTEs whose raw values differ only by
  consecutive PFNs (or swap offsets) form one entry, split where the folio
  changes (as ``folio_pte_batch()``; ``split_folios=False`` does not split);
  identical markers form one entry. All other bits must be equal, so every
  page of an entry has the same state.
* Speed: the cost is per table, not per slot, wherever it can be. A PTE
  table (or the part of it in the range) that is one run is recognised by
  comparing its bytes, as one integer, with the run it would be; other
  tables are scanned by C code (``min``, ``map``, slices) and only run
  boundaries cost Python steps. Entries reach the caller through
  ``itertools.chain`` over the walker's output list.
  arm64 contiguous blocks are read as the kernel's ``ptep_get()`` /
  ``huge_ptep_get()`` read them (young/dirty ORed over the block) and a whole
  contiguous PMD block is one entry (``folio_pmd_batch()``).
* The walk is bounded by the table structure: every step advances through a
  table slot, so it always ends.
"""

import struct
from array import array
from itertools import chain, compress, repeat
from operator import and_ as _and
from operator import ne as _ne
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from drgn import FaultError, Object, Program, ProgramFlags

from drgn_ptwalk.arch import LEAF, NONE, SWAP, TABLE, ArchDecoder, get_decoder
from drgn_ptwalk.entry import PtEntry, PtFlag, PtLevel, PtType
from drgn_ptwalk.errors import ArgumentError
from drgn_ptwalk.page import folio_runs, highest_memmap_pfn, huge_zero_pfn
from drgn_ptwalk.swapinfo import SwapTypes, classify_swp, swap_types
from drgn_ptwalk.vmatree import LIVE_RETRIES

__all__ = (
    "PtEntry",
    "PtFlag",
    "PtLevel",
    "PtType",
    "mm_segments",
    "pt_range_walk",
    "table_of",
    "walk_tables",
)

# The walker makes entries with tuple.__new__ from positional tuples (no
# call per entry on the hot paths), in this field order: checked here, so
# that reordering PtEntry's fields fails at import instead of shifting values.
_new = tuple.__new__
_FIELD_ORDER = ("type", "level", "start", "end", "raw", "pfn", "cont", "vma", "swap_type", "swap_offset", "kind",
                "table", "reason", "decoder", "values", "slot")
if PtEntry._fields != _FIELD_ORDER:  # pragma: no cover
    raise ImportError(f"PtEntry fields {PtEntry._fields} are not the order walk.py builds them in")
# Enum members bound once: attribute access on an Enum class is slow, and
# the PTE loop is the hot path.
_NONE_T = PtType.NONE
_FOLIO_T = PtType.FOLIO
_PFN_T = PtType.PFN
_MARKER_T = PtType.MARKER
_HWPOISON_T = PtType.HWPOISON
_ERROR_T = PtType.ERROR
_PTE_L = PtLevel.PTE
# Types whose runs are split at folio boundaries.
_FOLIO_TYPES = frozenset((PtType.FOLIO, PtType.MIGRATION, PtType.DEVICE))


def _nonnone_slots(vals: Sequence[int], i0: int, i1: int, none_mask: int, none_max: int,
                   none_value: Optional[int] = None) -> Sequence[int]:
    """
    Indexes in ``[i0, i1)`` of the slots of *vals* that are not none
    (``value & none_mask != 0``; with *none_value*: ``value != none_value``,
    s390x's empty entries). *none_max* is the largest value that is
    none: when every value is above it (a full table, the common case of a
    populated range) the answer is the whole range, found by one C scan
    (``min``) instead of one test per slot.
    """
    sub = vals[i0:i1]
    if min(sub) > none_max:
        return range(i0, i1)
    if none_value is not None:
        return list(compress(range(i0, i1), map(_ne, sub, repeat(none_value))))
    return list(compress(range(i0, i1), map(_and, sub, repeat(none_mask))))


_U64 = (1 << 64) - 1
_U64_LE = struct.Struct("<Q")
# (ones, step * ramp, step * m * ones) by (number of slots m, step), where
# ones = sum(2**(64*k)) and ramp = sum(k * 2**(64*k)) for k < m: a run of
# slots holding v, v + step, ... is the integer v * ones + step * ramp, and
# the run of m slots after it that integer plus step * m * ones.
_SERIES: Dict[Tuple[int, int], Tuple[int, int, int]] = {}


def _series(m: int, step: int) -> Tuple[int, int, int]:
    try:
        return _SERIES[m, step]
    except KeyError:
        pass
    ones = int.from_bytes(b"\x01\0\0\0\0\0\0\0" * m, "little")
    ramp = step * int.from_bytes(struct.pack(f"<{m}Q", *range(m)), "little")
    if len(_SERIES) > 4096:
        _SERIES.clear()
    r = _SERIES[m, step] = ones, ramp, step * m * ones
    return r


def _run_end(vals: Sequence[int], i: int, i1: int, step: int) -> int:
    """
    End of the run starting at slot *i*: the first slot before *i1* whose
    value is not ``vals[i] + k * step``.

    The slots are compared as one integer (64 bits per slot, as in memory)
    against the arithmetic series ``v * ones + step * ramp``: the lowest set
    bit of the XOR is the first mismatch. A few big-integer operations
    instead of one Python step, or one new int, per slot.
    """
    v = vals[i]
    m = i1 - i
    # Expected values stay in [0, 2**64) (the series then has no carries);
    # past that no slot can match anyway.
    if step > 0:
        m = min(m, (_U64 - v) // step + 1)
    elif step < 0:
        m = min(m, v // -step + 1)
    got = int.from_bytes(struct.pack(f"<{m}Q", *vals[i : i + m]), "little")
    ones, ramp, _ = _series(m, step)
    diff = got ^ (v * ones + ramp)
    if not diff:
        return i + m
    return i + ((diff & -diff).bit_length() - 1) // 64


_UNPACKERS: Dict[int, struct.Struct] = {}


class _Table(Sequence[int]):
    """
    The slots of one table page: its bytes as read, unpacked to ints only
    when first indexed (a PTE table that is one run never is, see
    :meth:`_Walker.pte_run`). :attr:`PtEntry.values` is one of these.
    """

    __slots__ = ("data", "_vals")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._vals: Optional[Tuple[int, ...]] = None

    @classmethod
    def of_values(cls, values: Sequence[int]) -> "_Table":
        t = cls(struct.pack(f"<{len(values)}Q", *values))
        t._vals = tuple(values)
        return t

    @property
    def vals(self) -> Tuple[int, ...]:
        """The slot values as a tuple."""
        v = self._vals
        if v is None:
            n = len(self.data) >> 3
            try:
                unpack = _UNPACKERS[n]
            except KeyError:
                unpack = _UNPACKERS[n] = struct.Struct(f"<{n}Q")
            v = self._vals = unpack.unpack(self.data)
        return v

    def __len__(self) -> int:
        return len(self.data) >> 3

    def __getitem__(self, i: Any) -> Any:
        return self.vals[i]

    def __iter__(self) -> Iterator[int]:
        return iter(self.vals)

    def __repr__(self) -> str:
        return f"_Table({len(self)} slots)"


ReadTable = Callable[[int, int, bool], Union[bytes, Sequence[int]]]
"""``read_table(addr, nr_entries, physical)``: a table's entries, as little-endian u64 bytes or values."""

# Output is handed to the consumer when this many entries are pending (or
# when a segment ends): bounded memory, few generator switches.
_FLUSH = 512


class TableGuard:
    """
    The walker's guards against corrupt page tables, for one walk from one root: the physical address of
    the table at each depth of the current path (loops), where each table was first met (a table page has
    one place in a tree) and a budget of distinct tables. Every way down the tables goes through one
    (:class:`_Walker`, :func:`iter_tables`).

    :param levels: the decoder's ``(level, shift, entries)`` per depth
    :param root_phys: physical address of the root table (``None``: unknown)
    :param max_tables: at most this many places where tables are met (``None``: no budget)
    :param unique_tables: a table page met for a second address (other than a PMD table: hugetlb PMD
        sharing) is refused; tables met at another level always are
    """

    def __init__(self, levels: Sequence[Tuple[PtLevel, int, int]], root_phys: Optional[int],
                 max_tables: Optional[int] = None, unique_tables: bool = False) -> None:
        self.levels = levels
        self.pte_depth = len(levels) - 1
        self.path: List[Optional[int]] = [None] * len(levels)
        self.path[0] = root_phys
        self.no_path: List[Optional[int]] = [None] * len(levels)
        self.seen: Dict[int, Tuple[int, int]] = {}
        self.max_tables = max_tables
        self.placed = 0
        self.unique_tables = unique_tables

    def check(self, ta: int, depth: int, base: int) -> Optional[str]:
        """
        Why the table at *ta* cannot be the *depth* table for *base*, or
        ``None``. No kernel builds a table tree with a loop, or with one
        table page in two places (but hugetlb shares PMD tables), or with
        more tables than the mm accounts for: each of these would make the
        walk read what is not a table, possibly without end.
        """
        path = self.path
        if ta in path[:depth]:
            d = path.index(ta)
            return (
                f"{self.levels[depth][0].name} table {ta:#x} is its own "
                f"{self.levels[d][0].name} ancestor (loop)"
            )
        key = (depth, base)
        prev = self.seen.get(ta)
        if prev != key:
            if prev is not None:
                pd, pb = prev
                if pd != depth or self.unique_tables and self.levels[depth][0] != PtLevel.PMD:
                    return (
                        f"{self.levels[depth][0].name} table {ta:#x} is already the "
                        f"{self.levels[pd][0].name} table for {pb:#x}"
                    )
            # Each new place a table is met at costs one from the budget.
            self.placed += 1
            if self.max_tables is not None and self.placed > self.max_tables:
                return (
                    f"more than {self.max_tables} page tables (the mm accounts for fewer): "
                    f"not reading {ta:#x}"
                )
            if prev is None:
                self.seen[ta] = key
        path[depth] = ta
        if depth < self.pte_depth:
            path[depth + 1 :] = self.no_path[depth + 1 :]
        return None


class _Walker:
    """State of one walk: the table cache, the pending hole, the output."""

    def __init__(
        self,
        dec: ArchDecoder,
        read_table: ReadTable,
        st: Optional[SwapTypes],
        highest_pfn: int,
        zero_pmd_pfn: Optional[int],
        folio_runs_fn: Callable[[int, int], Sequence[int]],
        include_none: bool,
        batch: bool,
        root_phys: Optional[int] = None,
        max_tables: Optional[int] = None,
        unique_tables: bool = False,
        live: bool = False,
    ) -> None:
        self.dec = dec
        self.read = read_table
        self.st = st
        self.highest = highest_pfn
        self.zero_pmd_pfn = zero_pmd_pfn
        self.folio_runs = folio_runs_fn
        self.include_none = include_none
        self.batch = batch
        self.levels = dec.levels
        self.pte_depth = len(dec.levels) - 1
        self.ps = dec.page_shift
        self.none_maxes = [max(nv) for nv in dec.none_values]
        self.none_max = self.none_maxes[self.pte_depth]
        self.none_exact = dec.none_exact or (None,) * len(dec.levels)
        self.cache: List[Optional[Tuple[int, _Table]]] = [None] * len(dec.levels)
        self.out: List[PtEntry] = []
        self.vma: Optional[int] = None
        self.hole_start = -1
        self.hole_end = -1
        self.hole_level = PtLevel.PTE
        # Corruption guards (loops, a table in two places, a budget of tables).
        self.check_table = TableGuard(dec.levels, root_phys, max_tables, unique_tables).check
        # [start, end) of the PMD slot of the last PTE table reached, and
        # that table: a segment inside it (small VMAs) is decoded from it
        # without walking down again (same tables, same checks passed).
        self.last_pte: Optional[Tuple[int, int, _Table]] = None
        # The last run pte_run() recognised: (value its next slot would
        # have, number of slots, step, the slots as one integer).
        self.prev_run: Optional[Tuple[int, int, int, int]] = None
        self.live = live

    # Holes.
    def hole(self, a: int, b: int, level: PtLevel) -> None:
        if a == self.hole_end:
            self.hole_end = b
        else:
            if self.hole_start >= 0:
                self.flush_hole()
            self.hole_start = a
            self.hole_end = b
            self.hole_level = level

    def flush_hole(self) -> None:
        if self.hole_start >= 0:
            if self.include_none:
                self.out.append(
                    _new(
                        PtEntry,
                        (_NONE_T, self.hole_level, self.hole_start, self.hole_end, 0, None, False, self.vma,
                         None, None, None, None, None, self.dec, None, 0),
                    )
                )
            self.hole_start = self.hole_end = -1

    def error(self, level: PtLevel, a: int, b: int, table: Optional[int], reason: str, raw: int = 0) -> None:
        self.flush_hole()
        self.out.append(
            PtEntry(PtType.ERROR, level, a, b, raw=raw, vma=self.vma, table=table, reason=reason, decoder=self.dec)
        )

    # Tables.
    def table(self, addr: int, physical: bool, depth: int, a: int, b: int) -> Optional[_Table]:
        c = self.cache[depth]
        if c is not None and c[0] == addr:
            return c[1]
        level, _, n = self.levels[depth]
        try:
            raw = self.read(addr, n, physical)
        except FaultError as e:
            self.error(level, a, b, addr, f"cannot read {level.name} table: {e}")
            return None
        tbl = _Table(raw) if isinstance(raw, bytes) else _Table.of_values(raw)
        self.cache[depth] = (addr, tbl)
        return tbl

    def classify_leaf(self, v: int, pfn: int, level: PtLevel) -> PtType:
        # vm_normal_page(): special entries (zero page, PFNMAP, devmap) and
        # PFNs without a struct page have no folio; likewise the huge zero
        # PMD (is_huge_zero_pmd() / 7.x pmd_special()).
        if v & self.dec.special_mask or pfn > self.highest:
            return PtType.PFN
        if level != PtLevel.PTE and pfn == self.zero_pmd_pfn:
            return PtType.PFN
        return PtType.FOLIO

    def classify_swp(self, v: int, level: PtLevel = _PTE_L) -> Tuple[PtType, Optional[str], Optional[int], int, int]:
        t, off = self.dec.swp(v) if level is _PTE_L else self.dec.swp_at(v, level)
        if self.st is None:
            return PtType.SWAP, None, None, t, off
        typ, kind, pfn = classify_swp(self.st, t, off, self.dec.swp_pfn_mask)
        return typ, kind, pfn, t, off

    # The walk.
    def walk(self, addr: int, physical: bool, depth: int, a: int, b: int) -> Iterator[None]:
        """Walk the table at *addr* for ``[a, b)``; yields when output is ready."""
        tbl = self.table(addr, physical, depth, a, b)
        if tbl is None:
            return
        if depth == self.pte_depth:
            self.pte_table(tbl, a, b)
            yield None
            return
        dec = self.dec
        level, shift, n = self.levels[depth]
        size = 1 << shift
        i = (a >> shift) & (n - 1)
        s0 = a & ~(size - 1)
        base = s0 - (i << shift)  # address of slot 0
        vals = tbl.vals
        # Only the slots that are not none cost Python steps (most of an
        # upper table is empty); the gaps between them are holes.
        nz = _nonnone_slots(vals, i, i + ((b - s0 + size - 1) >> shift), dec.none_masks[depth],
                            self.none_maxes[depth], self.none_exact[depth])
        # PTE tables below this one are decoded here, not in a nested
        # generator: one per table would cost as much as reading it.
        below_pte = depth + 1 == self.pte_depth
        out = self.out
        pos = a  # output is complete up to here
        k = 0
        L = len(nz)
        while k < L:
            i = nz[k]
            s0 = base + (i << shift)
            sa = a if a > s0 else s0
            if sa > pos:
                self.hole(pos, sa, level)
            se = s0 + size
            sb = b if b < se else se
            v = vals[i]
            kd = dec.kind(v, depth)
            if kd == NONE:
                self.hole(sa, sb, level)
            elif kd == TABLE:
                ta = dec.table_addr(v)
                bad = self.check_table(ta, depth + 1, s0)
                if bad is not None:
                    self.error(self.levels[depth + 1][0], sa, sb, ta, bad, v)
                elif below_pte:
                    pt = self.table(ta, True, depth + 1, sa, sb)
                    if pt is not None and self.live:
                        pt = self.stable_table(addr, physical, depth, i, v, pt, sa, sb)
                    if pt is not None:
                        self.last_pte = (s0, se, pt)
                        self.pte_table(pt, sa, sb)
                    if len(out) >= _FLUSH:
                        yield None
                else:
                    yield from self.walk(ta, True, depth + 1, sa, sb)
            elif kd == LEAF:
                nxt = self.upper_leaf(tbl, i, depth, s0, a, b)
                end = base + (nxt << shift)
                pos = b if b < end else end
                k += 1
                while k < L and nz[k] < nxt:
                    k += 1
                continue
            elif kd == SWAP:
                self.upper_swap(v, level, s0, sa, sb, tbl, i)
            else:
                self.error(level, sa, sb, None, f"bad {level.name} entry {v:#x}", v)
            pos = sb
            k += 1
        if pos < b:
            self.hole(pos, b, level)
        if self.out:
            yield None

    def stable_table(self, addr: int, physical: bool, depth: int, i: int, v: int, pt: _Table,
                     sa: int, sb: int) -> Optional[_Table]:
        """
        On a live kernel, *pt* (read through slot *i* = *v* of the table at
        *addr*) is a table of this range only if the slot still holds *v*
        after the read: otherwise the range was unmapped, collapsed or split
        meanwhile and the page read may already be something else. Like
        the kernel's ``pmd_same()`` check after mapping a PTE table: read
        the slot again, follow its new table (a few times), or report the
        range as an ERROR instead of decoding what may not be a table.
        """
        dec = self.dec
        child = self.levels[depth + 1][0]
        for _ in range(LIVE_RETRIES):
            raw = self.read(addr + 8 * i, 1, physical)
            now = int.from_bytes(raw, "little") if isinstance(raw, bytes) else raw[0]
            if now == v:
                return pt
            self.cache[depth + 1] = None
            self.last_pte = None
            kd = dec.kind(now, depth)
            if kd == NONE:
                self.hole(sa, sb, child)
                return None
            if kd != TABLE:
                break
            v = now
            new = self.table(dec.table_addr(v), True, depth + 1, sa, sb)
            if new is None:
                return None
            pt = new
        self.error(child, sa, sb, dec.table_addr(v) if dec.kind(v, depth) == TABLE else None,
                   "table changed under the walk (live kernel): not decoded", v)
        return None

    def upper_leaf(self, tbl: _Table, i: int, depth: int, s0: int, a: int, b: int) -> int:
        """A PMD/PUD leaf (or a contiguous block of them); returns next index."""
        dec = self.dec
        level, shift, n = self.levels[depth]
        size = 1 << shift
        ps = self.ps
        vals = tbl.vals
        v = vals[i]
        j = i + 1  # exclusive end index of this entry
        cont = False
        nc = dec.cont_slots.get(level, 0)
        if nc and dec.cont_valid(v):
            cont = True
            blk = i - i % nc
            block = vals[blk : blk + nc]
            merged = dec.cont_merge(block)
            v = merged[i - blk]
            if self.batch and len(block) == nc:
                # folio_pmd_batch(): the whole block maps one folio when all
                # slots are valid+cont with consecutive PFNs.
                first = dec.leaf_pfn(merged[0], shift)
                step = size >> ps
                if all(
                    dec.cont_valid(x) and dec.leaf_pfn(x, shift) == first + k * step
                    for k, x in enumerate(merged)
                ):
                    last = blk + nc
                    # Stop at the end of the walked range.
                    end_slot = s0 + (last - i) * size
                    if end_slot > b:
                        last = i + (b - s0 + size - 1) // size
                    j = last
        sa = a if a > s0 else s0
        se = s0 + (j - i) * size
        sb = b if b < se else se
        pfn = dec.leaf_pfn(v, shift) + ((sa - s0) >> ps)
        typ = self.classify_leaf(v, pfn, level)
        self.flush_hole()
        self.out.append(
            PtEntry(typ, level, sa, sb, raw=v, pfn=pfn, cont=cont, vma=self.vma, decoder=dec, values=tbl, slot=i)
        )
        return j

    def upper_swap(self, v: int, level: PtLevel, s0: int, sa: int, sb: int, tbl: _Table, i: int) -> None:
        typ, kind, pfn, t, off = self.classify_swp(v, level)
        delta = (sa - s0) >> self.ps
        if pfn is not None:
            pfn += delta
            off += delta
        elif typ == PtType.SWAP:
            off += delta
        self.flush_hole()
        err = typ == _ERROR_T
        self.out.append(
            PtEntry(
                typ, level, sa, sb, raw=v, pfn=pfn, vma=self.vma, swap_type=t, swap_offset=off,
                kind=None if err else kind, reason=kind if err else None, decoder=self.dec, values=tbl, slot=i,
            )
        )

    def pte_table(self, tbl: _Table, a: int, b: int) -> None:
        """Decode the PTE table *tbl* for ``[a, b)``: the hot path."""
        dec = self.dec
        ps = self.ps
        n = len(tbl)
        i0 = (a >> ps) & (n - 1)
        i1 = i0 + ((b - a) >> ps)
        base = a - (i0 << ps)
        if self.batch and self.pte_run(tbl, i0, i1, base):
            return
        vals: Sequence[int] = tbl.vals
        cm = dec.cont_mask
        # Per-slot work is done by C code (min, map, compress, big-integer
        # compares): a Python-level step per slot costs as much as reading
        # the table.
        if cm and any(map(_and, vals[i0:i1], repeat(cm))):
            vals = self._merge_cont(vals, i0, i1)
        nz = _nonnone_slots(vals, i0, i1, dec.none_masks[self.pte_depth], self.none_max,
                            self.none_exact[self.pte_depth])
        batch = self.batch
        special = dec.special_mask
        highest = self.highest
        pte_decode = dec.pte_decode
        cont_valid = dec.cont_valid
        append = self.out.append
        vma = self.vma
        FOLIO, PFN, MARKER, PTE = _FOLIO_T, _PFN_T, _MARKER_T, _PTE_L
        pos = i0
        k = 0
        L = len(nz)
        while k < L:
            i = nz[k]
            if i > pos:
                self.hole(base + (pos << ps), base + (i << ps), PTE)
            v = vals[i]
            kd, pfn, step = pte_decode(v)
            swap_type = swap_offset = kind = None
            if kd == LEAF:
                typ = PFN if (v & special or pfn > highest) else FOLIO  # type: ignore[operator]  # a LEAF's: int
            elif kd == SWAP:
                typ, kind, pfn, swap_type, swap_offset = self.classify_swp(v)
                if typ == MARKER:
                    step = 0
                elif typ == _HWPOISON_T or typ == _ERROR_T:
                    step = None
                else:
                    step = dec.swap_step
            else:
                self.error(PTE, base + (i << ps), base + ((i + 1) << ps), None, f"bad PTE {v:#x}", v)
                pos = i + 1
                k += 1
                continue
            j = i + 1
            if batch and step is not None and j < i1 and vals[j] == v + step:
                j = _run_end(vals, i, i1, step)
            if j - i > 1:
                self.emit(typ, tbl, vals, i, j, base, v, pfn, swap_type, swap_offset, kind)
                pos = j
                k += j - i
                continue
            # One slot (fragmented memory, garbage tables): made here, as
            # emit() would, without a call per slot.
            if self.hole_start >= 0:
                self.flush_hole()
            if typ == _ERROR_T:
                reason, kind = kind, None
            else:
                reason = None
            append(
                _new(PtEntry, (typ, PTE, base + (i << ps), base + (j << ps), v, pfn, bool(cm) and cont_valid(v), vma,
                               swap_type, swap_offset, kind, None, reason, dec, tbl, i))
            )
            pos = j
            k += 1
        if pos < i1:
            self.hole(base + (pos << ps), base + (i1 << ps), PTE)

    def pte_run(self, tbl: _Table, i0: int, i1: int, base: int) -> bool:
        """
        The fast path of :meth:`pte_table`: if slots ``[i0, i1)`` are one
        run of present PTEs (consecutive PFNs, identical bits; the common
        case of populated memory), emit it and return ``True``; the table is
        then compared as one big integer against the run it would be, and
        never unpacked.
        """
        dec = self.dec
        data = tbl.data
        v = _U64_LE.unpack_from(data, i0 << 3)[0]
        if v & dec.cont_mask:
            return False  # arm64 contiguous blocks: young/dirty merged per block
        kd, pfn, step = dec.pte_decode(v)
        if kd != LEAF:
            return False
        assert pfn is not None and step is not None  # a LEAF's (pte_decode())
        m = i1 - i0
        if m > 1:
            last = v + step * (m - 1)
            if not 0 <= last <= _U64:
                return False
            got = int.from_bytes(data if m << 3 == len(data) else data[i0 << 3 : i1 << 3], "little")
            prev = self.prev_run
            if prev is not None and prev[0] == v and prev[1] == m and prev[2] == step:
                # The previous table was a run of as many slots that this
                # one continues: each slot is its slot there plus m * step
                # (a subtraction instead of building the run).
                if got - prev[3] != _series(m, step)[2]:
                    self.prev_run = None
                    return False
            else:
                ones, ramp, _ = _series(m, step)
                if got - ramp != v * ones:
                    return False
            self.prev_run = (v + step * m, m, step, got)
        typ = _PFN_T if (v & dec.special_mask or pfn > self.highest) else _FOLIO_T
        self.emit(typ, tbl, None, i0, i1, base, v, pfn, None, None, None)
        return True

    def emit(self, typ: PtType, tbl: _Table, vals: Optional[Sequence[int]], i: int, j: int, base: int, v: int,
             pfn: Optional[int], swap_type: Optional[int], swap_offset: Optional[int], kind: Optional[str]) -> None:
        """
        Output the run of PTE slots ``[i, j)`` of *tbl* (values *vals*, as
        merged for arm64 contiguous blocks; ``None``: the table's; *v* the
        first), first cut by folio for the types that have folios.
        """
        if self.hole_start >= 0:
            self.flush_hole()
        ps = self.ps
        dec = self.dec
        cont = bool(dec.cont_mask) and dec.cont_valid(v)
        reason = None
        if typ == _ERROR_T:
            reason, kind = kind, None
        PTE = _PTE_L
        vma = self.vma
        out = self.out
        if j - i == 1:
            out.append(
                _new(PtEntry, (typ, PTE, base + (i << ps), base + (j << ps), v, pfn, cont, vma, swap_type,
                               swap_offset, kind, None, reason, dec, tbl, i))
            )
            return
        # (the types with folios have a PFN)
        runs = self.folio_runs(pfn, j - i) if typ in _FOLIO_TYPES else (j - i,)  # type: ignore[arg-type]
        if len(runs) == 1:
            out.append(
                _new(PtEntry, (typ, PTE, base + (i << ps), base + (j << ps), v, pfn, cont, vma, swap_type,
                               swap_offset, kind, None, reason, dec, tbl, i))
            )
            return
        if vals is None:
            vals = tbl.vals
        if len(runs) == j - i and pfn is not None and swap_offset is None:
            # A run of order-0 folios (the common 4K case): one entry per
            # page, made by C iterators (no bytecode per entry).
            r = j - i
            psz = 1 << ps
            a0 = base + (i << ps)
            a1 = base + (j << ps)
            out.extend(
                map(_new, repeat(PtEntry, r), zip(
                    repeat(typ, r), repeat(PTE), range(a0, a1, psz), range(a0 + psz, a1 + psz, psz), vals[i:j],
                    range(pfn, pfn + r), repeat(cont), repeat(vma), repeat(swap_type), repeat(None),
                    repeat(kind), repeat(None), repeat(reason), repeat(dec), repeat(tbl), range(i, j),
                ))
            )
            return
        s = i
        for r in runs:
            out.append(
                _new(PtEntry, (typ, PTE, base + (s << ps), base + ((s + r) << ps), vals[s], pfn, cont, vma,
                               swap_type, swap_offset, kind, None, reason, dec, tbl, s))
            )
            s += r
            if pfn is not None:
                pfn += r
            if swap_offset is not None:
                swap_offset += r

    def _merge_cont(self, tbl: Sequence[int], i0: int, i1: int) -> List[int]:
        # ptep_get() on a valid+cont PTE ORs young/dirty over its block.
        dec = self.dec
        nc = dec.cont_slots[PtLevel.PTE]
        vals = list(tbl)
        blk = i0 - i0 % nc
        while blk < i1:
            block = tbl[blk : blk + nc]
            if any(dec.cont_valid(x) for x in block):
                merged = dec.cont_merge(tuple(block))
                for k, x in enumerate(block):
                    if dec.cont_valid(x):
                        vals[blk + k] = merged[k]
            blk += nc
        return vals


def mm_segments(
    mm: Object, start: int, end: int, vma_ranges: Optional[Iterable[Tuple[Object, int, int]]] = None
) -> List[Tuple[int, int, Optional[int]]]:
    """
    Cut ``[start, end)`` at the VMA boundaries of *mm*.

    :param mm: ``struct mm_struct *``
    :param start: first address
    :param end: end address, exclusive
    :param vma_ranges: the VMAs of *mm* as
        :func:`~drgn_ptwalk.vmatree.checked_vma_ranges` gives them, if the
        caller has them already (default: read the part of the VMA tree
        that covers the range)
    :return: ``[(start, end, vma address or None), ...]`` covering the range
    :raises VmaTreeError: if the VMA tree is unreadable or corrupt (a loop,
        pivots out of order, a VMA whose range is not where the tree files
        it); the error has the address of the bad node or VMA
    """
    from drgn_ptwalk.vmatree import checked_vma_ranges

    if vma_ranges is None:
        vma_ranges = checked_vma_ranges(mm, start=start, end=end)
    segs: List[Tuple[int, int, Optional[int]]] = []
    pos = start
    for vma, vs, ve in vma_ranges:
        if ve <= start:
            continue
        if vs >= end:
            break
        vs = max(vs, start)
        ve = min(ve, end)
        if vs > pos:
            segs.append((pos, vs, None))
        segs.append((vs, ve, vma.value_()))
        pos = ve
    if pos < end:
        segs.append((pos, end, None))
    return segs


def table_of(mm: Object, addr: int, level: PtLevel) -> Optional[int]:
    """
    Physical address of the *level* page table that maps *addr* in *mm*, or
    ``None`` if the walk to it ends earlier (a hole, a leaf above it, a
    table that cannot be read, or one the walker's guards refuse). One read
    of one slot per level above *level*.

    :param mm: ``struct mm_struct *``
    :param addr: a virtual address in *mm*
    :param level: the level of the table wanted
    :return: the table's physical address, or ``None``
    """
    prog = mm.prog_
    dec = get_decoder(prog).for_mm(mm)
    root, physical = dec.root(mm)
    for t in iter_tables(dec, make_reader(prog, dec), root, physical, addr, addr + 1,
                         guard=mm_table_guard(mm, dec, root, physical)):
        if t.level == level:
            if t.error is not None:
                return None
            if not t.physical:  # the root, by its direct-map address
                from drgn.helpers.linux.mm import virt_to_phys

                return virt_to_phys(prog, t.addr).value_()
            return t.addr
    return None


class PageTable(NamedTuple):
    """One page table met by :func:`iter_tables`."""

    addr: int
    """Its address: physical, but for a root given by its virtual address (:attr:`physical`)."""
    physical: bool
    depth: int
    """0 for the root."""
    level: PtLevel
    base: int
    """The address its slot 0 maps."""
    entries: int
    """Its number of slots (``entries << shift`` bytes of address space)."""
    shift: int
    error: Optional[str] = None
    """Why it is not read (the walker's guards refuse it: a loop, a table in two places, more tables
    than the mm accounts for); nothing below it is met. ``None`` for a table that is read."""


def iter_tables(
    dec: ArchDecoder,
    read_table: ReadTable,
    root: int,
    root_physical: bool,
    lo: int,
    hi: int,
    *,
    base: int = 0,
    guard: Optional[TableGuard] = None,
) -> Iterator[PageTable]:
    """
    The page tables below *root* that map ``[lo, hi)``, each before the tables below it, in address
    order: those of the last level (PTE tables) are met but not read; a table the *guard* refuses is met
    with :attr:`PageTable.error` set and nothing below it is; an unreadable table ends its branch. The way
    down the tables for whoever wants tables, not entries (:func:`table_of`, the owners of page-table
    pages, the benchmark's floor), with the walker's guards.

    :param read_table: as :func:`walk_tables`'s (:func:`make_reader`)
    :param base: the address slot 0 of the root maps
    :param guard: the walk's guards (default: loops and tables at two levels only; see
        :func:`mm_table_guard` for an mm's)
    """
    if guard is None:
        guard = TableGuard(dec.levels, root if root_physical else None)
    return _visit((dec, read_table, guard, lo, hi), root, root_physical, 0, base)


def _visit(walk: Tuple[ArchDecoder, ReadTable, TableGuard, int, int],
           addr: int, physical: bool, depth: int, base: int) -> Iterator[PageTable]:
    dec, read_table, guard, lo, hi = walk
    levels = dec.levels
    lvl, shift, n = levels[depth]
    yield PageTable(addr, physical, depth, lvl, base, n, shift)
    if depth + 1 >= len(levels):
        return
    first = max(0, (lo - base) >> shift)
    end = min(n, -(-(hi - base) >> shift))
    if first >= end:
        return
    try:
        raw = read_table(addr + 8 * first, end - first, physical)
    except FaultError:
        return
    vals = _Table(raw).vals if isinstance(raw, bytes) else raw
    clvl, cshift, cn = levels[depth + 1]
    for i, v in enumerate(vals, first):
        if v and dec.kind(v, depth) == TABLE:
            ta = dec.table_addr(v)
            cbase = base + (i << shift)
            bad = guard.check(ta, depth + 1, cbase)
            if bad is not None:
                yield PageTable(ta, True, depth + 1, clvl, cbase, cn, cshift, bad)
            else:
                yield from _visit(walk, ta, True, depth + 1, cbase)


def mm_table_guard(mm: Object, dec: ArchDecoder, root: int, root_physical: bool) -> TableGuard:
    """The guards :func:`pt_range_walk` gives a walk of *mm* from *root* (as ``dec.root(mm)`` gives it):
    loops, a table in two places (but hugetlb's shared PMD tables) and a budget of twice the tables
    ``mm->pgtables_bytes`` accounts for; for ``init_mm``, loops and tables at two levels only.

    :param mm: ``struct mm_struct *``
    """
    prog = mm.prog_
    is_init_mm = _is_init_mm(prog, mm)
    root_phys, max_tables = _guards(prog, dec, mm, root, root_physical, is_init_mm)
    return TableGuard(dec.levels, root_phys, max_tables, not is_init_mm)


def _is_init_mm(prog: Program, mm: Object) -> bool:
    try:
        return mm.value_() == prog["init_mm"].address_of_().value_()
    except (KeyError, LookupError):
        return False


def make_reader(prog: Program, dec: ArchDecoder) -> Callable[[int, int, bool], bytes]:
    """
    ``read_table(addr, nr_entries, physical)`` for :func:`walk_tables`: the
    table's bytes as little-endian u64 entries, byte-swapped from memory
    where the architecture stores them big-endian (ppc64).
    """
    read = prog.read
    if dec.entry_order == "little":

        def read_table(addr: int, n: int, physical: bool) -> bytes:
            return read(addr, n * 8, physical)

    else:

        def read_table(addr: int, n: int, physical: bool) -> bytes:
            # Reversing each 8-byte group turns big-endian entries into
            # little-endian ones, whatever the host's byte order.
            a = array("Q", read(addr, n * 8, physical))
            a.byteswap()
            return a.tobytes()

    return read_table


def walk_tables(
    dec: ArchDecoder,
    read_table: ReadTable,
    root: int,
    root_physical: bool,
    segments: Iterable[Tuple[int, int, Optional[int]]],
    *,
    swap_types: Optional[SwapTypes] = None,
    highest_pfn: int = (1 << 64) - 1,
    zero_pmd_pfn: Optional[int] = None,
    folio_runs_fn: Optional[Callable[[int, int], Sequence[int]]] = None,
    include_none: bool = True,
    batch: bool = True,
    root_phys: Optional[int] = None,
    max_tables: Optional[int] = None,
    unique_tables: bool = False,
    live: bool = False,
) -> Iterator[PtEntry]:
    """
    The walker proper, independent of drgn objects (unit tests feed it
    synthetic tables).

    :param dec: the architecture's decoder
    :param read_table: ``read_table(addr, nr_entries, physical)`` returning
        the table's bytes (little-endian u64 entries) or a sequence of entry
        values; raises :class:`drgn.FaultError` if unreadable
    :param root: address of the root table (``mm->pgd``)
    :param root_physical: whether *root* is a physical address
    :param segments: ``(start, end, vma)`` ranges in address order
    :param swap_types: the kernel's swap types, to classify swap-format entries (default: all are SWAP)
    :param highest_pfn: PFNs above it have no ``struct page`` (PFN entries)
    :param zero_pmd_pfn: the huge zero page's PFN, a PFN entry at PMD level
    :param folio_runs_fn: ``f(pfn, n)`` splitting a PFN run by folio
        (default: no splitting)
    :param include_none: yield NONE entries for holes
    :param batch: batch consecutive slots (see :func:`pt_range_walk`)
    :param root_phys: physical address of the root table (for loop
        detection when *root* is virtual)
    :param max_tables: report tables beyond this many distinct ones as
        ERROR instead of reading them (corrupt tables can otherwise make a
        walk take forever)
    :param unique_tables: a table page met for a second address (other than
        a PMD table: hugetlb PMD sharing) is an ERROR; tables met at another
        level always are
    :param live: the tables may change while read (a live kernel): each
        PTE table is used only if its PMD slot still points to it after the
        read (see :meth:`_Walker.stable_table`)
    :return: the entries, in address order
    """
    if folio_runs_fn is None:
        folio_runs_fn = lambda pfn, n: (n,)  # noqa: E731
    w = _Walker(
        dec, read_table, swap_types, highest_pfn, zero_pmd_pfn, folio_runs_fn, include_none, batch,
        root_phys if root_physical is False else root, max_tables, unique_tables, live,
    )
    # The entries reach the consumer through chain() over the walker's
    # output list: C iteration per entry, no generator switch.
    return chain.from_iterable(_batches(w, root, root_physical, segments))


def _batches(w: _Walker, root: int, root_physical: bool,
             segments: Iterable[Tuple[int, int, Optional[int]]]) -> Iterator[List[PtEntry]]:
    out = w.out
    for s, e, vma in segments:
        w.vma = vma
        last = w.last_pte
        if last is not None and last[0] <= s and e <= last[1]:
            w.pte_table(last[2], s, e)
        else:
            for _ in w.walk(root, root_physical, 0, s, e):
                if out:
                    yield out
                    # chain() has gone through the list before resuming us.
                    out.clear()
        w.flush_hole()
        if out:
            yield out
            out.clear()


def _check_range(dec: ArchDecoder, start: int, end: int) -> None:
    ps = dec.page_size
    if start % ps:
        raise ArgumentError(f"start {start:#x} is not page aligned ({ps:#x})")
    if end % ps:
        raise ArgumentError(f"end {end:#x} is not page aligned ({ps:#x})")
    if start >= end:
        raise ArgumentError(f"start {start:#x} is not below end {end:#x}")
    ulo, uhi = dec.user_range()
    klo, khi = dec.kernel_range()
    if ulo <= start < uhi:
        if end > uhi:
            raise ArgumentError(f"end {end:#x} is beyond the user address space ({uhi:#x})")
    elif klo <= start < khi:
        if end > khi:
            raise ArgumentError(f"end {end:#x} is beyond the address space")
    else:
        raise ArgumentError(
            f"start {start:#x} is outside the user [{ulo:#x}, {uhi:#x}) and "
            f"kernel [{klo:#x}, {khi:#x}) address ranges"
        )


def _guards(prog: Program, dec: ArchDecoder, mm: Object, root: int, root_physical: bool,
            is_init_mm: bool) -> Tuple[Optional[int], Optional[int]]:
    # The root's physical address (loop detection) and the table budget:
    # twice the PTE/PMD/PUD tables mm->pgtables_bytes accounts for, plus
    # room for the upper levels; none for init_mm (not accounted).
    root_phys: Optional[int] = root if root_physical else None
    if root_phys is None:
        try:
            from drgn.helpers.linux.mm import virt_to_phys

            root_phys = virt_to_phys(prog, root).value_()
        except (FaultError, ValueError, LookupError, OverflowError):
            root_phys = None
    if is_init_mm:
        return root_phys, None
    try:
        nbytes = mm.pgtables_bytes.counter.value_()
    except (AttributeError, LookupError, FaultError):
        return root_phys, None
    nbytes &= (1 << 63) - 1
    # Tables below the root are a page each except on ppc64, whose radix
    # PTE (64K pages) and PMD tables are fragments of a page.
    table_bytes = min(n for _, _, n in dec.levels[1:]) * 8
    return root_phys, 2 * (nbytes // table_bytes) + 64


def pt_range_walk(
    mm: Object,
    start: Optional[int] = None,
    end: Optional[int] = None,
    *,
    include_none: bool = True,
    types: Optional[Iterable[PtType]] = None,
    batch: bool = True,
    vmas: bool = True,
    split_folios: bool = True,
    vma_ranges: Optional[Sequence[Tuple[Object, int, int]]] = None,
) -> Iterator[PtEntry]:
    """
    Walk the page tables of *mm* over ``[start, end)``.

    >>> for e in pt_range_walk(find_task(prog, 1).mm, 0x400000, 0x500000):
    ...     print(e)
    PtEntry(FOLIO PTE 0x400000-0x401000 pfn=0x1234 present,young)
    ...

    :param mm: ``struct mm_struct *`` (a task's, or ``init_mm`` for kernel
        ranges)
    :param start: first address (page aligned); default 0, or the start of
        the kernel half for ``init_mm``
    :param end: end address (page aligned); default ``mm->task_size``, or
        the top of the address space for ``init_mm``
    :param include_none: yield NONE entries for holes
    :param types: only yield entries of these :class:`PtType`\\ s
    :param batch: batch consecutive slots (see the module doc); ``False``
        gives one entry per slot (holes stay coalesced)
    :param split_folios: with *batch*, cut runs where the folio changes,
        as ``folio_pte_batch()`` does (the default: :meth:`PtEntry.folio`
        is the folio of every page of the entry). ``False`` keeps a run of
        consecutive PFNs with identical bits in one entry across folios
        (at most one table): memory of order-0 pages then comes back as one
        entry per PTE table instead of one per page, which is what bulk
        consumers (smaps, memtop) want; split such an entry by folio with
        :func:`~drgn_ptwalk.page.folio_runs`
    :param vma_ranges: with *vmas*, the VMAs of *mm* as
        :func:`~drgn_ptwalk.vmatree.checked_vma_ranges` gives them, if the
        caller has read them already: the walk and the caller then see the
        same VMAs, and the tree is read once (default: only the maple nodes
        that cover ``[start, end)`` are read)
    :param vmas: cut entries at VMA boundaries and fill in
        :attr:`PtEntry.vma`
    :return: the entries, in address order, covering ``[start, end)``
        without gaps (NONE entries left out without *include_none*)
    :raises ArgumentError: if the range is unaligned, empty or outside the
        user and kernel (canonical) address ranges
    :raises VmaTreeError: (with *vmas*) if the VMA tree of *mm* is
        unreadable or corrupt; it carries the address of the bad node or
        VMA (:class:`~drgn_ptwalk.vmatree.PtWalkError`)

    Tables that cannot be read, entries that make no sense at their level,
    a table pointing at one of its ancestors or met at two places, and
    tables beyond twice what ``mm->pgtables_bytes`` accounts for come back
    as ``ERROR`` entries with the level and address range they cover.
    """
    prog = mm.prog_
    dec = get_decoder(prog).for_mm(mm)
    is_init_mm = _is_init_mm(prog, mm)
    if start is None:
        start = dec.kernel_range()[0] if is_init_mm else 0
    if end is None:
        if is_init_mm:
            end = dec.kernel_range()[1]
        else:
            uend = dec.user_range()[1]
            try:
                end = mm.task_size.value_()
            except AttributeError:
                end = uend
            if not 0 < end <= uend or end % dec.page_size:
                # A corrupt mm->task_size: the whole user range.
                end = uend
    start = int(start)
    end = int(end)
    _check_range(dec, start, end)
    type_set = None
    if types is not None:
        type_set = frozenset(PtType(t) for t in types)
        if PtType.NONE not in type_set:
            include_none = False
    if vmas and not is_init_mm:
        segments = mm_segments(mm, start, end, vma_ranges)
    else:
        segments = [(start, end, None)]
    try:
        st: Optional[SwapTypes] = swap_types(prog)
    except (KeyError, LookupError):
        st = None
    root, root_physical = dec.root(mm)
    root_phys, max_tables = _guards(prog, dec, mm, root, root_physical, is_init_mm)
    entries = walk_tables(
        dec,
        make_reader(prog, dec),
        root,
        root_physical,
        segments,
        swap_types=st,
        highest_pfn=highest_memmap_pfn(prog),
        zero_pmd_pfn=huge_zero_pfn(prog),
        # Kernel mappings (init_mm) are not folio mappings: runs there are
        # only cut by PFN and bits, not at folio boundaries.
        folio_runs_fn=None if is_init_mm or not split_folios else (lambda pfn, n: folio_runs(prog, pfn, n)),
        include_none=include_none,
        batch=batch,
        root_phys=root_phys,
        max_tables=max_tables,
        unique_tables=not is_init_mm,
        live=bool(prog.flags & ProgramFlags.IS_LIVE),
    )
    if type_set is None:
        return entries
    return (e for e in entries if e.type in type_set)
