# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn-ptwalk: a process's /proc files, page-table walks and memory, and the physical memory's, from a
crash dump, a live kernel or a QEMU guest.

The subcommands are the commands of the registry, :func:`drgn_ptwalk.commands.registry` (``drgn-ptwalk
--help`` lists them; the drgn shell commands and ``contrib/`` take the same arguments). Bad input is one
line on stderr and exit status 2 (``--debug`` shows the traceback): a corrupt VMA tree
(:class:`~drgn_ptwalk.errors.VmaTreeError`) says which node or VMA, at which level. A bug of
drgn-ptwalk's (any other exception) prints its traceback and exits with status 1. What the dump cannot
tell (procfs warnings: a VMA left out, a ``struct page`` that cannot be read) is one
``drgn-ptwalk: warning: ...`` line each on stderr; the output goes on.
"""

import argparse
import logging
import sys
import traceback
import warnings
from typing import List, Optional, TextIO, Type

from drgn_ptwalk.commands import USER_ERRORS, add_arguments, execute, internal_error, lookup, one_line, registry
from drgn_ptwalk.errors import ProcfsWarning

__all__ = ("EXIT_ERROR", "EXIT_INTERNAL", "build_parser", "main")

EXIT_ERROR = 2
"""The exit status of bad input (:data:`~drgn_ptwalk.commands.USER_ERRORS`)."""
EXIT_INTERNAL = 1
"""The exit status of a bug of drgn-ptwalk's (any other exception: its traceback is printed)."""


def build_parser() -> argparse.ArgumentParser:
    """drgn's program-selection options, then one subcommand per registered command."""
    p = argparse.ArgumentParser(prog="drgn-ptwalk", description=__doc__.split("\n\n")[0])
    sel = p.add_argument_group("program selection (as drgn)").add_mutually_exclusive_group()
    sel.add_argument("-k", "--kernel", action="store_true", help="debug the running kernel (default)")
    sel.add_argument("-c", "--core", metavar="PATH", help="debug the given core dump")
    sel.add_argument("--qemu", metavar="ADDRESS", help="debug a QEMU guest over QMP (socket path or host:port)")
    p.add_argument("-s", "--symbols", metavar="PATH", action="append", default=[],
                   help="load debugging symbols (the vmlinux) from PATH; may be given more than once")
    p.add_argument("--architecture", metavar="ARCH",
                   help="architecture of a dump that names none (worked out automatically when possible)")
    p.add_argument("--debug", action="store_true", help="show tracebacks and drgn's log")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for cmd in registry():
        add_arguments(sub.add_parser(cmd.name, aliases=list(cmd.aliases), help=cmd.help, description=cmd.help), cmd)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """The ``drgn-ptwalk`` entry point; returns the exit status."""
    from drgn_ptwalk.program import open_program

    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug is accepted anywhere on the line, before or after the subcommand.
    debug = "--debug" in argv
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    logging.getLogger("drgn").setLevel(logging.DEBUG if args.debug else logging.ERROR)
    _one_line_warnings()
    try:
        cmd = lookup(args.cmd)
        if cmd.prepare is not None:
            status = cmd.prepare(args)
            if status is not None:
                return status
        prog = open_program(args.core, qemu=args.qemu, symbols=args.symbols, architecture=args.architecture)
        execute(cmd, prog, args, sys.stdout)
        return 0
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except USER_ERRORS as e:
        if args.debug:
            traceback.print_exc()
        print(f"drgn-ptwalk: {one_line(e)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # a bug of ours: its traceback, then one line
        if args.debug:
            raise
        print(f"drgn-ptwalk: {internal_error(e)}", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line_warnings() -> None:
    """Procfs warnings as ``drgn-ptwalk: warning: ...`` lines (others as Python prints them)."""
    default = warnings.showwarning

    def show(message: "Warning | str", category: Type[Warning], filename: str, lineno: int,
             file: Optional[TextIO] = None, line: Optional[str] = None) -> None:
        if issubclass(category, ProcfsWarning):
            print(f"drgn-ptwalk: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


if __name__ == "__main__":
    sys.exit(main())
