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

__all__ = ("HAVE_COMMANDS", "HAVE_QEMU_QMP", "drgn_version", "no_commands_message", "qemu_unsupported",
           "type_unaliased")


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
    """Plugin hook ``drgn_prog_set`` on a drgn without commands: in drgn's own shell and scripts (the drgn
    CLI has imported drgn.cli) one warning when it opens a Linux kernel, logged as drgn's own warnings are
    (``--log-level`` can hide it); silent where drgn is only a library (the drgn-ptwalk command, the API)."""
    if "drgn.cli" in sys.modules and prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL:
        logging.getLogger("drgn").warning("%s", no_commands_message())


if HAVE_COMMANDS:
    from drgn.commands import CommandError, argument
    from drgn.commands.linux import linux_kernel_command

    plugin_prog_set = None
else:
    CommandError = _NoCommandError  # type: ignore[misc,assignment]
    argument = _no_argument  # type: ignore[assignment]
    linux_kernel_command = _no_command  # type: ignore[assignment]
    plugin_prog_set = _warn_no_commands

# Program.set_qemu_qmp() (drgn --qemu): drgn 0.2.0, f679eb18 "Add support for debugging QEMU guests over QMP".
HAVE_QEMU_QMP = hasattr(Program, "set_qemu_qmp")


def qemu_unsupported() -> Optional[str]:
    """Why this drgn cannot open a QEMU guest over QMP, or None if it can."""
    if HAVE_QEMU_QMP:
        return None
    return (f"--qemu needs drgn 0.2.0 or newer (Program.set_qemu_qmp); this is drgn {drgn_version()}: "
            "pip install -U drgn, or take a dump of the guest (QMP dump-guest-memory) and use -c")
