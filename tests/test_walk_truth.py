# SPDX-License-Identifier: LGPL-2.1-or-later
"""The judge: pt_range_walk against what the kernel itself reported, on real reference vmcores.

For every dump and every workload PID, the walker's entries expanded to pages must agree with the pagemap the
guest captured (as root) on every page: present / swap / none, PFN, swap type and offset, soft-dirty, uffd-wp and
(7.x) guard. The pagemap-only rules (kernel-formats.md §6) are applied here, not in the walker:

* VM_PFNMAP VMAs are reported by pagemap as holes (walk_page_test() skips them);
* VM_SOFTDIRTY sets PM_SOFT_DIRTY on every page of the VMA (x86 and ppc64: the flag is 0 on arm64);
* hugetlb entries never set PM_SWAP, have frame 0 when not present and take soft-dirty only from the VMA;
* every other non-present entry sets PM_SWAP with frame = type | offset << 5 (PFN for PFN-carrying entries);
* PM_MMAP_EXCLUSIVE and PM_FILE depend on page state (judged by test_procfs.py): masked out here.

Then each labelled scenario region (scenario.json) must show up as the entry type and level it really is.
"""

import json
from collections import Counter
from typing import Dict, List, Tuple

from drgn import Architecture
from drgn.helpers.linux.mm import for_each_vma
from drgn.helpers.linux.pid import find_task

from drgn_ptwalk import PtLevel, PtType, get_decoder, pt_range_walk
from drgn_ptwalk.arch import ArchDecoder
from drgn_ptwalk.page import folio_info, page_is_anon
from drgn_ptwalk.tasks import get_task_mm
from vmcores.truth import (
    PM_FILE,
    PM_GUARD_REGION,
    PM_MMAP_EXCLUSIVE,
    PM_PFN_MASK,
    PM_PRESENT,
    PM_SOFT_DIRTY,
    PM_SWAP,
    PM_UFFD_WP,
    read_pagemap,
)

COMPARED = PM_PRESENT | PM_SWAP | PM_SOFT_DIRTY | PM_UFFD_WP | PM_GUARD_REGION | PM_PFN_MASK

VM_PFNMAP = 1 << 10
VM_HUGETLB = 1 << 22
# VM_SOFTDIRTY is bit 27 with CONFIG_MEM_SOFT_DIRTY, which x86, ppc64 (Book3S) and s390x have (Debian: y); 0 on
# arm64 (kernel-formats.md §3.4, §8.1) and LoongArch (no HAVE_ARCH_SOFT_DIRTY).
# By name: drgn before LoongArch support has no Architecture.LOONGARCH64.
VM_SOFTDIRTY = {"X86_64": 1 << 27, "AARCH64": 0, "PPC64": 1 << 27, "S390X": 1 << 27, "LOONGARCH64": 0}


# ---------------------------------------------------------------------------------------------------------
# Expected pagemap values of an entry


def expected_pagemap(e, vm_flags: int, sd_flag: int) -> Tuple[int, int, int]:
    """(first value, per-page increment, count) of the pagemap entries the kernel reports for entry *e*."""
    n = e.nr_pages
    vma_sd = PM_SOFT_DIRTY if vm_flags & sd_flag else 0
    if vm_flags & VM_PFNMAP or e.type == PtType.NONE:
        return vma_sd, 0, n
    if e.type == PtType.ERROR:
        return -1, 0, n  # never matches
    if vm_flags & VM_HUGETLB:
        if e.present:
            return PM_PRESENT | vma_sd | (PM_UFFD_WP if e.uffd_wp else 0) | e.pfn, 1, n
        return vma_sd | (PM_UFFD_WP if e.uffd_wp else 0), 0, n
    flags = vma_sd | (PM_SOFT_DIRTY if e.soft_dirty else 0) | (PM_UFFD_WP if e.uffd_wp else 0)
    if e.present:
        return PM_PRESENT | flags | e.pfn, 1, n
    if e.type == PtType.MARKER:
        guard = PM_GUARD_REGION if e.kind and "guard" in e.kind else 0
        return PM_SWAP | flags | guard | ((e.swap_type | e.swap_offset << 5) & PM_PFN_MASK), 0, n
    offset = e.pfn if e.pfn is not None else e.swap_offset
    return PM_SWAP | flags | ((e.swap_type | offset << 5) & PM_PFN_MASK), 32, n


# ---------------------------------------------------------------------------------------------------------
# Walk cache: one walk per (dump, pid)

_walks: Dict[Tuple[str, int], list] = {}


def walk_pid(vmcore, pid: int):
    key = (vmcore.name, pid)
    if key not in _walks:
        prog = vmcore.prog()
        task = find_task(prog, pid)
        assert task, f"PID {pid} not in the dump"
        mm = get_task_mm(task)
        _walks[key] = list(pt_range_walk(mm)) if mm else []
    return _walks[key]


