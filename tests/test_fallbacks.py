# SPDX-License-Identifier: LGPL-2.1-or-later
"""One VMA kind we do not know never costs the whole file.

On the default reference dump, a callback the kernel has is renamed (as if it were a driver's we have
never seen): ``vm_operations_struct::pagesize``, ``::get_policy``, ``::name`` and ``dentry_operations::
d_dname``. The file still comes out, with a ProcfsWarning naming the VMA (or dentry) and the callback,
and every line that does not depend on that callback equals what the kernel printed.
"""

import difflib
import warnings
from typing import List, Tuple

import pytest
from drgn.helpers.linux.pid import find_task

import drgn_ptwalk.procfs as procfs
import drgn_ptwalk.procfs.vma as vma_mod
from drgn_ptwalk.procfs.common import ProcfsWarning


def _renamed(monkeypatch, real: str, fake: str) -> None:
    orig = vma_mod.symbol_name

    def sym_name(prog, addr):
        name = orig(prog, addr)
        return fake if name == real else name

    monkeypatch.setattr(vma_mod, "symbol_name", sym_name)


def _run(fn, task) -> Tuple[bytes, List[str]]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn(task).encode("utf-8", "surrogateescape")
    return out, [str(x.message) for x in w if issubclass(x.category, ProcfsWarning)]


def _changed_lines(want: bytes, got: bytes) -> List[Tuple[bytes, bytes]]:
    a, b = want.split(b"\n"), got.split(b"\n")
    assert len(a) == len(b), "lines were lost or added"
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            out += list(zip(a[i1:i2], b[j1:j2]))
    return out


@pytest.mark.parametrize("kind", ["smaps", "numa_maps"])
def test_unknown_pagesize(default_vmcore, monkeypatch, kind):
    # hugetlb VMAs: an unknown pagesize callback on a hugetlbfs file gets the file's huge page size.
    v = default_vmcore
    pid = v.pids["hugetlb"]
    task = find_task(v.prog(), pid)
    _renamed(monkeypatch, "hugetlb_vm_op_pagesize", "mystery_driver_pagesize")
    got, warned = _run(getattr(procfs, kind), task)
    assert got == (v.pid_dir(pid) / kind).read_bytes()
    assert warned and all("mystery_driver_pagesize" in w and "VMA at 0x" in w for w in warned)


def test_unknown_get_policy(default_vmcore, monkeypatch):
    # shmem VMAs with a shared policy: an unknown get_policy prints vma->vm_policy; only their policy
    # field can differ, every other line and field is the kernel's.
    v = default_vmcore
    pid = v.pids["numa"]
    task = find_task(v.prog(), pid)
    _renamed(monkeypatch, "shmem_get_policy", "mystery_get_policy")
    got, warned = _run(procfs.numa_maps, task)
    want = (v.pid_dir(pid) / "numa_maps").read_bytes()
    assert warned and all("mystery_get_policy" in w for w in warned)
    for k, o in _changed_lines(want, got):
        assert k.split(b" ")[0] == o.split(b" ")[0] and k.split(b" ")[2:] == o.split(b" ")[2:], (k, o)


def test_unknown_d_dname(default_vmcore, monkeypatch):
    # memfd / shared-anonymous / SysV names come from simple_dname(); an unknown d_dname prints the
    # dentry's plain path instead: only the name of those lines differs.
    v = default_vmcore
    pid = v.pids["file"]
    task = find_task(v.prog(), pid)
    _renamed(monkeypatch, "simple_dname", "mystery_dname")
    got, warned = _run(procfs.maps, task)
    want = (v.pid_dir(pid) / "maps").read_bytes()
    changed = _changed_lines(want, got)
    assert changed and warned and all("mystery_dname" in w for w in warned)
    for k, o in changed:
        assert k[:73] == o[:73], (k, o)  # address, flags, offset, device, inode: the kernel's
        assert k.endswith(b" (deleted)"), k


def test_unknown_vma_name(default_vmcore, monkeypatch):
    # [vdso]/[vvar] come from special_mapping_name(); an unknown name callback leaves the name out.
    v = default_vmcore
    pid = v.pids["anon"]
    task = find_task(v.prog(), pid)
    _renamed(monkeypatch, "special_mapping_name", "mystery_name")
    got, warned = _run(procfs.smaps, task)
    want = (v.pid_dir(pid) / "smaps").read_bytes()
    changed = _changed_lines(want, got)
    assert changed and warned and all("mystery_name" in w for w in warned)
    for k, o in changed:
        assert k.rstrip().endswith((b"[vdso]", b"[vvar]", b"[vvar_vclock]")) and k.split()[:5] == o.split()[:5], (k, o)
