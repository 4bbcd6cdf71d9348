# SPDX-License-Identifier: LGPL-2.1-or-later
"""
/proc/PID/maps (fs/proc/task_mmu.c ``show_map_vma()``).

A corrupt VMA tree raises :class:`~drgn_ptwalk.vmatree.VmaTreeError` (address
and level of the bad node or VMA). A VMA whose fields cannot be read
(:data:`~drgn_ptwalk.procfs.common.VMA_ERRORS`) is left out with a
:class:`~drgn_ptwalk.procfs.common.ProcfsWarning` saying which VMA and what
could not be read; the other lines are printed.
"""

from typing import List, Optional

from drgn import Object, Program

from drgn_ptwalk._compat import type_unaliased
from drgn_ptwalk.procfs.common import VMA_ERRORS, warn_vma
from drgn_ptwalk.procfs.vma import VmaFacts, VmaReader, default_root, mangle_path, reader_root, vma_facts
from drgn_ptwalk.tasks import get_task_mm

__all__ = ("format_maps_line", "gate_vma", "maps", "maps_mm", "maps_vmas")


def gate_vma(prog: Program, mm: Object) -> Optional[Object]:
    """
    ``get_gate_vma(mm)``: the x86 ``[vsyscall]`` VMA, or ``None`` (arm64;
    ``vsyscall=none``, the Debian default; compat tasks without
    ``MM_CONTEXT_HAS_VSYSCALL``).

    :param mm: ``struct mm_struct *``
    """
    try:
        mode = prog["vsyscall_mode"]
    except LookupError:
        return None
    # enum vsyscall_mode { EMULATE, XONLY, NONE } (arch/x86/entry/vsyscall).
    enumerators = dict((e.name, e.value) for e in (type_unaliased(mode.type_).enumerators or ()))
    none = enumerators.get("NONE", 2)
    if mode.value_() == none:
        return None
    # CONFIG_COMPAT also requires MM_CONTEXT_HAS_VSYSCALL in mm->context.flags
    # (set for 64-bit tasks by arch_setup_additional_pages()); the flag's
    # encoding changed over time, so 64-bit tasks are assumed.
    return prog["gate_vma"].address_of_()


def format_maps_line(f: VmaFacts) -> bytes:
    """
    One maps line (``show_vma_header_prefix()`` + name + ``"\\n"``): the
    name is padded to column 73 (``seq_setwidth(25 + 6 * 8 - 1)`` +
    ``seq_pad()``), escaping ``"\\n"`` in paths.
    """
    flags = f.flags
    prefix = b"%08x-%08x %c%c%c%c %08x %02x:%02x %d " % (
        f.start,
        f.end,
        b"r"[0] if flags & 1 else b"-"[0],
        b"w"[0] if flags & 2 else b"-"[0],
        b"x"[0] if flags & 4 else b"-"[0],
        b"s"[0] if flags & (1 << 7) else b"p"[0],  # VM_MAYSHARE, not VM_SHARED
        f.pgoff,
        f.dev >> 20,
        f.dev & 0xFFFFF,
        f.ino,
    )
    if f.name is None:
        return prefix + b"\n"
    # seq_pad(): fill to 72 bytes counted from the line start (the prefix's
    # own trailing space counts), then one more space.
    line = prefix[:-1]
    if len(line) < 72:
        line += b" " * (72 - len(line))
    return line + b" " + mangle_path(f.name, b"\n") + b"\n"


def maps_vmas(mm: Object, root: Optional[Object], warnings: Optional[List[str]] = None) -> List[VmaFacts]:
    """
    :class:`VmaFacts` of every VMA of *mm* as maps lists them (gate VMA last).

    :param warnings: list collecting the VMAs left out (unreadable fields)
    :raises VmaTreeError: if the VMA tree is corrupt
    """
    prog = mm.prog_
    out = []
    reader = VmaReader(mm, root)
    for v, _, _, raw in reader.vmas():
        try:
            out.append(reader.facts(v, raw))
        except VMA_ERRORS as e:
            warn_vma(v, e, "maps", warnings)
    gate = gate_vma(prog, mm)
    if gate is not None:
        out.append(vma_facts(gate, mm, root))
    return out


def maps_mm(mm: Object, root: Optional[Object] = None) -> str:
    """
    /proc/PID/maps of *mm*.

    :param mm: ``struct mm_struct *`` (NULL gives ``""``, like a kthread)
    :param root: the reader's fs root (``struct path *``) for paths; default
        PID 1's
    :return: the file's text
    :raises VmaTreeError: if the VMA tree is corrupt (see the module doc)
    """
    if not mm.value_():
        return ""
    if root is None:
        root = default_root(mm.prog_)
    return b"".join(format_maps_line(f) for f in maps_vmas(mm, root)).decode("utf-8", "surrogateescape")


def maps(task: Object, root: "str | Object | None" = None) -> str:
    """
    /proc/PID/maps of *task*: ``""`` for a task without an mm of its own
    (:func:`~drgn_ptwalk.tasks.get_task_mm`), like the kernel.

    :param task: ``struct task_struct *``
    :param root: whose root file paths are relative to (see
        :func:`~drgn_ptwalk.procfs.vma.reader_root`): PID 1's by default,
        as the kernel printed them for a reader on the host
    :return: the file's text
    """
    mm = get_task_mm(task)
    if not mm.value_():
        return ""
    return maps_mm(mm, reader_root(task, root))
