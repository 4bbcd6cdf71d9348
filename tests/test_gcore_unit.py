# SPDX-License-Identifier: LGPL-2.1-or-later
"""
gcore's file layout and notes (drgn_ptwalk.gcore, drgn_ptwalk.corenotes).

On each reference dump (the note and ELF encodings without a dump: tests/unit/test_corenotes.py): the
note structures against the sizes of the vmlinux's own types (``struct elf_prstatus``, ``struct
elf_prpsinfo``, ``elf_gregset_t``), and the core of a workload process read back against what the
guest's kernel printed about it (its /proc/PID/maps and the VmFlags of smaps): one PT_LOAD per VMA in
order with its permissions, ``p_filesz`` by ``vma_dump_size()``'s rule, NT_FILE naming the file-backed
VMAs, NT_PRSTATUS and NT_PRPSINFO naming the process. (The bytes and registers are judged by
tests/test_gcore.py against the patterned memory and gdb.)
"""

import re
import struct
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from drgn import offsetof, sizeof

from drgn_ptwalk.errors import NoMmError
from drgn_ptwalk.gcore import coredump_filter, gcore, read_core

NT_PRSTATUS, NT_PRFPREG, NT_PRPSINFO, NT_AUXV, NT_FILE = 1, 2, 3, 6, 0x46494C45


# ---------------------------------------------------------------------------
# On the reference dumps


def _pid(vmcore, name: str) -> int:
    """The workload process *name*; on a dump of real servers (another scenario set, none of the workload's
    names) real single-threaded processes stand in (the tests below count one thread and the default
    coredump_filter, which the JVM changes), by number of VMAs: ``anon`` is the one with the most,
    ``vmflags`` the next."""
    from vmcores.truth import pids

    if vmcore.scenario == "default":
        return pids(vmcore.truth)[name]

    def nvmas(p: int) -> int:
        maps = vmcore.pid_dir(p) / "maps"
        return len(maps.read_text().splitlines()) if maps.is_file() else 0

    def single(p: int) -> bool:
        status = vmcore.pid_dir(p) / "status"
        return status.is_file() and "\nThreads:\t1\n" in status.read_text()

    ranked = sorted((p for n, p in pids(vmcore.truth).items() if n != "kthread" and single(p)), key=nvmas,
                    reverse=True)
    return ranked[("anon", "vmflags").index(name)]


def _task(vmcore, name: str):
    from drgn_ptwalk.tasks import find_target

    pid = _pid(vmcore, name)
    return find_target(vmcore.prog(), pid), pid


def test_note_structures_as_the_kernel_sizes_them(vmcore, tmp_path):
    prog = vmcore.prog()
    task, pid = _task(vmcore, "anon")
    res = gcore(task, tmp_path / "core")
    core = read_core(tmp_path / "core")
    prstatus = [d for n, t, d in core.notes if t == NT_PRSTATUS]
    psinfo = [d for n, t, d in core.notes if t == NT_PRPSINFO]
    assert len(psinfo) == 1
    assert len(prstatus[0]) == sizeof(prog.type("struct elf_prstatus"))
    assert len(psinfo[0]) == sizeof(prog.type("struct elf_prpsinfo"))
    pr = prog.type("struct elf_prstatus")
    reg_off = offsetof(pr, "pr_reg")
    assert reg_off == 112
    gregs = sizeof(prog.type("elf_gregset_t"))
    assert offsetof(pr, "pr_fpvalid") == reg_off + gregs
    o = core.byte_order
    assert struct.unpack_from(o + "i", prstatus[0], 32)[0] == pid  # pr_pid
    assert struct.unpack_from(o + "i", prstatus[0], reg_off + gregs)[0] == 1  # pr_fpvalid: NT_PRFPREG follows
    ps = prog.type("struct elf_prpsinfo")
    assert struct.unpack_from(o + "i", psinfo[0], offsetof(ps, "pr_pid"))[0] == pid
    fname = psinfo[0][offsetof(ps, "pr_fname"):offsetof(ps, "pr_fname") + 16].rstrip(b"\0")
    assert fname == task.comm.string_()
    args = psinfo[0][offsetof(ps, "pr_psargs"):].rstrip(b"\0")
    # The arguments are on the process's stack: a dump without user pages (makedumpfile -d 31) has
    # none, and psargs is then empty, with the reason in the errors (no bytes made up).
    if args or not any("argument area" in e for e in res.errors):
        if not (vmcore.truth / "processes.txt").is_file():
            # the workload's own guests (every scenario set; a real root file system's guest lists its
            # processes' command lines in processes.txt)
            assert args.startswith(b"/workload run"), (args, res.errors)
        else:
            # the real server's command line as the guest read it (processes.txt: PID, name, uid, arguments)
            line = next(ln for ln in (vmcore.truth / "processes.txt").read_text().splitlines()
                        if ln.split(None, 1)[0] == str(pid))
            cmdline = line.split(None, 3)[3].encode()
            assert args.rstrip(b" ") and cmdline.startswith(args.rstrip(b" ")), (args, cmdline, res.errors)


