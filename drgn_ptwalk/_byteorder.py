# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The byte order of the kernel's data in a program (big-endian on s390x), for the readers that decode
kernel memory from bytes (maple nodes, xarray slots, ``struct page`` runs). Looked up once per program
(``prog.cache``): the little-endian path costs nothing per entry.
"""

from drgn import PlatformFlags, Program

__all__ = ("byte_order", "is_big_endian", "refuse_big_endian", "struct_order")


def byte_order(prog: Program) -> str:
    """``"little"`` or ``"big"``: the byte order of *prog*'s kernel data (``int.from_bytes`` style)."""
    try:
        return prog.cache["ptwalk_byte_order"]
    except KeyError:
        pass
    platform = prog.platform
    order = "big" if platform is not None and not platform.flags & PlatformFlags.IS_LITTLE_ENDIAN else "little"
    prog.cache["ptwalk_byte_order"] = order
    return order


def is_big_endian(prog: Program) -> bool:
    """Whether *prog*'s kernel data is big-endian."""
    return byte_order(prog) == "big"


def struct_order(prog: Program) -> str:
    """The :mod:`struct` prefix of *prog*'s byte order: ``"<"`` or ``">"``."""
    return ">" if byte_order(prog) == "big" else "<"


def refuse_big_endian(prog: Program, what: str) -> None:
    """
    Refuse the physical side (``what``: kpage, whomaps, page_kind, page_table_owners, memmap) on a
    big-endian kernel: it decodes ``struct page`` arrays, buddy and slab state by byte columns laid out as
    on little-endian kernels, which no big-endian reference dump has checked yet. (``whoswaps`` is the
    walker's alone and is not refused.)

    :raises UnsupportedKernelError: if *prog*'s kernel is big-endian
    """
    if is_big_endian(prog):
        from drgn_ptwalk.errors import UnsupportedKernelError

        arch = prog.platform.arch.name.lower() if prog.platform is not None else "unknown"
        raise UnsupportedKernelError(
            f"{what} is not supported on a big-endian kernel ({arch}): its struct page readers decode "
            "little-endian byte columns; the per-process files (maps, smaps, smaps_rollup, pagemap, numa_maps) "
            "and the walker (ptwalk, memtop, whoswaps) are supported"
        )
