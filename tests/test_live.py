"""Live mode: a running QEMU guest opened with ``drgn --qemu`` (QMP) gives what the kernel printed.

One kernel per architecture is booted with the reference workload and left running; its processes are
stopped, so the kernel's captured /proc output stays the truth while drgn reads the live memory.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vmcores import build as vbuild
from vmcores.truth import read_pagemap

ROOT = Path(__file__).resolve().parent.parent
LIVE_KERNELS = ["x86_64-6.12", "aarch64-6.12"]


def _live_ids():
    wanted = [w for w in os.environ.get("PTWALK_KERNELS", "").split(",") if w]
    return [k for k in LIVE_KERNELS if not wanted or k in wanted] or LIVE_KERNELS[:1]


@pytest.fixture(scope="module", params=_live_ids())
def live_guest(request):
    p = subprocess.run([sys.executable, "-m", "vmcores", "live", request.param, "--detach"],
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
    from drgn_ptwalk.procfs.pagemap import pagemap_records
    from drgn_ptwalk.tasks import find_target

    truth = Path(live_guest["truth"])
    diffs = []
    for name, pid in live_guest["pids"].items():
        if name == "kthread":
            continue
        task = find_target(live_prog, pid)
        for kind in ("maps", "smaps", "smaps_rollup", "numa_maps"):
            if getattr(procfs, kind)(task) != (truth / str(pid) / kind).read_text():
                diffs.append(f"{name}/{kind}")
        # One walk for all VMAs (QMP reads are slow; a walk per VMA of the 3000-VMA process is not).
        ours = {r.start: r.entries.tobytes() for r in pagemap_records(task.mm)}
        for rec in read_pagemap(truth / str(pid) / "pagemap.bin"):
            if rec.entries and ours.get(rec.start) != rec.entries.tobytes():
                diffs.append(f"{name}/pagemap {rec.start:#x}-{rec.end:#x}")
    assert not diffs, f"live {live_guest['id']}: differs from the kernel's output: {diffs[:20]}"
