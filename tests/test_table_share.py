# SPDX-License-Identifier: LGPL-2.1-or-later
"""``hugetlb_pmd_shared()`` is asked of the page-table page that holds each hugetlb entry, at any level.

smaps (``smaps_hugetlb_range()``) and pagemap (``pagemap_hugetlb_range()``) test the share count of the
table page holding the entry. Only PMD tables set that word up (``pagetable_pmd_ctor()``); for the PUD
table of a 1 GiB page it is whatever the page's previous user left in ``page->index``, and a non-zero
leftover makes the kernel print the page as Shared_Hugetlb and drop PM_MMAP_EXCLUSIVE (seen on a live
guest: its truth said shared where a PMD-only rule said private). The word of the table of the default
dump's 1 GiB page (the first x86_64 ELF dump that has one) is set here through a memory overlay; only the
lines of that page may change, and exactly as the kernel's rule says (smaps on every kernel; pagemap's
PM_MMAP_EXCLUSIVE from v6.12).
"""

import warnings

import pytest
from drgn.helpers.linux.mm import follow_phys, pfn_to_page
from drgn.helpers.linux.pid import find_task

from conftest import _matrix, get_vmcore
from drgn_ptwalk import procfs
from drgn_ptwalk.entry import PtLevel
from drgn_ptwalk.generations import generation
from drgn_ptwalk.procfs.pagemap import PM_MMAP_EXCLUSIVE, pagemap_records
from drgn_ptwalk.procfs.vma import _pmd_share_rule
from drgn_ptwalk.tasks import get_task_mm
from drgn_ptwalk.walk import table_of
from faultinject import Overlay, open_dump
from vmcores.truth import read_pagemap

GIB = 1 << 30


def _vma_blocks(smaps: str):
    blocks, cur = {}, None
    for line in smaps.splitlines():
        if "-" in line.split(" ")[0] and not line.endswith(":") and len(line.split()) >= 5:
            cur = int(line.split("-")[0], 16)
            blocks[cur] = []
        blocks[cur].append(line)
    return blocks


def _gig_pages(v):
    pid = v.pids.get("hugetlb")
    if pid is None:
        return []
    want = _vma_blocks((v.pid_dir(pid) / "smaps").read_text())
    return [a for a, b in want.items() if "KernelPageSize:  1048576 kB" in b
            and ("Private_Hugetlb: 1048576 kB" in b or "Shared_Hugetlb:  1048576 kB" in b)]


def _x86_dump_with_a_gig_page():
    # A boot-time 1 GiB page is not granted on every boot (the guest then tries at run time, which can fail
    # too): the first x86_64 dump of the matrix whose hugetlb process has one (the rule is the kernel's,
    # on any of them).
    for name in _matrix():
        if name.startswith("x86_64-") and ":elf" in name:
            v = get_vmcore(name)
            if v.scenario == "default" and _gig_pages(v):
                return v
    pytest.fail("no x86_64 dump of the matrix has a faulted 1 GiB hugetlb page (see the [init] hugepages "
                "lines of their serial.log)", pytrace=False)


def test_pud_table_share_word():
    v = _x86_dump_with_a_gig_page()
    pid = v.pids["hugetlb"]
    want = _vma_blocks((v.pid_dir(pid) / "smaps").read_text())
    start = _gig_pages(v)[0]
    # The kernel printed what the leftover word said: shared if it was set. Flip the word, and only the
    # lines of that page may change, the other way round.
    was_shared = "Shared_Hugetlb:  1048576 kB" in want[start]

    prog = open_dump(v.core, v.vmlinux)  # the overlay stays
    mm = get_task_mm(find_task(prog, pid))
    table = table_of(mm, start, PtLevel.PUD)
    ps = prog["PAGE_SIZE"].value_()
    kind, off = _pmd_share_rule(prog)
    word = pfn_to_page(prog, table // ps).value_() + off
    unshared, shared = (1, 2) if kind == "refcount" else (0, 0x5A5A)
    assert (int.from_bytes(prog.read(word, 4), "little") != unshared) == was_shared

    ov = Overlay(prog, ps)
    phys = follow_phys(prog["init_mm"].address_of_(), word).value_()
    ov.patch(phys, (unshared if was_shared else shared).to_bytes(4, "little"))
    # The overlay maps the page's physical and direct-map addresses; struct pages are read at vmemmap ones.
    prog.add_memory_segment(word - word % ps, ps, ov._reader(phys - phys % ps), False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _vma_blocks(procfs.smaps(find_task(prog, pid)))
        ours = {r.start: r.entries for r in pagemap_records(mm)}
    assert got.keys() == want.keys()
    private = ("Shared_Hugetlb:        0 kB", "Private_Hugetlb: 1048576 kB")
    shared_lines = ("Shared_Hugetlb:  1048576 kB", "Private_Hugetlb:       0 kB")
    before, after = (shared_lines, private) if was_shared else (private, shared_lines)
    for a in want:
        if a != start:
            assert got[a] == want[a]
            continue
        changed = [(w, g) for w, g in zip(want[a], got[a]) if w != g]
        assert changed == list(zip(before, after)), changed
    # v6.1's pagemap_hugetlb_range() tests page_mapcount() alone; v6.12's and later also ask
    # hugetlb_pmd_shared() (the generation with the precise mapcount rule).
    pagemap_flips = generation(prog).precise_mapcount
    for rec in read_pagemap(v.pid_dir(pid) / "pagemap.bin"):
        if not rec.entries:
            continue
        mine = ours[rec.start]
        if rec.start <= start < rec.end and pagemap_flips:
            lo = (start - rec.start) // ps
            hi = lo + GIB // ps
            assert all(bool(e & PM_MMAP_EXCLUSIVE) != was_shared for e in rec.entries[lo:hi])
            assert list(mine[lo:hi]) == [e ^ PM_MMAP_EXCLUSIVE for e in rec.entries[lo:hi]]
            assert list(mine[:lo]) == list(rec.entries[:lo]) and list(mine[hi:]) == list(rec.entries[hi:])
        else:
            assert mine.tobytes() == rec.entries.tobytes()
