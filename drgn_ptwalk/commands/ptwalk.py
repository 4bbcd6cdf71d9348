# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The ``ptwalk`` command: :func:`~drgn_ptwalk.walk.pt_range_walk` of a task, one line (or JSON object) per
(batched) entry, streamed as the walk yields them, in constant memory.

Text: a header line, then one line per entry, fields separated by spaces and padded to fixed widths
(:data:`ENTRY_HEADERS`); an empty field is ``-``; the last field (``kind``) is the rest of the line (an
ERROR entry's ``table 0x...: reason`` has spaces). ``--with raw`` / ``--with vma`` add those columns before
``kind``. JSON Lines (``--json``): one object per line, the keys of :data:`JSON_KEYS` (``raw``, ``vma``
with ``--with``; ``table`` and ``reason`` on ERROR entries only).

Speed: a whole task can be millions of entries. They are formatted in chunks, column by column, by C-level
iteration (``map``, ``zip``, ``str.__mod__``): each line is one ``%`` of a template that already holds what
is the same for many entries — type, level, the flag names (decoded once per distinct flag bits), kind —
so there is no Python code per entry. :func:`entry_line` formats one entry the plain way (ERROR entries
take it; the tests check the two agree).
"""

import argparse
import json
import sys
from itertools import islice, repeat
from operator import and_, is_, itemgetter, mod, rshift, sub
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    TextIO,
    Tuple,
)

from drgn import Program

from drgn_ptwalk.commands import TASK, arg, command, range_args
from drgn_ptwalk.entry import PtEntry, PtLevel, PtType
from drgn_ptwalk.errors import ArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.arch import ArchDecoder

__all__ = ("COMMANDS", "ENTRY_HEADERS", "EXTRA_FIELDS", "JSON_KEYS", "EntryFormatter", "WalkOutput", "entry_line",
           "write_entries")

ENTRY_HEADERS = ("type", "level", "start", "end", "size", "pages", "pfn", "swap", "flags", "kind")
"""The text columns (``raw`` and ``vma`` go before ``kind`` when asked for)."""
_WIDTHS = (9, 8, 14, 14, 7, 8, 12, 14, 36)
"""Minimum widths of the text columns before ``kind`` (a longer value widens its line only)."""
JSON_KEYS = ("type", "level", "cont", "start", "end", "nr_pages", "pfn", "swap_type", "swap_offset", "kind",
             "flags")
"""The keys of a JSON line (then ``raw``, ``vma`` if asked for; ``table``, ``reason`` for ERROR entries)."""
EXTRA_FIELDS = ("raw", "vma")
"""What ``--with`` adds."""

_CHUNK = 4096
"""Entries formatted at a time (the first chunk is smaller: the first lines come out early)."""
_FIRST_CHUNK = 64


def _size(n: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


class _Sizes(Dict[int, str]):
    """Size strings by byte count, made once each."""

    def __missing__(self, n: int) -> str:
        s = self[n] = _size(n)
        return s


def _level(e: PtEntry) -> str:
    return e.level.name.lower() + ("+cont" if e.cont else "")


def _text_kind(e: PtEntry) -> str:
    if e.type == PtType.ERROR:
        kind = f"table {e.table:#x}: {e.reason}" if e.table is not None else (e.reason or "")
    else:
        kind = e.kind or ""
    return kind or "-"


def _header(extra: Sequence[str]) -> str:
    names = ENTRY_HEADERS[:-1] + tuple(extra)
    return " ".join(f.ljust(w) for f, w in zip(names, _WIDTHS + (18,) * len(extra))) + " " + ENTRY_HEADERS[-1] + "\n"


def entry_line(e: PtEntry, as_json: bool = False, extra: Sequence[str] = ()) -> str:
    """
    One entry as a text line or a JSON line (with its newline), the plain way: the reference
    :class:`EntryFormatter` agrees with.

    :param extra: names of :data:`EXTRA_FIELDS` to add
    """
    if as_json:
        d: Dict[str, Any] = {
            "type": e.type.name.lower(), "level": e.level.name.lower(), "cont": e.cont, "start": e.start,
            "end": e.end, "nr_pages": e.nr_pages, "pfn": e.pfn, "swap_type": e.swap_type,
            "swap_offset": e.swap_offset, "kind": e.kind, "flags": list(e.flag_names()),
        }
        for x in extra:
            d[x] = getattr(e, x)
        if e.type == PtType.ERROR:
            d["table"] = e.table
            d["reason"] = e.reason
        return json.dumps(d, separators=(",", ":")) + "\n"
    w = _WIDTHS
    fields = [
        e.type.name.lower().ljust(w[0]),
        _level(e).ljust(w[1]),
        f"{e.start:#x}".ljust(w[2]),
        f"{e.end:#x}".ljust(w[3]),
        _size(e.end - e.start).rjust(w[4]),
        str(e.nr_pages).rjust(w[5]),
        f"{e.pfn:#x}".ljust(w[6]) if e.pfn is not None else "-".ljust(w[6]),
        f"{e.swap_type}:" + f"{e.swap_offset:#x}".ljust(w[7] - 2) if e.swap_type is not None else "-".ljust(w[7]),
        (",".join(e.flag_names()) or "-").ljust(w[8]),
    ]
    for x in extra:
        v = getattr(e, x)
        fields.append((f"{v:#x}" if v is not None else "-").ljust(18))
    return " ".join(fields) + " " + _text_kind(e) + "\n"


_ERROR = PtType.ERROR
_LEAF_TYPES = (PtType.FOLIO, PtType.PFN)
_FOLIO_TYPES = frozenset((PtType.FOLIO, PtType.MIGRATION, PtType.DEVICE))
"""The types the walker cuts by folio (``split_folios``)."""
_PTE = PtLevel.PTE
_SINGLE = object()
"""Last element of a template key: the template of a one-page entry with a PFN
(see :meth:`EntryFormatter.write_runs`)."""


class _Templates(Dict[Tuple[Any, ...], str]):
    """
    Line templates by what is the same for many entries: ``(type, level, cont, kind, raw & flag bits,
    pfn is None, swap_type is None[, vma is None])``. A template takes ``(start, end, size string, pages,
    pfn, swap_type, swap_offset[, raw][, vma])``; what an entry does not have is consumed by ``%.0s``.
    """

    def __init__(self, dec: "ArchDecoder", as_json: bool, extra: Sequence[str]) -> None:
        super().__init__()
        self.dec = dec
        self.as_json = as_json
        self.extra = tuple(extra)
        self.page = _size(dec.page_size)

    def __missing__(self, key: Tuple[Any, ...]) -> str:
        if key[-1] is _SINGLE:
            # One page with a PFN, no swap fields: takes (start, end, pfn) only.
            t = self[key[:-1]]
            if self.as_json:
                t = t.replace(',%.0s"nr_pages":%d,', ',"nr_pages":1,').replace(
                    '"swap_type":null,"swap_offset":null,%.0s%.0s', '"swap_type":null,"swap_offset":null,')
            else:
                w = _WIDTHS
                size = " %%%ds %%%dd " % (w[4], w[5])
                i = t.index(size)
                t = t[:i] + " " + self.page.rjust(w[4]) + " " + "1".rjust(w[5]) + " " + t[i + len(size):]
                t = t.replace("%.0s%.0s-", "-", 1)
            self[key] = t
            return t
        typ, level, cont, kind, bits, no_pfn, no_swap = key[:7]
        no_vma = key[7] if len(key) > 7 else False
        # The flag names of any entry with these bits: decoded by the entry itself.
        names = PtEntry(typ, level, 0, 0, raw=bits, cont=cont, decoder=self.dec).flag_names()
        if self.as_json:
            t = ('{"type":"%s","level":"%s","cont":%s,"start":%%d,"end":%%d,%%.0s"nr_pages":%%d,'
                 % (typ.name.lower(), level.name.lower(), "true" if cont else "false"))
            t += '"pfn":null,%.0s' if no_pfn else '"pfn":%d,'
            t += '"swap_type":null,"swap_offset":null,%.0s%.0s' if no_swap else '"swap_type":%d,"swap_offset":%d,'
            t += '"kind":%s,"flags":%s' % (_esc(json.dumps(kind)), _esc(json.dumps(list(names), separators=(",", ":"))))
            for x in self.extra:
                t += ',"raw":%d' if x == "raw" else (',"vma":null%.0s' if no_vma else ',"vma":%d')
            t += "}\n"
        else:
            w = _WIDTHS
            t = "%s %s %%#-%dx %%#-%dx %%%ds %%%dd " % (
                typ.name.lower().ljust(w[0]), (level.name.lower() + ("+cont" if cont else "")).ljust(w[1]),
                w[2], w[3], w[4], w[5])
            t += "%%.0s%s " % "-".ljust(w[6]) if no_pfn else "%%#-%dx " % w[6]
            t += "%%.0s%%.0s%s " % "-".ljust(w[7]) if no_swap else "%d:%#-" + str(w[7] - 2) + "x "
            t += _esc((",".join(names) or "-").ljust(w[8])) + " "
            for x in self.extra:
                t += "%.0s" + "-".ljust(18) + " " if x == "vma" and no_vma else "%#-18x "
            t += _esc(kind or "-") + "\n"
        self[key] = t
        return t


def _esc(s: str) -> str:
    return s.replace("%", "%%")


class EntryFormatter:
    """
    Formats chunks of entries as text or JSON lines (see the module doc).

    :param dec: the arch decoder of the entries
    :param extra: names of :data:`EXTRA_FIELDS` to add
    """

    def __init__(self, dec: "ArchDecoder", as_json: bool = False, extra: Sequence[str] = ()) -> None:
        self.dec = dec
        self.as_json = as_json
        self.extra = tuple(extra)
        self.shift = dec.page_shift
        self.templates = _Templates(dec, as_json, self.extra)
        self.sizes = _Sizes()
        masks = [0] * (max(PtType) + 1)
        for t in PtType:
            if t in _LEAF_TYPES:
                masks[t] = dec.leaf_flag_bits
            elif t != PtType.NONE and t != _ERROR:
                masks[t] = dec.swap_flag_bits
        self.masks = tuple(masks)

    def header(self) -> str:
        """The header line of the text format ('' for JSON)."""
        return "" if self.as_json else _header(self.extra)

    def lines(self, chunk: List[PtEntry]) -> str:
        """The lines of *chunk*, joined."""
        types = list(map(itemgetter(0), chunk))
        if _ERROR in types:
            return "".join([entry_line(e, self.as_json, self.extra) for e in chunk])
        starts = list(map(itemgetter(2), chunk))
        ends = list(map(itemgetter(3), chunk))
        pfns = list(map(itemgetter(5), chunk))
        swts = list(map(itemgetter(8), chunk))
        raws: Iterable[int] = map(itemgetter(4), chunk)
        if self.extra:
            raws = list(raws)
        keys: Iterable[Tuple[Any, ...]] = zip(
            types, map(itemgetter(1), chunk), map(itemgetter(6), chunk), map(itemgetter(10), chunk),
            map(and_, raws, map(self.masks.__getitem__, types)), map(is_, pfns, repeat(None)),
            map(is_, swts, repeat(None)),
        )
        sizes = list(map(sub, ends, starts))
        cols: List[Iterable[Any]] = [starts, ends, map(self.sizes.__getitem__, sizes),
                                     map(rshift, sizes, repeat(self.shift)), pfns, swts, map(itemgetter(9), chunk)]
        if "vma" in self.extra:
            vmas = list(map(itemgetter(7), chunk))
            keys = map(tuple.__add__, keys, zip(map(is_, vmas, repeat(None))))
        for x in self.extra:
            cols.append(raws if x == "raw" else vmas)
        return "".join(map(mod, map(self.templates.__getitem__, keys), zip(*cols)))

    def write_runs(self, chunk: List[PtEntry], folio_runs: Callable[[int, int], Sequence[int]], out: TextIO) -> None:
        """
        Write the lines of the entries a ``split_folios=True`` walk yields, from *chunk*, entries of the same
        walk with ``split_folios=False``: each PTE run of a type with folios is cut by *folio_runs* as the
        walker cuts it (``emit()``). A run of order-0 folios — most of a task's memory — is written from
        ranges of addresses and PFNs through one template, never made into entries. At most one table's run
        or :data:`_CHUNK` entries are held at a time. Only for text and JSON without :data:`EXTRA_FIELDS`
        (a cut entry's ``raw`` is its run's).
        """
        pending: List[PtEntry] = []
        shift = self.shift
        psz = 1 << shift
        for e in chunk:
            typ, level, start, end = e[:4]
            n = (end - start) >> shift
            if n == 1 or level is not _PTE or typ not in _FOLIO_TYPES:
                pending.append(e)
                continue
            pfn = e[5]
            assert pfn is not None  # a FOLIO or PFN-carrying PTE run
            runs = folio_runs(pfn, n)
            if len(runs) == 1:
                pending.append(e)
            elif len(runs) == n and e[9] is None:
                if pending:
                    out.write(self.lines(pending))
                    pending = []
                key = (typ, level, e[6], e[10], e[4] & self.masks[typ], False, True, _SINGLE)
                out.write("".join(map(mod, repeat(self.templates[key], n), zip(
                    range(start, end, psz), range(start + psz, end + psz, psz), range(pfn, pfn + n)))))
            else:
                a = start
                off = e[9]
                for r in runs:
                    b = a + (r << shift)
                    pending.append(e._replace(start=a, end=b, pfn=pfn, swap_offset=off))
                    a = b
                    pfn += r
                    if off is not None:
                        off += r
                if len(pending) >= _CHUNK:
                    out.write(self.lines(pending))
                    pending = []
        if pending:
            out.write(self.lines(pending))


def write_entries(entries: Iterable[PtEntry], dec: "ArchDecoder", out: TextIO, as_json: bool = False,
                  extra: Sequence[str] = (), folio_runs: Optional[Callable[[int, int], Sequence[int]]] = None) -> int:
    """
    Write the entries to *out* as they come (text or JSON Lines), flushing after the first few so the first
    lines are out before the walk ends.

    :param entries: the walk's entries (:func:`~drgn_ptwalk.walk.pt_range_walk`)
    :param dec: the program's decoder (:func:`~drgn_ptwalk.arch.get_decoder`)
    :param out: where to write
    :param as_json: JSON Lines (one object per entry) instead of the text table
    :param extra: more fields per entry (``EXTRA_FIELDS``)
    :param folio_runs: if given, *entries* come from a ``split_folios=False`` walk and are written as the
        ``split_folios=True`` walk's (:meth:`EntryFormatter.write_runs`); not with *extra*
    :return: how many ERROR entries there were
    """
    fmt = EntryFormatter(dec, as_json, extra)
    if folio_runs is not None and extra:
        raise ArgumentError("folio_runs and extra fields do not go together")
    out.write(fmt.header())
    it = iter(entries)
    errors = 0
    n = _FIRST_CHUNK
    # A run entry keeps its page-table page (PtEntry.values) and stands for up to a table's lines: runs are
    # taken a few at a time, so that memory stays that of a few tables.
    size = _CHUNK if folio_runs is None else _FIRST_CHUNK
    while True:
        chunk = list(islice(it, n))
        if not chunk:
            break
        if folio_runs is None:
            out.write(fmt.lines(chunk))
        else:
            fmt.write_runs(chunk, folio_runs, out)
        errors += list(map(itemgetter(0), chunk)).count(_ERROR)
        del chunk
        if n == _FIRST_CHUNK:
            out.flush()
            n = size
    out.flush()
    return errors


def entry_types(names: Optional[List[str]]) -> Optional[List[PtType]]:
    """The :class:`PtType` of each name (``None``: all types)."""
    if not names:
        return None
    out = []
    for n in names:
        try:
            out.append(PtType[n.upper()])
        except KeyError:
            known = ", ".join(t.name.lower() for t in PtType)
            raise ArgumentError(f"unknown entry type {n!r} (known: {known})") from None
    return out


class WalkOutput(NamedTuple):
    """What :func:`run` returns."""

    entries: Iterator[PtEntry]
    decoder: "ArchDecoder"
    folio_runs: Optional[Callable[[int, int], Sequence[int]]]
    """Set if :attr:`entries` is a ``split_folios=False`` walk, to be cut by folio when written."""


def run(prog: Program, args: argparse.Namespace) -> WalkOutput:
    """The entries of the walk (range and types checked before the first is read) and their decoder."""
    from drgn_ptwalk.arch import get_decoder
    from drgn_ptwalk.page import folio_runs
    from drgn_ptwalk.tasks import find_target, task_mm
    from drgn_ptwalk.walk import pt_range_walk

    mm = task_mm(find_target(prog, args.task))
    # Without --with, the walk keeps runs of order-0 folios whole and the writer cuts them (no entry per
    # page); the lines are those of the default walk.
    runs = not args.with_ and not args.no_batch
    entries = pt_range_walk(mm, args.start, args.end, include_none=args.holes, types=entry_types(args.type),
                            batch=not args.no_batch, split_folios=not runs)
    return WalkOutput(entries, get_decoder(prog), (lambda pfn, n: folio_runs(prog, pfn, n)) if runs else None)


def format_entries(res: WalkOutput, args: argparse.Namespace, out: TextIO) -> None:
    """Write the entries as they come; how many tables could not be read goes to stderr."""
    errors = write_entries(res.entries, res.decoder, out, as_json=args.json, extra=args.with_ or (),
                           folio_runs=res.folio_runs)
    if errors:
        print(f"drgn-ptwalk: {errors} page-table page(s) could not be read (type error entries)", file=sys.stderr)


COMMANDS = (
    command(
        "ptwalk",
        "walk the page tables: one line per (batched) entry, streamed",
        (
            TASK,
            *range_args("first address (default 0)", "end address (default: the task size)"),
            arg("--type", action="append", metavar="T",
                help="only entries of this type (" + ", ".join(t.name.lower() for t in PtType) + "); may repeat"),
            arg("--holes", action="store_true", help="also show NONE entries (holes)"),
            arg("--no-batch", action="store_true", help="one entry per page-table slot"),
            arg("--json", action="store_true", help="JSON Lines: one object per entry"),
            arg("--with", dest="with_", action="append", choices=EXTRA_FIELDS, metavar="FIELD",
                help="also print the entry's raw value (raw) or VMA address (vma); may repeat"),
        ),
        run,
        format_entries,
    ),
)
