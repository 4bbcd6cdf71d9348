"""Human and JSON views of walk entries (formatting kept out of the walker)."""

import json
from typing import Any, Dict, Iterable, Iterator, List, TextIO

from tabulate import tabulate

from drgn_ptwalk.entry import PtEntry, PtType

__all__ = ("entry_json", "entry_row", "ENTRY_HEADERS", "print_entries")

ENTRY_HEADERS = ("type", "level", "start", "end", "size", "pages", "pfn", "swap", "kind", "flags")


def _size(n: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def entry_json(e: PtEntry) -> Dict[str, Any]:
    """The JSON object of one entry (``type``, ``level``, ``cont``, ``start``, ``end``, ``pfn``, ...)."""
    return e.as_dict()


def entry_row(e: PtEntry) -> List[str]:
    if e.type == PtType.ERROR:
        kind = f"table {e.table:#x}: {e.reason}" if e.table is not None else (e.reason or "")
    else:
        kind = e.kind or ""
    return [
        e.type.name.lower(),
        e.level.name.lower() + ("+cont" if e.cont else ""),
        f"{e.start:#x}",
        f"{e.end:#x}",
        _size(e.end - e.start),
        str(e.nr_pages),
        f"{e.pfn:#x}" if e.pfn is not None else "",
        f"{e.swap_type}:{e.swap_offset:#x}" if e.swap_type is not None and e.pfn is None else "",
        kind,
        ",".join(e.flag_names()),
    ]


def print_entries(entries: Iterable[PtEntry], out: TextIO, as_json: bool = False) -> int:
    """Print entries as a table or a JSON list; returns how many ERROR entries there were."""
    errors = 0

    def counted(it: Iterable[PtEntry]) -> Iterator[PtEntry]:
        nonlocal errors
        for e in it:
            if e.type == PtType.ERROR:
                errors += 1
            yield e

    if as_json:
        # Streamed: a whole-task walk can be millions of entries.
        out.write("[")
        first = True
        for e in counted(entries):
            out.write(("\n " if first else ",\n ") + json.dumps(entry_json(e)))
            first = False
        out.write("\n]\n" if not first else "]\n")
    else:
        rows = [entry_row(e) for e in counted(entries)]
        out.write(tabulate(rows, headers=ENTRY_HEADERS, tablefmt="plain", disable_numparse=True) + "\n")
    return errors
