# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The byte order of the kernel's data in a program (big-endian on s390x), for the readers that decode
kernel memory from bytes (maple nodes, xarray slots, ``struct page`` runs and sections), and the files
whose bytes are the kernel's (pagemap, kpageflags, kpagecount, kpagecgroup). Looked up once per program
(``prog.cache``): the little-endian path costs nothing per entry.
"""

from typing import Literal

from drgn import PlatformFlags, Program

__all__ = ("ByteOrder", "byte_order", "is_big_endian", "struct_order")

ByteOrder = Literal["little", "big"]
"""A byte order as :meth:`int.from_bytes` takes it."""


def byte_order(prog: Program) -> ByteOrder:
    """``"little"`` or ``"big"``: the byte order of *prog*'s kernel data (``int.from_bytes`` style)."""
    try:
        return prog.cache["ptwalk_byte_order"]
    except KeyError:
        pass
    platform = prog.platform
    big = platform is not None and not platform.flags & PlatformFlags.IS_LITTLE_ENDIAN
    order: ByteOrder = "big" if big else "little"
    prog.cache["ptwalk_byte_order"] = order
    return order


def is_big_endian(prog: Program) -> bool:
    """Whether *prog*'s kernel data is big-endian."""
    return byte_order(prog) == "big"


def struct_order(prog: Program) -> str:
    """The :mod:`struct` prefix of *prog*'s byte order: ``"<"`` or ``">"``."""
    return ">" if byte_order(prog) == "big" else "<"
