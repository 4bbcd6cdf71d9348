# SPDX-License-Identifier: LGPL-2.1-or-later
"""Range work costs the range, on the reference dumps: a query of ``[start, end)`` reads only the maple nodes
whose range meets it (one per level for one VMA of the ~3000-VMA ``manyvmas`` process), and gives what the
whole-tree path gives for that range: the same VMAs, segments and walk, and pagemap bytes equal to the slice of
the whole task's pagemap and to the kernel's own (``pagemap.bin``)."""

import random
from array import array
from typing import Dict, List, Tuple

import pytest
from drgn.helpers.linux.pid import find_task

from drgn_ptwalk import vmatree
from drgn_ptwalk._byteorder import is_big_endian
from drgn_ptwalk.procfs.pagemap import pagemap, pagemap_entries, pagemap_pieces, pagemap_records
from drgn_ptwalk.walk import mm_segments, pt_range_walk
from vmcores.truth import read_pagemap


class _Counter:
    """Counts the maple nodes and VMAs the tree reader reads (wraps vmatree's two read functions)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.nodes = 0
        self.vmas = 0
        self.depth = 0
        node, vma = vmatree._node, vmatree._vma_range

        def count_node(read, lay, enc, max_, depth):  # type: ignore[no-untyped-def]
            self.nodes += 1
            self.depth = max(self.depth, depth)
            return node(read, lay, enc, max_, depth)

        def count_vma(read, vlay, addr):  # type: ignore[no-untyped-def]
            self.vmas += 1
            return vma(read, vlay, addr)

        monkeypatch.setattr(vmatree, "_node", count_node)
        monkeypatch.setattr(vmatree, "_vma_range", count_vma)

    def reset(self) -> None:
        self.nodes = self.vmas = 0


def _manyvmas(vmcore):  # type: ignore[no-untyped-def]
    """The workload's ``manyvmas`` process; on a dump of real servers (another scenario set, no such name) the
    process with the most VMAs (its captured maps)."""
    if vmcore.scenario == "default":
        pid = vmcore.pids.get("manyvmas")
        assert pid is not None, f"{vmcore.name}: the truth lists no manyvmas process"
    else:
        def nvmas(p: int) -> int:
            maps = vmcore.pid_dir(p) / "maps"
            return len(maps.read_text().splitlines()) if maps.is_file() else 0

        pid = max((p for n, p in vmcore.pids.items() if n != "kthread"), key=nvmas)
    task = find_task(vmcore.prog(), pid)
    return pid, task, task.mm.read_()


def test_range_reads_only_its_nodes(vmcore, monkeypatch):
    _, task, mm = _manyvmas(vmcore)
    c = _Counter(monkeypatch)
    whole = [(v.value_(), vs, ve) for v, vs, ve in vmatree.checked_vma_ranges(mm)]
    height = c.depth + 1
    # A tree big enough that reading it whole costs many times one path down it (manyvmas: ~3000 VMAs; the
    # largest real server: ~200).
    least = 2500 if vmcore.scenario == "default" else 150
    assert len(whole) > least and c.nodes > 4 * height, (len(whole), c.nodes, height)
    assert c.vmas == len(whole)
    rng = random.Random(0)
    for addr, vs, ve in rng.sample(whole, 40):
        c.reset()
        assert [(v.value_(), a, b) for v, a, b in vmatree.checked_vma_ranges(mm, start=vs, end=ve)] == [
            (addr, vs, ve)]
        assert c.nodes == height and c.vmas == 1, (hex(vs), c.nodes, c.vmas, height)
        for what, call in (
            ("pt_range_walk", lambda vs=vs, ve=ve: list(pt_range_walk(mm, vs, ve))),
            ("mm_segments", lambda vs=vs, ve=ve: mm_segments(mm, vs, ve)),
            ("pagemap_pieces", lambda vs=vs, ve=ve: list(pagemap_pieces(mm, vs, ve))),
            ("pagemap", lambda vs=vs, ve=ve: pagemap(task, vs, ve)),
        ):
            c.reset()
            call()
            assert c.nodes <= height and c.vmas <= 1, (what, hex(vs), c.nodes, c.vmas, height)


def _random_ranges(whole: List[Tuple[int, int, int]], ps: int, n: int, seed: int) -> List[Tuple[int, int]]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        _, vs, ve = rng.choice(whole)
        kind = k % 4
        if kind == 0:  # one VMA (a large one's first 4096 pages, or its last)
            a, b = vs, min(ve, vs + (1 << 12) * ps)
            if b < ve and k % 8 == 4:
                a, b = ve - (1 << 12) * ps, ve
        elif kind == 1:  # from inside one VMA to inside a later one
            a = rng.randrange(vs, ve, ps)
            b = a + rng.randrange(1, 40) * ps
        elif kind == 2:  # starting in the hole before a VMA
            a = max(0, vs - rng.randrange(1, 64) * ps)
            b = vs + rng.randrange(1, 8) * ps
        else:  # anywhere up to past the last VMA, up to 2047 pages
            a = rng.randrange(0, whole[-1][2] + (1 << 24), ps) if rng.random() < 0.3 else vs
            b = a + rng.randrange(1, 2048) * ps
        out.append((a, b))
    # The holes: below the first VMA, above the last, and the largest between two VMAs (its two ends).
    out += [(0, min(whole[0][1], ps << 12)), (whole[0][1] - ps, whole[0][1] + ps),
            (whole[-1][2], whole[-1][2] + 16 * ps)]
    big = max(range(1, len(whole)), key=lambda i: whole[i][1] - whole[i - 1][2])
    out += [(whole[big - 1][2] - ps, whole[big - 1][2] + 64 * ps), (whole[big][1] - 64 * ps, whole[big][1] + ps)]
    # Bounded: a range's pagemap is held whole (8 bytes a page).
    assert all((b - a) // ps <= 1 << 12 for a, b in out)
    return out


def _swapped(values: array) -> array:
    out = array("Q", values)
    out.byteswap()
    return out


def test_range_results_equal_whole(vmcore):
    pid, task, mm = _manyvmas(vmcore)
    ps = vmcore.page_size
    whole = list(vmatree.checked_vma_ranges(mm))
    plain = [(v.value_(), vs, ve) for v, vs, ve in whole]
    records = pagemap_records(mm)
    rec_at: Dict[int, array] = {r.start: r.entries for r in records}
    truth = {r.start: r for r in read_pagemap(vmcore.pid_dir(pid) / "pagemap.bin")}
    assert truth, f"PID {pid}: pagemap.bin has no records"

    def whole_slice(a: int, b: int) -> array:
        # pagemap of [a, b) from the records of the whole task: a VMA's values, 0 between VMAs.
        out = array("Q", bytes(8 * ((b - a) // ps)))
        for _, vs, ve in plain:
            if ve <= a or vs >= b:
                continue
            lo, hi = max(vs, a), min(ve, b)
            out[(lo - a) // ps : (hi - a) // ps] = rec_at[vs][(lo - vs) // ps : (hi - vs) // ps]
        return out

    big = is_big_endian(vmcore.prog())
    checked = 0
    for a, b in _random_ranges(plain, ps, 160, 1):
        got_vmas = [(v.value_(), vs, ve) for v, vs, ve in vmatree.checked_vma_ranges(mm, start=a, end=b)]
        assert got_vmas == [t for t in plain if t[2] > a and t[1] < b], (hex(a), hex(b))
        assert mm_segments(mm, a, b) == mm_segments(mm, a, b, whole), (hex(a), hex(b))
        assert list(pt_range_walk(mm, a, b, split_folios=False)) == list(
            pt_range_walk(mm, a, b, split_folios=False, vma_ranges=whole)), (hex(a), hex(b))
        res = pagemap_entries(mm, a, b)
        assert not res.warnings
        want = whole_slice(a, b)
        assert res.entries.tobytes() == want.tobytes(), (hex(a), hex(b))
        # pagemap() gives the file's bytes: the kernel's byte order (big-endian on s390x).
        assert pagemap(task, a, b) == (_swapped(want) if big else want).tobytes()
        # ... and the kernel's own values where the guest read them.
        for vs, rec in truth.items():
            lo, hi = max(vs, a), min(vs + len(rec.entries) * ps, b)
            if lo >= hi:
                continue
            kernel = rec.entries[(lo - vs) // ps : (hi - vs) // ps]
            assert res.entries[(lo - a) // ps : (hi - a) // ps] == kernel, (hex(a), hex(b), hex(vs))
            checked += 1
    assert checked > 100


def test_pagemap_command_open_bounds(vmcore):
    # A missing --start is the first VMA's start, a missing --end the last VMA's end (a start past every VMA:
    # the range is empty, an error).
    import argparse

    from drgn_ptwalk.commands.pagemap import run

    pid, _, mm = _manyvmas(vmcore)
    whole = [(vs, ve) for _, vs, ve in vmatree.checked_vma_ranges(mm)]
    ps = vmcore.page_size

    def bounds(start, end):  # type: ignore[no-untyped-def]
        args = argparse.Namespace(task=str(pid), start=start, end=end, records=False, table=False, raw=False)
        res = run(vmcore.prog(), args)
        return res.start, res.end

    mid = whole[len(whole) // 2]
    assert bounds(None, mid[1]) == (whole[0][0], mid[1])
    assert bounds(mid[0] + ps, None) == (mid[0] + ps, whole[-1][1])
    assert bounds(whole[0][0] - ps, None) == (whole[0][0] - ps, whole[-1][1])
    with pytest.raises(ValueError, match="not below end"):
        bounds(whole[-1][1] + ps, None)
    with pytest.raises(ValueError, match="not below end"):
        bounds(None, whole[0][0])
