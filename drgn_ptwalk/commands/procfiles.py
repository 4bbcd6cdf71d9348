# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The commands ``maps``, ``smaps``, ``smaps_rollup`` and ``numa_maps``: a task's /proc file as its kernel
would have printed it (:mod:`drgn_ptwalk.procfs`), written as is.
"""

import argparse
from typing import TextIO

from drgn import Program

from drgn_ptwalk.commands import TASK, Command, command

__all__ = ("COMMANDS",)


def _runner(name: str):
    def run(prog: Program, args: argparse.Namespace) -> str:
        from drgn_ptwalk import procfs
        from drgn_ptwalk.tasks import find_target, task_mm

        task = find_target(prog, args.task)
        task_mm(task)  # a kernel thread is an error here, not an empty file
        return getattr(procfs, name)(task)

    run.__name__ = f"run_{name}"
    run.__doc__ = f"/proc/PID/{name} of the task *args.task* (a ``str``)."
    return run


def format_text(text: str, args: argparse.Namespace, out: TextIO) -> None:
    """Write the file's text."""
    out.write(text)


COMMANDS = tuple(
    command(name, f"print /proc/PID/{name} as the kernel would", (TASK,), _runner(name), format_text)
    for name in ("maps", "smaps", "smaps_rollup", "numa_maps")
)  # type: Tuple[Command, ...]
