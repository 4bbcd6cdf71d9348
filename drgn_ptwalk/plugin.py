# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The drgn plugin (entry point group ``drgn.plugins``): registers every command of
:mod:`drgn_ptwalk.commands` as a drgn shell command (``%maps``, ``%smaps``, ``%smaps_rollup``,
``%numa_maps``, ``%pagemap``, ``%ptwalk``, ``%memtop``), enabled only when debugging a Linux kernel, with
the CLI's arguments. Bad input (:data:`~drgn_ptwalk.commands.USER_ERRORS`) is a one-line
:class:`drgn.commands.CommandError`. Loading it costs only the registration: what a command needs is
imported when it runs.

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
from drgn_ptwalk.commands import USER_ERRORS, Command, execute, one_line, registry

__all__ = ()

drgn_prog_set = plugin_prog_set


def _register(cmd: Command) -> None:
    def run(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
        try:
            execute(cmd, prog, args, sys.stdout)
        except USER_ERRORS as e:
            raise CommandError(one_line(e)) from None

    linux_kernel_command(
        name=cmd.name,
        description=cmd.help,
        arguments=tuple(argument(*a.flags, **a.kwargs) for a in cmd.arguments),
    )(run)


for _cmd in registry():
    _register(_cmd)
