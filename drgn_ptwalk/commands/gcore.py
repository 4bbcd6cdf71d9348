# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``gcore`` command: an ELF core of one process (:func:`drgn_ptwalk.gcore.gcore`), written to ``-o FILE``
(under a temporary name, renamed when complete), with a summary of the pages' fates on standard error
and, with ``--report FILE``, every range left out as JSON Lines.
"""

import argparse
import sys
from typing import TYPE_CHECKING, Dict, TextIO, Tuple

from drgn import Program

from drgn_ptwalk.commands import TASK, arg, command
from drgn_ptwalk.errors import ArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.gcore import GcoreResult

__all__ = ("COMMANDS", "swap_image")


def swap_image(text: str) -> Tuple[int, str]:
    """``TYPE=FILE``: a swap type number and the image of that swap device or file."""
    kind, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected TYPE=FILE, not {text!r}")
    try:
        return int(kind, 0), path
    except ValueError:
        raise argparse.ArgumentTypeError(f"swap type is not a number: {kind!r}") from None


def run(prog: Program, args: argparse.Namespace) -> "GcoreResult":
    """Write the core (the task is checked before anything is written)."""
    from drgn_ptwalk.gcore import gcore
    from drgn_ptwalk.tasks import find_target, task_mm

    task = find_target(prog, args.task)
    task_mm(task)  # a kernel thread or an exited task: one line, before any file exists
    images: Dict[int, str] = {}
    for kind, path in args.swap_image or ():
        if kind in images:
            raise ArgumentError(f"--swap-image: swap type {kind} given twice")
        images[kind] = path
    return gcore(task, args.output, all_pages=args.all_pages, swap_images=images or None, root=args.root,
                 report=args.report)


def format_result(res: "GcoreResult", args: argparse.Namespace, out: TextIO) -> None:
    """The summary, on standard error (standard output stays empty)."""
    from drgn_ptwalk.gcore import format_summary

    sys.stderr.write(format_summary(res))


COMMANDS = (
    command(
        "gcore",
        "an ELF core of a process as the kernel's coredump would write it (gdb opens it)",
        (
            TASK,
            arg("-o", "--output", metavar="FILE", required=True, help="the core file to write"),
            arg("--all-pages", action="store_true",
                help="dump every VMA whole, as if every coredump_filter bit were set"),
            arg("--swap-image", metavar="TYPE=FILE", type=swap_image, action="append",
                help="image of swap device TYPE (a number), for swapped-out pages; may be repeated"),
            arg("--root", metavar="DIR", help="directory holding the mapped files, for file pages not in the "
                "page cache"),
            arg("--report", metavar="FILE", help="write every range left out of the core, with its fate, as "
                "JSON Lines"),
        ),
        run,
        format_result,
    ),
)
