# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Bounded, checked iteration over the VMAs of an mm.

drgn's ``for_each_vma()`` trusts the maple tree: a node whose slot points
back at an ancestor makes it loop forever, a garbage node type raises
``NotImplementedError``. :func:`checked_vmas` walks the same tree but never
more than :data:`MAPLE_HEIGHT_MAX` levels deep, never visits a node twice,
checks pivots and that each VMA's ``[vm_start, vm_end)`` is the range the
tree files it under, and raises :class:`VmaTreeError` (with the address of
the bad node or VMA and where in the tree it is) instead.
"""

import struct
from typing import Any, Callable, Iterator, List, NamedTuple, Optional, Set, Tuple

from drgn import FaultError, Object, Program, ProgramFlags, offsetof, sizeof

from drgn_ptwalk._byteorder import ByteOrder, byte_order, struct_order
from drgn_ptwalk.errors import PtWalkError, VmaTreeError

__all__ = (
    "LIVE_RETRIES",
    "LIVE_TREE_RETRIES",
    "MAPLE_HEIGHT_MAX",
    "PtWalkError",
    "VmaTreeError",
    "checked_vma_ranges",
    "checked_vma_reads",
    "checked_vmas",
)

MAPLE_HEIGHT_MAX = 31
LIVE_RETRIES = 5
# A whole VMA tree takes longer to read than one table, and a busy process changes its tree often.
LIVE_TREE_RETRIES = 25
_XA_ZERO_ENTRY = (257 << 2) | 2
_MAX_NODES = 1 << 20


def _ulong_max(prog: Program) -> int:
    return (1 << (8 * prog.type("unsigned long").size)) - 1


class _NodeLayout(NamedTuple):
    size: int
    parent: int
    # per node type: (pivot offset, pivots, slot offset, slots, meta.end offset)
    arange: Tuple[int, int, int, int, int]
    range: Tuple[int, int, int, int, int]
    # The kernel's byte order ("big" on s390x) and the pivot/slot unpackers in it, by (type is arange).
    order: ByteOrder
    unpack_pivots: Tuple[Any, Any]
    unpack_slots: Tuple[Any, Any]


def _node_layout(prog: Program) -> _NodeLayout:
    """Offsets in ``struct maple_node``, so a node is one read (one round trip on a live kernel: the
    shorter the read, the less the tree changes under it), decoded from bytes."""
    try:
        return prog.cache["ptwalk_maple_node_layout"]
    except KeyError:
        pass
    t = prog.type("struct maple_node")

    def kind(m: str) -> Tuple[int, int, int, int, int]:
        mt = t.member(m).type
        return (offsetof(t, f"{m}.pivot"), mt.member("pivot").type.length,
                offsetof(t, f"{m}.slot"), mt.member("slot").type.length, offsetof(t, f"{m}.meta.end"))

    arange, range_ = kind("ma64"), kind("mr64")
    so = struct_order(prog)
    lay = _NodeLayout(
        sizeof(t), offsetof(t, "parent"), arange, range_, byte_order(prog),
        tuple(struct.Struct(f"{so}{k[1]}Q").unpack_from for k in (range_, arange)),  # type: ignore[arg-type]
        tuple(struct.Struct(f"{so}{k[3]}Q").unpack_from for k in (range_, arange)),  # type: ignore[arg-type]
    )
    prog.cache["ptwalk_maple_node_layout"] = lay
    return lay


def _node(read: Callable[[int, int], bytes], lay: _NodeLayout, enc: int, max_: int,
          depth: int) -> Tuple[int, Tuple[int, ...], Tuple[int, ...], int, bool]:
    """
    Read and decode the maple node of the encoded entry *enc* whose range ends at *max_*.

    :param read: ``read(address, size)`` of kernel memory (``prog.read``)
    :return: ``(node address, pivots, slots, end, leaf)``, ``end`` the last used slot (``ma_data_end()``)
    :raises VmaTreeError: if the node cannot be read or makes no sense
    """
    node_addr = enc & ~0xFF
    typ = (enc >> 3) & 0xF
    where = f"maple node depth {depth}"
    if typ not in (1, 2, 3):
        raise VmaTreeError(node_addr, where, f"bad node type {typ} in entry {enc:#x}")
    off_piv, npiv, off_slot, nslots, off_end = lay.arange if typ == 3 else lay.range
    try:
        raw = read(node_addr, lay.size)
    except FaultError as e:
        raise VmaTreeError(node_addr, where, f"cannot read node: {e}") from None
    # ma_dead_node(): a node taken out of the tree points to itself.
    if int.from_bytes(raw[lay.parent : lay.parent + 8], lay.order) & ~0xFF == node_addr:
        raise VmaTreeError(node_addr, where, "dead node (replaced while being read)")
    pivots = lay.unpack_pivots[typ == 3](raw, off_piv)
    slots = lay.unpack_slots[typ == 3](raw, off_slot)
    if typ == 3:
        end = raw[off_end]
    else:
        last = pivots[-1]
        if not last:
            end = raw[off_end]
        elif last == max_:
            end = npiv - 1
        else:
            end = npiv
    if end >= nslots:
        raise VmaTreeError(node_addr, where, f"node end {end} beyond its {nslots} slots")
    return node_addr, pivots, slots, end, typ == 1


class _VmaLayout(NamedTuple):
    """Where ``vm_start``, ``vm_end`` and ``vm_mm`` are in ``struct vm_area_struct``: one read of
    ``[base, base + size)`` of a VMA holds the three (and the bytes a caller wants kept, if any)."""

    base: int
    size: int
    start: int
    end: int
    mm: int
    unpack: Callable[[bytes, int], Tuple[int, ...]]
    """A u64 at an offset, in the kernel's byte order."""
    keep: Tuple[int, int]
    """(offset in the read, size) of the bytes kept for the caller; size 0: none."""
    narrow: Optional["_VmaLayout"]
    """The read of the three alone, if this one reads more (for a VMA whose wider read fails)."""


