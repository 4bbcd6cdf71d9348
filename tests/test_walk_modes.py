# SPDX-License-Identifier: LGPL-2.1-or-later
"""The walk's fast paths against the plain ones, on the reference dumps.

* ``pt_range_walk(split_folios=False)``, each run cut with ``folio_runs()``, gives exactly the entries of
  the default walk (cut by folio as ``folio_pte_batch()``).
* ``smaps_totals()`` (memtop: no per-VMA records) gives the counters ``smaps_gather()`` sums for
  smaps_rollup.
"""

from typing import List, Tuple

from drgn.helpers.linux.pid import find_task

from drgn_ptwalk.entry import PtEntry, PtLevel, PtType
from drgn_ptwalk.page import folio_runs
from drgn_ptwalk.procfs.smaps import MemSizeStats, smaps_gather, smaps_totals
from drgn_ptwalk.tasks import get_task_mm
from drgn_ptwalk.walk import pt_range_walk

_SPLIT = (PtType.FOLIO, PtType.MIGRATION, PtType.DEVICE)


def _key(e: PtEntry) -> Tuple:
    return (e.type, e.level, e.start, e.end, e.pfn, e.swap_type, e.swap_offset, e.kind, e.vma, e.cont, e.reason)


def _cut(prog, e: PtEntry) -> List[Tuple]:
    """The entries the default walk makes of run *e*."""
    n = e.nr_pages
    if e.type not in _SPLIT or e.level != PtLevel.PTE or n == 1:
        return [_key(e)]
    out = []
    pfn, off, a = e.pfn, e.swap_offset, e.start
    ps = e.size // n
    for r in folio_runs(prog, e.pfn, n):
        out.append(_key(e._replace(start=a, end=a + r * ps, pfn=pfn, swap_offset=off)))
        a += r * ps
        pfn += r
        if off is not None:
            off += r
    return out


def _tasks(vmcore):
    prog = vmcore.prog()
    for name, pid in sorted(vmcore.pids.items(), key=lambda x: x[1]):
        task = find_task(prog, pid)
        if task and get_task_mm(task):
            yield name, task


def test_runs_cut_by_folio_are_the_default_walk(vmcore):
    prog = vmcore.prog()
    for name, task in _tasks(vmcore):
        mm = task.mm.read_()
        want = [_key(e) for e in pt_range_walk(mm)]
        got = [k for e in pt_range_walk(mm, split_folios=False) for k in _cut(prog, e)]
        assert got == want, f"{vmcore.name} {name}"


def test_totals_are_the_rollup_sums(vmcore):
    for name, task in _tasks(vmcore):
        mm = task.mm.read_()
        total, warnings = smaps_totals(mm)
        result = smaps_gather(mm)
        want = MemSizeStats()
        for rec in result.vmas[:-1] if result.gate else result.vmas:
            want.add(rec.stats)
        assert repr(total) == repr(want), f"{vmcore.name} {name}"
        assert warnings == result.warnings, f"{vmcore.name} {name}"
