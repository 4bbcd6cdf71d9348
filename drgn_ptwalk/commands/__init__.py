# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The commands, each declared once: its name, its arguments, how it runs and how its result is printed.

Every command module (:mod:`~drgn_ptwalk.commands.procfiles`, :mod:`~drgn_ptwalk.commands.pagemap`,
:mod:`~drgn_ptwalk.commands.ptwalk`, :mod:`~drgn_ptwalk.commands.memtop`,
:mod:`~drgn_ptwalk.commands.kpage`, :mod:`~drgn_ptwalk.commands.whomaps`, :mod:`~drgn_ptwalk.commands.memmap`,
:mod:`~drgn_ptwalk.commands.memread`, :mod:`~drgn_ptwalk.commands.gcore`, :mod:`~drgn_ptwalk.commands.filecache`,
:mod:`~drgn_ptwalk.commands.report`) declares :class:`Command` objects in its ``COMMANDS``; :func:`registry`
lists them all. Three front ends are built from it, so they accept the same arguments: the ``drgn-ptwalk``
CLI (:mod:`drgn_ptwalk.cli`), the drgn shell commands
(:mod:`drgn_ptwalk.plugin`) and the ``contrib/`` scripts (:func:`run_script`). Bad input is one
exception family, :data:`USER_ERRORS`, told to the user as :func:`one_line`: a line on stderr and exit
status 2 in the CLI and the scripts, a :class:`drgn.commands.CommandError` in the shell. Any other
exception is a bug of drgn-ptwalk's: every front end shows its traceback (:func:`internal_error`).

Importing this package and the command modules is cheap (the drgn plugin does it at drgn start-up):
what a command needs to run is imported by its ``run``.
"""

import argparse
import importlib
import os
import sys
from typing import Any, BinaryIO, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, TextIO, Tuple, Union

from drgn import Program

from drgn_ptwalk.errors import ArgumentError, NoMmError, ProgramError, PtWalkError, TaskNotFoundError

__all__ = (
    "Arg",
    "BINARY_OUTPUT",
    "Command",
    "TASK",
    "USER_ERRORS",
    "address",
    "arg",
    "command",
    "execute",
    "internal_error",
    "make_parser",
    "one_line",
    "range_args",
    "registry",
    "run_script",
    "write_binary",
)

_MODULES = ("procfiles", "pagemap", "ptwalk", "memtop", "kpage", "whomaps", "memmap", "memread", "gcore",
            "filecache", "report")
"""The command modules, in the order the commands are listed."""

USER_ERRORS = (ProgramError, TaskNotFoundError, NoMmError, ArgumentError, PtWalkError, OSError)
"""What bad input raises (a dump that cannot be opened, a PID that is not there or has no mm, a bad range or
option, a corrupt VMA tree, an unwritable output file): told to the user in one line, never as a
traceback. Anything else (a plain ``ValueError``, a ``FaultError`` no reader turned into a warning) is a
bug of drgn-ptwalk's."""


class Arg(NamedTuple):
    """One argument of a command: what :meth:`argparse.ArgumentParser.add_argument` takes."""

    flags: Tuple[str, ...]
    kwargs: Dict[str, Any]


def arg(*flags: str, **kwargs: Any) -> Arg:
    """An :class:`Arg`, written like ``add_argument()``."""
    return Arg(flags, kwargs)