def _vma_layout(prog: Program, span: Optional[Tuple[int, int]] = None) -> _VmaLayout:
    """The VMA check's read; with *span* (offset, size in ``struct vm_area_struct``), one that covers it too."""
    key = ("ptwalk_vma_check_layout", span)
    try:
        return prog.cache[key]
    except KeyError:
        pass
    t = prog.type("struct vm_area_struct")
    offs = [offsetof(t, m) for m in ("vm_start", "vm_end", "vm_mm")]
    base, top = min(offs), max(offs) + 8
    narrow = None
    keep = (0, 0)
    if span is not None:
        narrow = _vma_layout(prog)
        base, top = min(base, span[0]), max(top, span[0] + span[1])
        keep = (span[0] - base, span[1])
    lay = _VmaLayout(base, top - base, offs[0] - base, offs[1] - base, offs[2] - base,
                     struct.Struct(struct_order(prog) + "Q").unpack_from, keep, narrow)
    prog.cache[key] = lay
    return lay


def _vma_range(read: Callable[[int, int], bytes], vlay: _VmaLayout,
               addr: int) -> Tuple[int, int, int, Optional[bytes]]:
    """``(vm_start, vm_end, vm_mm, kept bytes)`` of the VMA at *addr*, from one read (the kept bytes are
    ``None`` if the layout keeps none, or its wider read failed and the narrow one did not).

    :raises FaultError: if it cannot be read
    """
    try:
        raw = read(addr + vlay.base, vlay.size)
    except FaultError:
        if vlay.narrow is None:
            raise
        return _vma_range(read, vlay.narrow, addr)
    u = vlay.unpack
    k, n = vlay.keep
    return u(raw, vlay.start)[0], u(raw, vlay.end)[0], u(raw, vlay.mm)[0], raw[k : k + n] if n else None


def checked_vmas(mm: Object, user_end: Optional[int] = None, *, start: Optional[int] = None,
                 end: Optional[int] = None) -> Iterator[Object]:
    """
    The VMAs of *mm* in address order, checked (see the module doc); with
    *start*/*end*, only those that intersect ``[start, end)``, reading only
    the part of the tree that files them.

    On a live kernel the tree changes under the reader: nodes are replaced
    (RCU), freed and reused, so a read can meet a dead node or pivots that
    no longer fit. The kernel's lockless readers restart their walk when
    they meet a dead node; so does this, on any inconsistency, up to
    :data:`LIVE_TREE_RETRIES` times, and reads the whole range before yielding.

    :param mm: ``struct mm_struct *``
    :param user_end: VMAs must end at or below it (default: no bound)
    :param start: first address of the range (default: 0)
    :param end: end of the range, exclusive (default: the top of the address space)
    :raises VmaTreeError: on the first inconsistency, with its address (on
        a live kernel: on the last attempt's)
    """
    for vma, _, _ in checked_vma_ranges(mm, user_end, start=start, end=end):
        yield vma


