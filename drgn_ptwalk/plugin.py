"""drgn plugin (entry point group ``drgn.plugins``): the drgn shell commands %maps, %smaps, %smaps_rollup,
%numa_maps, %pagemap, %ptwalk and %memtop, enabled only when debugging a Linux kernel."""

import argparse
import sys
from typing import Any

from drgn import FaultError, Program
from drgn.commands import CommandError, argument
from drgn.commands.linux import linux_kernel_command

from drgn_ptwalk.tasks import NoMmError, TaskNotFoundError

_TASK = argument("task", help="PID, struct task_struct address (0x...), or process name")


def _run(prog: Program, cmd: str, args: argparse.Namespace) -> None:
    from drgn_ptwalk import commands_impl

    args.cmd = cmd
    try:
        commands_impl.run(prog, args, sys.stdout)
    except (TaskNotFoundError, NoMmError, ValueError, FaultError) as e:
        raise CommandError(str(e).splitlines()[0]) from None


def _text_command(name: str) -> None:
    @linux_kernel_command(name=name, description=f"print /proc/PID/{name} as the kernel would",
                          arguments=(_TASK,))
    def _cmd(prog: Program, _name: str, args: argparse.Namespace, **kwargs: Any) -> None:
        _run(prog, name, args)


for _n in ("maps", "smaps", "smaps_rollup", "numa_maps"):
    _text_command(_n)


def _hex(text: str) -> int:
    return int(text, 0)


@linux_kernel_command(
    description="/proc/PID/pagemap entries (a table, or raw bytes with -o FILE)",
    arguments=(
        _TASK,
        argument("--start", type=_hex, help="first address (default: first VMA)"),
        argument("--end", type=_hex, help="end address (default: end of the last VMA)"),
        argument("-o", "--output", metavar="FILE", help="write the raw bytes to FILE"),
        argument("--raw", action="store_true", help="raw bytes to stdout (not to a terminal)"),
    ),
)
def _cmd_pagemap(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    # In the shell a table is what one wants to read; raw bytes go to a file.
    args.table = not args.output and not args.raw
    _run(prog, "pagemap", args)


@linux_kernel_command(
    description="walk a task's page tables: one line per (batched) entry",
    arguments=(
        _TASK,
        argument("start", nargs="?", type=_hex, help="first address"),
        argument("end", nargs="?", type=_hex, help="end address"),
        argument("--type", action="append", metavar="T", help="only entries of this type; may repeat"),
        argument("--holes", action="store_true", help="also show NONE entries"),
        argument("--no-batch", action="store_true", help="one entry per page-table slot"),
        argument("--json", action="store_true", help="print a JSON list"),
    ),
)
def _cmd_ptwalk(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    _run(prog, "ptwalk", args)


@linux_kernel_command(
    description="per-process memory (RSS, PSS, anon, file, shmem, swap, hugetlb), sorted",
    arguments=(
        argument("--sort", choices=("rss", "pss", "swap", "anon", "file", "shmem", "hugetlb"), default="rss"),
        argument("--limit", type=int, default=20, help="rows to print (0: all)"),
        argument("--json", action="store_true"),
    ),
)
def _cmd_memtop(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    _run(prog, "memtop", args)
