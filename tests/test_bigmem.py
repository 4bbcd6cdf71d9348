# SPDX-License-Identifier: LGPL-2.1-or-later
"""The large-memory guests (kernels.toml entries with the "bigmem" scenario set: 256 GiB and 64 GiB over
two NUMA nodes, mostly free, hugetlb pages in use on both nodes), judged against the guest kernel.

These are benchmark entries: they run when PTWALK_KERNELS names them
(``PTWALK_KERNELS=x86_64-6.12-bigmem python -m pytest tests/test_bigmem.py``).

* /proc/kpageflags, kpagecount and kpagecgroup byte-identical to the guest's for every stable PFN (all of
  them but those whose value changed between the guest's two reads, as tests/test_kpage.py), compared a
  window at a time: neither side is held whole (6.7e7 PFNs at 256 GiB; the truth is read as runs).
* memmap's rows add up to every PFN, and its rows whose kernel counter counts the same pages equal it.
* whomaps of the head page of each hugetlb page in use (2 MiB and 1 GiB, on each node) is exactly the pair
  of processes whose captured pagemaps map it, at the addresses they say.
"""

import json
import os
from collections import defaultdict
from typing import Dict, List, Set, Tuple

import pytest

from conftest import get_vmcore
from drgn_ptwalk.kpage import kpage_values, max_dump_pfn
from drgn_ptwalk.memmap import RULES, memmap
from drgn_ptwalk.rmap import whomaps
from test_memmap import EXACT
from vmcores import build as vbuild
from vmcores.truth import KPAGE_FILES, PM_PFN_MASK, PM_PRESENT, parse_kpage_changed, pids, read_kpage_runs, read_pagemap

WINDOW = 1 << 20
"""PFNs compared at a time (8 MiB per file and side)."""


def _bigmem_names() -> List[str]:
    wanted = [w for w in os.environ.get("PTWALK_KERNELS", "").split(",") if w]
    return [f"{k['id']}:{kind}" for k in vbuild.manifest()
            if k["id"] in wanted and k.get("scenario") == "bigmem" for kind in k["dumps"]]


def pytest_generate_tests(metafunc):
    if "bigmem_vmcore" in metafunc.fixturenames:
        names = _bigmem_names()
        ids = [k["id"] for k in vbuild.manifest() if k.get("scenario") == "bigmem"]
        # Not named: the tests are deselected (tests/conftest.py), as the benchmark entries are left out of
        # the matrix, and the run says so once.
        params = names or [pytest.param(None, marks=pytest.mark.benchmark_entry(
            f"large-memory tests: benchmark entries, run when PTWALK_KERNELS names one of {', '.join(ids)}"))]
        metafunc.parametrize("bigmem_vmcore", params, indirect=True, scope="module")


@pytest.fixture(scope="module")
def bigmem_vmcore(request):
    return get_vmcore(request.param)


def _pagemap_pfns(vmcore) -> Dict[int, Set[Tuple[int, int]]]:
    """PFN -> {(PID, address)} of every present page of every captured pagemap."""
    out: Dict[int, Set[Tuple[int, int]]] = defaultdict(set)
    ps = vmcore.page_size
    for pid in pids(vmcore.truth).values():
        path = vmcore.pid_dir(pid) / "pagemap.bin"
        if not path.is_file():
            continue
        for rec in read_pagemap(path):
            for i, e in enumerate(rec.entries):
                if e & PM_PRESENT:
                    out[e & PM_PFN_MASK].add((pid, rec.start + i * ps))
    return out


