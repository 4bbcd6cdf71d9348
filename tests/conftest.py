# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures handing tests real reference vmcores, built on demand (cached) by ``vmcores``.

Tests are parametrised over the kernel matrix (vmcores/kernels.toml) and each entry's dump kinds.  A dump
that cannot be built makes its tests *fail* with the builder's message (what to install, the guest's serial
log) — never skip.  PTWALK_KERNELS=id1,id2 narrows the matrix for a quick local run.
"""

import os
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vmcores import build as vbuild  # noqa: E402
from vmcores.fetch import FetchError  # noqa: E402
from vmcores.qemu import GuestError  # noqa: E402
from vmcores.truth import pids as truth_pids  # noqa: E402


def _matrix() -> List[str]:
    wanted = [w for w in os.environ.get("PTWALK_KERNELS", "").split(",") if w]
    names = []
    for k in vbuild.manifest():
        if wanted and k["id"] not in wanted:
            continue
        if not wanted and k.get("bench"):
            continue  # benchmark dumps (python -m bench) only when named
        names += [f"{k['id']}:{kind}" for kind in k["dumps"]]
    unknown = set(wanted) - {k["id"] for k in vbuild.manifest()}
    if unknown:
        raise pytest.UsageError(f"PTWALK_KERNELS names unknown kernels: {', '.join(sorted(unknown))}")
    return names


class Vmcore:
    """One built dump: the fields of ``python -m vmcores list --json`` plus a cached drgn program."""

    def __init__(self, desc: Dict[str, Any]) -> None:
        self.__dict__.update(desc)
        self.truth = Path(desc["truth"])
        self._prog = None

    def prog(self):
        if self._prog is None:
            from drgn_ptwalk.program import open_program

            # QEMU's kdump header names no architecture; the manifest knows it.
            arch = self.arch if self.dump == "qemu-kdump" else None
            self._prog = open_program(self.core, symbols=[self.vmlinux], architecture=arch)
        return self._prog

    def pid_dir(self, pid: int) -> Path:
        return self.truth / str(pid)

    def __repr__(self) -> str:
        return f"<Vmcore {self.name}>"


_built: Dict[str, Any] = {}


def get_vmcore(name: str) -> Vmcore:
    kid, kind = name.split(":")
    if kid not in _built:
        try:
            vbuild.build(kid, log=lambda m: print(m, file=sys.stderr))
            _built[kid] = None
        except (FetchError, GuestError) as e:
            _built[kid] = f"cannot build reference vmcore {kid}: {e}"
    if _built[kid]:
        pytest.fail(_built[kid], pytrace=False)
    for d in vbuild.built():
        if d["name"] == name:
            v = _cache.setdefault(name, Vmcore(d))
            return v
    pytest.fail(f"{name} was built but is not listed by `python -m vmcores list`", pytrace=False)


_cache: Dict[str, Vmcore] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "benchmark_entry(why): a test of benchmark dumps none of which was named")


def pytest_collection_modifyitems(config, items):
    # Tests of benchmark dumps (built only when PTWALK_KERNELS names them) are deselected, not skipped, when
    # none is named: the run does not ask for them. Each reason is said once.
    keep, dropped, reasons = [], [], set()
    for item in items:
        mark = item.get_closest_marker("benchmark_entry")
        if mark is None:
            keep.append(item)
        else:
            dropped.append(item)
            reasons.add(mark.args[0])
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
        for why in sorted(reasons):
            print(f"\ndeselected: {why}", file=sys.stderr)


def pytest_generate_tests(metafunc):
    # kpage_vmcore: the same matrix; the kpage truth is judged on every guest that captures it (see the
    # fixture).
    for name in ("vmcore", "kpage_vmcore"):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, _matrix(), indirect=True, scope="session")


@pytest.fixture(scope="session")
def vmcore(request) -> Vmcore:
    return get_vmcore(request.param)


@pytest.fixture(scope="session")
def kpage_vmcore(request) -> Vmcore:
    """A dump whose guest's kpage truth is judged: every guest captures it, the real-userspace guests
    (servers, an ext4 root) included. The PFNs whose values differ between snapshot A (before the dump) and
    snapshot B (read after the dump: vmcores/qemu.py Guest.after_dump) are the unstable ones, so a slab
    page the kernel changes after the capture is known even when it changes after A was sent."""
    return get_vmcore(request.param)


@pytest.fixture(scope="session")
def workload_pids():
    return truth_pids


@pytest.fixture(scope="session")
def default_vmcore() -> Vmcore:
    """The README's reference dump (the manifest's default kernel), in its last dump kind (QEMU kdump on
    x86_64: the kind whose header names no architecture)."""
    k = vbuild.entry(vbuild.default_id())
    return get_vmcore(f"{k['id']}:{k['dumps'][-1]}")
