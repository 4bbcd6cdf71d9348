# SPDX-License-Identifier: LGPL-2.1-or-later
"""
memtop: who ate the memory? One row per process (:class:`MemtopRow`), with the accounting of its
/proc/PID/smaps_rollup (:func:`~drgn_ptwalk.procfs.smaps.smaps_totals`); a process that cannot be read
gets a row saying why, and the others go on. Printing is the ``memtop`` command's
(:mod:`drgn_ptwalk.commands.memtop`).
"""

from typing import Iterator, List, NamedTuple, Optional, TextIO

from drgn import FaultError, Object, Program
from drgn.helpers.linux.pid import for_each_task

from drgn_ptwalk.errors import ArgumentError, PtWalkError
from drgn_ptwalk.tasks import get_task_mm

__all__ = ("MemtopRow", "memtop", "rollup_row")

PSS_SHIFT = 12


class MemtopRow(NamedTuple):
    """One process; sizes in kB exactly as its smaps_rollup prints them."""

    pid: int
    comm: str
    rss_kb: int
    pss_kb: int
    anon_kb: int
    """``Pss_Anon``"""
    file_kb: int
    """``Pss_File``"""
    shmem_kb: int
    """``Pss_Shmem``"""
    swap_kb: int
    """``Swap``"""
    hugetlb_kb: int
    """``Shared_Hugetlb`` + ``Private_Hugetlb``"""
    error: Optional[str] = None
    """Why the numbers are incomplete (an unreadable page table or struct page), else ``None``."""


def rollup_row(task: Object) -> MemtopRow:
    """
    The memtop row of one task.

    :param task: ``struct task_struct *`` with an mm
    :return: its row (``error`` set if its memory cannot be read)
    """
    from drgn_ptwalk.procfs.smaps import smaps_totals

    pid = task.pid.value_()
    comm = task.comm.string_().decode(errors="replace")
    # The rollup counters only: names, THPeligible and VmFlags of each VMA
    # would cost more than the walk of a small process.
    total, warnings = smaps_totals(task.mm)
    return MemtopRow(
        pid, comm,
        total.resident >> 10,
        total.pss >> PSS_SHIFT >> 10,
        total.pss_anon >> PSS_SHIFT >> 10,
        total.pss_file >> PSS_SHIFT >> 10,
        total.pss_shmem >> PSS_SHIFT >> 10,
        total.swap >> 10,
        (total.shared_hugetlb + total.private_hugetlb) >> 10,
        "; ".join(warnings[:3]) or None,
    )


def _error_row(task: Object, e: Exception) -> MemtopRow:
    """The row of a process whose memory could not be read: what failed, and where."""
    try:
        pid = task.pid.value_()
        comm = task.comm.string_().decode(errors="replace")
    except FaultError:
        pid, comm = -1, f"task {task.value_():#x}"
    return MemtopRow(pid, comm, 0, 0, 0, 0, 0, 0, 0, f"unreadable ({type(e).__name__}): {e}")


def _processes(prog: Program) -> Iterator[Object]:
    """Thread-group leaders with an mm, one per mm (threads and vfork children share theirs)."""
    seen = set()
    for task in for_each_task(prog):
        try:
            if task.pid != task.tgid:
                continue
            mm = get_task_mm(task).value_()
        except FaultError:
            continue
        if mm and mm not in seen:
            seen.add(mm)
            yield task


def memtop(prog: Program, sort: str = "rss", progress: Optional[TextIO] = None) -> List[MemtopRow]:
    """
    Rows for every process of the program, largest first by *sort*
    (``rss``, ``pss``, ``swap``, ``anon``, ``file``, ``shmem``, ``hugetlb``).

    A process whose memory cannot be read (:class:`drgn.FaultError`, or any
    :class:`~drgn_ptwalk.errors.PtWalkError`: a corrupt VMA tree, an unreadable VMA) gets a row with
    ``error`` set saying which error; the others go on.

    :param sort: the column to sort by
    :param progress: where to draw a progress line (a terminal), if anywhere
    :return: one row per process (thread group with an mm of its own)
    :raises ArgumentError: for an unknown *sort*
    """
    key = f"{sort}_kb"
    if key not in MemtopRow._fields:
        raise ArgumentError(f"cannot sort by {sort!r}")
    tasks = list(_processes(prog))
    rows = []
    for i, task in enumerate(tasks):
        if progress is not None and len(tasks) > 50 and i % 10 == 0:
            progress.write(f"\rmemtop: {i}/{len(tasks)} processes")
            progress.flush()
        try:
            rows.append(rollup_row(task))
        except (FaultError, PtWalkError) as e:
            # Memory left out of the dump, a corrupt VMA tree, a process that exited meanwhile (live).
            rows.append(_error_row(task, e))
    if progress is not None and len(tasks) > 50:
        progress.write("\r" + " " * 40 + "\r")
    rows.sort(key=lambda r: (-getattr(r, key), r.pid))
    return rows
