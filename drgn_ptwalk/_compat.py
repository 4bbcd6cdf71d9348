# SPDX-License-Identifier: LGPL-2.1-or-later
"""What differs between the drgn releases drgn-ptwalk supports (drgn 0.0.31, Debian trixie's, and newer).

Each difference is found by looking for the feature, never by comparing version strings, and is resolved
once at import (nothing here runs per page-table entry). Each entry names the drgn commit that added the
feature and the first release that has it (github.com/osandov/drgn).
"""

import logging
import sys
from typing import Any, Callable, Dict, Iterator, Optional

import drgn
from drgn import Object, Program, Type, TypeKind, sizeof

from drgn_ptwalk._kernel import cached, vmcoreinfo, vmcoreinfo_length, vmcoreinfo_number

__all__ = ("HAVE_COMMANDS", "HAVE_QEMU_QMP", "drgn_version", "map_arm64_swapper_pg_dir", "no_commands_message",
           "nr_to_section", "online_pgdats", "plugin_prog_set", "qemu_unsupported", "section_flags",
           "thread_size", "type_unaliased", "vmcoreinfo_length", "vmcoreinfo_number")


def drgn_version() -> str:
    """The running drgn's version, for messages only."""
    return getattr(drgn, "__version__", "unknown")


def _unaliased_fallback(t: Type) -> Type:
    """``t`` with its top-level typedefs removed, keeping the qualifiers (as :meth:`drgn.Type.unaliased`)."""
    if t.kind != TypeKind.TYPEDEF:
        return t
    qualifiers = t.qualifiers
    while t.kind == TypeKind.TYPEDEF:
        t = t.type
        qualifiers |= t.qualifiers
    return t.qualified(qualifiers) if qualifiers != t.qualifiers else t


def thread_size(prog: Program) -> int:
    """
    The kernel's ``THREAD_SIZE``. drgn names it as an object (``prog["THREAD_SIZE"]``) in newer releases,
    not in 0.0.31; without it, found as drgn finds it: the size of ``union thread_union``'s ``stack`` where
    the kernel still has that type (before v4.16, 0500871f21b2 "Construct init thread stack in the linker
    script rather than by union"), else the init task's stack between the linker-script symbols
    ``__start_init_stack``/``__end_init_stack`` (v6.10 on, 8f69cba096b5 "x86: Rename
    __{start,end}_init_task to __{start,end}_init_stack") or ``__start_init_task``/``__end_init_task``.

    :raises LookupError: if none of these is in the debug info
    """
    return cached(prog, "ptwalk_thread_size", _thread_size, prog)


def _thread_size(prog: Program) -> int:
    size: Optional[int] = None
    try:
        size = prog["THREAD_SIZE"].value_()
    except (KeyError, LookupError):
        try:
            size = sizeof(prog.type("union thread_union").member("stack").type)
        except LookupError:
            for first, last in (("__start_init_stack", "__end_init_stack"),
                                ("__start_init_task", "__end_init_task")):
                try:
                    size = prog.symbol(last).address - prog.symbol(first).address
                    break
                except LookupError:
                    continue
    if not size:
        raise LookupError("THREAD_SIZE: no union thread_union or init stack symbols in the debug info")
    return size


# Type.unaliased(): drgn 0.0.33, 2f088224 "Add drgn.Type.unaliased()/drgn.Type.unaliased_kind()/...".
type_unaliased = Type.unaliased if hasattr(Type, "unaliased") else _unaliased_fallback

# drgn.commands (the shell's %commands, run_command(), linux_kernel_command): drgn 0.0.33,
# 392a998c "Add command framework". Without it the plugin registers no commands and says so.
try:
    import drgn.commands
    import drgn.commands.linux

    HAVE_COMMANDS = True
except ImportError:
    HAVE_COMMANDS = False


def no_commands_message() -> str:
    """What the plugin cannot do on a drgn without drgn.commands, and what works instead."""
    from drgn_ptwalk.commands import registry

    names = ", ".join("%" + c.name for c in registry())
    return (f"drgn-ptwalk: drgn {drgn_version()} has no shell command framework (drgn.commands, drgn 0.0.33 "
            f"or newer), so {names} are not available; pip install -U drgn for them. The Python API works "
            "in this shell (e.g. from drgn_ptwalk import smaps, find_target; "
            "print(smaps(find_target(prog, PID)), end='')), and so does the drgn-ptwalk command")


class _NoCommandError(Exception):
    """Stands in for drgn.commands.CommandError where drgn has none (never raised to drgn)."""


def _no_argument(*args: Any, **kwargs: Any) -> None:
    return None


