# SPDX-License-Identifier: LGPL-2.1-or-later
"""The judge for drgn_ptwalk.rmap.

* whomaps: for every present page of every captured pagemap, the set of (process, address) whomaps finds
  among the captured processes is exactly the set the pagemaps say (a thread's pagemap is its process's:
  PIDs are compared by thread-group ID).
* page_kind: for a sample of the PFNs the kernel's own /proc/kpageflags (captured in the guest) calls free,
  slab, page table or page cache, it says the same; a page-cache page mapped by a captured process names
  that process's file (its /proc/PID/maps path) and offset.
* page_table_owners: every page the kernel's kpageflags calls a page table is reached from some mm's
  tables (or is a PTE table deposited for a THP), and every captured process's own tables are its.
* whoswaps: for every swap entry of every captured pagemap, the (process, address) set is the pagemaps'.
"""

import random
from collections import Counter, defaultdict
from typing import Dict, List, Set, Tuple

import pytest
from drgn.helpers.linux.pid import find_task

from drgn_ptwalk.kpage import KPF
from drgn_ptwalk.rmap import page_kind, page_table_owners, whomaps_pfns, whoswaps
from vmcores.truth import PM_FILE, PM_PFN_MASK, PM_PRESENT, PM_SWAP, pids, read_kpage, read_pagemap

_REPORT: Dict[str, str] = {}


class _Reporter:
    def pytest_terminal_summary(self, terminalreporter):
        if not _REPORT:
            return
        terminalreporter.section("whomaps against the captured pagemaps")
        for name in sorted(_REPORT):
            terminalreporter.write_line(f"{name}: {_REPORT[name]}")


@pytest.fixture(scope="session", autouse=True)
def _rmap_report(request):
    request.config.pluginmanager.register(_Reporter(), "ptwalk-rmap-report")
    yield


def _maps_lines(path) -> List[Tuple[int, int, int, str]]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split(None, 5)
        start, end = (int(x, 16) for x in parts[0].split("-"))
        out.append((start, end, int(parts[2], 16), parts[5] if len(parts) > 5 else ""))
    return out


def _pagemaps(vmcore, prog):
    """PFN -> {(tgid, address)} of every present page of every captured pagemap, and PFN -> (path, offset)
    of present file pages."""
    ps = vmcore.page_size
    present: Dict[int, Set[Tuple[int, int]]] = defaultdict(set)
    files: Dict[int, Tuple[str, int]] = {}
    for _name, pid in pids(vmcore.truth).items():
        path = vmcore.pid_dir(pid) / "pagemap.bin"
        if not path.is_file():
            continue
        task = find_task(prog, pid)
        tgid = task.tgid.value_() if task else pid
        # By start address: a process of the scale guests has 100,000 VMAs (a search per record is quadratic).
        maps = {m[0]: m for m in _maps_lines(vmcore.pid_dir(pid) / "maps")}
        for rec in read_pagemap(path):
            line = maps.get(rec.start)
            for i, e in enumerate(rec.entries):
                if not e & PM_PRESENT:
                    continue
                pfn = e & PM_PFN_MASK
                addr = rec.start + i * ps
                present[pfn].add((tgid, addr))
                if e & PM_FILE and line is not None and line[3].startswith("/"):
                    files[pfn] = (line[3], line[2] + (addr - line[0]))
    return present, files


def test_whomaps_is_the_pagemaps(vmcore):
    prog = vmcore.prog()
    present, _ = _pagemaps(vmcore, prog)
    captured = {tgid for s in present.values() for tgid, _ in s}
    got = whomaps_pfns(prog, present)
    bad = []
    how = Counter()
    for pfn, want in present.items():
        have = {(r.pid, r.address) for r in got[pfn] if r.pid in captured}
        how.update({r.found_by for r in got[pfn]} or {"none"})
        if have != want:
            bad.append(f"{pfn:#x}: missing {sorted((p, hex(a)) for p, a in want - have)[:4]} "
                       f"extra {sorted((p, hex(a)) for p, a in have - want)[:4]}")
    _REPORT[vmcore.name] = (f"{len(present)} PFNs mapped by {len(captured)} processes, {len(bad)} differ; "
                            f"found by {dict(how)}")
    assert not bad, f"{len(bad)} PFNs: " + "; ".join(bad[:8])


_KINDS = {"free": "BUDDY", "slab": "SLAB", "page_table": "PGTABLE"}


