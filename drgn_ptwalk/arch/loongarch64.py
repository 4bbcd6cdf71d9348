# SPDX-License-Identifier: LGPL-2.1-or-later
"""
LoongArch (64-bit) page-table entries (arch/loongarch/include/asm/{pgtable,pgtable-bits,addrspace}.h,
as of Linux 7.2).

Geometry: every table is one page of 8-byte entries (``PTRS_PER_* = PAGE_SIZE >> 3``), so each level
translates ``PAGE_SHIFT - 3`` bits; ``CONFIG_PGTABLE_LEVELS`` is 2, 3 or 4 (Debian's loong64 flavour:
16 KiB pages, 3 levels, 47-bit addresses). The depth is read from the kernel: ``invalid_pud_table``
exists with 4 levels, ``invalid_pmd_table`` with 3 or more. User and kernel halves have separate roots
(the PGDL and PGDH registers): ``mm->pgd`` for user addresses, ``swapper_pg_dir`` for the kernel's
``vm_map_base`` range (vmalloc, modules, vmemmap).

* Table entries hold the *virtual* (direct-mapped window) address of the next table
  (``pmd_page_vaddr()`` is ``pmd_val()``); the physical address is ``PHYSADDR()``, the low
  ``DMW_PABITS`` (48) bits. An empty upper entry is not 0 but the address of the kernel's invalid table
  of the level below (``pud_none()``: ``== invalid_pmd_table``, ``pmd_none()``: ``==
  invalid_pte_table``, ``p4d_none()``: ``== invalid_pud_table``): :attr:`LoongArch64Decoder.none_exact`.
  ``p?d_bad()`` is any bit below ``PAGE_SHIFT``.
* PTE: ``pte_none()`` ignores ``_PAGE_GLOBAL`` (bit 6; kernel PTEs keep it when cleared);
  ``pte_present()`` is ``_PAGE_PRESENT`` (bit 7) or ``_PAGE_PROTNONE`` (bit 10; PROT_NONE and
  NUMA-hinting entries, ``pte_protnone()``). Write ``_PAGE_WRITE`` (8), dirty ``_PAGE_DIRTY`` (1) or
  ``_PAGE_MODIFIED`` (9), young ``_PAGE_ACCESSED`` (bit 0, the hardware valid bit), special
  ``_PAGE_SPECIAL`` (11). The PFN is bits ``[PAGE_SHIFT, 48)`` (``_PFN_MASK``, ``PFN_PTE_SHIFT``).
* PMD leaves (THP, hugetlb: ``HPAGE_SHIFT`` is ``PMD_SHIFT``, 32 MiB with 16 KiB pages): ``_PAGE_HUGE``
  is bit 6, the same bit as ``_PAGE_GLOBAL`` of a PTE (a huge PMD's global bit moves to
  ``_PAGE_HGLOBAL``, bit 12, ``pmd_mkhuge()``). ``pmd_present()`` of a huge PMD is ``_PAGE_PRESENT``,
  ``_PAGE_PROTNONE`` or ``_PAGE_PRESENT_INVALID`` (bit 60, ``pmd_mkinvalid()``); a huge PMD without them
  is a swap-format one (``__swp_entry_to_pmd()`` sets ``_PAGE_HUGE``: THP migration, hugetlb
  migration/hwpoison).
* Swap (``mk_swap_pte()``): type in bits 16-22 (7 bits), offset from bit 24, exclusive marker bit 23
  (``_PAGE_SWP_EXCLUSIVE``); bits 0-15 are zero (present and protnone included).
* No soft-dirty (LoongArch selects no ``HAVE_ARCH_SOFT_DIRTY``), no uffd-wp (only
  ``HAVE_ARCH_USERFAULTFD_MINOR``), no contiguous entries.
"""

import os
import struct
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from drgn import FaultError, Program

from drgn_ptwalk._vmcoreinfo import vmcoreinfo, vmcoreinfo_number
from drgn_ptwalk.arch import BAD, LEAF, NONE, SWAP, TABLE, ArchDecoder
from drgn_ptwalk.entry import PtFlag, PtLevel
from drgn_ptwalk.errors import RelocationError

