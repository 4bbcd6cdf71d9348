# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests of the checked maple-tree reader (drgn_ptwalk.vmatree) on synthetic trees: a range read
returns what a walk of the whole tree gives for that range and reads only the nodes whose range meets it;
corruption inside the range is reported, as in a whole-tree walk. (The real trees: test_vmarange.py.)"""

import random
import struct
from typing import Dict, List, Optional, Tuple

import pytest
from drgn import FaultError

from drgn_ptwalk.errors import VmaTreeError
from drgn_ptwalk.vmatree import _XA_ZERO_ENTRY, _maple_vma_ranges, _NodeLayout, _VmaLayout

ULONG_MAX = (1 << 64) - 1
PS = 4096
MM = 0xFFFF888000ABC000
# struct maple_node as the kernel lays it out on 64-bit (maple_range_64: parent, pivot[15], slot[16] with
# the metadata in the last slot; maple_arange_64: parent, pivot[9], slot[10], gap[10], metadata).
RANGE = (8, 15, 128, 16, 248)
ARANGE = (8, 9, 80, 10, 240)
LAYOUT = _NodeLayout(256, 0, ARANGE, RANGE, "little",
                     (struct.Struct("<15Q").unpack_from, struct.Struct("<9Q").unpack_from),
                     (struct.Struct("<16Q").unpack_from, struct.Struct("<10Q").unpack_from))
VLAYOUT = _VmaLayout(0, 24, 0, 8, 16, struct.Struct("<Q").unpack_from, (0, 0), None)  # vm_start, vm_end, vm_mm
LEAF, ARANGE_T = 1, 3


class Node:
    def __init__(self, addr: int, lo: int, hi: int, depth: int) -> None:
        self.addr, self.lo, self.hi, self.depth = addr, lo, hi, depth


class FakeTree:
    """A VMA maple tree in fake memory: leaves (maple_leaf_64) of up to *leaf_slots* entries (VMAs and the
    gaps between them), internal nodes (maple_arange_64) of up to *fanout* children."""

    def __init__(self, vmas: List[Tuple[int, int]], leaf_slots: int = 6, fanout: int = 4) -> None:
        self.mem: Dict[int, bytearray] = {}
        self.nodes: List[Node] = []
        self.by_addr: Dict[int, Node] = {}
        self.vma_addr: Dict[Tuple[int, int], int] = {}
        self.node_reads: List[int] = []
        self.vma_reads = 0
        self._next = 0xFFFF888100000000
        entries: List[Tuple[int, int, int]] = []  # (first, last, slot value)
        pos = 0
        for vs, ve in vmas:
            if vs > pos:
                entries.append((pos, vs - 1, 0))
            va = self._alloc(64)
            self.mem[va] = bytearray(struct.pack("<QQQ", vs, ve, MM) + bytes(40))
            self.vma_addr[(vs, ve)] = va
            entries.append((vs, ve - 1, va))
            pos = ve
        entries.append((pos, ULONG_MAX, 0))
        level = [self._node(LEAF, entries[i : i + leaf_slots]) for i in range(0, len(entries), leaf_slots)]
        height = 1
        while len(level) > 1:
            level = [self._node(ARANGE_T, level[i : i + fanout]) for i in range(0, len(level), fanout)]
            height += 1
        self.root = level[0][2]
        self.height = height
        # Depths, from the root down.
        self._depths(self.root, 0)

    def _alloc(self, size: int) -> int:
        a = self._next
        self._next += max(size, 256)
        return a

    def _node(self, typ: int, children: List[Tuple[int, int, int]]) -> Tuple[int, int, int]:
        off_piv, npiv, off_slot, nslots, off_end = ARANGE if typ == ARANGE_T else RANGE
        # maple_range_64 keeps its metadata in the last slot; maple_arange_64 has room for it.
        assert len(children) <= (nslots if typ == ARANGE_T else nslots - 1)
        addr = self._alloc(256)
        buf = bytearray(256)
        buf[0:8] = struct.pack("<Q", 0xFFFF888200000000)  # parent: not the node itself (a live node)
        for i, (_, last, val) in enumerate(children):
            if i < len(children) - 1:  # the last slot's pivot is the node's max, implied
                struct.pack_into("<Q", buf, off_piv + 8 * i, last)
            struct.pack_into("<Q", buf, off_slot + 8 * i, val)
        buf[off_end] = len(children) - 1
        self.mem[addr] = buf
        lo, hi = children[0][0], children[-1][1]
        self.nodes.append(Node(addr, lo, hi, -1))
        self.by_addr[addr] = self.nodes[-1]
        return lo, hi, addr | (typ << 3) | 2

    def _depths(self, enc: int, depth: int) -> None:
        addr = enc & ~0xFF
        self.by_addr[addr].depth = depth
        if (enc >> 3) & 0xF == LEAF:
            return
        buf = self.mem[addr]
        for k in range(buf[ARANGE[4]] + 1):
            self._depths(struct.unpack_from("<Q", buf, ARANGE[2] + 8 * k)[0], depth + 1)

    def read(self, addr: int, size: int) -> bytes:
        base = addr - addr % 256  # every object starts a 256-byte block of its own
        buf = self.mem.get(base)
        if buf is None or addr + size > base + len(buf):
            raise FaultError("could not read memory", addr)
        if len(buf) == 256:
            self.node_reads.append(base)
        else:
            self.vma_reads += 1
        return bytes(buf[addr - base : addr - base + size])

    def walk(self, start: int = 0, end: Optional[int] = None) -> List[Tuple[int, int]]:
        self.node_reads.clear()
        self.vma_reads = 0
        last = ULONG_MAX if end is None else end - 1
        return [(vs, ve) for _, vs, ve, _ in
                _maple_vma_ranges(self.read, LAYOUT, VLAYOUT, self.root, ULONG_MAX, MM, PS, None, start, last)]

    def nodes_meeting(self, start: int, end: int) -> int:
        return sum(1 for n in self.nodes if n.lo <= end - 1 and n.hi >= start)

    def node_of(self, depth: int, rng: random.Random) -> Node:
        return rng.choice([n for n in self.nodes if n.depth == depth])


def _vmas(n: int, seed: int) -> List[Tuple[int, int]]:
    rng = random.Random(seed)
    out = []
    a = 0x400000
    for _ in range(n):
        a += rng.choice((0, 0, PS, 16 * PS))  # mostly adjacent, some holes
        size = rng.choice((1, 1, 2, 7)) * PS
        out.append((a, a + size))
        a += size
    return out


@pytest.mark.parametrize("n,leaf,fanout", [(1, 6, 4), (5, 6, 4), (300, 6, 4), (3000, 15, 10), (3000, 3, 2)])
def test_range_equals_whole_and_reads_only_its_nodes(n, leaf, fanout):
    vmas = _vmas(n, n + leaf)
    t = FakeTree(vmas, leaf, fanout)
    assert t.walk() == vmas
    assert len(t.node_reads) == len(t.nodes)
    rng = random.Random(n)
    top = vmas[-1][1] + 64 * PS
    for k in range(300):
        if k % 3 == 0:  # exactly one VMA: one node per level
            vs, ve = rng.choice(vmas)
            assert t.walk(vs, ve) == [(vs, ve)]
            assert len(t.node_reads) == t.height
            assert t.vma_reads == 1
            continue
        a = rng.randrange(0, top // PS) * PS
        b = a + rng.choice((2, 5, 40, 1000)) * PS
        if k % 3 == 1:  # partial VMAs at both ends
            a += rng.randrange(1, PS)
            b -= rng.randrange(1, PS)
        got = t.walk(a, b)
        assert got == [(vs, ve) for vs, ve in vmas if ve > a and vs < b], (hex(a), hex(b))
        # Only the nodes whose range meets [a, b), each once.
        assert len(t.node_reads) == len(set(t.node_reads)) == t.nodes_meeting(a, b), (hex(a), hex(b))
        assert t.vma_reads == len(got)


def test_range_beyond_and_below():
    vmas = _vmas(100, 1)
    t = FakeTree(vmas)
    assert t.walk(0, vmas[0][0]) == []
    assert len(t.node_reads) == t.height
    assert t.walk(vmas[-1][1], None) == []
    assert t.walk(ULONG_MAX - PS + 1, None) == []
    assert t.walk(vmas[3][0] + 1, vmas[3][0] + 2) == [vmas[3]]


def _corrupt_pivot(t: FakeTree, node: Node) -> None:
    buf = t.mem[node.addr]
    piv = ARANGE[0] if node.depth < t.height - 1 else RANGE[0]
    struct.pack_into("<Q", buf, piv, node.lo - 1 if node.lo else ULONG_MAX)


def test_corruption_in_range_is_reported_outside_is_not_read():
    vmas = _vmas(400, 2)
    t = FakeTree(vmas)
    rng = random.Random(2)
    leaf = t.node_of(t.height - 1, rng)
    _corrupt_pivot(t, leaf)
    with pytest.raises(VmaTreeError, match="pivot 0"):
        t.walk()
    with pytest.raises(VmaTreeError, match="pivot 0"):
        t.walk(leaf.lo, leaf.lo + PS)
    # A range that does not meet the bad leaf does not read it (and cannot see the damage).
    other = next(v for v in vmas if v[1] <= leaf.lo - 8 * PS or v[0] > leaf.hi + 8 * PS)
    assert t.walk(*other) == [other]
    assert leaf.addr not in t.node_reads


def test_loop_in_range_is_reported():
    vmas = _vmas(400, 3)
    t = FakeTree(vmas)
    root = t.nodes[-1]
    child = struct.unpack_from("<Q", t.mem[root.addr], ARANGE[2])[0]
    # The first child's first slot points back at the root: a loop.
    struct.pack_into("<Q", t.mem[child & ~0xFF], ARANGE[2], t.root)
    with pytest.raises(VmaTreeError, match="twice"):
        t.walk(vmas[0][0], vmas[0][1])


@pytest.mark.parametrize("field,value,match", [(0, PS, "files it under"), (16, MM + 8, "vm_mm"),
                                               (8, 0x401234, "files it under")])
def test_bad_vma_in_range_is_reported(field, value, match):
    vmas = _vmas(50, 4)
    t = FakeTree(vmas)
    vs, ve = vmas[20]
    struct.pack_into("<Q", t.mem[t.vma_addr[(vs, ve)]], field, value)
    with pytest.raises(VmaTreeError, match=match):
        t.walk(vs - PS, ve + PS)
    assert t.walk(*vmas[40]) == [vmas[40]]


def test_unreadable_node_and_zero_entry():
    vmas = _vmas(60, 5)
    t = FakeTree(vmas)
    leaf = t.node_of(t.height - 1, random.Random(5))
    buf = t.mem.pop(leaf.addr)
    with pytest.raises(VmaTreeError, match="cannot read node"):
        t.walk(leaf.lo, leaf.hi + 1)
    t.mem[leaf.addr] = buf
    # XA_ZERO_ENTRY (a VMA range reserved during fork) is no VMA.
    vs, ve = vmas[10]
    for n in t.nodes:
        b = t.mem[n.addr]
        for k in range(16 if n.depth == t.height - 1 else 0):
            if struct.unpack_from("<Q", b, RANGE[2] + 8 * k)[0] == t.vma_addr[(vs, ve)]:
                struct.pack_into("<Q", b, RANGE[2] + 8 * k, _XA_ZERO_ENTRY)
    assert t.walk(vs, ve) == []
    assert t.walk() == [v for v in vmas if v != (vs, ve)]


def test_kept_bytes_and_narrow_fallback():
    # checked_vma_reads(): the read that checks a VMA keeps the caller's span; where that wider read fails,
    # the VMA is still checked (from the narrow read) and comes without bytes.
    vmas = _vmas(40, 6)
    t = FakeTree(vmas)
    unpack = struct.Struct("<Q").unpack_from
    wide = _VmaLayout(0, 48, 0, 8, 16, unpack, (8, 40), VLAYOUT)  # fits the 64-byte fake VMAs
    got = list(_maple_vma_ranges(t.read, LAYOUT, wide, t.root, ULONG_MAX, MM, PS, None, 0, ULONG_MAX))
    assert [(vs, ve) for _, vs, ve, _ in got] == vmas
    assert all(k == t.mem[a][8:48] for a, _, _, k in got)
    too_wide = _VmaLayout(0, 4096, 0, 8, 16, unpack, (0, 4096), VLAYOUT)  # beyond them: unreadable
    got = list(_maple_vma_ranges(t.read, LAYOUT, too_wide, t.root, ULONG_MAX, MM, PS, None, 0, ULONG_MAX))
    assert [(vs, ve, k) for _, vs, ve, k in got] == [(vs, ve, None) for vs, ve in vmas]
