# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn_ptwalk.filecache's xarray reader on synthetic page-cache trees (no dump): folios of every size at
every level (an order-9 folio as one slot and seven siblings of a shift-6 node, order-2 folios in a leaf),
the dirty and writeback marks counted in pages, value entries (shadows) counted as evicted, a single entry in
the head with its marks in xa_flags, and a corrupt tree (a node that points at itself, a child of the wrong
shift) refused with a ValueError, in both byte orders."""

import struct

import drgn
import pytest

from drgn_ptwalk.filecache import _Layout, _xa_count

CHUNK = 64
# struct xa_node: shift, offset, count, nr_values, parent, array, private_list (16), slots[64], marks[3][1]
SLOTS = 8 + 8 + 8 + 16
MARKS = SLOTS + 8 * CHUNK
NODE = MARKS + 3 * 8
GFP_SHIFT = 26


def _layout(order: str) -> _Layout:
    return _Layout(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NODE, 0, SLOTS, MARKS, CHUNK, 1, order)


def _node(order: str, shift: int, slots, dirty=0, writeback=0) -> bytes:
    raw = bytearray(NODE)
    raw[0] = shift
    struct.pack_into(f"{order}{CHUNK}Q", raw, SLOTS, *slots)
    struct.pack_into(f"{order}3Q", raw, MARKS, dirty, writeback, 0)
    return bytes(raw)


def _prog(order: str, nodes: dict) -> drgn.Program:
    flags = drgn.PlatformFlags.IS_64_BIT
    if order == "<":
        flags |= drgn.PlatformFlags.IS_LITTLE_ENDIAN
    arch = drgn.Architecture.X86_64 if order == "<" else drgn.Architecture.S390X
    prog = drgn.Program(drgn.Platform(arch, flags))
    for addr, data in nodes.items():
        prog.add_memory_segment(addr, len(data), lambda a, c, o, p, data=data: data[o:o + c], False)
    return prog


def _sib(i: int) -> int:
    return (i << 2) | 2


@pytest.mark.parametrize("order", ["<", ">"])
def test_tree_of_folios_marks_and_shadows(order):
    root, leaf = 0xFFFF888000010000, 0xFFFF888000020000
    folio = 0xFFFFEA0000000000
    # leaf (shift 0): an order-2 folio at 0-3 (dirty), order-0 at 4 (writeback), a shadow at 5, an order-1
    # shadow at 6-7
    leaf_slots = [0] * CHUNK
    leaf_slots[0:4] = [folio, _sib(0), _sib(0), _sib(0)]
    leaf_slots[4] = folio + 0x40
    leaf_slots[5] = (1234 << 1) | 1
    leaf_slots[6:8] = [(99 << 1) | 1, _sib(6)]
    # root (shift 6): the leaf at slot 0; an order-9 folio at slots 8-15 (writeback); order-6 at 20 (dirty)
    root_slots = [0] * CHUNK
    root_slots[0] = leaf | 2
    root_slots[8:16] = [folio + 0x80] + [_sib(8)] * 7
    root_slots[20] = folio + 0xC0
    nodes = {
        leaf: _node(order, 0, leaf_slots, dirty=1 << 0, writeback=1 << 4),
        root: _node(order, 6, root_slots, dirty=(1 << 20) | 1, writeback=(1 << 8) | 1),
    }
    c = _xa_count(_prog(order, nodes), _layout(order), root | 2, 0, GFP_SHIFT)
    assert c.pages == 4 + 1 + 512 + 64
    assert c.dirty == 4 + 64
    assert c.writeback == 1 + 512
    assert c.evicted == 1 + 2
    assert c.folios == {2: 1, 0: 1, 9: 1, 6: 1}


def test_single_entry_in_the_head():
    prog = _prog("<", {})
    lay = _layout("<")
    dirty = 1 << GFP_SHIFT  # XA_FLAGS_MARK(XA_MARK_0)
    assert _xa_count(prog, lay, 0xFFFFEA0000000000, dirty | 3, GFP_SHIFT)[:4] == (1, 1, 0, 0)
    assert _xa_count(prog, lay, 0xFFFFEA0000000000, 2 << GFP_SHIFT, GFP_SHIFT)[:4] == (1, 0, 1, 0)
    assert _xa_count(prog, lay, (7 << 1) | 1, 0, GFP_SHIFT)[:4] == (0, 0, 0, 1)
    assert _xa_count(prog, lay, 0, 0, GFP_SHIFT)[:4] == (0, 0, 0, 0)


def test_corrupt_trees_refused():
    root = 0xFFFF888000010000
    loop = [0] * CHUNK
    loop[3] = root | 2  # the node is its own child
    with pytest.raises(ValueError, match="shift|twice"):
        _xa_count(_prog("<", {root: _node("<", 6, loop)}), _layout("<"), root | 2, 0, GFP_SHIFT)
    leaf = 0xFFFF888000020000
    bad = [0] * CHUNK
    bad[0] = leaf | 2
    nodes = {root: _node("<", 12, bad), leaf: _node("<", 0, [0] * CHUNK)}  # shift 12 above shift 0
    with pytest.raises(ValueError, match="shift 0, its parent wants 6"):
        _xa_count(_prog("<", nodes), _layout("<"), root | 2, 0, GFP_SHIFT)
    below = [0] * CHUNK
    below[1] = root | 2
    with pytest.raises(ValueError, match="below a leaf"):
        _xa_count(_prog("<", {root: _node("<", 0, below)}), _layout("<"), root | 2, 0, GFP_SHIFT)