__all__ = (
    "LoongArch64Decoder",
    "RelocationError",
    "load_module_debug_info",
    "map_direct_windows",
    "map_kernel_tables",
    "relocate_module_debug",
)

_U64 = (1 << 64) - 1
_VALID = 1 << 0  # also _PAGE_ACCESSED
_DIRTY = 1 << 1
_GLOBAL = 1 << 6  # PTE
_HUGE = 1 << 6  # PMD: the same bit
_PRESENT = 1 << 7
_WRITE = 1 << 8
_MODIFIED = 1 << 9
_PROTNONE = 1 << 10
_SPECIAL = 1 << 11
_SWP_EXCLUSIVE = 1 << 23
_PRESENT_INVALID = 1 << 60
_PFN_END_SHIFT = 48
# DMW_PABITS: PHYSADDR() of a direct-mapped (table) address.
TO_PHYS_MASK = (1 << 48) - 1
# CACHE_BASE (CSR_DMW1_BASE): the cached direct-mapped window, where the kernel image, its data and the
# page tables are (PAGE_OFFSET with PHYS_OFFSET 0).
CACHE_BASE = 0x9000000000000000
_SWP_TYPE_SHIFT = 16
_SWP_TYPE_MASK = (1 << 7) - 1
_SWP_OFFSET_SHIFT = 24
# LoongArch's MAX_PHYSMEM_BITS (asm/sparsemem.h).
_MAX_PHYSMEM_BITS = 48


