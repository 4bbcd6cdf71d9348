# SPDX-License-Identifier: LGPL-2.1-or-later
"""The drgn-ptwalk CLI, the drgn shell commands and the contrib scripts, run as a user runs them."""

import json
import shutil
import subprocess
import sys

import pytest
from drgn.helpers.linux.pid import find_task

from cli_common import ROOT, cli, one_line_error
from drgn_ptwalk._compat import HAVE_COMMANDS, no_commands_message
from drgn_ptwalk.tasks import get_task_mm
from vmcores.truth import read_pagemap


def drgn_run(v, *args):
    # drgn itself must be told the architecture of QEMU's kdump files (their header names none).
    arch = ["--architecture", v.arch] if v.dump == "qemu-kdump" else []
    return subprocess.run([sys.executable, "-m", "drgn", "-q", *arch, "-c", v.core, "-s", v.vmlinux,
                           *map(str, args)], capture_output=True, cwd=ROOT)


def test_opens_kdump_without_architecture(default_vmcore):
    v = default_vmcore
    p = cli("-c", v.core, "-s", v.vmlinux, "maps", v.pids["anon"], check=0)
    assert p.stdout.decode() == (v.pid_dir(v.pids["anon"]) / "maps").read_text()


@pytest.mark.parametrize("kind", ["maps", "smaps", "smaps_rollup", "numa_maps"])
def test_text_outputs_equal_kernel(default_vmcore, kind):
    v = default_vmcore
    pid = v.pids["anon"]
    p = cli("-c", v.core, "-s", v.vmlinux, kind, pid, check=0)
    assert p.stdout == (v.pid_dir(pid) / kind).read_bytes()


def test_pagemap_to_file_equals_kernel(default_vmcore, tmp_path):
    v = default_vmcore
    pid = v.pids["thp"]
    recs = [r for r in read_pagemap(v.pid_dir(pid) / "pagemap.bin") if r.entries]
    rec = max(recs, key=lambda r: len(r.entries))
    out = tmp_path / "pm"
    cli("-c", v.core, "-s", v.vmlinux, "pagemap", pid, "--start", hex(rec.start), "--end", hex(rec.end),
        "-o", out, check=0)
    assert out.read_bytes() == rec.entries.tobytes()
    p = cli("-c", v.core, "-s", v.vmlinux, "pagemap", pid, "--start", hex(rec.start), "--end", hex(rec.end),
            "--table", check=0)
    assert p.stdout.decode().splitlines()[0].split() == ["address", "entry", "frame", "bits"]


def test_kpage_to_file_and_pipe(default_vmcore, tmp_path):
    # Written a section at a time (kpage_chunks): the same bytes as the library's, whole or a range across
    # sections.
    from drgn_ptwalk.kpage import kpage_values, max_dump_pfn

    v = default_vmcore
    prog = v.prog()
    want = kpage_values(prog, 0, max_dump_pfn(prog))
    out = tmp_path / "kpageflags"
    cli("-c", v.core, "-s", v.vmlinux, "kpage", "kpageflags", "-o", out, check=0)
    assert out.read_bytes() == want.flags.tobytes()
    a, b = 0x1234, 0x1234 + 3 * 0x8000 + 77
    p = cli("-c", v.core, "-s", v.vmlinux, "kpage", "kpagecgroup", "--start", hex(a), "--end", hex(b), check=0)
    assert p.stdout == want.cgroup[a:b].tobytes()
    p = cli("-c", v.core, "-s", v.vmlinux, "kpage", "kpagecount", "--start", hex(a), "--end", hex(b), "--table",
            check=0)
    rows = p.stdout.decode().splitlines()
    assert rows[0].split() == ["pfn", "value", "decimal"]
    assert len(rows) - 1 == sum(1 for x in want.count[a:b] if x)


def test_ptwalk_json(default_vmcore):
    v = default_vmcore
    p = cli("-c", v.core, "-s", v.vmlinux, "ptwalk", v.pids["swap"], "--json", "--holes", check=0)
    entries = [json.loads(x) for x in p.stdout.decode().splitlines()]  # JSON Lines
    assert entries, "no entries"
    keys = {"type", "level", "cont", "start", "end", "pfn", "swap_type", "swap_offset", "flags"}
    types = {"none", "folio", "marker", "pfn", "swap", "migration", "device", "hwpoison", "error"}
    prev_end = None
    for e in entries:
        assert keys <= e.keys()
        assert e["type"] in types and e["level"] in ("pte", "pmd", "pud", "p4d")
        assert e["start"] < e["end"] and (prev_end is None or e["start"] >= prev_end)
        assert all(f == f.lower() for f in e["flags"])
        prev_end = e["end"]
    assert any(e["type"] == "swap" and e["swap_type"] is not None for e in entries)
    p = cli("-c", v.core, "-s", v.vmlinux, "ptwalk", v.pids["swap"], "--type", "swap", check=0)
    rows = p.stdout.decode().splitlines()
    assert rows[0].split()[:2] == ["type", "level"] and len(rows) > 1
    assert all(r.split()[0] == "swap" for r in rows[1:])


