# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Opening a drgn program (live kernel, core dump, QEMU guest) the way ``drgn -k/-c/--qemu -s`` does, with
one-line :class:`~drgn_ptwalk.errors.ProgramError` for bad input: the one way the CLI, the tests and the
tools open a program. A QEMU ``kdump-zlib`` dump that names no architecture gets it from its vmcoreinfo
or the vmlinux.
"""

import os
import tempfile
from typing import List, Optional, Sequence

import drgn

from drgn_ptwalk._compat import map_arm64_swapper_pg_dir, map_ppc64_linear_map, qemu_unsupported
from drgn_ptwalk.arch.loongarch64 import (
    RelocationError,
    load_module_debug_info,
    map_direct_windows,
    map_kernel_tables,
)
from drgn_ptwalk.errors import ProgramError

__all__ = ("ProgramError", "open_program", "guess_core_architecture")


# vmcoreinfo lines that only one architecture exports (arch/*/kernel/{crash_core,vmcore_info}*.c).
_VMCOREINFO_ARCH = (
    (b"SYMBOL(init_top_pgt)=", "x86_64"),
    (b"NUMBER(pgtable_l5_enabled)=", "x86_64"),
    (b"NUMBER(VA_BITS)=", "aarch64"),
    (b"NUMBER(kimage_voffset)=", "aarch64"),
    (b"SYMBOL(mmu_psize_defs)=", "ppc64"),  # arch/powerpc/kexec/vmcore_info.c
    (b"SYMBOL(lowcore_ptr)=", "s390x"),  # arch/s390/kernel/vmcore_info.c
)
_ELF_MACHINE = {62: "x86_64", 183: "aarch64", 21: "ppc64", 22: "s390x", 258: "loongarch64"}
# Big-endian kernels (ppc64 here is ppc64le: the radix decoder's kernels are little-endian).
_BIG_ENDIAN = ("s390x",)


def _platform(arch: str) -> drgn.Platform:
    try:
        a = drgn.Architecture[arch.upper()]
    except KeyError:
        known = "x86_64, aarch64, ppc64, s390x, loongarch64"
        raise ProgramError(f"unknown architecture {arch!r} (known: {known})") from None
    flags = drgn.PlatformFlags.IS_64_BIT
    if arch.lower() not in _BIG_ENDIAN:
        flags |= drgn.PlatformFlags.IS_LITTLE_ENDIAN
    return drgn.Platform(a, flags)


def guess_core_architecture(core: str, symbols: Sequence[str] = ()) -> Optional[str]:
    """Work out the architecture of a dump whose header names none (QEMU's ``kdump-zlib``).

    The vmcoreinfo note is near the start of the file; failing that, the vmlinux's ELF machine.

    :param core: the dump's path
    :param symbols: the vmlinux (and other debug info files) given for it
    :return: drgn's architecture name (``X86_64``, ``AARCH64``, ...), or ``None`` if neither tells
    """
    try:
        with open(core, "rb") as f:
            head = f.read(16 << 20)
    except OSError:
        head = b""
    start = head.find(b"OSRELEASE=")
    if start >= 0:
        note = head[start : start + 16384]
        for marker, arch in _VMCOREINFO_ARCH:
            if marker in note:
                return arch
    for path in symbols:
        try:
            with open(path, "rb") as f:
                ident = f.read(20)
        except OSError:
            continue
        if ident[:4] == b"\x7fELF":
            # e_machine in the file's byte order (EI_DATA: 2 is big-endian, s390x's).
            machine = _ELF_MACHINE.get(int.from_bytes(ident[18:20], "big" if ident[5] == 2 else "little"))
            if machine:
                return machine
    return None


def open_program(
    core: Optional[str] = None,
    *,
    qemu: Optional[str] = None,
    symbols: Sequence[str] = (),
    architecture: Optional[str] = None,
    default_symbols: bool = True,
) -> drgn.Program:
    """
    Open a Linux kernel program the way ``drgn -c/-k/--qemu -s`` does: a core dump (*core*), a QEMU
    guest over QMP (*qemu*), else the running kernel; the kernel's debug info from *symbols* (or drgn's
    default places). The one way this project opens a program: the CLI, the tests and the tools use it.

    :param core: the core dump's path (``None``: a QEMU guest or the running kernel)
    :param qemu: the QMP socket of a QEMU guest (a path or ``host:port``)
    :param symbols: files with the kernel's debug info (the vmlinux; modules)
    :param architecture: for a dump that names none (QEMU's ``kdump-zlib``): worked out from the dump's
        vmcoreinfo or the vmlinux when not given
    :param default_symbols: also look in drgn's default places for the debug info
    :return: the program, its debug info loaded
    :raises ProgramError: (one line) the dump is missing, unreadable, not a Linux kernel's, or its
        kernel's debug info is not found or does not match
    """
    if qemu is not None and qemu_unsupported():
        raise ProgramError(qemu_unsupported())
    platform = _platform(architecture) if architecture else None
    prog = drgn.Program(platform)
    try:
        if core is not None:
            if not os.path.exists(core):
                raise ProgramError(f"{core}: no such file")
            if not os.access(core, os.R_OK):
                raise ProgramError(f"{core}: permission denied")
            try:
                prog.set_core_dump(core)
            except Exception as e:
                # libkdumpfile cannot open a kdump file without an architecture (QEMU writes none).
                if "ARCH_NAME" not in str(e) or platform is not None:
                    raise
                arch = guess_core_architecture(core, symbols)
                if arch is None:
                    raise ProgramError(f"{core}: the dump names no architecture; pass --architecture") from None
                prog = drgn.Program(_platform(arch))
                prog.set_core_dump(core)
        elif qemu is not None:
            prog.set_qemu_qmp(qemu)
        else:
            prog.set_kernel()
    except ProgramError:
        raise
    except (OSError, ValueError, Exception) as e:
        what = core or qemu or "/proc/kcore"
        raise ProgramError(f"{what}: cannot open: {e}") from None
    if not prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL:
        raise ProgramError(f"{core or qemu}: not a Linux kernel core dump")
    if core is not None:
        map_arm64_swapper_pg_dir(prog)  # drgn < 0.1.0 and QEMU's arm64 ELF dumps
        map_direct_windows(prog)  # QEMU's LoongArch ELF dumps: drgn translates no LoongArch address
        map_kernel_tables(prog)  # and LoongArch's vmalloc, modules, vmemmap through swapper_pg_dir
    for path in symbols:
        if not os.path.exists(path):
            raise ProgramError(f"{path}: no such file")
    # LoongArch: drgn relocates no module debug file ("relocation support is not implemented for
    # LoongArch64 architecture"); given module files (.ko) are relocated by drgn-ptwalk after the kernel's.
    modules: List[str] = []
    if prog.platform is not None and prog.platform.arch.name == "LOONGARCH64":  # (not in older drgn)
        modules = [p for p in symbols if ".ko" in os.path.basename(p)]
        symbols = [p for p in symbols if p not in modules]
    try:
        prog.load_debug_info(list(symbols), default=default_symbols and not symbols, main=True)
    except drgn.MissingDebugInfoError as e:
        # Only the kernel itself matters here; modules without debug info are fine.
        if not _has_kernel_debug_info(prog):
            first = str(e).splitlines()[0]
            raise ProgramError(
                f"no usable debug info for the kernel ({first}); pass its vmlinux with -s "
                "(the Debian package linux-image-<release>-dbg), and check it matches the dump's release"
            ) from None
    if not _has_kernel_debug_info(prog):
        raise ProgramError("no debug info for the kernel: pass its vmlinux with -s")
    if modules:
        try:
            load_module_debug_info(prog, modules, tempfile.mkdtemp(prefix="drgn-ptwalk-modules-"))
        except (LookupError, OSError, RelocationError) as e:
            raise ProgramError(f"cannot load the module debug info {' '.join(modules)}: {e}") from None
    if core is not None:
        map_ppc64_linear_map(prog)  # older drgn and QEMU's ppc64 ELF dumps (needs the debug info)
    return prog


def _has_kernel_debug_info(prog: drgn.Program) -> bool:
    try:
        prog.type("struct mm_struct")
        return True
    except LookupError:
        return False