def _workload_pids(vmcore) -> List[Tuple[str, int]]:
    pids = sorted((name, pid) for name, pid in vmcore.pids.items() if name != "kthread")
    assert pids, f"{vmcore.name}: the truth lists no workload PIDs"
    return pids


def page_check(prog, e, raw_truth) -> str:
    """
    The FOLIO / PFN split against the kernel: for PTEs pagemap sets PM_FILE / PM_MMAP_EXCLUSIVE only when
    vm_normal_page() found a page, and PM_FILE exactly when that page is not anonymous. (PMD and hugetlb entries
    take pmd_page()/pte_page() unconditionally, huge zero page included, so only the anon test applies there.)
    """
    if e.type == PtType.PFN and e.level == PtLevel.PTE:
        if any(v & (PM_FILE | PM_MMAP_EXCLUSIVE) for v in raw_truth):
            return "PFN entry, but the kernel found a page (PM_FILE/PM_MMAP_EXCLUSIVE)"
    elif e.type == PtType.FOLIO:
        file = not page_is_anon(folio_info(prog, e.pfn))
        if any(bool(v & PM_FILE) != file for v in raw_truth):
            return f"FOLIO entry of a {'file' if file else 'anon'} page, pagemap PM_FILE disagrees"
    return ""


def compare_pagemap(prog, truth_dir, pid: int, entries) -> Tuple[int, int, List[str]]:
    """Compare *entries* (one whole-mm walk) with the captured pagemap of *pid*: (matched, mismatched, examples)."""
    dec = get_decoder(prog)
    sd_flag = VM_SOFTDIRTY[prog.platform.arch.name]
    mm = get_task_mm(find_task(prog, pid))
    vmas = {v.vm_start.value_(): (v.vm_end.value_(), v.vm_flags.value_()) for v in for_each_vma(mm)} if mm else {}
    starts = [e.start for e in entries]
    import bisect

    ok = bad = 0
    examples: List[str] = []
    ps = dec.page_size
    for rec in read_pagemap(truth_dir / str(pid) / "pagemap.bin"):
        if not rec.entries or rec.start not in vmas:
            continue  # e.g. the gate VMA: not in the mm, pagemap reads nothing
        vm_end, vm_flags = vmas[rec.start]
        truth = [v & COMPARED for v in rec.entries]
        k = bisect.bisect_right(starts, rec.start) - 1
        addr = rec.start
        end = rec.start + len(truth) * ps
        while addr < end:
            e = entries[k]
            assert e.start <= addr < e.end, f"walk does not cover {addr:#x}"
            first, inc, n = expected_pagemap(e, vm_flags, sd_flag)
            skip = (addr - e.start) // ps
            first += inc * skip
            n = min(n - skip, (end - addr) // ps)
            i0 = (addr - rec.start) // ps
            got = truth[i0 : i0 + n]
            want = list(range(first, first + inc * n, inc)) if inc else [first] * n
            why = "" if vm_flags & VM_PFNMAP else page_check(prog, e, rec.entries[i0 : i0 + n])
            if why:
                bad += n
                if len(examples) < 8:
                    examples.append(f"PID {pid} {addr:#x}: {why}: {e!r}")
            elif got == want:
                ok += n
            else:
                for j, (g, w) in enumerate(zip(got, want)):
                    if g == w:
                        ok += 1
                        continue
                    bad += 1
                    if len(examples) < 8:
                        examples.append(
                            f"PID {pid} {addr + j * ps:#x}: pagemap {g:#018x}, walker {w & ((1 << 64) - 1):#018x} "
                            f"from {e!r}"
                        )
            addr += n * ps
            k += 1
    return ok, bad, examples


def test_pagemap_agrees(vmcore):
    prog = vmcore.prog()
    total_ok = total_bad = 0
    examples: List[str] = []
    for name, pid in _workload_pids(vmcore):
        entries = walk_pid(vmcore, pid)
        errors = [e for e in entries if e.type == PtType.ERROR]
        assert not errors, f"{name}: ERROR entries in a consistent dump: {errors[:3]}"
        ok, bad, ex = compare_pagemap(prog, vmcore.truth, pid, entries)
        total_ok += ok
        total_bad += bad
        examples += [f"{name}: {x}" for x in ex[:3]]
    print(f"{vmcore.name}: {total_ok} pages agree, {total_bad} differ")
    assert total_bad == 0, f"{total_bad} pages differ from the kernel's pagemap:\n" + "\n".join(examples)
    assert total_ok > 10000, f"only {total_ok} pages compared"


# ---------------------------------------------------------------------------------------------------------
# Scenario shapes


def _regions(vmcore, pid: int):
    path = vmcore.truth / str(pid) / "scenario.json"
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    return [(r["label"], int(r["start"], 16), int(r["end"], 16), r["expect"], r["note"]) for r in d["regions"]]


def _entries_in(entries, start: int, end: int):
    return [e for e in entries if e.end > start and e.start < end]


def _pages(spec: str, npages: int) -> Dict[str, set]:
    """Parse an expectation like 'uffd-wp:0-23,marker:24-63' / 'hwpoison:4,present:others' into page sets."""
    out: Dict[str, set] = {}
    for part in spec.split(","):
        name, _, rng = part.partition(":")
        if not rng or not rng[0].isdigit():
            continue
        a, _, b = rng.partition("-")
        lo = int(a)
        hi = int(b) if b.isdigit() else lo
        out.setdefault(name, set()).update(range(lo, min(hi, npages - 1) + 1))
    return out


def hugetlb_shape(dec: ArchDecoder, size: int) -> Tuple[PtLevel, bool]:
    """The level and cont bit a hugetlb page of *size* bytes is mapped with on this arch/geometry."""
    for level, shift, _ in dec.levels:
        if size == 1 << shift:
            return level, False
        nc = dec.cont_slots.get(level, 0)
        if nc and size == nc << shift:
            return level, True
    raise AssertionError(f"no hugetlb mapping of {size} bytes on this geometry")


def _page_of(entries, addr):
    for e in entries:
        if e.start <= addr < e.end:
            return e
    raise AssertionError(f"{addr:#x} not covered")


def test_scenario_shapes(vmcore):
    prog = vmcore.prog()
    dec = get_decoder(prog)
    ps = dec.page_size
    pmd_size = 1 << dec.level_shift(PtLevel.PMD)
    seen = Counter()
    problems: List[str] = []

    def check(cond, msg):
        if not cond:
            problems.append(msg)

    no_thp = _refused(vmcore, "init thp refused no-transparent_hugepage")
    for name, pid in _workload_pids(vmcore):
        entries = walk_pid(vmcore, pid)
        for label, start, end, expect, _note in _regions(vmcore, pid):
            ents = _entries_in(entries, start, end)
            present = [e for e in ents if e.present]
            where = f"{name}/{label} [{start:#x}, {end:#x}) {expect!r}"
            npages = (end - start) // ps
            if label.startswith("hugetlb_") and label.endswith("kB"):
                size = int(label[len("hugetlb_") : -2]) * 1024
                level, cont = hugetlb_shape(dec, size)
                check(present, f"{where}: no present huge page")
                for e in present:
                    check(
                        (e.type, e.level, e.cont, e.size, e.start % size) == (PtType.FOLIO, level, cont, size, 0),
                        f"{where}: {e!r} is not one {level.name}{'+cont' if cont else ''} entry of {size:#x}",
                    )
                seen["hugetlb"] += 1
            elif label.startswith("highva_l"):
                # s390x: a mapping above 4 TiB / 8 PiB gave this mm an R2 / R1 root (4 / 5 levels): walked
                # with the depth of its own ASCE, every page present.
                levels = len(get_decoder(prog).for_mm(get_task_mm(find_task(prog, pid))).levels)
                check(levels == int(label[len("highva_l"):]), f"{where}: walked with {levels} levels")
                check(sum(e.nr_pages for e in present) == npages, f"{where}: not all present: {ents[:4]}")
                seen["highva"] += 1
            elif expect in ("pmd", "pte-mapped-large-folio") and no_thp:
                # No THP in this kernel (steps.log; s390x under QEMU's TCG, which has no EDAT-1): the
                # region is what the workload wrote, order-0 folios mapped by PTEs.
                check(present and all(e.level == PtLevel.PTE and e.type == PtType.FOLIO and e.nr_pages == 1
                                      for e in present), f"{where}: no THP, yet not order-0 PTE folios: {present[:4]}")
                seen["thp_refused"] += 1
            elif expect == "pmd":
                check(ents and all(e.type == PtType.FOLIO and e.level == PtLevel.PMD and e.size == pmd_size
                                   for e in ents), f"{where}: not PMD-mapped folios: {ents[:4]}")
                seen["thp"] += 1
            elif expect == "pte-mapped-large-folio":
                check(present and all(e.level == PtLevel.PTE and e.type == PtType.FOLIO for e in present)
                      and max(e.nr_pages for e in present) > 1,
                      f"{where}: split THP not batched PTEs: {present[:4]}")
                seen["split"] += 1
            elif label == "swap_anon":
                swapped = [e for e in ents if e.type == PtType.SWAP]
                check(swapped, f"{where}: no SWAP entries")
                for t in {e.swap_type for e in swapped}:
                    disk = prog["swap_info"][t].bdev.bd_disk.disk_name.string_().decode()
                    check(disk.startswith("zram"), f"{where}: swap type {t} is {disk}, not zram")
                seen["swap"] += 1
            elif label == "hwpoison" and "hwpoison:" in expect:
                for i in _pages(expect, npages)["hwpoison"]:
                    e = _page_of(ents, start + i * ps)
                    check(e.type == PtType.HWPOISON, f"{where}: page {i} is {e!r}")
                seen["hwpoison"] += 1
            elif label.startswith("uffd_") and "marker:" in expect:
                pages = _pages(expect, npages)
                for i in pages["marker"]:
                    e = _page_of(ents, start + i * ps)
                    check(e.type == PtType.MARKER and "uffd_wp" in e.kind, f"{where}: page {i} is {e!r}")
                for i in pages.get("uffd-wp", ()):
                    e = _page_of(ents, start + i * ps)
                    check(e.uffd_wp, f"{where}: page {i} has no uffd-wp: {e!r}")
                seen["uffd"] += 1
            elif label in ("uffd_shmem", "uffd_anon") and "uffd-wp:" not in expect:
                # uffd-wp refused (steps.log): what the workload wrote or read is there, the rest never was.
                pages = _pages(expect, npages)
                for i in pages["present"]:
                    e = _page_of(ents, start + i * ps)
                    check(e.present and not e.uffd_wp, f"{where}: page {i} is {e!r}")
                for i in pages["none"]:
                    e = _page_of(ents, start + i * ps)
                    check(e.type == PtType.NONE, f"{where}: page {i} is {e!r}")
                seen["uffd_refused"] += 1
            elif label.startswith("guard_") and "guard:" in expect:
                for i in _pages(expect, npages)["guard"]:
                    e = _page_of(ents, start + i * ps)
                    check(e.type == PtType.MARKER and "guard" in e.kind, f"{name}/{label}: page {i} is {e!r}")
                seen["guard"] += 1
        # [vvar]: kernel data pages mapped into the task. Up to 6.x a VM_PFNMAP mapping of special PTEs: PFN.
        # 7.x maps it from lib/vdso/datastore.c without VM_PFNMAP and with the data page's struct page, which
        # vm_normal_page() returns; there the kernel's pagemap (PM_FILE, checked per page above) is the judge.
        mm = get_task_mm(find_task(prog, pid))
        if not mm:
            continue
        vm_flags = {v.vm_start.value_(): v.vm_flags.value_() for v in for_each_vma(mm)}
        for line in (vmcore.truth / str(pid) / "maps").read_text().splitlines():
            if line.endswith("[vvar]"):
                a, b = (int(x, 16) for x in line.split()[0].split("-"))
                present = [e for e in _entries_in(entries, a, b) if e.present]
                check(present, f"{name} [vvar]: nothing present")
                if vm_flags[a] & VM_PFNMAP:
                    check(all(e.type == PtType.PFN for e in present), f"{name} [vvar]: {present}")
                seen["vvar"] += 1
    print(f"{vmcore.name}: scenario checks {dict(seen)}")
    assert not problems, "\n".join(problems[:20])
    # The workload's scenarios label their regions (scenario.json); real servers (scenario "realuser") label
    # none, so only what every process has is required there. A kernel without uffd-wp (powerpc) refuses its
    # registration (steps.log): the refused regions must then have been checked as such. A kernel without
    # THP or hugetlb pages (s390x under QEMU's TCG: no EDAT-1/2) refuses them at boot (steps.log): the THP
    # regions must then have been checked as order-0 pages, and no hugetlb region exists.
    required = ("hugetlb", "thp", "split", "swap", "uffd", "vvar") if vmcore.scenario == "default" else ("vvar",)
    for what in required:
        if what == "uffd" and _uffd_wp_refused(vmcore):
            what = "uffd_refused"
        if what in ("thp", "split") and no_thp:
            what = "thp_refused"
        if what == "vvar" and prog.platform.arch == Architecture.S390X and vmcore.scenario == "default":
            assert seen["highva"] == 2, f"{vmcore.name}: the 4- and 5-level mms (highva4, highva5) not both checked"
        if what == "hugetlb" and _refused(vmcore, "hugetlb sizes refused no-hugepage-sizes"):
            assert not seen["hugetlb"]
            continue
        assert seen[what], f"{vmcore.name}: no {what} scenario found in the truth"


def _refused(vmcore, line: str) -> bool:
    """Whether steps.log has this refusal line."""
    return line in (vmcore.truth / "steps.log").read_text().splitlines()


def _uffd_wp_refused(vmcore) -> bool:
    """Whether the kernel refused every uffd-wp registration of the uffd scenario (steps.log), as a kernel
    without HAVE_ARCH_USERFAULTFD_WP does (EINVAL)."""
    steps = (vmcore.truth / "steps.log").read_text().splitlines()
    tries = [line for line in steps if line.startswith("uffd ") and "-register-wp " in line]
    return bool(tries) and all(" refused " in line for line in tries)
