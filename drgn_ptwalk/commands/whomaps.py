# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``whomaps`` command: who maps a physical page (:func:`drgn_ptwalk.rmap.whomaps_pfns`), and what the
page is (:func:`drgn_ptwalk.rmap.page_kind`), for one PFN or physical address or a range ``A-B``; with
``--swap TYPE:OFFSET`` (or ``TYPE:A-B``), who holds a swap entry (:func:`drgn_ptwalk.rmap.whoswaps`).
"""

import argparse
import json
from typing import TYPE_CHECKING, List, NamedTuple, TextIO, Tuple

from drgn import Program

from drgn_ptwalk.commands import arg, command
from drgn_ptwalk.errors import ArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.rmap import PageKind, WhoMaps, WhoSwaps

__all__ = ("COMMANDS", "WhomapsOutput", "parse_frames")

MAX_RANGE = 1 << 20
"""PFNs a range may name (a larger one is refused, not truncated)."""


class WhomapsOutput(NamedTuple):
    """Per PFN: what the page is and who maps it."""

    pages: List[Tuple["PageKind", List["WhoMaps"]]]
    swaps: List[Tuple[Tuple[int, int], List["WhoSwaps"]]] = []
    """With ``--swap``: per (type, offset), who holds it."""


def parse_frames(text: str, phys: bool, page_shift: int) -> range:
    """The PFNs *text* names: ``N`` or ``A-B`` (inclusive), PFNs, or physical addresses with *phys*."""
    lo_text, sep, hi_text = text.partition("-")
    try:
        lo = int(lo_text, 0)
        hi = int(hi_text, 0) if sep else lo
    except ValueError:
        raise ArgumentError(f"not a number or range A-B: {text!r}") from None
    if phys:
        lo, hi = lo >> page_shift, hi >> page_shift
    if lo < 0 or hi < lo:
        raise ArgumentError(f"bad range {text!r}")
    if hi - lo + 1 > MAX_RANGE:
        raise ArgumentError(f"{hi - lo + 1} PFNs: at most {MAX_RANGE} at a time")
    return range(lo, hi + 1)


def parse_swap(text: str) -> Tuple[int, range]:
    """``TYPE:OFFSET`` or ``TYPE:A-B`` (inclusive) -> (type, offsets)."""
    t, sep, offs = text.partition(":")
    if not sep:
        raise ArgumentError(f"not a swap entry TYPE:OFFSET: {text!r}")
    try:
        return int(t, 0), parse_frames(offs, False, 0)
    except ValueError:
        raise ArgumentError(f"not a swap entry TYPE:OFFSET or TYPE:A-B: {text!r}") from None


def run(prog: Program, args: argparse.Namespace) -> WhomapsOutput:
    from drgn_ptwalk.kpage import max_dump_pfn
    from drgn_ptwalk.rmap import page_kind, page_table_owners, whomaps_pfns, whoswaps

    if args.swap is not None:
        if args.frame is not None or args.phys or args.pfn:
            raise ArgumentError("give a FRAME or --swap, not both")
        t, offs = parse_swap(args.swap)
        got = whoswaps(prog, [(t, o) for o in offs])
        return WhomapsOutput([], [((t, o), got[(t, o)]) for o in offs])
    if args.frame is None:
        raise ArgumentError("give a FRAME (PFN, physical address with --phys, or a range A-B) or --swap")
    if args.phys and args.pfn:
        raise ArgumentError("give --phys or --pfn, not both")
    pfns = parse_frames(args.frame, args.phys, prog["PAGE_SHIFT"].value_())
    if pfns.stop > max_dump_pfn(prog):
        raise ArgumentError(f"PFN {pfns.stop - 1:#x} is beyond the last one ({max_dump_pfn(prog) - 1:#x})")
    maps = whomaps_pfns(prog, pfns)
    owners = page_table_owners(prog, pfns)  # one walk of every mm's tables for the whole range
    return WhomapsOutput([(page_kind(prog, pfn, owners), maps[pfn]) for pfn in pfns])


def _format_swaps(res: WhomapsOutput, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        out.write(json.dumps([
            {"type": t, "offset": o,
             "holders": [{"pid": r.pid, "comm": r.task.comm.string_().decode(errors="replace"), "vma": r.vma,
                          "address": r.address, "level": r.level.name.lower()} for r in recs]}
            for (t, o), recs in res.swaps], indent=1) + "\n")
        return
    from tabulate import tabulate

    rows: List[List[object]] = []
    for (t, o), recs in res.swaps:
        if not recs:
            rows.append([f"{t}:{o:#x}", "", "", "", ""])
        for r in recs:
            rows.append([f"{t}:{o:#x}", r.pid, r.task.comm.string_().decode(errors="replace"), f"{r.address:#x}",
                         r.level.name.lower()])
    out.write(tabulate(rows, headers=("swap entry", "pid", "comm", "address", "level"), tablefmt="plain",
                       disable_numparse=True) + "\n")


def format_whomaps(res: WhomapsOutput, args: argparse.Namespace, out: TextIO) -> None:
    if res.swaps:
        _format_swaps(res, args, out)
        return
    if args.json:
        out.write(json.dumps([
            {"pfn": kind.pfn, "kind": kind.kind, "detail": kind.detail, "kpageflags": kind.kpageflags,
             "mappings": [{"pid": m.pid, "comm": m.task.comm.string_().decode(errors="replace"),
                           "vma": m.vma, "address": m.address, "level": m.level.name.lower(),
                           "type": m.type.name.lower(), "found_by": m.found_by} for m in maps]}
            for kind, maps in res.pages], indent=1) + "\n")
        return
    from tabulate import tabulate

    rows: List[List[object]] = []
    for kind, maps in res.pages:
        what = f"{kind.kind} {kind.detail}".strip()
        if not maps:
            rows.append([f"{kind.pfn:#x}", what, "", "", "", "", "", ""])
        for m in maps:
            rows.append([f"{kind.pfn:#x}", what, m.pid, m.task.comm.string_().decode(errors="replace"),
                         f"{m.address:#x}", m.level.name.lower(), m.type.name.lower(), m.found_by])
    out.write(tabulate(rows, headers=("pfn", "page", "pid", "comm", "address", "level", "type", "found by"),
                       tablefmt="plain", disable_numparse=True) + "\n")


COMMANDS = (
    command(
        "whomaps",
        "who maps a physical page (the kernel's rmap, confirmed in the page tables) and what the page is",
        (
            arg("frame", nargs="?", help="PFN or range A-B (inclusive); physical addresses with --phys"),
            arg("--pfn", action="store_true", help="FRAME is a PFN (the default)"),
            arg("--phys", action="store_true", help="FRAME is a physical address"),
            arg("--swap", metavar="TYPE:OFFSET",
                help="who holds swap entry TYPE:OFFSET (or TYPE:A-B) in their page tables, instead of a FRAME"),
            arg("--json", action="store_true", help="print a JSON list, one object per PFN"),
        ),
        run,
        format_whomaps,
    ),
)