class LoongArch64Decoder(ArchDecoder):
    """
    Decoder for LoongArch 64-bit page tables.

    :param page_shift: ``PAGE_SHIFT`` (12, 14 or 16)
    :param levels: ``CONFIG_PGTABLE_LEVELS`` (2, 3 or 4)
    :param invalid_tables: the addresses of ``invalid_pud_table``, ``invalid_pmd_table`` and
        ``invalid_pte_table`` the levels below the root use (the values of empty entries), root first:
        one per level above the PTE level
    :param max_physmem_bits: ``MAX_PHYSMEM_BITS`` (swap PFN width)
    """

    special_mask = _SPECIAL
    swap_step = 1 << _SWP_OFFSET_SHIFT
    leaf_flag_bits = _VALID | _DIRTY | _PRESENT | _WRITE | _MODIFIED | _PROTNONE | _SPECIAL
    swap_flag_bits = _SWP_EXCLUSIVE
    none_exact: Tuple[Optional[int], ...]
    """Per level the value of an empty entry: the invalid table below it (``None`` for the PTE level)."""

    def __init__(
        self,
        prog: Optional[Program] = None,
        *,
        page_shift: int = 14,
        levels: int = 3,
        invalid_tables: Tuple[int, ...] = (),
        max_physmem_bits: Optional[int] = None,
    ) -> None:
        super().__init__(prog)
        if page_shift not in (12, 14, 16):
            raise ValueError(f"unsupported page shift {page_shift}")
        if levels not in (2, 3, 4):
            raise ValueError(f"unsupported number of levels {levels}")
        if len(invalid_tables) != levels - 1:
            raise ValueError(f"{levels} levels need {levels - 1} invalid table addresses")
        self.page_shift = page_shift
        bits = page_shift - 3
        names = {2: (PtLevel.PGD, PtLevel.PTE), 3: (PtLevel.PGD, PtLevel.PMD, PtLevel.PTE),
                 4: (PtLevel.PGD, PtLevel.PUD, PtLevel.PMD, PtLevel.PTE)}[levels]
        self.levels = tuple((lvl, page_shift + bits * (levels - 1 - i), 1 << bits) for i, lvl in enumerate(names))
        # VA_BITS = PGDIR_SHIFT + PAGE_SHIFT - 3.
        self.va_bits = page_shift + bits * levels
        self.none_exact = (*invalid_tables, None)
        self.none_masks = (*(_U64 for _ in invalid_tables), _U64 & ~_GLOBAL)
        self._pte_depth = levels - 1
        # Leaves: the PMD level (HPAGE_SHIFT is PMD_SHIFT); none with 2 levels (no PMD).
        self._leaf_depth = levels - 2 if levels > 2 else -1
        self._page_mask = (1 << page_shift) - 1
        self.pfn_mask = ((1 << _PFN_END_SHIFT) - 1) & ~self._page_mask
        self.swp_pfn_mask = (1 << ((max_physmem_bits or _MAX_PHYSMEM_BITS) - page_shift)) - 1

    @classmethod
    def from_program(cls, prog: Program) -> "LoongArch64Decoder":
        """Build the decoder from what the kernel in *prog* says about itself: ``PAGESIZE`` (VMCOREINFO)
        and which invalid tables it has (``CONFIG_PGTABLE_LEVELS``)."""
        page_size = vmcoreinfo_number(prog, "PAGESIZE")
        if page_size is None:
            page_size = prog["PAGE_SIZE"].value_()
        invalid = []
        for name in ("invalid_pud_table", "invalid_pmd_table", "invalid_pte_table"):
            try:
                invalid.append(prog.symbol(name).address)
            except LookupError:
                continue
        return cls(
            prog,
            page_shift=page_size.bit_length() - 1,
            levels=len(invalid) + 1,
            invalid_tables=tuple(invalid),
            max_physmem_bits=vmcoreinfo_number(prog, "MAX_PHYSMEM_BITS"),
        )

    def user_range(self) -> Tuple[int, int]:
        return 0, 1 << self.va_bits

    def kernel_range(self) -> Tuple[int, int]:
        # vm_map_base: the top 2**VA_BITS of the address space, translated by swapper_pg_dir (the PGDH
        # root); the direct-mapped windows need no tables.
        return (1 << 64) - (1 << self.va_bits), 1 << 64

    def root(self, mm: Any) -> Tuple[int, bool]:
        # mm->pgd (swapper_pg_dir for init_mm) is a direct-mapped address: PHYSADDR() (drgn's
        # virt_to_phys() knows no LoongArch direct map).
        return mm.pgd.value_() & TO_PHYS_MASK, True

    def kind(self, value: int, depth: int) -> int:
        if depth == self._pte_depth:
            if not value & ~_GLOBAL:
                return NONE
            return LEAF if value & (_PRESENT | _PROTNONE) else SWAP
        if value == self.none_exact[depth]:
            return NONE
        if value & _HUGE and depth == self._leaf_depth:
            # pmd_present() of a huge PMD; else a swap-format PMD (__swp_entry_to_pmd()).
            return LEAF if value & (_PRESENT | _PROTNONE | _PRESENT_INVALID) else SWAP
        # p?d_bad(): bits below PAGE_SHIFT (a table's address is page-aligned).
        if value & self._page_mask or not value:
            return BAD
        return TABLE

    def table_addr(self, value: int) -> int:
        return value & TO_PHYS_MASK

    def leaf_pfn(self, value: int, shift: int) -> int:
        # pte_pfn(), pmd_pfn(): _PFN_MASK >> PFN_PTE_SHIFT (PFN_PTE_SHIFT is PAGE_SHIFT).
        return (value & self.pfn_mask & ~((1 << shift) - 1)) >> self.page_shift

    def leaf_step(self, value: int) -> int:
        return 1 << self.page_shift

    def pte_decode(self, value: int) -> Tuple[int, Optional[int], Optional[int]]:
        # Inlined kind() + leaf_pfn() + leaf_step() for PTEs (the hot path).
        if value & (_PRESENT | _PROTNONE):
            return LEAF, (value & self.pfn_mask) >> self.page_shift, 1 << self.page_shift
        if not value & ~_GLOBAL:
            return NONE, None, None
        return SWAP, None, None

    def swp(self, value: int) -> Tuple[int, int]:
        # __swp_type(), __swp_offset() (a PMD's _PAGE_HUGE is below the type, __pmd_to_swp_entry()).
        return (value >> _SWP_TYPE_SHIFT) & _SWP_TYPE_MASK, value >> _SWP_OFFSET_SHIFT

    def leaf_flags(self, value: int, level: PtLevel) -> int:
        # pte_write(), pte_dirty() (_PAGE_DIRTY | _PAGE_MODIFIED), pte_young() (_PAGE_ACCESSED),
        # pte_special(), pte_protnone(); the same bits in a huge PMD (pmd_write() & co.).
        f = PtFlag.PRESENT
        if value & _WRITE:
            f |= PtFlag.WRITE
        if value & (_DIRTY | _MODIFIED):
            f |= PtFlag.DIRTY
        if value & _VALID:
            f |= PtFlag.YOUNG
        if value & _SPECIAL and level == PtLevel.PTE:
            f |= PtFlag.SPECIAL
        if value & _PROTNONE:
            f |= PtFlag.PROTNONE
        return int(f)

    def swap_flags(self, value: int, level: PtLevel) -> int:
        # pte_swp_exclusive(); no soft-dirty or uffd-wp bits on LoongArch.
        return int(PtFlag.EXCLUSIVE) if value & _SWP_EXCLUSIVE else 0


