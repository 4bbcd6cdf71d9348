# SPDX-License-Identifier: LGPL-2.1-or-later
"""gcore judged by clients this project did not write: Debian's gdb (``gdb`` for x86_64 cores,
``gdb-multiarch`` for the others) and binutils' ``readelf``, on a core of the procmem process of every
reference guest (vmcores/procmem.c), opened with the workload binary the build keeps (meta.json
``workload``, with its debug info).

The truth is what the workload recorded in the guest (truth/<pid>/procmem.json): its threads, the one stopped
in ``procmem_stopped(a, b, c)`` with known values in the registers its system call entry saved, the address of
the global ``procmem_global`` and the patterns of its pages (vmcores/truth.py ``procmem_expected``).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from drgn.helpers.linux.pid import find_task

from conftest import get_vmcore
from drgn_ptwalk.gcore import gcore
from procmem_common import Procmem, procmem_dumps, procmem_of, reader_prog, swap_entry
from vmcores.truth import procmem_expected, procmem_region_expected

DUMPS = procmem_dumps()
# The notes a core of the procmem process holds, by architecture (drgn's name), beyond NT_PRSTATUS per thread.
NOTES = {
    "x86_64": ("NT_PRPSINFO", "NT_AUXV", "NT_FILE", "NT_FPREGSET", "NT_X86_XSTATE"),
    "aarch64": ("NT_PRPSINFO", "NT_AUXV", "NT_FILE", "NT_FPREGSET"),
    "ppc64": ("NT_PRPSINFO", "NT_AUXV", "NT_FILE"),
    "s390x": ("NT_PRPSINFO", "NT_AUXV", "NT_FILE"),
    "loongarch64": ("NT_PRPSINFO", "NT_AUXV", "NT_FILE", "NT_FPREGSET"),
}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: apt-get install {package} (or run ./setup.sh)", pytrace=False)
    return path


def _sid_gdb() -> Tuple[List[str], Dict[str, str]]:
    """(argv, environment) of the sid tree's gdb-multiarch (vmcores.fetch.sid_root()), run with the tree's
    loader, libraries, Python and data directory: Debian 12's GDB 13 finds no registers in a LoongArch core
    ("Couldn't find general-purpose registers in core file"), sid's GDB 18 does."""
    from vmcores.fetch import FetchError, sid_root

    try:
        root = sid_root()
    except FetchError as e:
        pytest.fail(f"no sid tree for LoongArch's gdb: {e}", pytrace=False)
    libs = ":".join(str(root / d / "x86_64-linux-gnu") for d in ("lib", "usr/lib"))
    argv = [str(root / "lib64/ld-linux-x86-64.so.2"), "--library-path", libs, str(root / "usr/bin/gdb-multiarch"),
            "--data-directory", str(root / "usr/share/gdb")]
    return argv, dict(os.environ, PYTHONHOME=str(root / "usr"))


def _gdb(arch: str) -> Tuple[List[str], Optional[Dict[str, str]]]:
    if arch == "loongarch64":
        return _sid_gdb()
    return [_tool("gdb", "gdb") if arch == "x86_64" else _tool("gdb-multiarch", "gdb-multiarch")], None


class Core:
    """A core of the procmem process of one dump (with the swap disk's image), and gdb's view of it."""

    def __init__(self, v, tmp: Path) -> None:
        self.pm: Procmem = procmem_of(v)
        prog = reader_prog(v)
        task = find_task(prog, self.pm.pid)
        assert task, f"{v.name}: no task {self.pm.pid} (procmem) in the dump"
        self.path = tmp / f"procmem-{v.name.replace(':', '-')}.core"
        self.result = gcore(task, self.path, swap_images=self.pm.swap_images())
        assert self.path.is_file(), f"gcore wrote no {self.path}"
        self.stopped = next(t for t in self.pm.truth.threads if t["role"] == "stopped")
        self.regs = list(self.stopped["registers"])
        zr = [r for r in self.pm.truth.regions if r.label == "pm_zram0_incomp"]
        self.zram_region = zr[0] if zr else None
        g = self.pm.truth.glob
        cmds = [
            "set pagination off", "set width 0", "set confirm off", "set print thread-events off",
            "set print repeats unlimited", "set print elements unlimited",
            f"file {self.pm.workload}", f"core-file {self.path}",
            "echo =====THREADS=====\\n", "info threads",
            "echo =====BT=====\\n", "thread apply all bt",
            "echo =====REGS=====\\n", f"thread apply all info registers {' '.join(self.regs)}",
            "echo =====SP=====\\n", "thread apply all p/x $sp",
            "echo =====GLOBAL=====\\n", f"p/x {g['symbol']}",
            "echo =====GLOBALADDR=====\\n", f"p/x &{g['symbol']}",
        ]
        if self.zram_region is not None:
            cmds += ["echo =====ZRAM=====\\n", f"x/4gx {self.zram_region.start:#x}"]
        cmds.append("echo =====END=====\\n")
        gdb, env = _gdb(v.arch)
        argv = [*gdb, "-nx", "-batch"] + [x for c in cmds for x in ("-ex", c)]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
        self.gdb_out = p.stdout
        self.gdb_err = p.stderr
        self.sections: Dict[str, str] = {}
        parts = re.split(r"^=====(\w+)=====$", p.stdout, flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2]):
            self.sections[name] = body
        assert "END" in self.sections, f"gdb did not get through its commands:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"

    def missing_at(self, addr: int) -> Optional[str]:
        """The fate gcore gave the page at addr if it left it out of the core (a hole), else None."""
        for m in self.result.missing:
            if m.start <= addr < m.end:
                return m.fate
        return None

    def filtered(self, addr: int, what: str) -> bool:
        """Whether the page at addr is a hole because the dump does not hold it: then only makedumpfile's
        filtering of user pages may be the reason, and gdb must read the hole as zeros (nothing invented)."""
        fate = self.missing_at(addr)
        if fate is None:
            return False
        v = self.pm.v
        assert fate == "EXCLUDED" and v.dump == "makedumpfile" and v.dump_level & 8, (
            f"{v.name}: {what} at {addr:#x} left out of the core as {fate}")
        return True

    def per_thread(self, section: str) -> Dict[int, str]:
        """The output of a ``thread apply all`` section by LWP."""
        out: Dict[int, str] = {}
        # "Thread 2 (LWP 374):", or "Thread 2 (Thread 0x7f... (LWP 374)):" where gdb found the thread pointer
        parts = re.split(r"^Thread \d+ \(.*\bLWP (\d+)\b.*$", self.sections[section], flags=re.M)
        for lwp, body in zip(parts[1::2], parts[2::2]):
            out[int(lwp)] = body
        return out


