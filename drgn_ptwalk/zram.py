# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Reading swapped-out pages back from a zram device in a dump.

A swap device backed by zram (``swap_info_struct->bdev->bd_disk->fops == &zram_devops``; the disk's
``private_data`` is the ``struct zram *``) keeps each swap slot's page in ``zram->table[offset]``
(``struct zram_table_entry``): a zsmalloc handle (:mod:`drgn_ptwalk.zsmalloc`) and a flags word whose low
``ZRAM_FLAG_SHIFT`` bits are the stored size and whose upper bits are ``enum zram_pageflags``. The enum's
values, read from the debug info, give the bit positions, which moved across kernels: v6.1 has
``ZRAM_LOCK`` first (= ``ZRAM_FLAG_SHIFT``, a bit lock); v6.12 starts at ``ZRAM_SAME`` (its entries carry a
``spinlock_t``); v7.1 has ``ZRAM_ENTRY_LOCK`` after ``ZRAM_SAME``. ``ZRAM_FLAG_SHIFT`` (``PAGE_SHIFT + 1``)
is the smallest enum value in every version. The flags word is ``flags`` (``unsigned long`` in v6.1,
``unsigned int`` in v6.12) or ``attr.flags`` (``u32``, v7.1), found by member name.

How a slot reads, as ``zram_read_from_zspool()``/``read_from_zspool()`` do:

* ``ZRAM_WB``: written back to the zram's backing device; the handle is the block index there: not in the
  dump.
