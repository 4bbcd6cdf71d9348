# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn_ptwalk._compat on the reference dumps: the arm64 swapper_pg_dir shim (the branches that need no dump
are tested in tests/unit/test_compat.py)."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT, _matrix, get_vmcore

_ARM64_READ = """
import sys, drgn
from drgn.helpers.linux.pid import find_task
from drgn_ptwalk._compat import map_arm64_swapper_pg_dir
core, vmlinux, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
prog = drgn.Program()
prog.set_core_dump(core)
try:
    before = prog.read(int(dict(l.split("=", 1) for l in prog["VMCOREINFO"].string_().decode().splitlines()
                                if "=" in l)["SYMBOL(swapper_pg_dir)"], 16), 8) and "ok"
except drgn.FaultError as e:
    before = "fault"
mapped = map_arm64_swapper_pg_dir(prog)
prog.load_debug_info([vmlinux])
print(before, mapped, prog["init_uts_ns"].name.release.string_().decode(), find_task(prog, pid).comm.string_().decode())
"""


@pytest.mark.parametrize("name", [n for n in _matrix() if n.startswith("aarch64") and n.endswith(":elf")])
def test_arm64_swapper_pg_dir(name):
    """QEMU's arm64 ELF dumps have physical addresses only: drgn reads the kernel through swapper_pg_dir, and
    drgn < 0.1.0 cannot read swapper_pg_dir itself. With plugins off (drgn as a bare library), the shim maps
    it exactly when drgn cannot read it, and then the kernel reads as drgn 0.1.0 reads it."""
    v = get_vmcore(name)
    env = dict(os.environ, DRGN_DISABLE_PLUGINS="*")
    pid = v.pids["anon"] if "anon" in v.pids else min(p for n, p in v.pids.items() if n != "kthread")
    want_comm = next(line.split(None, 1)[1].strip() for line in (v.pid_dir(pid) / "status").read_text().splitlines()
                     if line.startswith("Name:"))
    p = subprocess.run([sys.executable, "-c", _ARM64_READ, v.core, v.vmlinux, str(pid)],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    before, mapped, release, comm = p.stdout.rstrip("\n").split(" ", 3)
    assert (before, mapped) in (("fault", "True"), ("ok", "False")), p.stdout
    assert release == v.release and comm == want_comm
