# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Swap facts for smaps: ``swp_swapcount()`` (SwapPss divisor) and the shmem
swap usage of a mapping (``shmem_swap_usage()`` /
``shmem_partial_swap_usage()``).
"""

import struct
from typing import Dict, Iterator, Optional, Tuple

from drgn import Object, Program

from drgn_ptwalk._byteorder import struct_order
from drgn_ptwalk.arch import get_decoder
from drgn_ptwalk.generations import generation

__all__ = ("SwapCounter", "shmem_partial_swap_usage", "shmem_swap_usage")

SWAP_HAS_CACHE = 0x40
COUNT_CONTINUED = 0x80
SWAP_MAP_MAX = 0x3E
SWAP_CONT_MAX = 0x7F
SWP_USED = 1


class SwapCounter:
    """``swp_swapcount(entry)`` with per-device state cached."""

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.si: Dict[int, Optional[Object]] = {}
        # The swap table replaced the swap_map count byte by a count in the
        # cluster's table entries (Generation.swap_table).
        self.table = generation(prog).swap_table

    def _info(self, type: int) -> Optional[Object]:
        try:
            return self.si[type]
        except KeyError:
            pass
        si = None
        arr = self.prog["swap_info"]
        if type < len(arr):
            p = arr[type].read_()
            if p.value_() and p.flags.value_() & SWP_USED:
                si = p
        self.si[type] = si
        return si

    def count(self, type: int, offset: int) -> int:
        """
        ``swp_swapcount()`` of swap entry (*type*, *offset*).

        :raises drgn.FaultError: if the swap map is not in the dump
        """
        si = self._info(type)
        if si is None or offset >= si.max.value_():
            return 0
        if self.table:
            return self._table_count(si, offset)
        prog = self.prog
        smap = si.swap_map.value_()
        c = prog.read_u8(smap + offset)
        if not c:
            return 0
        count = c & ~SWAP_HAS_CACHE
        if not count & COUNT_CONTINUED:
            return count
        count &= ~COUNT_CONTINUED
        return self._continued(smap, offset, count)

    def _continued(self, smap: int, offset: int, count: int) -> int:
        # Continuation pages hang off the lru list of the swap_map page.
        from drgn.helpers.linux.list import list_for_each_entry
        from drgn.helpers.linux.mm import page_to_virt, vmalloc_to_page

        prog = self.prog
        head = vmalloc_to_page(prog, smap + offset)
        # The continuation pages hold the count at the byte's offset in its page (of the kernel's size:
        # 16K and 64K on some arm64 kernels).
        off = (smap + offset) % get_decoder(prog).page_size
        n = SWAP_MAP_MAX + 1
        for page in list_for_each_entry("struct page", head.lru.address_of_(), "lru"):
            tmp = prog.read_u8(page_to_virt(page).value_() + off)
            count += (tmp & ~COUNT_CONTINUED) * n
            n *= SWAP_CONT_MAX + 1
            if not tmp & COUNT_CONTINUED:
                break
        return count

    def _table_count(self, si: Object, offset: int) -> int:
        # swp_swapcount() v7.x: ci = cluster_info[offset / SWAPFILE_CLUSTER];
        # tb = ci->table[offset % SWAPFILE_CLUSTER]; count = tb >> 60
        # (SWP_TB_COUNT_SHIFT); 15 means ci->extend_table[off].
        prog = self.prog
        nr = self._cluster_size()
        ci = si.cluster_info[offset // nr]
        table = ci.table.read_()
        # __rcu pointer to struct swap_table { atomic_long_t entries[]; }
        tp = table.value_()
        if not tp:
            return 0
        tb = prog.read_u64(tp + 8 * (offset % nr))
        if not (tb == 0 or tb & 1 or tb & 3 == 2):
            return 0
        count = tb >> 60
        if count == 15:
            ext = ci.extend_table.value_()
            if ext:
                return prog.read_u32(ext + 4 * (offset % nr))
        return count

    def _cluster_size(self) -> int:
        try:
            return self.prog.cache["ptwalk_swapfile_cluster"]
        except KeyError:
            pass
        try:
            n = self.prog.constant("SWAPFILE_CLUSTER").value_()
        except LookupError:
            # SWAPFILE_CLUSTER = HPAGE_PMD_NR with THP_SWAP, else 256:
            # the size of the cluster table array tells.
            n = None
            try:
                t = self.prog.type("struct swap_table")
                n = t.member("entries").type.length
            except (LookupError, AttributeError):
                pass
            if not n:
                n = 512
        self.prog.cache["ptwalk_swapfile_cluster"] = n
        return n


# ---------------------------------------------------------------------------
# shmem


def _xa_value_entries(xa: Object, first: int, last: int) -> Iterator[Tuple[int, int]]:
    """
    ``(index, order)`` of the value (swap) entries of the xarray *xa* that
    intersect ``[first, last]``; a multi-index entry is reported once with
    its order, as ``xas_for_each()`` + ``xas_get_order()`` see it.
    """
    prog = xa.prog_
    chunk = 64  # XA_CHUNK_SIZE (XA_CHUNK_SHIFT 6)
    order = struct_order(prog)

    def is_node(v: int) -> bool:
        return v & 3 == 2 and v > 4096

    def is_sibling(v: int) -> bool:
        return v & 3 == 2 and (v >> 2) < chunk - 1

    def walk(node_addr: int, base: int) -> Iterator[Tuple[int, int]]:
        node = Object(prog, "struct xa_node *", node_addr)
        shift = node.shift.value_()
        vals = struct.unpack(f"{order}{chunk}Q", prog.read(node.slots.address_of_().value_(), 8 * chunk))
        i = 0
        while i < chunk:
            v = vals[i]
            lo = base + (i << shift)
            j = i + 1
            while j < chunk and is_sibling(vals[j]):
                j += 1
            hi = base + (j << shift) - 1
            if v and hi >= first and lo <= last:
                if is_node(v):
                    yield from walk(v - 2, lo)
                elif v & 1:
                    yield lo, shift + (j - i).bit_length() - 1
            i = j

    head = xa.xa_head.value_()
    if is_node(head):
        yield from walk(head - 2, 0)
    elif head & 1 and first == 0:
        yield 0, 0


def shmem_partial_swap_usage(mapping: Object, start: int, end: int, per_entry_order: bool) -> int:
    """
    ``shmem_partial_swap_usage(mapping, start, end)`` in pages: value
    entries in ``[start, end)``, each counting ``1 << order``
    (*per_entry_order*, v6.12+) or 1 (v6.1).

    :param mapping: ``struct address_space *``
    """
    total = 0
    if end <= start:
        return 0
    for _, order in _xa_value_entries(mapping.i_pages.address_of_(), start, end - 1):
        total += (1 << order) if per_entry_order else 1
    return total


def shmem_swap_usage(vma: Object, per_entry_order: bool) -> int:
    """
    ``shmem_swap_usage(vma)`` in pages.

    :param vma: ``struct vm_area_struct *`` of a shmem file
    """
    from drgn import container_of

    prog = vma.prog_
    inode = vma.vm_file.f_inode
    info = container_of(inode, "struct shmem_inode_info", "vfs_inode")
    swapped = info.swapped.value_()
    if not swapped:
        return 0
    mapping = vma.vm_file.f_mapping
    from drgn_ptwalk._kernel import page_size

    ps = page_size(prog)
    pages = (vma.vm_end.value_() - vma.vm_start.value_()) // ps
    if not vma.vm_pgoff.value_() and vma.vm_end.value_() - vma.vm_start.value_() >= inode.i_size.value_():
        return swapped
    pg = vma.vm_pgoff.value_()
    return shmem_partial_swap_usage(mapping, pg, pg + pages, per_entry_order)