def test_memtop(default_vmcore):
    v = default_vmcore
    p = cli("-c", v.core, "-s", v.vmlinux, "memtop", "--limit", "0", "--json", check=0)
    rows = {r["pid"]: r for r in json.loads(p.stdout)}
    prog = v.prog()
    for name, pid in v.pids.items():
        task = find_task(prog, pid)
        if not get_task_mm(task) or task.pid != task.tgid:
            # memtop: one row per process with an mm (not a thread, a kernel thread or a zombie)
            assert pid not in rows, f"{name}: memtop lists PID {pid}"
            continue
        rollup = {}
        for line in (v.pid_dir(pid) / "smaps_rollup").read_text().splitlines()[1:]:
            key, val = line.split(":")
            rollup[key] = int(val.split()[0])
        r = rows[pid]
        assert (r["rss_kb"], r["pss_kb"], r["swap_kb"]) == (rollup["Rss"], rollup["Pss"], rollup["Swap"]), name
    p = cli("-c", v.core, "-s", v.vmlinux, "memtop", "--sort", "swap", "--limit", "5", check=0)
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 6 and "PID" in lines[0].upper()


# Bad input: one line on stderr, exit status 2, no traceback (without a dump: tests/unit/test_cli_errors.py).
def test_error_no_debug_info(default_vmcore):
    v = default_vmcore
    one_line_error(cli("-c", v.core, "maps", v.pids["anon"]), "debug info")


def test_error_mismatched_vmlinux(default_vmcore):
    import vmcores.build as vb

    v = default_vmcore
    others = [d for d in vb.built() if d["arch"] == v.arch and d["release"] != v.release]
    if not others:
        pytest.fail("need a second built kernel of the same arch for this test: python -m vmcores build")
    one_line_error(cli("-c", v.core, "-s", others[0]["vmlinux"], "maps", v.pids["anon"]), "debug info")


def test_error_truncated_dump(default_vmcore, tmp_path):
    v = default_vmcore
    t = tmp_path / "truncated"
    with open(v.core, "rb") as src, open(t, "wb") as dst:
        dst.write(src.read(1 << 20))
    one_line_error(cli("-c", t, "-s", v.vmlinux, "maps", v.pids["anon"]))


def test_error_pid_not_found(default_vmcore):
    v = default_vmcore
    one_line_error(cli("-c", v.core, "-s", v.vmlinux, "smaps", 99999), "99999")


def test_error_kernel_thread(default_vmcore):
    # smaps_rollup of a task without an mm fails in the kernel (ESRCH): one line, exit 2.
    v = default_vmcore
    one_line_error(cli("-c", v.core, "-s", v.vmlinux, "smaps_rollup", v.pids["kthread"]), "no mm")


@pytest.mark.parametrize("kind", ["maps", "smaps", "numa_maps"])
@pytest.mark.parametrize("who", ["kthread", "zombie"])
def test_no_mm_prints_the_empty_file(default_vmcore, kind, who):
    # The kernel prints an empty maps/smaps/numa_maps for a task without an mm of its own: so does the
    # CLI, exit 0, and it says why on stderr.
    v = default_vmcore
    p = cli("-c", v.core, "-s", v.vmlinux, kind, v.pids[who], check=0)
    err = p.stderr.decode().strip()
    assert p.returncode == 0 and p.stdout == (v.pid_dir(v.pids[who]) / kind).read_bytes() == b"", err
    assert len(err.splitlines()) == 1 and "no mm" in err and kind in err, err


def test_root_task_is_the_container_view(default_vmcore):
    # --root task: paths relative to the container's own root. The kernel printed them relative to the
    # host's (PID 1's) root: the two differ exactly by where the container's root is, seen from the host.
    from drgn_ptwalk.procfs.vma import d_path_kernel, default_root, task_root

    v = default_vmcore
    pid = v.pids["container"]
    task = find_task(v.prog(), pid)
    prefix = d_path_kernel(task_root(task), default_root(v.prog())).rstrip(b"/")
    p = cli("-c", v.core, "-s", v.vmlinux, "maps", pid, "--root", "task", check=0)
    want = (v.pid_dir(pid) / "maps").read_bytes().splitlines()
    got = p.stdout.splitlines()
    assert p.returncode == 0 and len(got) == len(want)
    moved = 0
    for w, g in zip(want, got):
        # Files under the container's root lose the prefix; the others (the workload binary, on the
        # host's rootfs, out of the container's reach) read the same from either root.
        assert w == g or (w[:73] == g[:73] and w[73:] == prefix + g[73:]), (w, g)
        moved += w != g
    assert moved >= (4 if prefix else 0), f"container root {prefix!r}: {moved} paths moved"