_cores: Dict[str, Core] = {}


@pytest.fixture(params=DUMPS, scope="module")
def core(request, tmp_path_factory) -> Core:
    if request.param not in _cores:
        _cores[request.param] = Core(get_vmcore(request.param), tmp_path_factory.mktemp("gcore"))
    return _cores[request.param]


def test_gdb_lists_every_thread(core):
    want = {t["tid"] for t in core.pm.truth.threads}
    got = {int(x) for x in re.findall(r"\bLWP (\d+)\b", core.sections["THREADS"])}
    assert got == want, f"gdb's info threads: {core.sections['THREADS']}\n{core.gdb_err[-2000:]}"
    assert core.result.threads == len(want)


def test_gdb_backtrace_of_the_stopped_thread(core):
    bt = core.per_thread("BT").get(core.stopped["tid"])
    assert bt is not None, f"no backtrace for LWP {core.stopped['tid']}:\n{core.sections['BT']}"
    m = re.search(r"\bprocmem_stopped \(a=(-?\w+), b=(-?\w+), c=(-?\w+)\)", bt)
    assert m, f"procmem_stopped with its arguments not in the backtrace:\n{bt}"
    got = [int(x, 0) for x in m.groups()]
    want = [int(core.stopped["args"][k], 16) for k in ("a", "b", "c")]
    sp = int(re.search(r"= (0x[0-9a-f]+)", core.per_thread("SP")[core.stopped["tid"]]).group(1), 16)
    stack_filtered = core.filtered(sp, "the stopped thread's stack")
    if stack_filtered:
        # -d 31: its stack page (the unoptimised function's arguments, the return address) is not in the dump
        want = [0, 0, 0]
    assert got == want, f"arguments {got}, the workload passed {want}:\n{bt}"
    if not stack_filtered:
        assert "pm_thread_stopped" in bt, f"the caller of procmem_stopped is not in the backtrace:\n{bt}"


def test_gdb_registers_of_the_stopped_thread(core):
    regs = core.per_thread("REGS").get(core.stopped["tid"])
    assert regs is not None, f"no registers for LWP {core.stopped['tid']}:\n{core.sections['REGS']}"
    got = {m.group(1): int(m.group(2), 16) for m in re.finditer(r"^(\w+)\s+(0x[0-9a-f]+)", regs, re.M)}
    want = {k: int(v, 16) for k, v in core.stopped["registers"].items()}
    assert want, "the workload recorded no registers for this architecture"
    assert {k: got.get(k) for k in want} == want, f"gdb's info registers:\n{regs}"


def test_gdb_prints_the_global(core):
    g = core.pm.truth.glob
    addr = int(re.search(r"0x[0-9a-f]+", core.sections["GLOBALADDR"]).group(0), 16)
    assert addr == int(g["address"], 16), core.sections["GLOBALADDR"]
    vals = [int(x, 16) for x in re.findall(r"0x[0-9a-f]+", core.sections["GLOBAL"].split("=", 1)[1])]
    bo = core.pm.truth.byteorder
    want = procmem_expected(int(g["seed"], 16), g["kind"], addr, g["size"], core.pm.page_size, bo)
    if core.filtered(addr, g["symbol"]):
        want = bytes(len(want))
    assert b"".join(v.to_bytes(8, bo) for v in vals) == want, core.sections["GLOBAL"]


def test_gdb_reads_a_zram_page(core):
    r = core.zram_region
    assert r is not None, "no pm_zram0_incomp region in the procmem truth"
    e = core.pm.pagemap.get(r.start, 0)
    assert core.pm.swapped(e) and swap_entry(e)[0] in core.pm.zram_types(), f"{r.start:#x} not in zram: {e:#x}"
    words = [int(x, 16) for line in core.sections["ZRAM"].splitlines() if re.match(r"0x[0-9a-f]+( <[^>]*>)?:", line)
             for x in line.split(":", 1)[1].split()]
    bo = core.pm.truth.byteorder
    want = procmem_region_expected(r, r.start, 32, core.pm.page_size, bo)
    assert b"".join(w.to_bytes(8, bo) for w in words) == want, core.sections["ZRAM"]


def test_readelf_lists_the_notes(core):
    readelf = _tool("readelf", "binutils")
    p = subprocess.run([readelf, "-n", "--wide", str(core.path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    notes: List[str] = re.findall(r"\b(NT_\w+)\b", p.stdout)
    assert notes.count("NT_PRSTATUS") == len(core.pm.truth.threads), p.stdout
    missing = [n for n in NOTES[core.pm.v.arch] if n not in notes]
    assert not missing, f"readelf -n lists no {missing}:\n{p.stdout}"