def checked_vma_ranges(mm: Object, user_end: Optional[int] = None, *, start: Optional[int] = None,
                       end: Optional[int] = None) -> Iterator[Tuple[Object, int, int]]:
    """
    Like :func:`checked_vmas`, with each VMA's ``vm_start`` and ``vm_end``
    as they were when checked: on a live kernel a VMA read again later may
    have been freed and reused for another range.

    With *start* and/or *end*, the VMAs that intersect ``[start, end)`` (the
    first and last may reach beyond it), as the kernel's
    ``for_each_vma_range()`` finds them: only the maple nodes whose range
    intersects ``[start, end)`` are read (one node per level down to the
    first VMA, then the leaves that follow), each checked as in a walk of
    the whole tree (depth, loops, pivots, the VMAs' ranges and ``vm_mm``).
    Before v6.1 (the VMA linked list) the list is followed from its head
    and left after the first VMA at or beyond *end*.

    :param mm: ``struct mm_struct *``
    :param user_end: the end of the user address space (default: the mm's ``task_size``)
    :param start: first address of the range (default: 0)
    :param end: end of the range, exclusive (default: the top of the address space)
    :return: ``(vma, vm_start, vm_end)`` in address order
    """
    for vma, vs, ve, _ in checked_vma_reads(mm, None, user_end, start=start, end=end):
        yield vma, vs, ve


def checked_vma_reads(mm: Object, span: Optional[Tuple[int, int]], user_end: Optional[int] = None, *,
                      start: Optional[int] = None,
                      end: Optional[int] = None) -> Iterator[Tuple[Object, int, int, Optional[bytes]]]:
    """
    :func:`checked_vma_ranges` with the bytes ``[span[0], span[0] + span[1])`` of each
    ``struct vm_area_struct``, from the read that checks it (one read per VMA for a caller that wants
    its other fields too); ``None`` where they were not read (before v6.1, or where the VMA reads only
    in part).

    :return: ``(vma, vm_start, vm_end, bytes or None)`` in address order
    """
    lo = 0 if start is None else int(start)
    hi = None if end is None else int(end)
    if lo < 0 or (hi is not None and hi <= lo):
        return
    if not mm.prog_.flags & ProgramFlags.IS_LIVE:
        yield from _checked_vmas(mm, user_end, lo, hi, span)
        return
    for attempt in range(LIVE_TREE_RETRIES):
        try:
            vmas = list(_checked_vmas(mm, user_end, lo, hi, span))
            break
        except VmaTreeError:
            if attempt == LIVE_TREE_RETRIES - 1:
                raise
    yield from vmas


def _checked_vmas(mm: Object, user_end: Optional[int], start: int, end: Optional[int],
                  span: Optional[Tuple[int, int]]) -> Iterator[Tuple[Object, int, int, Optional[bytes]]]:
    prog = mm.prog_
    try:
        mt = mm.mm_mt
    except AttributeError:  # before v6.1: the linked list
        for vma, vs, ve in _list_vmas(mm, user_end, start, end):
            yield vma, vs, ve, None
        return
    vma_type = prog.type("struct vm_area_struct *")
    try:
        root = mt.ma_root.value_()
    except FaultError as e:
        raise VmaTreeError(mm.value_(), "mm_struct", f"cannot read mm_mt.ma_root: {e}") from None
    if not (root & 3 == 2 and root > 4096):
        if root:
            # A single entry at index 0 is never a VMA (address 0 is not mappable).
            raise VmaTreeError(mm.value_(), "mm_struct", f"mm_mt.ma_root {root:#x} is not a node")
        return
    umax = _ulong_max(prog)
    last = umax if end is None else min(end - 1, umax)
    for addr, vs, ve, kept in _maple_vma_ranges(prog.read, _node_layout(prog), _vma_layout(prog, span), root,
                                                umax, mm.value_(), prog["PAGE_SIZE"].value_(), user_end, start,
                                                last):
        yield Object(prog, vma_type, addr), vs, ve, kept


