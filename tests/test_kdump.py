# SPDX-License-Identifier: LGPL-2.1-or-later
"""Production-style kdumps: the guest crashed (sysrq c) into a kexec'ed capture kernel, which saved
/proc/vmcore with Debian's makedumpfile, unfiltered (-d 0) and filtered (-d 31: zero, cache, user and free
pages excluded).

The suites that compare our output with the kernel's own (test_procfs, test_walk_truth, test_vmcores) run
on these dumps as on every other one: on -d 31 everything that lives in kernel memory must still come out
exact. This file asserts what is particular to them: they are what ``python -m vmcores list --json`` says,
they really are makedumpfile's files, the -d 31 dump really lacks the user data (so the exact outputs did
not need it), and the walk meets no unreadable table anywhere.
"""

import json
import struct
import subprocess
import sys

import drgn
import pytest
from drgn.helpers.linux.pid import find_task

from conftest import ROOT, _matrix, get_vmcore
from drgn_ptwalk import PtType, pt_range_walk
from drgn_ptwalk.tasks import get_task_mm
from vmcores import build as vbuild
from vmcores.truth import PM_FILE, PM_PFN_MASK, PM_PRESENT, read_pagemap

KDUMPS = [(kid, int(kind.split("-d")[1])) for kid, kind in (n.split(":") for n in _matrix())
          if kind.startswith("makedumpfile-d")]
# VMAs whose present, non-file pages are kernel pages (pagemap shows no PM_FILE for special mappings).
KERNEL_BACKED = ("[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "/dev/mem")


def test_matrix_has_filtered_and_unfiltered_kdumps():
    # x86_64 only: why arm64 has none is in vmcores/kernels.toml (Debian's makedumpfile and kexec-tools
    # cannot dump Debian's arm64 kernels yet).
    have = {(k["arch"], int(kind.split("-d")[1])) for k in vbuild.manifest() if not k.get("bench")
            for kind in k["dumps"] if kind.startswith("makedumpfile-d")}
    for level in (0, 31):
        assert ("amd64", level) in have, f"no makedumpfile -d {level} dump for amd64 in vmcores/kernels.toml"


@pytest.fixture(params=KDUMPS, ids=[f"{kid}:makedumpfile-d{level}" for kid, level in KDUMPS], scope="module")
def kdump(request):
    kid, level = request.param
    return get_vmcore(f"{kid}:makedumpfile-d{level}"), level


def test_listed_as_makedumpfile(kdump):
    v, level = kdump
    p = subprocess.run([sys.executable, "-m", "vmcores", "list", "--json"], cwd=ROOT, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    listed = [d for d in json.loads(p.stdout) if d["name"] == v.name]
    assert len(listed) == 1, f"{v.name} not listed by python -m vmcores list --json"
    assert (listed[0]["dump"], listed[0]["dump_level"]) == ("makedumpfile", level)
    others = [d for d in json.loads(p.stdout) if d["dump"] != "makedumpfile"]
    assert all(d["dump_level"] is None for d in others)


def test_file_is_makedumpfiles_compressed_kdump(kdump):
    """makedumpfile's disk_dump_header / kdump_sub_header (makedumpfile's diskdump_mod.h): signature,
    the crashed kernel's release, and the dump level makedumpfile recorded."""
    v, level = kdump
    with open(v.core, "rb") as f:
        head = f.read(4096)
        assert head[:8] == b"KDUMP   ", f"{v.core} is not a compressed kdump file"
        release = head[12 + 65 * 2 : 12 + 65 * 3].split(b"\0")[0].decode()
        assert release == v.release
        block_size = struct.unpack_from("<i", head, 428)[0]
        f.seek(block_size)
        sub = f.read(16)
    assert struct.unpack_from("<i", sub, 8)[0] == level, "kdump_sub_header.dump_level"


def _anon_user_pages(v, prog):
    """(pid, address, pfn) of every page the kernel's pagemap showed present and not file-backed in a
    workload process, except kernel pages mapped into user space (the zero page, [vdso], [vvar])."""
    page_size = v.page_size
    zero_pfn = prog["zero_pfn"].value_()  # mm/memory.c: set at boot from ZERO_PAGE(0)
    for _name, pid in sorted(v.pids.items()):
        d = v.pid_dir(pid)
        if not (d / "pagemap.bin").is_file():
            continue
        special = set()
        for line in (d / "maps").read_text().splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith(KERNEL_BACKED):
                special.add(int(parts[0].split("-")[0], 16))
        for rec in read_pagemap(d / "pagemap.bin"):
            if rec.start in special:
                continue
            for i, ent in enumerate(rec.entries):
                if ent & PM_PRESENT and not ent & PM_FILE and ent & PM_PFN_MASK != zero_pfn:
                    yield pid, rec.start + i * page_size, ent & PM_PFN_MASK


def test_user_data_excluded_only_at_level_31(kdump):
    v, level = kdump
    prog = v.prog()
    readable = unreadable = 0
    examples = []
    for pid, addr, pfn in _anon_user_pages(v, prog):
        try:
            prog.read(pfn * v.page_size, 8, True)
            readable += 1
            if level == 31 and len(examples) < 5:
                examples.append(f"PID {pid} {addr:#x} PFN {pfn:#x} is in the -d 31 dump")
        except drgn.FaultError:
            unreadable += 1
            if level == 0 and len(examples) < 5:
                examples.append(f"PID {pid} {addr:#x} PFN {pfn:#x} is missing from the -d 0 dump")
    total = readable + unreadable
    # The workload maps ~10K anonymous pages besides hugetlb; a 1 GiB hugetlb page, when the guest got one
    # (not every boot does), adds 262K. Either way every one of them is checked.
    assert total > 5000, f"only {total} anonymous user pages in the truth"
    print(f"{v.name}: {total} anonymous user pages, {readable} readable, {unreadable} excluded")
    if level == 31:
        assert readable == 0, "\n".join(examples)
    else:
        assert unreadable == 0, "\n".join(examples)


def test_walk_meets_no_unreadable_table(kdump):
    """Page tables are kernel memory: makedumpfile keeps them at every level, so no walk reports an
    ERROR entry; the present entries it returns agree with the kernel's pagemap."""
    v, level = kdump
    prog = v.prog()
    entries = present = 0
    for name, pid in sorted(v.pids.items()):
        task = find_task(prog, pid)
        mm = get_task_mm(task)
        if not mm:
            continue
        for e in pt_range_walk(mm):
            entries += 1
            assert e.type != PtType.ERROR, f"{v.name} {name}: {e}"
            present += e.type in (PtType.FOLIO, PtType.PFN)
    assert present > 1000, f"{v.name}: only {present} present entries walked"
    print(f"{v.name}: {entries} entries walked, {present} present, no ERROR")
