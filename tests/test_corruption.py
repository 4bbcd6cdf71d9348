# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fault injection: corrupted page tables, mm fields and VMA trees over real reference dumps
(tests/faultinject.py).

At least 10,000 cases per run, split over the dumps below (PTWALK_FAULT_CASES overrides the total,
PTWALK_FAULT_SEED the seed): no crash, no hang (5 s per case), output invariants kept, every corruption
that must be reported is reported with its level and address range.  The summary is printed, put in the
assertion message and written to <cache>/faultinject/summary.txt.  Replay one case with
``python tests/faultinject.py -c CORE -s VMLINUX --pids ... --seed S --case N``.
"""

import math
import os
from pathlib import Path

import pytest

from conftest import get_vmcore
from faultinject import FaultInjector, open_dump

DUMPS = ["x86_64-6.12:elf", "aarch64-6.12:elf"]
TOTAL = int(os.environ.get("PTWALK_FAULT_CASES", "10000"))
SEED = int(os.environ.get("PTWALK_FAULT_SEED", "1"))


def _dumps():
    wanted = [w for w in os.environ.get("PTWALK_KERNELS", "").split(",") if w]
    picked = [d for d in DUMPS if not wanted or d.split(":")[0] in wanted]
    return picked or DUMPS


def _summary_file() -> Path:
    cache = Path(os.environ.get("DRGN_PTWALK_CACHE", Path.home() / ".cache" / "drgn-ptwalk"))
    d = cache / "faultinject"
    d.mkdir(parents=True, exist_ok=True)
    return d / "summary.txt"


_lines = {}


@pytest.mark.parametrize("name", _dumps())
def test_fault_injection(name):
    v = get_vmcore(name)
    n = math.ceil(TOTAL / len(_dumps()))
    prog = open_dump(v.core, v.vmlinux, v.arch if v.dump == "qemu-kdump" else None)
    pids = [pid for scen, pid in v.pids.items() if scen not in ("kthread", "manyvmas")]
    fi = FaultInjector(prog, pids, seed=SEED, name=name)
    s = fi.run(n)
    report = s.report()
    replay = (f"replay: python tests/faultinject.py -c {v.core} -s {v.vmlinux} "
              f"--pids {','.join(map(str, pids))} --seed {SEED} --case N")
    print(report)
    _lines[name] = (s.line(), report + "\n" + replay)
    total = sum(int(line.split("cases=")[1].split()[0]) for line, _ in _lines.values())
    _summary_file().write_text(
        f"fault injection: {total} cases over {len(_lines)} dump(s)\n"
        + "\n".join(_lines[k][0] for k in sorted(_lines)) + "\n\n"
        + "\n\n".join(_lines[k][1] for k in sorted(_lines)) + "\n"
    )
    assert s.cases >= n
    bad = s.cases - s.counts["ok"]
    assert bad == 0, f"{report}\n{replay}"


class _SummaryReporter:
    """Prints the fault-injection summary lines in pytest's terminal summary, pass or fail."""

    def pytest_terminal_summary(self, terminalreporter):
        if not _lines:
            return
        terminalreporter.section("fault injection")
        total = sum(int(line.split("cases=")[1].split()[0]) for line, _ in _lines.values())
        terminalreporter.write_line(f"{total} cases over {len(_lines)} dump(s)")
        for k in sorted(_lines):
            terminalreporter.write_line(_lines[k][0])


@pytest.fixture(scope="session", autouse=True)
def _fault_injection_summary(request):
    request.config.pluginmanager.register(_SummaryReporter(), "ptwalk-fault-injection-summary")
    yield
