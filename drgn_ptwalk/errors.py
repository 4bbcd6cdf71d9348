# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Every exception and warning drgn-ptwalk raises on purpose, in one place.

Bad input is a typed error with a one-line message (the CLI prints it and exits with 2, the drgn shell
commands raise it as a :class:`drgn.commands.CommandError`; see :mod:`drgn_ptwalk.commands`): a program
that cannot be opened (:class:`ProgramError`), a task that is not there (:class:`TaskNotFoundError`) or
has no address space (:class:`NoMmError`), a structure the walk depends on that is unreadable or corrupt
(:class:`PtWalkError`: the VMA tree, :class:`VmaTreeError`; one VMA's fields, :class:`VmaFieldError`).
What a dump cannot tell while the rest of a file stays exact is a :class:`ProcfsWarning`.
"""

__all__ = (
    "MissingDependencyError",
    "NoMmError",
    "ProcfsWarning",
    "ProgramError",
    "PtWalkError",
    "TaskNotFoundError",
    "UnsupportedKernelError",
    "VmaFieldError",
    "VmaTreeError",
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
    """The task has no user address space (a kernel thread, or a task that is exiting)."""


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
