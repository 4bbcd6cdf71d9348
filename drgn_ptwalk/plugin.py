# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The drgn plugin (entry point group ``drgn.plugins``): registers every command of the registry
(:func:`drgn_ptwalk.commands.registry`: ``%maps``, ``%smaps``, ``%pagemap``, ... as ``drgn-ptwalk --help``
lists them) as a drgn shell command, enabled only when debugging a Linux kernel, with the CLI's arguments.
Bad input (:data:`~drgn_ptwalk.commands.USER_ERRORS`) is a one-line :class:`drgn.commands.CommandError`;
a bug of ours shows its traceback (:func:`run_command`). Loading it costs only the registration: what a
command needs is imported when it runs.

drgn has commands from 0.0.33 on; with an older drgn the plugin registers none and, in drgn's shell, says
so once (:func:`drgn_ptwalk._compat.plugin_prog_set`).
"""

import argparse
import sys
from typing import Any

from drgn import Program

# Without drgn.commands (drgn < 0.0.33) these register nothing and the drgn_prog_set hook says so; the hook
# also lets drgn < 0.1.0 read arm64 dumps that have only physical addresses (see drgn_ptwalk._compat).
from drgn_ptwalk._compat import CommandError, argument, linux_kernel_command, plugin_prog_set
from drgn_ptwalk.commands import USER_ERRORS, Command, execute, internal_error, one_line, registry

__all__ = ("run_command",)

drgn_prog_set = plugin_prog_set


def run_command(cmd: Command, prog: Program, args: argparse.Namespace) -> None:
    """
    Run *cmd* as a drgn shell command: its output on stdout; bad input
    (:data:`~drgn_ptwalk.commands.USER_ERRORS`) a one-line :class:`drgn.commands.CommandError`; any other
    exception, a bug of drgn-ptwalk's, its traceback on stderr and then a ``CommandError`` saying so (drgn's
    shell prints a command's error as one line).

    :param cmd: the command (:func:`~drgn_ptwalk.commands.registry`)
    :param args: its parsed arguments
    :raises drgn.commands.CommandError: on any error
    """
    try:
        execute(cmd, prog, args, sys.stdout)
    except USER_ERRORS as e:
        raise CommandError(one_line(e)) from None
    except Exception as e:
        raise CommandError(internal_error(e)) from None


def _register(cmd: Command) -> None:
    def run(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
        run_command(cmd, prog, args)

    linux_kernel_command(
        name=cmd.name,
        description=cmd.help,
        arguments=tuple(argument(*a.flags, **a.kwargs) for a in cmd.arguments),
    )(run)


for _cmd in registry():
    _register(_cmd)
