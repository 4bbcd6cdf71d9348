# SPDX-License-Identifier: LGPL-2.1-or-later
"""The output of the ``ptwalk`` and ``pagemap`` commands, on every reference dump, against the truth: the
streamed text and JSON Lines of ``ptwalk`` parse back to exactly the entries ``pt_range_walk`` yields; the
whole-task pagemap file read at each VMA's offset is the kernel's captured pagemap."""

import io
import json
import os
import warnings
from array import array
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from drgn_ptwalk._byteorder import is_big_endian
from drgn_ptwalk.arch import get_decoder
from drgn_ptwalk.commands import execute, lookup, make_parser
from drgn_ptwalk.commands.ptwalk import ENTRY_HEADERS, write_entries
from drgn_ptwalk.entry import PtEntry, PtType
from drgn_ptwalk.errors import NoMmError
from drgn_ptwalk.tasks import find_target, get_task_mm
from drgn_ptwalk.walk import pt_range_walk
from vmcores.truth import read_pagemap


def _run(prog, name: str, argv: List[str]) -> str:
    cmd = lookup(name)
    out = io.StringIO()
    execute(cmd, prog, make_parser(cmd).parse_args(argv), out)
    return out.getvalue()


def _said(e: PtEntry, extra: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """What the output must say of an entry."""
    d = {"type": e.type.name.lower(), "level": e.level.name.lower(), "cont": e.cont, "start": e.start,
         "end": e.end, "nr_pages": e.nr_pages, "pfn": e.pfn, "swap_type": e.swap_type,
         "swap_offset": e.swap_offset, "kind": e.kind, "flags": list(e.flag_names())}
    for x in extra:
        d[x] = getattr(e, x)
    if e.type == PtType.ERROR:
        d["table"] = e.table
        d["reason"] = e.reason
    return d


def _num(s: str) -> Optional[int]:
    return None if s == "-" else int(s, 0)


def _parse_text(text: str, page_size: int, extra: Tuple[str, ...] = ()) -> Iterator[Dict[str, Any]]:
    lines = text.splitlines()
    assert lines[0].split() == list(ENTRY_HEADERS[:-1] + extra + ENTRY_HEADERS[-1:]), lines[0]
    nx = len(extra)
    for line in lines[1:]:
        f = line.split(None, 9 + nx)
        assert len(f) == 10 + nx, line
        typ, level, start, end, size, pages, pfn, swap, flags = f[:9]
        xs = f[9 : 9 + nx]
        kind = f[-1]
        level, _, cont = level.partition("+")
        d: Dict[str, Any] = {"type": typ, "level": level, "cont": cont == "cont", "start": int(start, 16),
                             "end": int(end, 16), "nr_pages": int(pages), "pfn": _num(pfn)}
        if swap == "-":
            d["swap_type"] = d["swap_offset"] = None
        else:
            t, _, off = swap.partition(":")
            d["swap_type"], d["swap_offset"] = int(t), int(off, 16)
        d["kind"] = None if kind == "-" or typ == "error" else kind
        d["flags"] = [] if flags == "-" else flags.split(",")
        for name, v in zip(extra, xs):
            d[name] = _num(v)
        if typ == "error":
            table, sep, reason = kind.partition(": ")
            if sep and table.startswith("table 0x"):
                d["table"], d["reason"] = int(table[6:], 16), reason
            else:
                d["table"], d["reason"] = None, kind
        # The size column says the same as the range.
        n = d["end"] - d["start"]
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
        assert int(size.rstrip("KMG")) * unit == n, line
        assert d["nr_pages"] == n // page_size
        yield d


def _tasks(vmcore):
    prog = vmcore.prog()
    for name, pid in sorted(vmcore.pids.items()):
        task = find_target(prog, pid)
        yield name, pid, task, get_task_mm(task)


def _some(vmcore, names):
    """The named workload processes; on a dump of real servers (scenario "realuser", no such names) its
    three processes with the most address space."""
    if vmcore.scenario == "default":
        return list(names)
    size = lambda n: (vmcore.pid_dir(vmcore.pids[n]) / "pagemap.bin").stat().st_size  # noqa: E731
    return sorted((n for n in vmcore.pids if n != "kthread"), key=size, reverse=True)[:3]


def test_ptwalk_text_and_json_are_the_walk(vmcore):
    prog = vmcore.prog()
    ps = get_decoder(prog).page_size
    n = 0
    for name, pid, _task, mm in _tasks(vmcore):
        if not mm:
            continue
        want = [_said(e) for e in pt_range_walk(mm)]
        text = _run(prog, "ptwalk", [str(pid), "--holes"])
        assert list(_parse_text(text, ps)) == want, f"{name}: text"
        lines = _run(prog, "ptwalk", [str(pid), "--holes", "--json"]).splitlines()
        assert [json.loads(x) for x in lines] == want, f"{name}: JSON Lines"
        n += len(want)
    assert n


def test_ptwalk_options(vmcore):
    """``--with raw/vma``, ``--type``, no holes, ``--no-batch``: still exactly the walk's entries."""
    prog = vmcore.prog()
    ps = get_decoder(prog).page_size
    for name in _some(vmcore, ("thp", "swap", "hugetlb", "uffd")):
        pid = vmcore.pids[name]
        mm = get_task_mm(find_target(prog, pid))
        extra = ("raw", "vma")
        want = [_said(e, extra) for e in pt_range_walk(mm)]
        got = _run(prog, "ptwalk", [str(pid), "--holes", "--with", "raw", "--with", "vma"])
        assert list(_parse_text(got, ps, extra)) == want, name
        got = _run(prog, "ptwalk", [str(pid), "--holes", "--json", "--with", "raw", "--with", "vma"])
        assert [json.loads(x) for x in got.splitlines()] == want, name
        want = [_said(e) for e in pt_range_walk(mm, types=[PtType.FOLIO, PtType.SWAP])]
        got = _run(prog, "ptwalk", [str(pid), "--type", "folio", "--type", "swap"])
        assert list(_parse_text(got, ps)) == want, name
        want = [_said(e) for e in pt_range_walk(mm, include_none=False, batch=False)]
        got = _run(prog, "ptwalk", [str(pid), "--no-batch", "--json"])
        assert [json.loads(x) for x in got.splitlines()] == want, name


def test_ptwalk_first_lines_before_the_walk_ends(default_vmcore):
    prog = default_vmcore.prog()
    mm = get_task_mm(find_target(prog, default_vmcore.pids["anon"]))
    entries = list(pt_range_walk(mm))
    assert len(entries) > 200

    class Out(io.StringIO):
        flushed = ""

        def flush(self):
            self.flushed = self.getvalue()

    out = Out()
    seen = []

    def walk():
        for i, e in enumerate(entries):
            if i == len(entries) - 1:
                seen.append(out.flushed)
            yield e

    write_entries(walk(), get_decoder(prog), out)
    assert len(seen[0].splitlines()) > 1, "nothing written before the last entry"


def _pagemap_file(prog, pid: int, path, *more: str) -> List[str]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _run(prog, "pagemap", [str(pid), "-o", str(path), *more])
    return [str(x.message) for x in w]


def test_pagemap_whole_task_is_the_kernels_file(vmcore, tmp_path):
    """``pagemap PID -o FILE``: at each VMA's offset, the kernel's entries; a sparse file of the kernel's
    size (or, where the file system cannot hold that, up to the last VMA, said in a warning)."""
    prog = vmcore.prog()
    ps = vmcore.page_size
    out = tmp_path / "pagemap"
    checked = 0
    big_endian = is_big_endian(prog)
    for name, pid, _task, mm in _tasks(vmcore):
        records = list(read_pagemap(vmcore.pid_dir(pid) / "pagemap.bin"))
        if not mm:
            assert not records, name
            with pytest.raises(NoMmError):
                _pagemap_file(prog, pid, out)
            continue
        warned = _pagemap_file(prog, pid, out)
        size = os.path.getsize(out)
        full = mm.task_size.value_() // ps * 8
        if size != full:
            assert any("cannot hold" in w for w in warned), f"{name}: {size:#x} bytes, not {full:#x}"
        with open(out, "rb") as f:
            for rec in records:
                if not rec.entries:
                    continue  # beyond mm->task_size (the gate VMA): the kernel's read gives nothing
                if rec.end // ps * 8 > size:
                    # Entries beyond what the file system holds (s390x's highva mappings): left out, warned.
                    assert size != full and any("left out" in w for w in warned), f"{name}: {rec.start:#x}"
                    continue
                f.seek(rec.start // ps * 8)
                got = f.read(len(rec.entries) * 8)
                # The kernel's file holds the kernel's byte order (pagemap.bin is little-endian).
                want = array("Q", rec.entries)
                if big_endian:
                    want.byteswap()
                assert got == want.tobytes(), f"{name}: VMA {rec.start:#x}-{rec.end:#x}"
                checked += len(rec.entries)
        # A range: the same bytes (the kernel's byte order too).
        rec = next(r for r in records if r.entries)
        _pagemap_file(prog, pid, out, "--start", hex(rec.start), "--end", hex(rec.end))
        want = array("Q", rec.entries)
        if big_endian:
            want.byteswap()
        assert out.read_bytes() == want.tobytes(), f"{name}: range {rec.start:#x}-{rec.end:#x}"
        _pagemap_file(prog, pid, out)
        # Sparse: the blocks on disk are about those of the VMAs, not of the address space.
        assert os.stat(out).st_blocks * 512 < size or size < 1 << 20, name
        # --records: one record per VMA, the truth's own layout (whose gate VMA, beyond mm->task_size and
        # in no VMA tree, has no entries).
        _pagemap_file(prog, pid, out, "--records")
        got = [(r.start, r.end, r.entries.tobytes()) for r in read_pagemap(out)]
        assert got == [(r.start, r.end, r.entries.tobytes()) for r in records if r.entries], f"{name}: --records"
    assert checked


def test_pagemap_table_is_the_nonzero_entries(vmcore):
    prog = vmcore.prog()
    ps = vmcore.page_size
    for name in _some(vmcore, ("anon", "swap")):
        pid = vmcore.pids[name]
        want = {}
        for rec in read_pagemap(vmcore.pid_dir(pid) / "pagemap.bin"):
            for i, v in enumerate(rec.entries):
                if v:
                    want[rec.start + i * ps] = v
        text = _run(prog, "pagemap", [str(pid), "--table"])
        lines = text.splitlines()
        assert lines[0].split() == ["address", "entry", "frame", "bits"]
        got = {int(a, 16): int(v, 16) for a, v, *_ in (x.split() for x in lines[1:])}
        assert got == want, name
