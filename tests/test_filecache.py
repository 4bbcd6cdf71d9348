# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn_ptwalk.filecache against the kernel: on every guest that ran the default scenario set, the files of
the ``filecache`` scenario (ext4, xfs, tmpfs, a memfd, unlinked files; read whole or in part, written, mapped
by two processes, partly evicted) have exactly the page-cache residency the guest recorded right before the
capture (``<pid>/filecache.json``: ``cachestat()``, or ``mincore()`` where the kernel has no cachestat), at
the path, device and inode number the guest saw; and on every dump the sums equal the kernel's counters
folded as memmap folds them (NR_SHMEM, NR_FILE_DIRTY, NR_FILE_PAGES = page cache + swap cache)."""

import json
from typing import Dict, Tuple

from drgn_ptwalk.filecache import CachedFile, FileCacheSummary, filecache

_results: Dict[str, FileCacheSummary] = {}


def _filecache(vmcore) -> FileCacheSummary:
    if vmcore.name not in _results:
        _results[vmcore.name] = filecache(vmcore.prog())
    return _results[vmcore.name]


def _truth(vmcore):
    pids = json.loads((vmcore.truth / "pids.json").read_text())
    if "filecache" not in pids:
        return None
    path = vmcore.pid_dir(pids["filecache"]) / "filecache.json"
    assert path.exists(), f"{vmcore.name}: the filecache scenario ran but left no {path}"
    return json.loads(path.read_text())


def test_filecache_files_exact(vmcore):
    res = _filecache(vmcore)
    truth = _truth(vmcore)
    scenario = getattr(vmcore, "scenario", "default")
    if truth is None:
        # The realuser and bench guests run other scenario sets: no recorded files; the totals are judged.
        assert scenario != "default", (f"{vmcore.name}: the default scenario set ran without the filecache "
                                       "scenario: rebuild the dump (python -m vmcores build)")
        print(f"{vmcore.name}: scenario set {scenario!r} records no files; totals judged only")
        return
    assert truth["page_size"] == res.page_size
    by_id: Dict[Tuple[str, int], CachedFile] = {(f.dev, f.ino): f for f in res.files}
    assert len(truth["files"]) >= 19, f"{vmcore.name}: only {len(truth['files'])} files recorded"
    problems = []
    for t in truth["files"]:
        f = by_id.get((t["dev"], t["ino"]))
        if f is None:
            if t["cached"] or t.get("evicted"):
                problems.append(f"{t['label']}: {t['path']} ({t['dev']} ino {t['ino']}) not found")
            continue
        got = {"path": f.path, "cached": f.pages, "mapped_by": f.mapped, "size": f.size}
        want = {"path": t["path"], "cached": t["cached"], "mapped_by": t["mapped_by"], "size": t["size"]}
        if truth["method"] == "cachestat":
            got.update(dirty=f.dirty, writeback=f.writeback, evicted=f.evicted)
            want.update(dirty=t["dirty"], writeback=t["writeback"], evicted=t["evicted"])
        if got != want:
            problems.append(f"{t['label']}: got {got}, the kernel said {want}")
        if f.error:
            problems.append(f"{t['label']}: {f.error}")
    print(f"{vmcore.name}: {len(truth['files'])} files by {truth['method']}, {len(problems)} differ")
    assert not problems, "\n".join(problems)
    kinds = {t["label"]: by_id[(t["dev"], t["ino"])].kind for t in truth["files"] if (t["dev"], t["ino"]) in by_id}
    assert kinds.get("memfd") == "memfd" and kinds.get("tmpfs-full") == "shmem", kinds
    assert all(k == "file" for label, k in kinds.items() if label.startswith(("ext4", "xfs"))), kinds


def test_filecache_totals_equal_counters(vmcore):
    res = _filecache(vmcore)
    c, t = res.counters, res.totals
    assert not [f for f in res.files if f.error], [(f.path, f.error) for f in res.files if f.error]
    assert not res.warnings, res.warnings
    assert t["pages"] == sum(f.pages for f in res.files if f.kind != "hugetlbfs")
    assert sum(s.pages for s in res.super_blocks) == t["pages"] + t["hugetlbfs"]
    assert c["nr_shmem"] == t["shmem"], (c, t)
    assert c["nr_dirty"] == t["dirty"], (c, t)
    assert c["nr_writeback"] is not None and c["nr_writeback"] >= t["writeback"], (c, t)
    swapcache = c["nr_swapcache"]
    assert swapcache is not None, "NR_SWAPCACHE (v5.13) not found"
    assert c["nr_file_pages"] == t["pages"] + swapcache, (c, t)
    # sorted, most pages first
    assert [f.pages for f in res.files] == sorted((f.pages for f in res.files), reverse=True)