def test_page_kind_says_what_the_kernel_says(kpage_vmcore):
    truth = read_kpage(kpage_vmcore.truth)
    if truth is None:
        pytest.fail(f"{kpage_vmcore.name}: the build has no kpage truth: rebuild it", pytrace=False)
    prog = kpage_vmcore.prog()
    flags = truth.files["kpageflags"]
    rnd = random.Random(15)
    failures = []
    samples = []
    for kind, bit in _KINDS.items():
        pfns = [p for p in range(truth.npfn) if flags[p] >> KPF[bit] & 1 and p not in truth.changed]
        assert pfns, f"no {kind} page in the kernel's kpageflags"
        samples += [(kind, bit, pfn) for pfn in rnd.sample(pfns, min(25, len(pfns)))]
    # The owners of every sampled PFN in one walk of every mm's tables (page_kind walks them once per PFN
    # when not given them: 25 walks of 10,000 mms on the scale guest).
    owners = page_table_owners(prog, [pfn for _, _, pfn in samples])
    for kind, bit, pfn in samples:
        k = page_kind(prog, pfn, owners)
        if k.kind != kind:
            failures.append(f"{pfn:#x}: kernel {bit}, page_kind {k}")
    _, files = _pagemaps(kpage_vmcore, prog)
    sample = rnd.sample(sorted(files), min(25, len(files)))
    assert sample, "no file page mapped by the workload"
    for pfn in sample:
        path, offset = files[pfn]
        k = page_kind(prog, pfn)
        name, _, off = k.detail.rpartition(" offset ")
        # The page belongs to the file's own inode: maps prints the path the process used (through an
        # overlay mount, file_user_path()), page_kind the inode's path on its file system: same file name.
        user = path.replace(" (deleted)", "")
        same_file = user.endswith(name) or user.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]
        if k.kind not in ("page_cache", "shmem", "hugetlb") or int(off or "-1", 0) != offset or not same_file:
            failures.append(f"{pfn:#x}: maps says {path} offset {offset:#x}, page_kind {k}")
    assert not failures, "; ".join(failures[:10])


