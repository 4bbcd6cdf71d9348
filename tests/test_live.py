# SPDX-License-Identifier: LGPL-2.1-or-later
"""Live mode: a running QEMU guest opened with ``drgn --qemu`` (QMP).

One kernel per architecture is booted with the reference workload and left running; its processes are
stopped, so the kernel's captured /proc output stays the truth while drgn reads the live memory. The guest
also runs ``workload churn``, which keeps mapping, unmapping, faulting, zapping, swapping out, migrating,
splitting and forking its memory while we walk it: every walk must finish, and what it reports must be
what was there (each page churn writes starts with its own address).
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from vmcores import build as vbuild
from vmcores.livecheck import CHURN_HI, CHURN_LO, ChurnTally, first_difference, judge_churn_walk
from vmcores.truth import read_pagemap

ROOT = Path(__file__).resolve().parent.parent
LIVE_KERNELS = ["x86_64-6.12", "aarch64-6.12"]


def _live_ids():
    wanted = [w for w in os.environ.get("PTWALK_KERNELS", "").split(",") if w]
    return [k for k in LIVE_KERNELS if not wanted or k in wanted] or LIVE_KERNELS[:1]


@pytest.fixture(scope="module", params=_live_ids())
def live_guest(request):
    from drgn_ptwalk._compat import qemu_unsupported

    if qemu_unsupported():  # before booting a guest this drgn cannot open
        pytest.fail(f"the live tests open a QEMU guest over QMP: {qemu_unsupported()}", pytrace=False)
    p = subprocess.run([sys.executable, "-m", "vmcores", "live", request.param, "--detach", "--churn"],
                       capture_output=True, text=True, cwd=ROOT, timeout=float(vbuild.READY_TIMEOUT) + 300)
    if p.returncode != 0:
        pytest.fail(f"cannot boot live guest {request.param}: {p.stderr.strip()[-3000:]}", pytrace=False)
    desc = json.loads(p.stdout.strip().splitlines()[-1])
    yield desc
    try:
        os.killpg(desc["qemu_pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def live_prog(live_guest):
    from drgn_ptwalk.program import open_program

    return open_program(qemu=live_guest["qmp"], symbols=[live_guest["vmlinux"]])


def test_live_procfs_equals_kernel(live_guest, live_prog):
    from drgn_ptwalk import procfs
    from drgn_ptwalk.errors import NoMmError
    from drgn_ptwalk.procfs.pagemap import pagemap_records
    from drgn_ptwalk.tasks import find_target, get_task_mm

    truth = Path(live_guest["truth"])
    page_size = live_prog["PAGE_SIZE"].value_()
    diffs = []
    for name, pid in live_guest["pids"].items():
        if name == "kthread":
            continue
        task = find_target(live_prog, pid)
        for kind in ("maps", "smaps", "smaps_rollup", "numa_maps"):
            path = truth / str(pid) / kind
            if not path.exists():
                # The kernel refused the read (no mm of its own: ESRCH); so must we.
                assert not get_task_mm(task), f"{name}: no captured {kind} although the task has an mm"
                with pytest.raises(NoMmError):
                    getattr(procfs, kind)(task)
            else:
                want, got = path.read_text(), getattr(procfs, kind)(task)
                if got != want:
                    diffs.append(f"{name}/{kind}: {first_difference(want, got)}")
        # One walk for all VMAs (QMP reads are slow; a walk per VMA of the 3000-VMA process is not).
        mm = get_task_mm(task)
        ours = {r.start: r.entries.tobytes() for r in pagemap_records(mm)} if mm else {}
        for rec in read_pagemap(truth / str(pid) / "pagemap.bin"):
            if rec.entries and ours.get(rec.start) != rec.entries.tobytes():
                mine = ours.get(rec.start)
                at = next((i for i, e in enumerate(rec.entries) if mine is None
                           or mine[i * 8:i * 8 + 8] != e.to_bytes(8, "little")), 0)
                have = "none" if mine is None else f"{int.from_bytes(mine[at * 8:at * 8 + 8], 'little'):#x}"
                diffs.append(f"{name}/pagemap {rec.start:#x}-{rec.end:#x}: first at "
                             f"{rec.start + at * page_size:#x}, kernel {rec.entries[at]:#x}, ours {have}")
    assert not diffs, f"live {live_guest['id']}: differs from the kernel's output: {diffs[:20]}"


CHURN_SECONDS = 60
WALK_LIMIT = 60.0  # seconds one walk of churn's slots may take over QMP


def _children(prog, ppid: int):
    """PIDs of the live tasks whose parent is ppid (a bounded look at a list that keeps changing)."""
    from drgn.helpers.linux.pid import for_each_task

    pids = []
    for n, t in enumerate(for_each_task(prog)):
        if n > 10000:
            break
        try:
            if t.real_parent.pid.value_() == ppid:
                pids.append(t.pid.value_())
        except Exception:  # a task freed while the list was read: drgn's helper, not ours
            break
    return pids


def test_live_walk_under_churn(live_guest, live_prog):
    from drgn import FaultError

    from drgn_ptwalk import NoMmError, TaskNotFoundError, procfs, pt_range_walk
    from drgn_ptwalk.tasks import find_target
    from drgn_ptwalk.vmatree import PtWalkError

    prog = live_prog
    exits: Counter = Counter()
    page_size = prog["PAGE_SIZE"].value_()
    tally = ChurnTally()
    deadline = time.monotonic() + CHURN_SECONDS
    while time.monotonic() < deadline or tally.walks < 3:
        task = find_target(prog, live_guest["churn_pid"])
        assert task.mm, "the churn process has no mm (did it exit?)"
        t0 = time.monotonic()
        entries = list(pt_range_walk(task.mm, CHURN_LO, CHURN_HI))
        took = time.monotonic() - t0
        assert took < WALK_LIMIT, f"a walk of churn's slots took {took:.1f} s"
        judge_churn_walk(prog, task.mm, entries, page_size, tally)
        # smaps over the churning mm: must come out (well-formed) every time.
        text = procfs.smaps(task)
        assert text.count("\nRss:") == text.count("\nSize:") > 0
        # churn's children live for a moment (fork, write, exit): by the time we read one it may be
        # exiting or gone. Either its smaps comes out, or a typed one-line error says why not.
        for child in _children(prog, live_guest["churn_pid"]):
            try:
                procfs.smaps(find_target(prog, child))
                exits["walked"] += 1
            except (TaskNotFoundError, NoMmError, PtWalkError, FaultError) as e:
                exits[type(e).__name__] += 1
                assert "\n" not in str(e)
    print(f"live {live_guest['id']}: churn for {CHURN_SECONDS} s: {tally.summary()}; "
          f"short-lived children: {dict(exits)}")
    assert not tally.bad, "\n".join(tally.bad[:20])
    assert len(tally.shapes) > 1, "churn's page tables never changed between walks: is it running?"
    assert tally.types["FOLIO"] and tally.checked > 100, f"too little walked: {dict(tally.types)}"