def _write(task, tmp_path: Path) -> Path:
    out = tmp_path / "core"
    res = gcore(task, out, report=tmp_path / "missing.jsonl")
    assert out.stat().st_size == res.file_size
    assert not list(tmp_path.glob("*.tmp"))
    return out


def _maps(truth: Path) -> List[Tuple[int, int, str, int, str]]:
    rows = []
    for line in (truth / "maps").read_text().splitlines():
        f = line.split(None, 5)
        s, e = (int(x, 16) for x in f[0].split("-"))
        rows.append((s, e, f[1], int(f[2], 16), f[5] if len(f) > 5 else ""))
    return rows


def _vmflags(truth: Path) -> Dict[int, List[str]]:
    out: Dict[int, List[str]] = {}
    start = None
    for line in (truth / "smaps").read_text().splitlines():
        m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ ", line)
        if m:
            start = int(m.group(1), 16)
        elif line.startswith("VmFlags:") and start is not None:
            out[start] = line.split()[1:]
    return out


@pytest.mark.parametrize("name", ["anon", "vmflags"])
def test_segments_as_the_kernel_maps_them(vmcore, tmp_path, name):
    prog = vmcore.prog()
    task, pid = _task(vmcore, name)
    from drgn_ptwalk.tasks import task_mm

    mm = task_mm(task)
    assert coredump_filter(mm) == 0x33  # the kernel's default (the workload never writes coredump_filter)
    core = read_core(_write(task, tmp_path))
    arch = prog.platform.arch.name
    assert core.machine == {"X86_64": 62, "AARCH64": 183, "PPC64": 21, "S390X": 22, "LOONGARCH64": 258}[arch]
    assert core.byte_order == (">" if arch == "S390X" else "<")
    page = prog["PAGE_SIZE"].value_()
    assert core.phdrs[0][0] == 4  # PT_NOTE first
    loads = core.phdrs[1:]
    assert all(p[0] == 1 for p in loads)
    truth = vmcore.pid_dir(pid)
    maps = _maps(truth)
    flags = _vmflags(truth)
    # The kernel's maps lists the gate VMA ([vsyscall]) last, as the core does.
    assert [(p[3], p[3] + p[5]) for p in loads] == [(s, e) for s, e, *_ in maps]
    offset = loads[0][2]
    assert offset % page == 0 and offset >= core.phdrs[0][2] + core.phdrs[0][4]
    for p, (s, _e, perms, pgoff, path) in zip(loads, maps):
        _, pflags, off, vaddr, filesz, memsz, align = p
        assert align == page
        assert pflags == (4 if perms[0] == "r" else 0) | (2 if perms[1] == "w" else 0) | (1 if perms[2] == "x" else 0)
        assert off == offset, hex(vaddr)
        offset += filesz
        vf = flags.get(s, [])
        special = path in ("[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "[vectors]", "[sigpage]")
        if special:
            assert filesz == memsz, path
        elif "dd" in vf or "io" in vf:
            assert filesz == 0, (hex(s), vf)
        elif "ht" in vf:
            assert filesz == (memsz if "sh" not in vf else 0), (hex(s), vf)  # HUGETLB_PRIVATE only
        elif "sh" in vf:
            # MMF_DUMP_ANON_SHARED for shmem/memfd/SysV (no links), not MMF_DUMP_MAPPED_SHARED.
            assert filesz in (0, memsz), (hex(s), vf)
        elif path.startswith("/"):
            # file-backed private: whole once written to (an anon_vma: MMF_DUMP_ANON_PRIVATE), else only
            # the ELF header page at file offset 0 (MMF_DUMP_ELF_HEADERS), never MMF_DUMP_MAPPED_PRIVATE
            assert filesz in ((0, page, memsz) if pgoff == 0 else (0, memsz)), (hex(s), path, filesz)
        elif not path or path in ("[heap]", "[stack]"):
            assert filesz in (0, memsz), (hex(s), path)
    assert offset + (64 if len(core.phdrs) >= 0xFFFF else 0) == (tmp_path / "core").stat().st_size
    # NT_FILE: every file-backed VMA, with its page offset and path.
    nt_file = [d for _, t, d in core.notes if t == NT_FILE]
    want = [(s, e, pgoff // page, path.encode()) for s, e, _, pgoff, path in maps if path.startswith("/")]
    if want:
        o = core.byte_order
        desc = nt_file[0]
        count, ps = struct.unpack_from(o + "QQ", desc)
        assert ps == page and count == len(want)
        ents = struct.unpack_from(f"{o}{3 * count}Q", desc, 16)
        names = desc[16 + 24 * count:].split(b"\0")[:count]
        got = [(ents[3 * i], ents[3 * i + 1], ents[3 * i + 2], names[i]) for i in range(count)]
        # The task's own root is the kernel's; the workload runs in the guest's root, as maps was read.
        assert got == want


def test_notes_in_the_kernels_order(vmcore, tmp_path):
    task, pid = _task(vmcore, "anon")
    core = read_core(_write(task, tmp_path))
    types = [t for _, t, _ in core.notes]
    assert types[:4] == [NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE]
    assert NT_PRFPREG in types[4:]
    assert types.count(NT_PRSTATUS) == 1
    auxv = next(d for _, t, d in core.notes if t == NT_AUXV)
    o = core.byte_order
    words = struct.unpack(f"{o}{len(auxv) // 8}Q", auxv)
    assert words[-2:] == (0, 0) and 0 not in words[:-2:2]
    assert dict(zip(words[::2], words[1::2]))[6] == vmcore.prog()["PAGE_SIZE"].value_()  # AT_PAGESZ


def test_no_core_of_a_kernel_thread(vmcore, tmp_path):
    from drgn_ptwalk.tasks import find_target

    task = find_target(vmcore.prog(), 2)
    with pytest.raises(NoMmError):
        gcore(task, tmp_path / "core")
    assert not list(tmp_path.iterdir())


_REGSETS = {"X86_64": "x86_64_regsets", "AARCH64": "aarch64_regsets", "PPC64": "native_regsets",
            "S390X": "s390_regsets", "LOONGARCH64": "loongarch64_regsets"}


def test_thread_notes_sized_as_the_kernels_regsets(vmcore, tmp_path):
    """Each register note has the size of the kernel's own regset of that note type (``n * size``, what
    ``regset_get_alloc()`` fills): the regset view the kernel's coredump writes them from."""
    prog = vmcore.prog()
    task, pid = _task(vmcore, "anon")
    core = read_core(_write(task, tmp_path))
    sizes = {}
    names = {}
    for r in prog[_REGSETS[prog.platform.arch.name]]:
        t = r.core_note_type.value_()
        if t:
            sizes.setdefault(t, r.n.value_() * r.size.value_())
            try:  # "regset: Add explicit core note name in struct user_regset" (v6.16)
                names.setdefault(t, r.core_note_name.string_())
            except AttributeError:
                pass
    prstatus = next(d for _, t, d in core.notes if t == NT_PRSTATUS)
    assert offsetof(prog.type("struct elf_prstatus"), "pr_fpvalid") - 112 == sizes[NT_PRSTATUS]
    per_thread = [(n, t, d) for n, t, d in core.notes if t not in (NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE,
                                                                   0x53494749)]
    assert per_thread, "no register notes besides NT_PRSTATUS"
    for n, t, d in per_thread:
        assert t in sizes, hex(t)
        # The note holds what the regset's get() wrote (regset_get_alloc() returns that size): the whole
        # regset, except LoongArch's NT_PRFPREG, whose fpr_get() stops after the 4-byte fcsr.
        short = 4 if prog.platform.arch.name == "LOONGARCH64" and t == 2 else 0
        assert len(d) == sizes[t] - short, hex(t)
        assert n == names.get(t, n), (hex(t), n, names[t])
    assert len(prstatus) == sizeof(prog.type("struct elf_prstatus"))


def test_siginfo_of_a_ptrace_stopped_thread(vmcore, tmp_path):
    """A thread with a ``last_siginfo`` (stopped under ptrace) gets NT_SIGINFO after NT_PRPSINFO: the kernel's
    ``kernel_siginfo`` then zeros to the 128 bytes of a user ``siginfo_t``. No reference process is
    ptrace-stopped: the field and a siginfo are laid over the dump's memory (a second program, so the
    overlay stays out of the other tests)."""
    from drgn_ptwalk.program import open_program
    from drgn_ptwalk.tasks import find_target

    arch = vmcore.arch if vmcore.dump == "qemu-kdump" else None
    prog = open_program(vmcore.core, symbols=[vmcore.vmlinux], architecture=arch)
    task = find_target(prog, _pid(vmcore, "anon"))
    o = "<" if prog.platform.flags & prog.platform.flags.IS_LITTLE_ENDIAN else ">"
    n = sizeof(prog.type("kernel_siginfo_t"))
    fake = struct.pack(o + "iii", 19, 0, 0x80) + bytes(n - 12)  # SIGSTOP, si_code SI_KERNEL
    fake = fake[:16] + struct.pack(o + "ii", 1234, 0) + fake[24:]  # _kill._pid
    field = task.last_siginfo.address_of_().value_()
    # Any kernel address drgn can be told to read: the siginfo sits in a page of its own past the task.
    where = (task.value_() + 0x10000) & ~0xFFF
    ptr = struct.pack(o + "Q", where)
    prog.add_memory_segment(where, 4096, lambda a, c, off, p: (fake + bytes(4096))[off:off + c], False)
    prog.add_memory_segment(field, 8, lambda a, c, off, p: ptr[off:off + c], False)
    assert task.last_siginfo.value_() == where
    res = gcore(task, tmp_path / "core")
    core = read_core(tmp_path / "core")
    types = [t for _, t, _ in core.notes]
    assert types[:3] == [NT_PRSTATUS, NT_PRPSINFO, 0x53494749], [hex(t) for t in types]
    desc = core.notes[2][2]
    assert len(desc) == 128 and desc[:n] == fake and desc[n:] == bytes(128 - n)
    assert res.threads == 1


def _without_mm_cases() -> List[Tuple[str, str]]:
    """(dump, which): a kernel thread on every dump; an exited task on the dumps of guests that run the
    workload, which leaves its ``zombie`` (the real-server guests keep none)."""
    from conftest import _matrix
    from vmcores import build as vbuild

    out = []
    for name in _matrix():
        out.append((name, "kthread"))
        if vbuild.entry(name.split(":")[0]).get("scenario", "default") == "default":
            out.append((name, "zombie"))
    return out


@pytest.mark.parametrize("name,which", _without_mm_cases())
def test_cli_refuses_a_task_without_mm(name, tmp_path, which):
    """``drgn-ptwalk gcore`` of a kernel thread or an exited task: one line on stderr, exit status 2, no file
    (neither the core nor its temporary name)."""
    import subprocess
    import sys

    from conftest import get_vmcore
    from vmcores.truth import pids

    vmcore = get_vmcore(name)
    pid = pids(vmcore.truth).get(which, 2 if which == "kthread" else None)
    if pid is None:
        pytest.fail(f"{vmcore.name}: the workload recorded no {which} process", pytrace=False)
    arch = ["--architecture", vmcore.arch] if vmcore.dump == "qemu-kdump" else []
    root = Path(__file__).resolve().parent.parent
    p = subprocess.run([sys.executable, "-m", "drgn_ptwalk", "-c", vmcore.core, "-s", vmcore.vmlinux, *arch,
                        "gcore", str(pid), "-o", str(tmp_path / "core")], capture_output=True, text=True, cwd=root)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "no mm" in p.stderr, p.stderr
    assert p.stdout == ""
    assert not list(tmp_path.iterdir())
