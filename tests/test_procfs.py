# SPDX-License-Identifier: LGPL-2.1-or-later
"""The judge for drgn_ptwalk.procfs: byte-identical /proc/PID/{maps,smaps,smaps_rollup,numa_maps,pagemap}.

For every reference dump and every PID the truth lists (workload scenarios and a kernel thread), each file
rebuilt from the dump must equal the bytes the guest kernel printed.  pagemap is compared per VMA record of
pagemap.bin (every entry the guest read).  A missing truth file is only accepted where the kernel itself
refuses the read (smaps_rollup of a kernel thread: ESRCH); then the API must refuse too.

At the end of the session a conformance matrix (dump × file kind → "exact" / "N lines differ") is printed.
"""

import difflib
import warnings
from array import array
from typing import Dict, List, Tuple

import pytest
from drgn.helpers.linux.pid import find_task

import drgn_ptwalk.procfs as procfs
from drgn_ptwalk._byteorder import is_big_endian
from drgn_ptwalk.errors import NoMmError, UnsupportedKernelError
from drgn_ptwalk.procfs.pagemap import pagemap_records
from drgn_ptwalk.tasks import get_task_mm
from vmcores.truth import read_pagemap

KINDS = ("maps", "smaps", "smaps_rollup", "numa_maps", "pagemap")

# (dump name, kind) -> (differing lines/entries, examples)
_MATRIX: Dict[Tuple[str, str], Tuple[int, List[str]]] = {}


class _MatrixReporter:
    """A pytest plugin registered by this module: prints the matrix in the terminal summary."""

    def pytest_terminal_summary(self, terminalreporter):
        if not _MATRIX:
            return
        dumps = sorted({d for d, _ in _MATRIX})
        w = max(len(d) for d in dumps) + 2
        terminalreporter.section("procfs conformance (dump x file kind)")
        terminalreporter.write_line("".ljust(w) + "".join(k.ljust(22) for k in KINDS))
        for d in dumps:
            cells = []
            for k in KINDS:
                if (d, k) not in _MATRIX:
                    cells.append("-".ljust(22))
                    continue
                n, _ = _MATRIX[(d, k)]
                unit = "entries" if k == "pagemap" else "lines"
                cells.append(("exact" if n == 0 else f"{n} {unit} differ").ljust(22))
            terminalreporter.write_line(d.ljust(w) + "".join(cells))


@pytest.fixture(scope="session", autouse=True)
def _conformance_matrix(request):
    reporter = _MatrixReporter()
    request.config.pluginmanager.register(reporter, "ptwalk-procfs-matrix")
    yield


def _pids(vmcore) -> List[Tuple[str, int]]:
    pids = sorted(vmcore.pids.items(), key=lambda x: x[1])
    assert pids, f"{vmcore.name}: the truth lists no PIDs"
    return pids


def _text_diff(want: bytes, got: bytes) -> Tuple[int, List[str]]:
    """Number of lines that differ (changed, missing or extra) and a few examples."""
    if want == got:
        return 0, []
    a = want.split(b"\n")
    b = got.split(b"\n")
    n = 0
    ex: List[str] = []
    if max(len(a), len(b)) > 20000:
        # The scale guest's 100,000-VMA files: difflib's alignment is quadratic there; line by line instead
        # (a missing or extra line then counts every line after it).
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                n += 1
                if len(ex) < 4:
                    ex.append(f"line {i + 1}: kernel {x!r} / ours {y!r}")
        return max(n + abs(len(a) - len(b)), 1), ex
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        n += max(i2 - i1, j2 - j1)
        if len(ex) < 4:
            ex.append(f"kernel {a[i1:i2][:2]!r} / ours {b[j1:j2][:2]!r}")
    return max(n, 1), ex


def _check_text(vmcore, task, pid: int, kind: str) -> Tuple[int, List[str]]:
    path = vmcore.pid_dir(pid) / kind
    fn = getattr(procfs, kind)
    if not path.exists():
        if f"capture {pid}/{kind} refused ENOENT" in (vmcore.truth / "steps.log").read_text().splitlines():
            # No such file in this kernel (numa_maps without CONFIG_NUMA: Debian's s390x): we say so.
            with pytest.raises(UnsupportedKernelError, match=f"^{kind}: this kernel has no "):
                fn(task)
            return 0, []
        # The kernel refused the read (no mm of its own: ESRCH); so must we.
        assert not get_task_mm(task), f"PID {pid}: no captured {kind} although the task has an mm"
        with pytest.raises(NoMmError):
            fn(task)
        return 0, []
    want = path.read_bytes()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = fn(task).encode("utf-8", "surrogateescape")
    n, ex = _text_diff(want, got)
    ex += [f"warning: {x.message}" for x in w[:2]]
    return n, ex


def _check_pagemap(vmcore, task, pid: int) -> Tuple[int, List[str]]:
    path = vmcore.pid_dir(pid) / "pagemap.bin"
    assert path.exists(), f"PID {pid}: pagemap.bin missing from the truth"
    records = list(read_pagemap(path))
    mm = get_task_mm(task)
    if not mm:
        assert not records, f"PID {pid}: pagemap captured for a task without mm"
        with pytest.raises(NoMmError):
            procfs.pagemap(task, 0, vmcore.page_size)
        return 0, []
    ours = {r.start: r for r in pagemap_records(mm)}
    ps = vmcore.page_size
    n = 0
    ex: List[str] = []
    for rec in records:
        want = rec.entries
        mine = ours.get(rec.start)
        if mine is None:
            got = array("Q", procfs.pagemap(task, rec.start, rec.start + len(want) * ps))
            if is_big_endian(task.prog_):
                got.byteswap()  # the file's bytes (big-endian on s390x) to values
        else:
            got = mine.entries[: len(want)]
        if got.tobytes() == want.tobytes():
            continue
        for i, a in enumerate(want):
            b = got[i] if i < len(got) else None
            if a != b:
                n += 1
                if len(ex) < 4:
                    ex.append(f"{rec.start + i * ps:#x}: kernel {a:#018x}, ours {b if b is None else hex(b)}")
    return n, ex


@pytest.mark.parametrize("kind", KINDS)
def test_procfs_identical(vmcore, kind):
    prog = vmcore.prog()
    total = 0
    examples: List[str] = []
    for name, pid in _pids(vmcore):
        task = find_task(prog, pid)
        assert task, f"{name}: PID {pid} is not in the dump"
        if kind == "pagemap":
            n, ex = _check_pagemap(vmcore, task, pid)
        else:
            n, ex = _check_text(vmcore, task, pid, kind)
        total += n
        examples += [f"{name} ({pid}): {x}" for x in ex[:2]]
    _MATRIX[(vmcore.name, kind)] = (total, examples)
    unit = "entries" if kind == "pagemap" else "lines"
    assert total == 0, f"{vmcore.name} {kind}: {total} {unit} differ from the kernel's:\n" + "\n".join(examples[:12])