* ``ZRAM_SAME`` or handle 0: a page of the handle word repeated (``zram_fill_page()``, ``memset_l``).
* ``ZRAM_HUGE`` or size ``PAGE_SIZE`` (v6.1 tests the size): stored uncompressed.
* otherwise compressed with ``zram->comp_algs[prio]`` (v6.2+, the multi-compressor series "zram:
  preparation for multi-zcomp support"; ``prio`` from the ``ZRAM_COMP_PRIORITY_BIT1``/``BIT2`` flags) or
  ``zram->compressor`` (v6.1 and before). v6.12+ compress with zram's own backends (``backend_*.c``) and
  v6.1 through the crypto API; the formats are the same (an LZ4 block, a zstd frame, raw deflate, LZO1X).
"""

import struct
from typing import Dict, List, NamedTuple, Optional

from drgn import FaultError, Object, Program, ProgramFlags, TypeKind, cast, offsetof, sizeof

from drgn_ptwalk._compat import type_unaliased
from drgn_ptwalk.decompress import DecompressError, decompress_page
from drgn_ptwalk.errors import ZramError
from drgn_ptwalk.zsmalloc import ZsError, ZsPool, load_module_debug_info

__all__ = ("ZramDevice", "ZramError", "ZramPage", "ZramSlot", "zram_of_swap")


class ZramSlot(NamedTuple):
    """One ``struct zram_table_entry``, decoded."""

    handle: int
    """zsmalloc handle, or the fill word of a same-filled page, or the backing-device block."""
    size: int
    """Stored (compressed) size in bytes."""
    flags: int
    """The raw flags word."""
    same: bool
    huge: bool
    written_back: bool
    prio: int
    """Compressor priority index (0: the primary algorithm)."""


class ZramPage(NamedTuple):
    """A page read back from zram."""

    data: bytes
    same: bool
    """A same-filled page (no data stored)."""
    detail: str
    """``"lz4, 1234 bytes"``, ``"same-filled 0x..."``, ``"stored uncompressed"``."""


class _Layout(NamedTuple):
    entry_size: int
    handle_off: int
    flags_off: int
    flags_fmt: struct.Struct
    word: struct.Struct
    flag_shift: int
    bits: Dict[str, int]


def _layout(prog: Program) -> _Layout:
    try:
        return prog.cache["ptwalk_zram_layout"]
    except KeyError:
        pass
    try:
        prog.type("struct zram_table_entry")
    except LookupError:
        load_module_debug_info(prog, "struct zram_table_entry")
    try:
        entry = prog.type("struct zram_table_entry")
        enum = prog.type("enum zram_pageflags")
    except LookupError:
        raise ZramError("no debug info for zram (struct zram_table_entry): give the zram module's debug file "
                        "with -s (.../lib/modules/<release>/kernel/drivers/block/zram/zram.ko of Debian's "
                        "linux-image-<release>-dbg)") from None
    try:
        flags_off = offsetof(entry, "flags")
        flags_type = entry.member("flags").type
    except LookupError:
        flags_off = offsetof(entry, "attr.flags")
        flags_type = entry.member("attr").type.member("flags").type
    bits = {name: value for name, value in (enum.enumerators or ())}
    order = "<" if prog.platform.flags & prog.platform.flags.__class__.IS_LITTLE_ENDIAN else ">"
    fmt = struct.Struct(order + ("Q" if sizeof(flags_type) == 8 else "I"))
    lay = _Layout(entry.size, offsetof(entry, "handle"), flags_off, fmt, struct.Struct(order + "Q"),
                  min(v for n, v in bits.items() if not n.startswith("__")), bits)
    prog.cache["ptwalk_zram_layout"] = lay
    return lay


def _string(prog: Program, obj: Object) -> str:
    try:
        if type_unaliased(obj.type_).kind == TypeKind.ARRAY:
            return obj.string_().decode(errors="replace")
        if not obj.value_():
            return ""
        return obj.string_().decode(errors="replace")
    except FaultError:
        return "?"


class ZramDevice:
    """
    One zram device: reads its slots.

    :param zram: ``struct zram *``
    """

    def __init__(self, zram: Object) -> None:
        self.prog = zram.prog_
        self.lay = _layout(self.prog)
        self.table = zram.table.value_()
        self.name = _string(self.prog, zram.disk.disk_name)
        self.page_size = self.prog["PAGE_SIZE"].value_()
        self.nr_slots = zram.disksize.value_() // self.page_size
        self.compressors: List[str] = []
        try:
            algs = zram.comp_algs
            self.compressors = [_string(self.prog, algs[i]) for i in range(len(algs))]
        except AttributeError:
            self.compressors = [_string(self.prog, zram.compressor)]
        self.backing = ""
        try:
            if zram.backing_dev:
                from drgn.helpers.linux.fs import d_path

                self.backing = d_path(zram.backing_dev.f_path).decode(errors="replace")
        except (AttributeError, FaultError, ValueError):
            pass
        self.pool = ZsPool(zram.mem_pool)

    def slot(self, offset: int) -> ZramSlot:
        """The table entry of slot *offset*."""
        lay = self.lay
        if not 0 <= offset < self.nr_slots:
            raise ZramError(f"slot {offset:#x} is beyond {self.name}'s {self.nr_slots:#x} slots")
        try:
            raw = self.prog.read(self.table + offset * lay.entry_size, lay.entry_size)
        except FaultError:
            raise ZramError(f"{self.name}: table entry {offset:#x} is not in the dump") from None
        handle = lay.word.unpack_from(raw, lay.handle_off)[0]
        flags = lay.flags_fmt.unpack_from(raw, lay.flags_off)[0]
        b = lay.bits

        def bit(name: str) -> bool:
            return name in b and bool(flags & (1 << b[name]))

        prio = 0
        if "ZRAM_COMP_PRIORITY_BIT1" in b:
            prio = (flags >> b["ZRAM_COMP_PRIORITY_BIT1"]) & 3
        return ZramSlot(handle, flags & ((1 << lay.flag_shift) - 1), flags, bit("ZRAM_SAME"), bit("ZRAM_HUGE"),
                        bit("ZRAM_WB"), prio)

    def read_page(self, offset: int) -> ZramPage:
        """
        The page in slot *offset*.

        :raises ZramError: written back to the backing device, an unreadable table or object, a corrupt
            compressed object (the message says which)
        """
        s = self.slot(offset)
        ps = self.page_size
        if s.written_back:
            where = f" {self.backing}" if self.backing else ""
            raise ZramError(f"written back by {self.name} to its backing device{where}, block {s.handle:#x}")
        if s.same or not s.handle:
            word = self.lay.word.pack(s.handle)
            return ZramPage(word * (ps // 8), True, f"same-filled {s.handle:#018x}")
        try:
            if s.huge or s.size == ps:
                return ZramPage(self.pool.read(s.handle, ps), False, "stored uncompressed")
            data = self.pool.read(s.handle, s.size)
        except ZsError as e:
            raise ZramError(f"{self.name}: {e}") from None
        alg = self.compressors[s.prio] if s.prio < len(self.compressors) else ""
        if not alg:
            raise ZramError(f"{self.name}: no compressor at priority {s.prio}")
        try:
            return ZramPage(decompress_page(alg, data, ps), False, f"{alg}, {s.size} bytes")
        except DecompressError as e:
            raise ZramError(f"{self.name}: {e}") from None


def zram_of_swap(si: Object) -> Optional[ZramDevice]:
    """
    The zram device a swap area is on, or None if it is not on zram.

    :param si: ``struct swap_info_struct *``
    :raises ZramError: if it is on zram but the zram module's debug info is missing
    """
    prog = si.prog_
    try:
        bdev = si.bdev.read_()
        if not bdev:
            return None
        disk = bdev.bd_disk.read_()
        if not disk:
            return None
        fops = disk.fops.value_()
        name = disk.disk_name.string_().decode(errors="replace")
    except FaultError:
        return None
    try:
        is_zram = prog.symbol(fops).name == "zram_devops"
    except LookupError:
        is_zram = name.startswith("zram")
    if not is_zram:
        return None
    try:
        prog.type("struct zram")
    except LookupError:
        load_module_debug_info(prog, "struct zram")
    try:
        zram = cast("struct zram *", disk.private_data)
    except LookupError:
        raise ZramError(f"swap device {name} is zram but there is no debug info for zram: give the zram module's "
                        "debug file with -s (.../lib/modules/<release>/kernel/drivers/block/zram/zram.ko of "
                        "Debian's linux-image-<release>-dbg; zsmalloc.ko too where it is a module)") from None
    # One ZramDevice per device and program (its zsmalloc calibration is kept); a live kernel's zram
    # may be reset and set up again, so there it is made anew each time.
    if prog.flags & ProgramFlags.IS_LIVE:
        return ZramDevice(zram)
    cache = prog.cache.setdefault("ptwalk_zram_devices", {})
    key = zram.value_()
    dev = cache.get(key)
    if dev is None:
        dev = cache[key] = ZramDevice(zram)
    return dev
