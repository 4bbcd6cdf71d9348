# SPDX-License-Identifier: LGPL-2.1-or-later
"""The scale guests (the workload's ``scale`` set, vmcores/scale.c): 10,000 small processes and a
100,000-VMA one, judged against what the guest kernel printed (``truth/scale/``).

* memtop: its row of every scale process (children, parents, the VMA processes) equals that process's
  /proc/PID/smaps_rollup (Rss, Pss, Pss_Anon, Pss_File, Pss_Shmem, Swap, the hugetlb lines), and it has a row
  for each of them.
* whomaps of the workload text page every child runs: exactly the processes whose pagemap maps that PFN
  there, and each one's pagemap entry of that page is the kernel's.
* the 100,000-VMA process: its maps/smaps/smaps_rollup/numa_maps/pagemap are judged by test_procfs.py (it is
  in pids.json), its range queries by test_vmarange.py (the process with the most VMAs); here, that it has
  the VMAs the scenario made.

The per-entry tests of the other modules run on these entries too (they are in the matrix).
"""

import json
import re
from array import array
from typing import Dict, List, Tuple

import pytest
from drgn.helpers.linux.pid import find_task

from conftest import _matrix, get_vmcore
from drgn_ptwalk._byteorder import is_big_endian
from drgn_ptwalk.procfs import pagemap
from drgn_ptwalk.procfs.memtop import memtop
from drgn_ptwalk.rmap import whomaps
from vmcores import build as vbuild

_FIELDS = {"Rss": "rss_kb", "Pss": "pss_kb", "Pss_Anon": "anon_kb", "Pss_File": "file_kb",
           "Pss_Shmem": "shmem_kb", "Swap": "swap_kb"}


def _scale_ids() -> List[str]:
    scale = {k["id"] for k in vbuild.manifest() if k.get("scenario") == "scale"}
    return [n for n in _matrix() if n.split(":")[0] in scale]


def pytest_generate_tests(metafunc):
    if "scale_vmcore" in metafunc.fixturenames:
        metafunc.parametrize("scale_vmcore", _scale_ids(), indirect=True, scope="module")


@pytest.fixture(scope="module")
def scale_vmcore(request):
    return get_vmcore(request.param)


def _scale_truth(v) -> Tuple[Dict, Dict[int, Dict[str, int]]]:
    """scale.json, and pid -> smaps_rollup field -> kB (each rollup read once)."""
    d = v.truth / "scale"
    assert (d / "scale.json").is_file(), f"{v.name}: no truth/scale/scale.json (the scale set did not run)"
    meta = json.loads((d / "scale.json").read_text())
    rollups: Dict[int, Dict[str, int]] = {}
    for block in re.split(r"^==> (\d+) <==\n", (d / "smaps_rollup").read_text(), flags=re.M)[1:]:
        if block.isdigit():
            pid = int(block)
            rollups[pid] = {}
            continue
        for line in block.splitlines():
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                rollups[pid][m.group(1)] = int(m.group(2))
    return meta, rollups


_TRUTH: Dict[str, Tuple[Dict, Dict[int, Dict[str, int]]]] = {}


def _truth(v):
    if v.name not in _TRUTH:
        _TRUTH[v.name] = _scale_truth(v)
    return _TRUTH[v.name]


def test_scale_truth_is_complete(scale_vmcore):
    """The guest made what the entry asks: every child listed and its rollup captured."""
    meta, rollups = _truth(scale_vmcore)
    children = [c for kids in meta["parents"].values() for c in kids]
    env = dict(kv.split("=", 1) for kv in vbuild.entry(scale_vmcore.id).get("append", "").split() if "=" in kv)
    want = int(env.get("PTWALK_SCALE_PROCS", 10000))
    assert len(children) == want, f"{len(children)} children listed, the entry asks {want}"
    missing = [c for c in children if c not in rollups]
    assert not missing, f"{len(missing)} children without a captured smaps_rollup: {missing[:5]}"
    vmas = len((scale_vmcore.pid_dir(scale_vmcore.pids["scalevmas"]) / "maps").read_text().splitlines())
    assert vmas >= int(env.get("PTWALK_SCALE_VMAS", 100000)), f"scalevmas has {vmas} VMAs"
    steps = (scale_vmcore.truth / "steps.log").read_text().splitlines()
    refused = [s for s in steps if s.startswith("scale") and " refused " in s]
    assert not refused, refused


def test_memtop_equals_smaps_rollup(scale_vmcore):
    _, rollups = _truth(scale_vmcore)
    rows = {r.pid: r for r in memtop(scale_vmcore.prog())}
    bad = []
    for pid, want in rollups.items():
        row = rows.get(pid)
        if row is None:
            bad.append(f"{pid}: no memtop row")
            continue
        got = {k: getattr(row, f) for k, f in _FIELDS.items()}
        exp = {k: want.get(k, 0) for k in _FIELDS}
        hugetlb = want.get("Shared_Hugetlb", 0) + want.get("Private_Hugetlb", 0)
        if got != exp or row.hugetlb_kb != hugetlb or row.error:
            bad.append(f"{pid}: rollup {exp} hugetlb {hugetlb}, "
                       f"memtop {got} hugetlb {row.hugetlb_kb} {row.error or ''}")
    print(f"{scale_vmcore.name}: {len(rollups)} rollups against {len(rows)} memtop rows")
    assert not bad, f"{len(bad)} of {len(rollups)} processes differ: " + "; ".join(bad[:6])


def test_whomaps_of_the_shared_text_page(scale_vmcore):
    meta, _ = _truth(scale_vmcore)
    prog = scale_vmcore.prog()
    pfn = meta["shared_text_pfn"]
    addr = int(meta["shared_text"], 16)
    want = {(pid, addr): int(e, 16) for pid, e in meta["mappers"]}
    children = {c for kids in meta["parents"].values() for c in kids}
    assert children <= {p for p, _ in want}, "a child does not map the shared text page (its pagemap)"
    got = {(r.pid, r.address) for r in whomaps(prog, pfn)}
    assert got == set(want), (f"PFN {pfn:#x}: missing {sorted(set(want) - got)[:5]}, "
                              f"extra {sorted(got - set(want))[:5]}")
    ps = scale_vmcore.page_size
    bad = []
    for (pid, a), entry in want.items():
        b = array("Q", pagemap(find_task(prog, pid), a, a + ps))
        if is_big_endian(prog):
            b.byteswap()
        if b[0] != entry:
            bad.append(f"{pid}: kernel {entry:#x}, ours {b[0]:#x}")
    assert not bad, f"{len(bad)} of {len(want)} pagemap entries differ: {bad[:5]}"