def test_bigmem_kpage_files(bigmem_vmcore):
    got_truth = read_kpage_runs(bigmem_vmcore.truth)
    if got_truth is None:
        pytest.fail(f"{bigmem_vmcore.name}: the build has no kpage truth (truth/kpage.bin): rebuild it with "
                    f"`python -m vmcores build {bigmem_vmcore.id}`", pytrace=False)
    npfn, _, files = got_truth
    cpath = bigmem_vmcore.truth / "kpage-changed.bin"
    if not cpath.is_file():
        pytest.fail(f"{bigmem_vmcore.name}: no list of unstable PFNs (truth/kpage-changed.bin): rebuild it",
                    pytrace=False)
    changed, overflow, scheme = parse_kpage_changed(cpath.read_bytes())
    assert not overflow, "more PFNs changed between the guest's two reads than it could list"
    prog = bigmem_vmcore.prog()
    assert max_dump_pfn(prog) == npfn, "where the files end (round_up(max_pfn, PAGES_PER_SECTION))"
    mapped = set(_pagemap_pfns(bigmem_vmcore))
    unstable = {name: {p for p, m in changed.items() if m >> bit & 1} - mapped
                for bit, name in enumerate(KPAGE_FILES)}
    bad: Dict[str, List[Tuple[int, int, int]]] = {name: [] for name in KPAGE_FILES}
    compared = dict.fromkeys(KPAGE_FILES, 0)
    for a in range(0, npfn, WINDOW):
        b = min(a + WINDOW, npfn)
        got = kpage_values(prog, a, b)
        for name, have in zip(KPAGE_FILES, (got.flags, got.count, got.cgroup)):
            runs = files[name]
            if runs is None:
                pytest.fail(f"{bigmem_vmcore.name}: the guest could not read /proc/{name}", pytrace=False)
            want = runs.window(a, b)
            skip = [p - a for p in unstable[name] if a <= p < b]
            for i in skip:
                want[i] = have[i]
            compared[name] += (b - a) - len(skip)
            if have != want:
                bad[name] += [(a + i, want[i], have[i]) for i in range(b - a) if have[i] != want[i]][:5]
    print(f"{bigmem_vmcore.name}: {npfn:,} PFNs, snapshot B {scheme}; "
          + "; ".join(f"{n}: {compared[n]:,} compared, {len(unstable[n])} unstable" for n in KPAGE_FILES))
    assert not any(bad.values()), "; ".join(
        f"{n}: e.g. " + ", ".join(f"{p:#x}: kernel {w:#x} dump {h:#x}" for p, w, h in v[:5])
        for n, v in bad.items() if v)


def test_bigmem_memmap_adds_up(bigmem_vmcore):
    """memmap's rows and census cover every PFN once, its exact rows equal the kernel's counters
    (tests/test_memmap.py's rules), and the hugetlb row is the entry's pools."""
    prog = bigmem_vmcore.prog()
    res = memmap(prog)
    rows = {r.name: r for r in res.rows}
    assert set(rows) == set(RULES)
    assert res.total == max_dump_pfn(prog) == sum(r.pages for r in res.rows) == sum(n for _, n in res.census)
    wrong = {name: rows[name] for name in EXACT if rows[name].counter != rows[name].pages}
    assert not wrong, f"rows whose kernel counter counts the same pages differ from it: {wrong}"
    # the boot-time pools of the entry: 2 x 1 GiB and 64 x 2 MiB on each node
    assert rows["hugetlb"].pages == 4 * (1 << 18) + 128 * (1 << 9)
    assert rows["free"].pages > res.total // 2, "most of a large guest is free"


def _node_of(prog, pfn: int) -> int:
    for nid in range(int(prog["nr_online_nodes"])):
        node = prog["node_data"][nid]
        start = int(node.node_start_pfn)
        if start <= pfn < start + int(node.node_spanned_pages):
            return nid
    raise AssertionError(f"PFN {pfn:#x} is on no node")


def test_bigmem_whomaps_hugetlb_per_node(bigmem_vmcore):
    prog = bigmem_vmcore.prog()
    mapped = _pagemap_pfns(bigmem_vmcore)
    p = pids(bigmem_vmcore.truth)
    assert "bignuma" in p and "bignuma_peer" in p, f"the bignuma processes are not in the truth: {sorted(p)}"
    regions = json.loads((bigmem_vmcore.pid_dir(p["bignuma"]) / "scenario.json").read_text())["regions"]
    heads = {}
    for r in regions:
        if r["expect"] != "hugetlb-shared-both-present":
            continue
        start = int(r["start"], 16)
        pfns = [pfn for pfn, who in mapped.items() if (p["bignuma"], start) in who]
        assert len(pfns) == 1, (r["label"], pfns)
        heads[r["label"]] = pfns[0]
    want_labels = {f"bignuma_{k}_node{n}" for k in ("2m", "1g") for n in (0, 1)}
    assert set(heads) == want_labels, f"hugetlb regions in use: {sorted(heads)}"
    for label, pfn in sorted(heads.items()):
        assert _node_of(prog, pfn) == int(label[-1]), (label, hex(pfn))
        got = {(w.pid, w.address) for w in whomaps(prog, pfn)}
        assert got == mapped[pfn], (label, hex(pfn), sorted(got), sorted(mapped[pfn]))
        assert {pid for pid, _ in got} == {p["bignuma"], p["bignuma_peer"]}, label
