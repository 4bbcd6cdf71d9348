"""drgn-ptwalk: /proc/PID/{maps,smaps,smaps_rollup,numa_maps,pagemap}, page-table walks and memtop from a
crash dump, a live kernel or a QEMU guest.

Errors are one line on stderr and exit status 2 (``--debug`` shows the traceback): a corrupt VMA tree
(:class:`~drgn_ptwalk.vmatree.VmaTreeError`) says which node or VMA, at which level. What the dump cannot
tell (procfs warnings: a VMA left out, a ``struct page`` that cannot be read) is one
``drgn-ptwalk: warning: ...`` line each on stderr; the output goes on.
"""

import argparse
import logging
import sys
import traceback
import warnings
from typing import List, Optional

import drgn

from drgn_ptwalk.procfs.common import ProcfsWarning
from drgn_ptwalk.program import ProgramError, open_program
from drgn_ptwalk.tasks import NoMmError, TaskNotFoundError
from drgn_ptwalk.vmatree import PtWalkError

EXIT_ERROR = 2


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def add_task_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="PID, struct task_struct address (0x...), or process name")


def build_parser() -> argparse.ArgumentParser:
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
    for name in ("maps", "smaps", "smaps_rollup", "numa_maps"):
        sp = sub.add_parser(name, help=f"print /proc/PID/{name} as the kernel would")
        add_task_argument(sp)
    sp = sub.add_parser("pagemap", help="/proc/PID/pagemap bytes (raw by default)")
    add_task_argument(sp)
    sp.add_argument("--start", type=_int, help="first address (default: first VMA)")
    sp.add_argument("--end", type=_int, help="end address (default: end of the last VMA)")
    sp.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    sp.add_argument("--table", action="store_true", help="print a readable table instead of raw bytes")
    sp = sub.add_parser("ptwalk", help="walk the page tables: one line per (batched) entry")
    add_task_argument(sp)
    sp.add_argument("--start", type=_int, help="first address (default 0)")
    sp.add_argument("--end", type=_int, help="end address (default: the task size)")
    sp.add_argument("--type", action="append", metavar="T",
                    help="only entries of this type (none, folio, marker, pfn, swap, migration, device, "
                         "hwpoison, error); may repeat")
    sp.add_argument("--holes", action="store_true", help="also show NONE entries (holes)")
    sp.add_argument("--no-batch", action="store_true", help="one entry per page-table slot")
    sp.add_argument("--json", action="store_true", help="print a JSON list")
    sp = sub.add_parser("memtop", help="per-process memory, sorted (smaps_rollup accounting)")
    sp.add_argument("--sort", choices=("rss", "pss", "swap", "anon", "file", "shmem", "hugetlb"), default="rss")
    sp.add_argument("--limit", type=int, default=20, help="rows to print (0: all)")
    sp.add_argument("--json", action="store_true")
    return p


def run(prog: drgn.Program, args: argparse.Namespace, out=None) -> int:
    """Run one subcommand on an open program (shared by the CLI and the drgn commands)."""
    from drgn_ptwalk import commands_impl

    return commands_impl.run(prog, args, out or sys.stdout)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug is accepted anywhere on the line, before or after the subcommand.
    debug = "--debug" in argv
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    logging.getLogger("drgn").setLevel(logging.DEBUG if args.debug else logging.ERROR)
    _one_line_warnings()
    try:
        prog = open_program(args.core, kernel=args.kernel, qemu=args.qemu, symbols=args.symbols,
                            architecture=args.architecture)
        return run(prog, args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except (ProgramError, TaskNotFoundError, NoMmError, PtWalkError, ValueError, drgn.FaultError, OSError) as e:
        if args.debug:
            traceback.print_exc()
        print(f"drgn-ptwalk: {_one_line(e)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # an unexpected failure still gets one line unless --debug
        if args.debug:
            raise
        print(f"drgn-ptwalk: internal error: {type(e).__name__}: {_one_line(e)} (rerun with --debug)",
              file=sys.stderr)
        return EXIT_ERROR


def _one_line_warnings() -> None:
    """Procfs warnings as ``drgn-ptwalk: warning: ...`` lines (others as Python prints them)."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ProcfsWarning):
            print(f"drgn-ptwalk: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
