# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Every exception and warning drgn-ptwalk raises on purpose, in one place.

Bad input is a typed error with a one-line message (the CLI prints it and exits with 2, the drgn shell
commands raise it as a :class:`drgn.commands.CommandError`; see :mod:`drgn_ptwalk.commands`): a program
that cannot be opened (:class:`ProgramError`), a task that is not there (:class:`TaskNotFoundError`) or
has no address space (:class:`NoMmError`), a value the caller gave that cannot be used
(:class:`ArgumentError`), a structure the walk depends on that is unreadable or corrupt
(:class:`PtWalkError`: the VMA tree, :class:`VmaTreeError`; one VMA's fields, :class:`VmaFieldError`).
Any other exception is a bug of drgn-ptwalk's, and the front ends show its traceback.
What a dump cannot tell while the rest of a file stays exact is a :class:`ProcfsWarning`.

A task without an mm of its own (a kernel thread, also one using a borrowed user mm; an exited task): the
/proc files the kernel prints empty for it (maps, smaps, numa_maps) are empty strings; everything else
that needs the mm raises :class:`NoMmError` (smaps_rollup and pagemap, whose read fails with ESRCH in the
kernel; :func:`~drgn_ptwalk.tasks.task_mm`, the process memory reader, gcore).

The process memory reader's own failures (:class:`DecompressError`, :class:`ZramError`,
:class:`ZswapError`, :class:`ZsError`, :class:`LzoError`) become the fate of the page that could not be
read; they reach a caller only of the lower-level functions that raise them.
"""

__all__ = (
    "ArgumentError",
    "DecompressError",
    "LzoError",
    "MissingDependencyError",
    "NoMmError",
    "ProcfsWarning",
    "ProgramError",
    "PtWalkError",
    "RelocationError",
    "TaskNotFoundError",
    "UnsupportedKernelError",
    "VmaFieldError",
    "VmaTreeError",
    "ZramError",
    "ZsError",
    "ZswapError",
)


class ProgramError(Exception):
    """The program could not be opened or is not usable: the message is one line for the user."""


class UnsupportedKernelError(ProgramError):
    """
    What the user asked for is not done for this kernel (the physical side — kpage, whomaps, page_kind,
    page_table_owners, memmap — on a big-endian kernel, s390x; numa_maps on a kernel without
    ``CONFIG_NUMA``): the message says what and why.
    """


class MissingDependencyError(ProgramError):
    """An optional dependency the command needs is not installed (the ``report`` command's matplotlib): the
    message says what to install."""


class TaskNotFoundError(LookupError):
    """No task matches what the user asked for."""


class NoMmError(ValueError):
    """The task has no user address space of its own (a kernel thread, or a task that is exiting)."""


class ArgumentError(ValueError):
    """
    A value the caller gave cannot be used: a range that is not page aligned or beyond the address space,
    a PFN beyond the memmap, a swap image of another device, options that do not go together. The message
    says which value and why.
    """


class PtWalkError(Exception):
    """
    A structure the walk depends on is unreadable or inconsistent.

    :ivar address: address of the bad object (node, VMA, table)
    :ivar level: where it is (``"VMA"``, ``"maple node depth 2"``, ...)
    :ivar reason: what is wrong
    """

    def __init__(self, address: int, level: str, reason: str) -> None:
        self.address = address
        self.level = level
        self.reason = reason
        super().__init__(f"{level} at {address:#x}: {reason}")


class VmaTreeError(PtWalkError):
    """The VMA tree (maple tree) of an mm is unreadable or corrupt."""


class VmaFieldError(PtWalkError):
    """
    A field of one VMA (or an object it points to) is unreadable or
    garbage. ``level`` is ``"VMA"``, ``address`` the VMA's address.
    """


class ProcfsWarning(UserWarning):
    """Something the dump cannot tell (e.g. a page left out of a filtered dump)."""


class DecompressError(ValueError):
    """A page that could not be decompressed: why, in words (a corrupt object, a missing library)."""


class LzoError(ValueError):
    """A stream the kernel's ``lzo1x_decompress_safe()`` would refuse: :attr:`code` is its ``LZO_E_*`` name.

    :ivar code: the ``LZO_E_*`` name
    :ivar produced: how many bytes were decompressed before it
    """

    def __init__(self, code: str, produced: int) -> None:
        super().__init__(f"lzo: {code} after {produced} bytes")
        self.code = code
        self.produced = produced


class RelocationError(Exception):
    """A LoongArch module's debug file cannot be relocated for drgn (a relocation type or symbol this code
    does not apply): :func:`~drgn_ptwalk.program.open_program` tells it as a :class:`ProgramError`."""


class ZsError(ValueError):
    """A zsmalloc object that cannot be read: a bad handle, a page that is not zsmalloc's, an unreadable
    page."""


class ZramError(ValueError):
    """A zram slot that cannot be read: why, in words."""


class ZswapError(ValueError):
    """A zswap entry that was found but cannot be read: why, in words."""