def test_page_table_owners(kpage_vmcore):
    truth = read_kpage(kpage_vmcore.truth)
    if truth is None:
        pytest.fail(f"{kpage_vmcore.name}: the build has no kpage truth: rebuild it", pytrace=False)
    prog = kpage_vmcore.prog()
    owners = page_table_owners(prog)
    flags = truth.files["kpageflags"]
    tables = [p for p in range(truth.npfn) if flags[p] >> KPF["PGTABLE"] & 1 and p not in truth.changed]
    assert tables, "no page table in the kernel's kpageflags"
    unowned = [p for p in tables if p not in owners]
    assert not unowned, (
        f"{len(unowned)} of {len(tables)} page-table pages no mm reaches: {[hex(p) for p in unowned[:8]]}")
    # Each captured process's root table is its own.
    from drgn.helpers.linux.mm import follow_phys

    from drgn_ptwalk.arch import get_decoder
    from drgn_ptwalk.tasks import get_task_mm

    dec = get_decoder(prog)
    checked = 0
    for name, pid in pids(kpage_vmcore.truth).items():
        task = find_task(prog, pid)
        mm = get_task_mm(task) if task else None
        if not mm:
            continue
        root, physical = dec.root(mm)
        if not physical:
            root = follow_phys(prog["init_mm"].address_of_(), root).value_()
        mine = owners.get(root // dec.page_size, [])
        assert any(task.tgid.value_() in o.pids and o.mm == mm.value_() for o in mine), (name, mine)
        # A PGD smaller than a page (arm64 with 16K pages or 52-bit VAs) comes from the pgd_cache slab.
        kind = page_kind(prog, root // dec.page_size, owners)
        assert kind.kind == "page_table" or (kind.kind, kind.detail) == ("slab", "pgd_cache"), (name, kind)
        checked += 1
    assert checked


def test_page_table_owners_of_mms_no_process_uses(kpage_vmcore):
    """The root tables of mms no process uses are owned too, by those mms: x86's pgd_list (every PGD the
    kernel keeps, its ptdesc naming its mm) and each CPU's lazy-TLB mm (a kernel thread running on an
    exited process's mm keeps it, and its PGD, alive)."""
    from drgn import cast, container_of
    from drgn.helpers.linux.cpumask import for_each_possible_cpu
    from drgn.helpers.linux.list import list_for_each
    from drgn.helpers.linux.mm import page_to_pfn, virt_to_phys
    from drgn.helpers.linux.sched import cpu_curr

    from drgn_ptwalk.arch import get_decoder

    prog = kpage_vmcore.prog()
    ps = get_decoder(prog).page_size
    want: Dict[int, int] = {}  # root table PFN -> its mm
    init_mm = prog["init_mm"].address_of_()
    for cpu in for_each_possible_cpu(prog):
        task = cpu_curr(prog, cpu)
        mm = task.active_mm
        if not task.mm and mm and mm != init_mm:
            # the decoder's root: physical on LoongArch, whose direct map drgn's virt_to_phys() lacks
            root, physical = get_decoder(prog).root(mm)
            want[(root if physical else virt_to_phys(prog, root).value_()) // ps] = mm.value_()
    listed = 0
    if kpage_vmcore.arch == "x86_64":
        try:
            desc, link = prog.type("struct ptdesc"), "pt_list"
        except LookupError:
            desc, link = prog.type("struct page"), "lru"
        for node in list_for_each(prog["pgd_list"].address_of_()):
            d = container_of(node, desc, link)
            want[page_to_pfn(cast("struct page *", d)).value_()] = d.pt_mm.value_()
            listed += 1
        assert listed, "x86's pgd_list is empty"
    owners = page_table_owners(prog, want)
    bad = {hex(p): hex(mm) for p, mm in want.items() if not any(o.mm == mm for o in owners.get(p, []))}
    print(f"{kpage_vmcore.name}: {listed} PGDs on pgd_list, {len(want)} root tables checked")
    assert not bad, f"root tables not owned by their mm: {bad}"


def test_whoswaps_is_the_pagemaps(vmcore):
    prog = vmcore.prog()
    ps = vmcore.page_size
    nswap = prog["nr_swapfiles"].value_()
    want: Dict[Tuple[int, int], Set[Tuple[int, int]]] = defaultdict(set)
    captured = set()
    for _name, pid in pids(vmcore.truth).items():
        path = vmcore.pid_dir(pid) / "pagemap.bin"
        task = find_task(prog, pid)
        if not path.is_file() or not task:
            continue
        captured.add(task.tgid.value_())
        for rec in read_pagemap(path):
            for i, e in enumerate(rec.entries):
                # PM_SWAP with a swap device's type: a swapped-out page (higher types are migration,
                # device, hwpoison entries and markers).
                if e & PM_SWAP and not e & PM_PRESENT and (e & 0x1F) < nswap:
                    want[(e & 0x1F, (e & PM_PFN_MASK) >> 5)].add((task.tgid.value_(), rec.start + i * ps))
    if vmcore.scenario == "default":
        assert want, "no swapped-out page in the captured pagemaps (the swap scenario swaps some out)"
    got = whoswaps(prog, want)
    bad = [f"{t}:{o:#x}: want {sorted(w)[:3]} have {sorted((r.pid, r.address) for r in got[(t, o)])[:3]}"
           for (t, o), w in want.items() if {(r.pid, r.address) for r in got[(t, o)] if r.pid in captured} != w]
    assert not bad, f"{len(bad)} of {len(want)} swap entries: " + "; ".join(bad[:6])


def test_whomaps_command(default_vmcore):
    """The ``whomaps`` command says what the API says: a page (who maps it, what it is) and a swap entry."""
    import io
    import json

    from drgn_ptwalk.commands import execute, lookup, make_parser

    def run(*argv: str):
        cmd = lookup("whomaps")
        out = io.StringIO()
        execute(cmd, prog, make_parser(cmd).parse_args(list(argv)), out)
        return json.loads(out.getvalue())

    v = default_vmcore
    prog = v.prog()
    pid = v.pids["swap"]
    swapped = present = None
    for rec in read_pagemap(v.pid_dir(pid) / "pagemap.bin"):
        for i, e in enumerate(rec.entries):
            if e & PM_PRESENT and present is None:
                present = e & PM_PFN_MASK
            if e & PM_SWAP and not e & PM_PRESENT and swapped is None:
                swapped = (e & 0x1F, (e & PM_PFN_MASK) >> 5, rec.start + i * v.page_size)
    assert present is not None and swapped is not None, "the swap scenario has no present and no swapped page"
    (page,) = run(str(present), "--json")
    assert page["pfn"] == present and page["kind"] == page_kind(prog, present).kind
    tgid = find_task(prog, pid).tgid.value_()
    assert tgid in {m["pid"] for m in page["mappings"]}
    t, off, addr = swapped
    (entry,) = run("--swap", f"{t}:{off:#x}", "--json")
    assert (entry["type"], entry["offset"]) == (t, off)
    assert (tgid, addr) in {(h["pid"], h["address"]) for h in entry["holders"]}
    with pytest.raises(ValueError):
        run("--swap", "nonsense")
    with pytest.raises(ValueError):
        run()