def _maple_vma_ranges(read: Callable[[int, int], bytes], lay: _NodeLayout, vlay: _VmaLayout, root: int,
                     ulong_max: int, mm_addr: int, page_size: int, user_end: Optional[int], start: int,
                     last: int) -> Iterator[Tuple[int, int, int, Optional[bytes]]]:
    """
    The checked walk of a VMA maple tree over the indices ``[start, last]``,
    from raw reads (what :func:`checked_vma_ranges` runs; synthetic trees
    in the tests).

    :param read: ``read(address, size)`` of kernel memory
    :param root: ``mm->mm_mt.ma_root`` (an encoded node)
    :return: ``(VMA address, vm_start, vm_end, bytes kept)`` of the VMAs
        intersecting ``[start, last]``, in address order (see :func:`_vma_range`)
    """
    seen: Set[int] = set()
    # Depth-first, in order: (encoded node, min, max, depth).
    stack: List[Tuple[int, int, int, int]] = [(root, 0, ulong_max, 0)]
    prev_end = 0
    while stack:
        enc, lo, hi, depth = stack.pop()
        where = f"maple node depth {depth}"
        if depth > MAPLE_HEIGHT_MAX:
            raise VmaTreeError(enc & ~0xFF, where, "tree deeper than MAPLE_HEIGHT_MAX (loop?)")
        node_addr = enc & ~0xFF
        if node_addr < 4096 or enc & 3 == 1:
            raise VmaTreeError(enc, where, f"child entry {enc:#x} is not a node")
        if node_addr in seen:
            raise VmaTreeError(node_addr, where, "node reached twice (loop)")
        seen.add(node_addr)
        if len(seen) > _MAX_NODES:
            raise VmaTreeError(node_addr, where, "too many nodes")
        node_addr, pivots, slots, nend, leaf = _node(read, lay, enc, hi, depth)
        ranges = []
        prev = lo
        for off in range(nend + 1):
            pivot = pivots[off] if off < nend else hi
            if not prev <= pivot <= hi:
                raise VmaTreeError(
                    node_addr, where, f"pivot {off} = {pivot:#x} outside [{prev:#x}, {hi:#x}]"
                )
            # Only the slots whose [prev, pivot] meets [start, last] (every pivot is checked above).
            if pivot >= start and prev <= last:
                ranges.append((prev, pivot, slots[off]))
            prev = pivot + 1
        if not leaf:
            for a, b, s in reversed(ranges):
                stack.append((s, a, b, depth + 1))
            continue
        for a, b, s in ranges:
            if not s or s == _XA_ZERO_ENTRY:
                continue
            if s & 3:
                raise VmaTreeError(node_addr, where, f"leaf slot for {a:#x}-{b:#x} holds {s:#x}, not a VMA")
            try:
                vs, ve, vmm, kept = _vma_range(read, vlay, s)
            except FaultError as e:
                raise VmaTreeError(s, "VMA", f"cannot read VMA at {s:#x} (node {node_addr:#x}): {e}") from None
            if vs != a or ve != b + 1:
                raise VmaTreeError(
                    s, "VMA", f"vm_start-vm_end {vs:#x}-{ve:#x} but the tree files it under {a:#x}-{b + 1:#x}"
                )
            if vs % page_size or ve % page_size or vs < prev_end or (user_end is not None and ve > user_end):
                raise VmaTreeError(s, "VMA", f"bad range {vs:#x}-{ve:#x}")
            if vmm != mm_addr:
                raise VmaTreeError(s, "VMA", f"vm_mm {vmm:#x} is not the mm {mm_addr:#x}")
            prev_end = ve
            yield s, vs, ve, kept


def _list_vmas(mm: Object, user_end: Optional[int], start: int,
               end: Optional[int]) -> Iterator[Tuple[Object, int, int]]:
    # Before v6.1 (763ecb035029, "mm: remove the vma linked list", v6.1): mm->mmap, the list
    # sorted by address, from its head; left at the first VMA at or past *end*.
    seen: Set[int] = set()
    prev_end = 0
    try:
        vma = mm.mmap.read_()
    except FaultError as e:
        raise VmaTreeError(mm.value_(), "mm_struct", f"cannot read mm->mmap: {e}") from None
    while vma:
        a = vma.value_()
        if a in seen:
            raise VmaTreeError(a, "VMA", "VMA list loops")
        seen.add(a)
        try:
            vs, ve = vma.vm_start.value_(), vma.vm_end.value_()
            nxt = vma.vm_next.read_()
        except FaultError as e:
            raise VmaTreeError(a, "VMA", f"cannot read VMA: {e}") from None
        if not prev_end <= vs < ve or (user_end is not None and ve > user_end):
            raise VmaTreeError(a, "VMA", f"bad range {vs:#x}-{ve:#x}")
        if end is not None and vs >= end:
            return
        prev_end = ve
        if ve > start:
            yield vma, vs, ve
        vma = nxt
