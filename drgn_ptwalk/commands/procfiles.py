# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The commands ``maps``, ``smaps``, ``smaps_rollup`` and ``numa_maps``: a task's /proc file as its kernel
would have printed it (:mod:`drgn_ptwalk.procfs`), written as is.
"""

import argparse
import sys
from typing import Callable, TextIO, Tuple

from drgn import Program

from drgn_ptwalk.commands import TASK, Command, arg, command

__all__ = ("COMMANDS",)


def _runner(name: str) -> Callable[[Program, argparse.Namespace], str]:
    def run(prog: Program, args: argparse.Namespace) -> str:
        from drgn_ptwalk import procfs
        from drgn_ptwalk.tasks import find_target, get_task_mm, no_mm_reason, task_mm

        task = find_target(prog, args.task)
        if name == "smaps_rollup":
            task_mm(task)  # without an mm the kernel's read fails (ESRCH): so does the command
        elif not get_task_mm(task):
            # A kernel thread (also one using a borrowed mm) or a zombie: the kernel prints an empty
            # file; print it too, and say why.
            sys.stderr.write(f"drgn-ptwalk: {no_mm_reason(task)}; /proc/PID/{name} is empty\n")
        return getattr(procfs, name)(task, root=args.root)

    run.__name__ = f"run_{name}"
    run.__doc__ = f"/proc/PID/{name} of the task *args.task* (a ``str``)."
    return run


def format_text(text: str, args: argparse.Namespace, out: TextIO) -> None:
    """Write the file's text."""
    out.write(text)


ROOT = arg("--root", choices=("init", "task"), default="init",
           help="paths relative to PID 1's root, as the kernel printed them for a reader on the host "
                "(default), or to the task's own root (a container's view, not what the kernel printed)")

COMMANDS: Tuple[Command, ...] = tuple(
    command(name, f"print /proc/PID/{name} as the kernel would", (TASK, ROOT), _runner(name), format_text)
    for name in ("maps", "smaps", "smaps_rollup", "numa_maps")
)