# UNCACHE_BASE (CSR_DMW0_BASE): the uncached window.
UNCACHE_BASE = 0x8000000000000000
# The kernel's table-mapped addresses (vm_map_base is 0 - 2**(VA bits)): up to 48 bits.
_PGDH_START = (1 << 64) - (1 << 48)


def _faults(prog: Program, address: int, physical: bool) -> bool:
    try:
        prog.read(address, 8, physical)
        return False
    except FaultError:
        return True


def map_direct_windows(prog: Program) -> bool:
    """
    Let drgn read a LoongArch kernel's direct-mapped windows in a dump whose memory is only physical
    (QEMU's ``dump-guest-memory`` ELF: ``p_vaddr`` is the physical address).

    The kernel image, its data, the slab and the page tables are at ``CACHE_BASE`` (``0x9000...``) plus
    the physical address (``TO_CACHE()``, asm/addrspace.h), without page tables; drgn 0.3.0 translates
    no LoongArch address. Both windows (``CACHE_BASE``, ``UNCACHE_BASE``) become virtual segments reading
    physical memory. Detected by behaviour: only when the virtual read of ``swapper_pg_dir`` (VMCOREINFO)
    faults and its physical read works; a no-op on a drgn that translates them and on dumps with virtual
    addresses (/proc/vmcore, /proc/kcore). Call after ``set_core_dump()``. True if mapped.
    """
    platform = prog.platform
    if platform is None or platform.arch.name != "LOONGARCH64":  # (drgn < 0.3.0 has no LOONGARCH64)
        return False
    try:
        pgd = int(vmcoreinfo(prog)["SYMBOL(swapper_pg_dir)"], 16)
    except (KeyError, ValueError):
        return False
    if pgd >> 60 != CACHE_BASE >> 60 or not _faults(prog, pgd, False) or _faults(prog, pgd & TO_PHYS_MASK, True):
        return False
    for base in (CACHE_BASE, UNCACHE_BASE):

        def read(address: int, count: int, offset: int, physical: bool) -> bytes:
            return prog.read(offset, count, True)

        prog.add_memory_segment(base, 1 << 48, read, False)
    return True