def _no_command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Stands in for drgn.commands.linux.linux_kernel_command: registers nothing."""
    return lambda f: f


def _warn_no_commands(prog: Program) -> None:
    """On a drgn without commands, in drgn's own shell and scripts (the drgn CLI has imported drgn.cli): one
    warning when it opens a Linux kernel, logged as drgn's own warnings are (``--log-level`` can hide it);
    silent where drgn is only a library (the drgn-ptwalk command, the API)."""
    if "drgn.cli" in sys.modules:
        logging.getLogger("drgn").warning("%s", no_commands_message())


if HAVE_COMMANDS:
    from drgn.commands import CommandError, argument
    from drgn.commands.linux import linux_kernel_command
else:
    CommandError = _NoCommandError  # type: ignore[misc,assignment]
    argument = _no_argument  # type: ignore[misc]
    linux_kernel_command = _no_command


def _only_physical(prog: Program, virt: int, phys: int) -> bool:
    """Whether drgn faults reading kernel address *virt* but reads its physical address *phys*: this
    drgn cannot translate the dump's kernel addresses by itself."""
    try:
        prog.read(virt, 8)
        return False
    except drgn.FaultError:
        pass
    try:
        prog.read(phys, 8, True)
    except drgn.FaultError:
        return False
    return True


def map_arm64_swapper_pg_dir(prog: Program) -> bool:
    """Let drgn read an arm64 dump whose memory is only physical (QEMU's dump-guest-memory ELF).

    drgn translates kernel addresses through swapper_pg_dir, which is itself at a kernel-image virtual
    address: before drgn 0.1.0 (4c88ea16 "libdrgn: aarch64: avoid recursive address translation for
    swapper_pg_dir", drgn issue #592) that read needs the translation it is part of, and every read of
    kernel memory fails ("recursive address translation"). drgn 0.1.0 resolves it with the kernel's own
    VMCOREINFO ``kimage_voffset`` (kernel image virtual minus physical, since Linux 4.12); so do we, with a
    one-page virtual segment over swapper_pg_dir that reads its physical page. Detected by behaviour: only
    when the virtual read fails and the physical one works; a no-op on a newer drgn, on a live kernel and on
    dumps with virtual addresses (/proc/vmcore, /proc/kcore). Call after set_core_dump(). True if mapped.
    """
    platform = prog.platform
    if platform is None or platform.arch != drgn.Architecture.AARCH64:
        return False
    info = vmcoreinfo(prog)
    try:
        pgd = int(info["SYMBOL(swapper_pg_dir)"], 16)
    except (KeyError, ValueError):
        return False
    voffset = vmcoreinfo_number(prog, "kimage_voffset")
    page_size = vmcoreinfo_number(prog, "PAGESIZE")
    if voffset is None or not page_size:
        return False
    phys = (pgd - voffset) & 0xFFFFFFFFFFFFFFFF
    if not _only_physical(prog, pgd, phys):
        return False

    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        return prog.read(phys + offset, count, True)

    prog.add_memory_segment(pgd, page_size, read, False)
    return True


# Book3S-64's linear map: PAGE_OFFSET (asm/page.h) up to the vmalloc start (RADIX_KERN_VIRT_START,
# book3s/64/radix.h): kernel virtual = physical + PAGE_OFFSET, the kernel image included.
_PPC64_PAGE_OFFSET = 0xC000000000000000
_PPC64_LINEAR_END = 0xC008000000000000


def map_ppc64_linear_map(prog: Program) -> bool:
    """Let an older drgn read a ppc64 dump whose memory is only physical (QEMU's dump-guest-memory ELF).

    drgn 0.0.31 translates a ppc64 kernel address by reading ``cur_cpu_spec`` first, itself a kernel
    virtual address: the read needs the translation it is part of ("recursive address translation"),
    which drgn 0.3.0 no longer does. The linear map needs no page tables (virtual = physical +
    PAGE_OFFSET), so it is given to drgn as a virtual segment reading physical memory. Detected by
    behaviour: only when the virtual read of ``swapper_pg_dir`` fails with a fault and its physical read
    works; a no-op on a newer drgn and on dumps with virtual addresses. Call after the debug info is
    loaded (drgn looks ``cur_cpu_spec`` up by name). True if mapped.
    """
    platform = prog.platform
    if platform is None or platform.arch != drgn.Architecture.PPC64:
        return False
    try:
        pgd = int(vmcoreinfo(prog)["SYMBOL(swapper_pg_dir)"], 16)
    except (KeyError, ValueError):
        return False
    if not _PPC64_PAGE_OFFSET <= pgd < _PPC64_LINEAR_END:
        return False
    if not _only_physical(prog, pgd, pgd - _PPC64_PAGE_OFFSET):
        return False

    def read(address: int, count: int, offset: int, physical: bool) -> bytes:
        return prog.read(offset, count, True)

    prog.add_memory_segment(_PPC64_PAGE_OFFSET, _PPC64_LINEAR_END - _PPC64_PAGE_OFFSET, read, False)
    return True