def address(text: str) -> int:
    """An address or number, in any base Python reads (``0x7f00...``, ``4096``)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


TASK = arg("task", help="PID, struct task_struct address (0x...), or process name")
"""The task argument of the per-task commands."""

BINARY_OUTPUT = (
    arg("-o", "--output", metavar="FILE", help="write to FILE instead of standard output"),
    arg("--table", action="store_true", help="a readable table of the non-zero entries"),
    arg("--raw", action="store_true", help="raw bytes even where a table is the default (a terminal)"),
)
"""The output arguments of the commands that write a binary /proc file (``pagemap``, ``kpage``)."""


def write_binary(name: str, data: Callable[[], Union[bytes, Iterable[bytes]]], table: Callable[[TextIO], None],
                 args: argparse.Namespace, out: TextIO) -> None:
    """
    Print a binary /proc file the way :data:`BINARY_OUTPUT` asks: raw bytes to ``-o FILE`` (replaced
    atomically) or to a standard output that is not a terminal, else (or with ``--table``) the table.

    :param data: makes the raw bytes, whole or as chunks written as they come
    :param table: writes the table to a text stream
    :raises ArgumentError: for raw bytes to a terminal, or both ``--table`` and ``--raw``
    """
    if args.table and args.raw:
        raise ArgumentError("give --table or --raw, not both")
    if args.table or (not args.raw and not args.output and out.isatty()):
        if args.output:
            with open(args.output, "w") as f:
                table(f)
        else:
            table(out)
        return
    if args.output:
        with open(args.output + ".tmp", "wb") as f:
            _write_all(f, data())
        os.replace(args.output + ".tmp", args.output)
        return
    stream = getattr(out, "buffer", None)
    if stream is None or out.isatty():
        raise ArgumentError(f"{name} is binary: give -o FILE or --table")
    out.flush()
    _write_all(stream, data())
    stream.flush()


def _write_all(f: BinaryIO, data: Union[bytes, Iterable[bytes]]) -> None:
    if isinstance(data, (bytes, bytearray, memoryview)):
        f.write(data)
    else:
        for chunk in data:
            f.write(chunk)


def range_args(start_help: str, end_help: str) -> Tuple[Arg, Arg]:
    """``--start`` and ``--end``: the address (or PFN) range of a command (each says its default)."""
    return arg("--start", type=address, help=start_help), arg("--end", type=address, help=end_help)


class Command(NamedTuple):
    """A command: one declaration serves the CLI, the drgn shell and ``contrib/``."""

    name: str
    help: str
    """One line: what it prints."""
    arguments: Tuple[Arg, ...]
    run: Callable[[Program, argparse.Namespace], Any]
    """Computes the result (may be an iterator: the formatter streams it)."""
    format: Callable[[Any, argparse.Namespace, TextIO], None]
    """Prints a result of :attr:`run`."""
    prepare: Optional[Callable[[argparse.Namespace], Optional[int]]] = None
    """Runs in the CLI before the program is opened: checks what the command needs (raising a
    :data:`USER_ERRORS` error), and returns an exit status when the command needs no program (``report
    --batch``), else ``None``."""
    aliases: Tuple[str, ...] = ()
    """Other names of the CLI subcommand (the drgn shell and ``contrib/`` use :attr:`name`)."""


def command(name: str, help: str, arguments: Sequence[Arg], run: Callable[[Program, argparse.Namespace], Any],
            format: Callable[[Any, argparse.Namespace, TextIO], None],
            prepare: Optional[Callable[[argparse.Namespace], Optional[int]]] = None,
            aliases: Sequence[str] = ()) -> Command:
    """Declare a :class:`Command`."""
    return Command(name, help, tuple(arguments), run, format, prepare, tuple(aliases))


def registry() -> Tuple[Command, ...]:
    """Every command, in the order of :data:`_MODULES`."""
    out: List[Command] = []
    for m in _MODULES:
        out.extend(importlib.import_module(f"{__name__}.{m}").COMMANDS)
    return tuple(out)


def lookup(name: str) -> Command:
    """The command called *name* (or with the CLI alias *name*)."""
    for c in registry():
        if c.name == name or name in c.aliases:
            return c
    raise KeyError(name)


def add_arguments(parser: Any, cmd: Command) -> None:
    """Add the arguments of *cmd* to an :class:`argparse.ArgumentParser` (or a subparser)."""
    for a in cmd.arguments:
        parser.add_argument(*a.flags, **a.kwargs)


def make_parser(cmd: Command, prog: Optional[str] = None) -> argparse.ArgumentParser:
    """A stand-alone parser of *cmd*'s arguments (the ``contrib/`` scripts use it)."""
    p = argparse.ArgumentParser(prog=prog or cmd.name, description=cmd.help)
    add_arguments(p, cmd)
    return p


def execute(cmd: Command, prog: Program, args: argparse.Namespace, out: TextIO) -> None:
    """Run *cmd* on an open program and print its result to *out*."""
    cmd.format(cmd.run(prog, args), args, out)


def one_line(e: BaseException) -> str:
    """The first line of an error's message (its type name if it has none)."""
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def internal_error(e: BaseException) -> str:
    """
    Tell a bug of drgn-ptwalk's (an exception outside :data:`USER_ERRORS`): its traceback on stderr.

    :return: the one line that follows it (``internal error: TYPE: message``)
    """
    import traceback

    traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    return f"internal error: {type(e).__name__}: {one_line(e)} (a bug of drgn-ptwalk's: the traceback is above)"


def run_script(prog: Program, name: str, argv: Optional[List[str]] = None) -> int:
    """
    Run command *name* from a drgn script (``drgn -c VMCORE -s VMLINUX contrib/NAME.py ARGS``): the
    arguments of the CLI's subcommand, its output, its errors (one line on stderr, status 2).

    :return: the exit status
    """
    cmd = lookup(name)
    args = make_parser(cmd, prog=f"{name}.py").parse_args(sys.argv[1:] if argv is None else argv)
    try:
        execute(cmd, prog, args, sys.stdout)
    except BrokenPipeError:
        return 0
    except USER_ERRORS as e:
        print(f"drgn-ptwalk: {one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"drgn-ptwalk: {internal_error(e)}", file=sys.stderr)
        return 1
    return 0