@pytest.mark.parametrize("args", [["--start", "0x1001", "--end", "0x2000"], ["--start", "0x2000", "--end", "0x1000"],
                                  ["--start", "0x1000", "--end", hex(1 << 64)]])
def test_error_bad_range(default_vmcore, args):
    v = default_vmcore
    one_line_error(cli("-c", v.core, "-s", v.vmlinux, "ptwalk", v.pids["anon"], *args))


def test_error_unknown_name(default_vmcore):
    v = default_vmcore
    one_line_error(cli("-c", v.core, "-s", v.vmlinux, "maps", "no-such-process"), "no-such-process")


# The drgn shell commands, from the installed plugin (drgn 0.0.33 and newer: drgn.commands).
def test_drgn_commands(default_vmcore):
    if not HAVE_COMMANDS:
        return _drgn_without_commands(default_vmcore)
    v = default_vmcore
    pid = v.pids["anon"]
    code = (
        "from drgn.commands import run_command\n"
        f"run_command(prog, 'smaps {pid}')\n"
        "run_command(prog, 'ptwalk anon --type folio')\n"
        "run_command(prog, 'memtop --limit 3')\n"
    )
    p = drgn_run(v, "-e", code)
    assert p.returncode == 0, p.stderr.decode()
    assert b"drgn-ptwalk" not in p.stderr, p.stderr.decode()
    out = p.stdout.decode()
    smaps = (v.pid_dir(pid) / "smaps").read_text()
    assert out.startswith(smaps)
    rest = out[len(smaps):].splitlines()
    assert rest[0].split()[:2] == ["type", "level"]


# A drgn without commands (0.0.31, Debian trixie's): drgn's shell loads the plugin without a traceback, says
# once which commands it cannot have, and the Python API it points to works in that shell.
def _drgn_without_commands(v):
    pid = v.pids["anon"]
    code = "from drgn_ptwalk import smaps, find_target\n" f"print(smaps(find_target(prog, {pid})), end='')\n"
    p = drgn_run(v, "--log-level", "warning", "-e", code)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert "Traceback" not in err and "failed to load" not in err, err
    said = [line for line in err.splitlines() if "drgn-ptwalk" in line]
    assert said == ["warning: " + no_commands_message()], err
    assert "%smaps" in said[0] and "drgn 0.0.33" in said[0]
    assert p.stdout == (v.pid_dir(pid) / "smaps").read_bytes()


# contrib/ scripts, as documented: drgn -c VMCORE -s VMLINUX contrib/NAME.py ARGS
def test_contrib_smaps(default_vmcore):
    v = default_vmcore
    pid = v.pids["file"]
    p = drgn_run(v, ROOT / "contrib/smaps.py", pid)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == (v.pid_dir(pid) / "smaps").read_bytes()


def test_contrib_pagemap(default_vmcore, tmp_path):
    v = default_vmcore
    pid = v.pids["anon"]
    out = tmp_path / "pagemap.bin"
    p = drgn_run(v, ROOT / "contrib/pagemap.py", pid, "--records", "-o", out)
    assert p.returncode == 0, p.stderr.decode()
    want = [(r.start, r.end, r.entries.tobytes()) for r in read_pagemap(v.pid_dir(pid) / "pagemap.bin")]
    got = [(r.start, r.end, r.entries.tobytes()) for r in read_pagemap(out)]
    assert got == want


def test_contrib_memtop(default_vmcore):
    v = default_vmcore
    p = drgn_run(v, ROOT / "contrib/memtop.py", "--limit", "50")
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    for name in ("anon", "swap", "hugetlb"):
        assert name in out


def test_console_script_installed():
    exe = shutil.which("drgn-ptwalk")
    assert exe, "drgn-ptwalk not on PATH: pip install -e ."
    p = subprocess.run([exe, "--help"], capture_output=True)
    assert p.returncode == 0 and b"memtop" in p.stdout


def test_task_by_address_and_name(default_vmcore):
    from drgn.helpers.linux.pid import find_task

    v = default_vmcore
    pid = v.pids["numa"]
    addr = find_task(v.prog(), pid).value_()
    want = (v.pid_dir(pid) / "maps").read_bytes()
    assert cli("-c", v.core, "-s", v.vmlinux, "maps", hex(addr), check=0).stdout == want
    assert cli("-c", v.core, "-s", v.vmlinux, "maps", "numa", check=0).stdout == want