def map_kernel_tables(prog: Program) -> bool:
    """
    Let drgn read a LoongArch kernel's mapped addresses (vmalloc, modules, vmemmap: ``struct page``)
    in a dump drgn cannot translate them in: the top ``2**48`` of the address space (``vm_map_base`` and
    up: the addresses the PGDH root translates, DMW_PABITS wide) becomes one virtual segment whose reads
    walk ``swapper_pg_dir`` (physical) with :class:`LoongArch64Decoder`. Needs no debug info (the
    modules are found with it): the page size and ``swapper_pg_dir`` come from VMCOREINFO, the depth is
    the one that translates ``vmemmap`` (VMCOREINFO) to a leaf. Detected by behaviour: only when the read
    of ``vmemmap`` faults and the direct-mapped ``swapper_pg_dir`` reads (call :func:`map_direct_windows`
    first on a physical-only dump). True if mapped.
    """
    platform = prog.platform
    if platform is None or platform.arch.name != "LOONGARCH64":  # (drgn < 0.3.0 has no LOONGARCH64)
        return False
    info = vmcoreinfo(prog)
    try:
        root = int(info["SYMBOL(swapper_pg_dir)"], 16) & TO_PHYS_MASK
        vmemmap = int(info["SYMBOL(vmemmap)"], 16)
        page_shift = int(info["PAGESIZE"]).bit_length() - 1
    except (KeyError, ValueError):
        return False
    if not _faults(prog, vmemmap, False) or _faults(prog, root, True):
        return False
    for levels in (3, 4, 2):
        # The invalid tables' addresses only tell empty entries from tables; here an empty entry leads
        # to an invalid table and a fault all the same.
        dec = LoongArch64Decoder(prog, page_shift=page_shift, levels=levels, invalid_tables=(0,) * (levels - 1))
        translate = _KernelTranslation(prog, dec, root)
        try:
            translate.leaf(vmemmap)
            break
        except FaultError:
            continue
    else:
        return False

    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        return translate.read(address, count)

    prog.add_memory_segment(_PGDH_START, (1 << 64) - _PGDH_START, read, False)
    return True


class _KernelTranslation:
    """Reads of kernel virtual addresses through ``swapper_pg_dir`` (physical), one leaf at a time; the
    leaf of the last address read is kept (``struct page`` reads walk the vmemmap in order)."""

    def __init__(self, prog: Program, dec: LoongArch64Decoder, root: int) -> None:
        self.prog = prog
        self.dec = dec
        self.root = root
        self.last: Tuple[int, int, int] = (1, 0, 0)  # (virtual start, size, physical start)

    def leaf(self, address: int) -> Tuple[int, int, int]:
        """``(virtual start, size, physical start)`` of the leaf mapping *address*."""
        dec, table = self.dec, self.root
        for depth, (_, shift, n) in enumerate(dec.levels):
            slot = table + ((address >> shift) & (n - 1)) * 8
            value = int.from_bytes(self.prog.read(slot, 8, True), "little")
            kind = dec.kind(value, depth)
            if kind == TABLE:
                table = dec.table_addr(value)
                continue
            if kind != LEAF:
                raise FaultError("LoongArch kernel address not mapped", address)
            start = address & ~((1 << shift) - 1) & _U64
            return start, 1 << shift, dec.leaf_pfn(value, shift) << dec.page_shift
        raise FaultError("LoongArch kernel address not mapped", address)

    def read(self, address: int, count: int) -> bytes:
        out = bytearray()
        while count:
            start, size, phys = self.last
            if not start <= address < start + size:
                start, size, phys = self.last = self.leaf(address)
            n = min(count, start + size - address)
            out += self.prog.read(phys + address - start, n, True)
            address += n
            count -= n
        return bytes(out)


# ELF (include/uapi/linux/elf.h) and LoongArch relocation types (the psABI; arch/loongarch/include/asm/elf.h).
_SHT_SYMTAB, _SHT_RELA, _SHF_ALLOC, _SHN_UNDEF, _SHN_LORESERVE = 2, 4, 0x2, 0, 0xFF00
_R_LARCH_32, _R_LARCH_64 = 1, 2


