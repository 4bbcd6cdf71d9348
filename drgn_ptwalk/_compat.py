# SPDX-License-Identifier: LGPL-2.1-or-later
"""What differs between the drgn releases drgn-ptwalk supports (drgn 0.0.31, Debian trixie's, and newer).

Each difference is found by looking for the feature, never by comparing version strings, and is resolved
once at import (nothing here runs per page-table entry). Each entry names the drgn commit that added the
feature and the first release that has it (github.com/osandov/drgn).
"""

import logging
import sys
from typing import Any, Callable, Optional

import drgn
from drgn import Program, Type, TypeKind

__all__ = ("HAVE_COMMANDS", "HAVE_QEMU_QMP", "drgn_version", "map_arm64_swapper_pg_dir", "no_commands_message",
           "plugin_prog_set", "qemu_unsupported", "type_unaliased")


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


# Type.unaliased(): drgn 0.0.33, 2f088224 "Add drgn.Type.unaliased()/drgn.Type.unaliased_kind()/...".
type_unaliased = Type.unaliased if hasattr(Type, "unaliased") else _unaliased_fallback

# drgn.commands (the shell's %commands, run_command(), linux_kernel_command): drgn 0.0.33,
# 392a998c "Add command framework". Without it the plugin registers no commands and says so.
try:
    import drgn.commands  # noqa: F401
    import drgn.commands.linux  # noqa: F401

    HAVE_COMMANDS = True
except ImportError:
    HAVE_COMMANDS = False

SHELL_COMMANDS = ("maps", "smaps", "smaps_rollup", "numa_maps", "pagemap", "ptwalk", "memtop")


def no_commands_message() -> str:
    """What the plugin cannot do on a drgn without drgn.commands, and what works instead."""
    names = ", ".join("%" + n for n in SHELL_COMMANDS)
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
    argument = _no_argument  # type: ignore[assignment]
    linux_kernel_command = _no_command  # type: ignore[assignment]


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
    from drgn_ptwalk._vmcoreinfo import vmcoreinfo, vmcoreinfo_number

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
    from drgn_ptwalk._vmcoreinfo import vmcoreinfo

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
