# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Reading pages held by zswap (the compressed cache in front of swap devices) from a dump.

zswap's index of the pages it holds, per swap type, changed twice:

* up to v6.7: ``static struct zswap_tree *zswap_trees[MAX_SWAPFILES]``, one rbtree (``rbroot``) of
  ``struct zswap_entry`` per swap type, keyed by ``entry->offset`` (``swp_offset(entry->swpentry)`` once
  the entry stores the whole swap entry);
* v6.8 and v6.9: an array of such trees per type, one per ``SWAP_ADDRESS_SPACE_PAGES`` (1 << 14) slots,
  ``zswap_trees[type][offset >> 14]``, with ``nr_zswap_trees[]`` (commit 44c7c734a513 "mm/zswap: split
  zswap rb-tree", v6.8);
* v6.10 on: ``static struct xarray *zswap_trees[MAX_SWAPFILES]``, the same split with xarrays:
  ``xa_load(&zswap_trees[type][offset >> 14], offset)`` (commit 796c2c23e14e "zswap: replace RB tree with
  xarray", v6.10).

Which one a kernel has is read from the type of ``zswap_trees`` and whether ``nr_zswap_trees`` exists.
An entry holds ``length`` bytes in its pool at ``handle``:

* ``length == 0`` on kernels whose entry has ``value`` (same-filled pages: v6.1 has it, v6.12 and v7.2
  do not): a page of ``value`` repeated;
* the pool is ``pool->zpool`` (``struct zpool``: ``driver->type`` names zsmalloc, zbud or z3fold and
  ``pool`` is the allocator's pool; v6.1, v6.12) or ``pool->zs_pool`` (zsmalloc only, zpool removed;
  v7.1, v7.2); zsmalloc objects are read by :mod:`drgn_ptwalk.zsmalloc`, zbud's handle is the object's
  address (``zbud_map()``), z3fold's encoded handles are not read;
* pools that can evict (``zpool->evictable``, v6.1's zbud and z3fold) put a ``struct zswap_header``
  (the ``swp_entry_t``) before the data;
* ``length == PAGE_SIZE``: stored uncompressed (kernels whose ``zswap_decompress()`` copies such entries
  as they are; before that zswap refused incompressible pages, so no entry had that length);
* otherwise compressed with ``pool->tfm_name``.
"""

from typing import NamedTuple, Optional, Tuple

from drgn import FaultError, Object, Program, cast, container_of, sizeof

from drgn_ptwalk.decompress import DecompressError, decompress_page
from drgn_ptwalk.errors import ZswapError
from drgn_ptwalk.zsmalloc import ZsError, ZsPool

__all__ = ("ZswapError", "ZswapPage", "zswap_enabled", "zswap_load")

SWAP_ADDRESS_SPACE_SHIFT = 14
"""``SWAP_ADDRESS_SPACE_SHIFT`` (include/linux/swap.h, then mm/swap.h; 14 since v4.11)."""


_SWP_OFFSET_MASK = (1 << 58) - 1
"""``swp_offset()`` of a ``swp_entry_t`` on 64-bit: the bits below ``SWP_TYPE_SHIFT``
(``BITS_PER_XA_VALUE - MAX_SWAPFILES_SHIFT`` = 63 - 5)."""


class ZswapPage(NamedTuple):
    """A page found in zswap."""

    data: bytes
    detail: str
    """``"lz4 in zsmalloc, 812 bytes"``, ``"same-filled 0x..."``."""


def zswap_enabled(prog: Program) -> bool:
    """Whether this kernel has zswap at all (``zswap_trees`` in its debug info)."""
    try:
        return prog.cache["ptwalk_zswap_enabled"]
    except KeyError:
        pass
    has = "zswap_trees" in prog
    prog.cache["ptwalk_zswap_enabled"] = has
    return has


def _pool_reader(prog: Program, zpool_holder: Object) -> Tuple[str, Optional[ZsPool], int]:
    """(allocator name, reader, header size) of a ``struct zswap_pool *``."""
    cache = prog.cache.setdefault("ptwalk_zswap_pools", {})
    key = zpool_holder.value_()
    try:
        return cache[key]
    except KeyError:
        pass
    header = 0
    r: Tuple[str, Optional[ZsPool], int]
    try:
        zs = zpool_holder.zs_pool
        r = ("zsmalloc", ZsPool(zs), 0)
    except AttributeError:
        zpool = zpool_holder.zpool
        kind = zpool.driver.type.string_().decode(errors="replace")
        try:
            if zpool.evictable:
                header = sizeof(prog.type("swp_entry_t"))  # struct zswap_header
        except AttributeError:
            pass
        if kind == "zsmalloc":
            r = (kind, ZsPool(cast("struct zs_pool *", zpool.pool)), header)
        else:
            r = (kind, None, header)
    cache[key] = r
    return r


def _entry(prog: Program, type: int, offset: int) -> Optional[Object]:
    """The ``struct zswap_entry *`` of swap slot (type, offset), or None."""
    trees = prog["zswap_trees"]
    tree = trees[type].read_()
    if not tree:
        return None
    if tree.type_.type.type_name() == "struct xarray":
        from drgn.helpers.linux.xarray import xa_load

        nr = prog["nr_zswap_trees"][type].value_()
        i = offset >> SWAP_ADDRESS_SPACE_SHIFT
        if i >= nr:
            return None
        e = xa_load(tree[i].address_of_(), offset)
        if not e.value_():
            return None
        return cast("struct zswap_entry *", e)
    if "nr_zswap_trees" in prog:
        i = offset >> SWAP_ADDRESS_SPACE_SHIFT
        if i >= prog["nr_zswap_trees"][type].value_():
            return None
        tree = tree[i].address_of_()
    has_offset = prog.type("struct zswap_entry").has_member("offset")
    node = tree.rbroot.rb_node.read_()
    seen = 0
    while node.value_():
        e = container_of(node, "struct zswap_entry", "rbnode")
        key = e.offset.value_() if has_offset else e.swpentry.val.value_() & _SWP_OFFSET_MASK
        if offset < key:
            node = node.rb_left.read_()
        elif offset > key:
            node = node.rb_right.read_()
        else:
            return e
        seen += 1
        if seen > 128:  # an rbtree of 2**64 entries is 128 deep at most: a loop in a corrupt tree
            raise ZswapError(f"zswap rbtree of swap type {type} is corrupt (a cycle)")
    return None


def zswap_load(prog: Program, type: int, offset: int) -> Optional[ZswapPage]:
    """
    The page zswap holds for swap slot (*type*, *offset*), as ``zswap_load()`` would give it, or None if
    zswap does not hold it (or the kernel has no zswap).

    :raises ZswapError: if zswap holds it but it cannot be read (a corrupt object, an unsupported pool,
        a missing decompression library: the message says which)
    """
    if not zswap_enabled(prog):
        return None
    try:
        e = _entry(prog, type, offset)
    except FaultError as ex:
        raise ZswapError(f"zswap's index of swap type {type} cannot be read at {ex.address:#x}") from None
    if e is None:
        return None
    try:
        page_size = prog["PAGE_SIZE"].value_()
        length = e.length.value_()
        if length == 0 and e.type_.type.has_member("value"):
            value = e.value.value_()
            word = value.to_bytes(8, "little" if prog.platform.flags & prog.platform.flags.__class__.IS_LITTLE_ENDIAN
                                  else "big")
            return ZswapPage(word * (page_size // 8), f"same-filled {value:#018x}")
        pool = e.pool.read_()
        alg = pool.tfm_name.string_().decode(errors="replace")
        kind, reader, header = _pool_reader(prog, pool)
        handle = e.handle.value_()
        if isinstance(reader, ZsPool):
            data = reader.read(handle, header + length)[header:]
        elif kind == "zbud":
            data = prog.read(handle + header, length)
        else:
            raise ZswapError(f"zswap entry in a {kind} pool: reading {kind} objects is not supported")
    except FaultError as ex:
        raise ZswapError(f"zswap entry of {type}:{offset:#x}: memory at {ex.address:#x} is not in the dump") from None
    except ZsError as ex:
        raise ZswapError(f"zswap entry of {type}:{offset:#x}: {ex}") from None
    if length == page_size:
        return ZswapPage(data, f"stored uncompressed in {kind}")
    try:
        return ZswapPage(decompress_page(alg, data, page_size), f"{alg} in {kind}, {length} bytes")
    except DecompressError as ex:
        raise ZswapError(f"zswap entry of {type}:{offset:#x}: {ex}") from None