def plugin_prog_set(prog: Program) -> None:
    """The plugin's ``drgn_prog_set`` hook (drgn calls it when a program gets its core dump or kernel)."""
    if not prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL:
        return
    try:
        map_arm64_swapper_pg_dir(prog)
        map_ppc64_linear_map(prog)
        from drgn_ptwalk.arch.loongarch64 import map_direct_windows, map_kernel_tables

        map_direct_windows(prog)  # LoongArch: drgn translates none of its addresses
        map_kernel_tables(prog)
    except (drgn.FaultError, LookupError, ValueError, OverflowError):
        pass  # the program stays as drgn made it (ppc64: no debug info yet, drgn looks up cur_cpu_spec)
    if not HAVE_COMMANDS:
        _warn_no_commands(prog)


# Program.set_qemu_qmp() (drgn --qemu): drgn 0.2.0, f679eb18 "Add support for debugging QEMU guests over QMP".
HAVE_QEMU_QMP = hasattr(Program, "set_qemu_qmp")


def qemu_unsupported() -> Optional[str]:
    """Why this drgn cannot open a QEMU guest over QMP, or None if it can."""
    if HAVE_QEMU_QMP:
        return None
    return (f"--qemu needs drgn 0.2.0 or newer (Program.set_qemu_qmp); this is drgn {drgn_version()}: "
            "pip install -U drgn, or take a dump of the guest (QMP dump-guest-memory) and use -c")


def online_pgdats(prog: Program) -> Iterator[Object]:
    """``for_each_online_pgdat()``: drgn.helpers.linux.mmzone's, or (drgn 0.0.31 has no such module) the
    same from ``node_data`` / ``contig_page_data`` and the online node mask."""
    try:
        from drgn.helpers.linux.mmzone import for_each_online_pgdat
    except ImportError:
        from drgn.helpers.linux.nodemask import for_each_online_node

        for nid in for_each_online_node(prog):
            try:
                yield prog["node_data"][nid]
            except KeyError:  # CONFIG_NUMA=n
                yield prog["contig_page_data"].address_of_()
        return
    yield from for_each_online_pgdat(prog)


def section_flags(prog: Program) -> Dict[str, int]:
    """The ``SECTION_*`` flags of ``mem_section::section_mem_map`` (as drgn.helpers.linux.mmzone's
    ``_section_flags``, for drgns without it): an anonymous enum of ``*_BIT`` values since ed7802dd48f7
    ("mm: memory_hotplug: enumerate all supported section flags", v6.0), fixed bits before."""
    try:
        from drgn.helpers.linux.mmzone import _section_flags

        return dict(_section_flags(prog))
    except ImportError:
        pass
    try:
        enum = prog["SECTION_MARKED_PRESENT_BIT"].type_
    except KeyError:
        return {"SECTION_MARKED_PRESENT": 0x1, "SECTION_HAS_MEM_MAP": 0x2, "SECTION_IS_ONLINE": 0x4,
                "SECTION_IS_EARLY": 0x8, "SECTION_TAINT_ZONE_DEVICE": 0x10,
                "SECTION_MAP_MASK": 0xFFFFFFFFFFFFFFE0}
    flags = {}
    for e in enum.enumerators or ():
        if e.name == "SECTION_MAP_LAST_BIT":
            flags["SECTION_MAP_MASK"] = ((1 << e.value) - 1) ^ 0xFFFFFFFFFFFFFFFF
        elif e.name.endswith("_BIT"):
            flags[e.name[: -len("_BIT")]] = 1 << e.value
    return flags


def nr_to_section(prog: Program, nr: int) -> Object:
    """``__nr_to_section()`` (drgn.helpers.linux.mmzone's, or the same from ``mem_section`` and
    VMCOREINFO's ``LENGTH(mem_section)`` for drgns without it): ``struct mem_section *``, NULL if none."""
    try:
        from drgn.helpers.linux.mmzone import nr_to_section as helper

        return helper(prog, nr)
    except ImportError:
        pass
    from drgn import NULL

    mem_section = prog["mem_section"]
    t = type_unaliased(mem_section.type_)
    if t.kind == TypeKind.POINTER:  # SPARSEMEM_EXTREME: an array of roots, each a page of sections
        per_root = prog["PAGE_SIZE"].value_() // sizeof(t.type.type)
        roots = vmcoreinfo_number(prog, "NR_SECTION_ROOTS")
        if roots is None:
            roots = vmcoreinfo_length(prog, "mem_section")
        mem_section = mem_section.read_()
        if not mem_section:
            return NULL(prog, t.type)
    else:
        per_root = t.type.length if t.type.kind == TypeKind.ARRAY else 1
        roots = t.length
    root = nr // per_root
    if roots is None or root >= roots:
        return NULL(prog, "struct mem_section *")
    r = mem_section[root]
    if type_unaliased(r.type_).kind == TypeKind.POINTER:
        r = r.read_()
        if not r:
            return r
    return r + (nr % per_root)