def relocate_module_debug(module: Any, path: "os.PathLike[str] | str", out: "os.PathLike[str] | str") -> None:
    """
    Write to *out* a copy of the kernel module debug file *path* (``ET_REL``) whose debug sections are
    relocated for *module* as it is loaded in the kernel, without relocation sections, made an ``ET_EXEC``
    with each section at its load address: what drgn 0.3.0 cannot do itself on LoongArch
    (``load_debug_info()`` of a module: ``NotImplementedError: relocation support is not implemented for
    LoongArch64 architecture``; it refuses any ``ET_REL`` file there, relocation sections or not).

    Debian's loong64 modules are built without linker relaxation: their debug sections hold only
    ``R_LARCH_32`` and ``R_LARCH_64`` relocations, ``S + A`` with ``S`` the symbol's value plus the load
    address of its section (*module*'s ``section_addresses``; 0 for a section the kernel did not load, as
    drgn does: ``.modinfo``, the debug sections themselves). The relocation sections of loaded sections
    are dropped (drgn reads the module's code and data from memory).

    :param module: the :class:`drgn.RelocatableModule` of the loaded module
    :raises RelocationError: another relocation type in a debug section, or not a 64-bit
        little-endian ``ET_REL`` file
    """
    data = bytearray(Path(path).read_bytes())
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1 or struct.unpack_from("<H", data, 16)[0] != 1:
        raise RelocationError(f"{path}: not a little-endian 64-bit ET_REL ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    shdrs = [list(struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)) for i in range(shnum)]
    strtab = shdrs[shstrndx]

    def name(sh: List[int]) -> str:
        start = strtab[4] + sh[0]
        return bytes(data[start:data.index(0, start)]).decode()

    addresses = dict(module.section_addresses)
    base = [addresses.get(name(sh), 0) if sh[2] & _SHF_ALLOC else 0 for sh in shdrs]
    for i, sh in enumerate(shdrs):
        target = shdrs[sh[7]] if sh[1] == _SHT_RELA and sh[7] < shnum else None
        if target is None:
            continue
        if target[2] & _SHF_ALLOC:
            # Code and data relocations: dropped (drgn reads the loaded module's memory, not these
            # sections, and would refuse the file for them).
            struct.pack_into("<I", data, shoff + i * shentsize + 4, 0)  # SHT_NULL
            continue
        symtab = shdrs[sh[6]]
        if symtab[1] != _SHT_SYMTAB:
            raise RelocationError(f"{path}: {name(sh)} has no symbol table")
        for off in range(sh[4], sh[4] + sh[5], 24):
            r_offset, r_info, r_addend = struct.unpack_from("<QQq", data, off)
            sym, rtype = r_info >> 32, r_info & 0xFFFFFFFF
            _, _, _, shndx, value, _ = struct.unpack_from("<IBBHQQ", data, symtab[4] + sym * 24)
            if shndx == _SHN_UNDEF or shndx >= _SHN_LORESERVE:
                s = value if shndx != _SHN_UNDEF else 0
            else:
                s = value + base[shndx]
            where = target[4] + r_offset
            if rtype == _R_LARCH_64:
                struct.pack_into("<Q", data, where, (s + r_addend) & _U64)
            elif rtype == _R_LARCH_32:
                struct.pack_into("<I", data, where, (s + r_addend) & 0xFFFFFFFF)
            else:
                raise RelocationError(f"{path}: relocation type {rtype} in {name(sh)}")
        # Applied: the section is no longer a relocation section for drgn.
        struct.pack_into("<I", data, shoff + i * shentsize + 4, 0)  # SHT_NULL
    # An ET_EXEC whose sections are at their load addresses, which drgn takes as they are.
    struct.pack_into("<H", data, 16, 2)  # e_type = ET_EXEC
    for i in range(shnum):
        struct.pack_into("<Q", data, shoff + i * shentsize + 16, base[i])  # sh_addr
    tmp = Path(f"{out}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)


def load_module_debug_info(
    prog: Program, paths: Sequence["os.PathLike[str] | str"], work: "os.PathLike[str] | str"
) -> None:
    """
    ``prog.load_debug_info(paths)`` for kernel module debug files on a LoongArch kernel: each file
    relocated first (:func:`relocate_module_debug`, into the directory *work*) for the loaded module of its
    name; on other architectures the files as they are.

    :raises LookupError: a module of that name is not loaded
    :raises RelocationError: see :func:`relocate_module_debug`
    """
    platform = prog.platform
    if platform is None or platform.arch.name != "LOONGARCH64":  # (drgn < 0.3.0 has no LOONGARCH64)
        prog.load_debug_info([os.fspath(p) for p in paths])
        return
    done = []
    for p in paths:
        stem = Path(p).name.split(".ko")[0].replace("-", "_")
        out = Path(work) / f"{stem}.relocated.ko"
        relocate_module_debug(prog.module(stem), p, out)
        done.append(str(out))
    prog.load_debug_info(done)
