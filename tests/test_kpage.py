# SPDX-License-Identifier: LGPL-2.1-or-later
"""The judge for drgn_ptwalk.kpage: /proc/kpageflags, kpagecount and kpagecgroup byte-identical to what the
guest kernel returned, for every PFN.

The guest (``workload kpage``, init's last step) read the three files for every PFN (snapshot A), sent them,
waited for the host to dump it, read them again (snapshot B) and listed the PFNs whose value changed: those
are *unstable* and not compared (scheme "bracketed": A and B bracket the dump). A kdump entry's guest
crashes into its capture kernel and cannot read after the dump: its B is read before the crash (scheme
"before-dump"), so a page changing between B and the crash is not known. Every other PFN must be identical,
and so must every PFN a stopped workload process maps (from its captured pagemap), unstable or not. A bit the
dump cannot hold would be named by :func:`~drgn_ptwalk.kpage.kpage_unsupported` and excluded with its count;
the reference kernels have none.

A summary per dump (PFNs compared, unstable by kind, mismatches) is printed at the end of the session.
"""

import sys
from array import array
from collections import Counter
from typing import Dict, List, Set

import pytest

from drgn_ptwalk._byteorder import byte_order
from drgn_ptwalk.kpage import KPF, kpage_unsupported, kpage_values, kpagecgroup, kpagecount, kpageflags, max_dump_pfn
from vmcores.truth import KPAGE_FILES, PM_PFN_MASK, PM_PRESENT, pids, read_kpage, read_pagemap

_REPORT: Dict[str, List[str]] = {}
_NAMES = {}
for _n, _b in KPF.items():
    _NAMES.setdefault(_b, _n)


def _kind(flags: int) -> str:
    """A short class of a kpageflags value, for the unstable report."""
    for name in ("NOPAGE", "BUDDY", "SLAB", "PGTABLE", "HUGE", "THP", "ANON", "LRU"):
        if flags >> KPF[name] & 1:
            return name.lower()
    return "other"


class _Reporter:
    def pytest_terminal_summary(self, terminalreporter):
        if not _REPORT:
            return
        terminalreporter.section("kpage conformance (/proc/kpageflags, kpagecount, kpagecgroup)")
        for name in sorted(_REPORT):
            for line in _REPORT[name]:
                terminalreporter.write_line(f"{name}: {line}")


@pytest.fixture(scope="session", autouse=True)
def _kpage_report(request):
    request.config.pluginmanager.register(_Reporter(), "ptwalk-kpage-report")
    yield


def _mapped_pfns(vmcore) -> Set[int]:
    out: Set[int] = set()
    for _name, pid in pids(vmcore.truth).items():
        path = vmcore.pid_dir(pid) / "pagemap.bin"
        if not path.is_file():
            continue
        for rec in read_pagemap(path):
            out.update(e & PM_PFN_MASK for e in rec.entries if e & PM_PRESENT)
    return out


def _file_bytes(prog, values: array) -> bytes:
    """*values* as the kernel's file holds them: u64s in its byte order."""
    out = array("Q", values)
    if byte_order(prog) != sys.byteorder:
        out.byteswap()
    return out.tobytes()


def _flags_names(v: int) -> str:
    return "|".join(_NAMES.get(b, str(b)) for b in range(64) if v >> b & 1) or "0"


def test_kpage_files(kpage_vmcore):
    truth = read_kpage(kpage_vmcore.truth)
    if truth is None:
        pytest.fail(f"{kpage_vmcore.name}: the build has no kpage truth (truth/kpage.bin): rebuild it with "
                    f"`python -m vmcores build {kpage_vmcore.id}`", pytrace=False)
    if truth.scheme is None:
        pytest.fail(f"{kpage_vmcore.name}: the build has no list of unstable PFNs (truth/kpage-changed.bin): "
                    f"rebuild it with `python -m vmcores build {kpage_vmcore.id}`", pytrace=False)
    if truth.changed_overflow:
        pytest.fail(f"{kpage_vmcore.name}: more PFNs changed while the guest sent its kpage truth than it could "
                    "list; nothing can be compared", pytrace=False)
    prog = kpage_vmcore.prog()
    assert kpage_unsupported(prog) == [], "a kpage bit the dump cannot hold on a reference kernel"
    assert max_dump_pfn(prog) == truth.npfn, "where the files end (round_up(max_pfn, PAGES_PER_SECTION))"
    got = kpage_values(prog, 0, truth.npfn)
    # each file computed alone (its own pass: memcg_data is read for kpagecgroup only) is the same values,
    # as the file's bytes: u64s in the kernel's byte order (big-endian on s390x)
    for fn, values in ((kpageflags, got.flags), (kpagecount, got.count), (kpagecgroup, got.cgroup)):
        assert fn(prog, 0, truth.npfn) == _file_bytes(prog, values), \
            f"{fn.__name__}() alone differs from kpage_values()"
    mapped = _mapped_pfns(kpage_vmcore)
    lines = [f"snapshot B read {'after the dumps (bracketed)' if truth.scheme == 'bracketed' else 'before the dump'}: "
             f"{len(truth.changed)} PFNs changed between A and B"]
    failures = []
    files = {"kpageflags": got.flags, "kpagecount": got.count, "kpagecgroup": got.cgroup}
    for bit, name in enumerate(KPAGE_FILES):
        want = truth.files[name]
        if want is None:
            failures.append(f"{name}: the guest could not read it")
            continue
        have: array = files[name]
        assert len(have) == len(want)
        unstable = {pfn for pfn, mask in truth.changed.items() if mask >> bit & 1} - mapped
        bad = [pfn for pfn in range(truth.npfn) if have[pfn] != want[pfn] and pfn not in unstable]
        kinds = Counter(_kind(truth.files["kpageflags"][pfn]) for pfn in unstable)
        kinds_text = ", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "none"
        lines.append(f"{name}: {truth.npfn - len(unstable)} PFNs compared ({len(mapped)} mapped by the "
                     f"workload), {len(unstable)} unstable ({kinds_text}), {len(bad)} differ")
        if bad:
            ex = ", ".join(
                f"{pfn:#x}: kernel {want[pfn]:#x} ({_flags_names(want[pfn])}) dump {have[pfn]:#x} "
                f"({_flags_names(have[pfn])})" if name == "kpageflags"
                else f"{pfn:#x}: kernel {want[pfn]} dump {have[pfn]}" for pfn in bad[:5])
            failures.append(f"{name}: {len(bad)} PFNs differ, e.g. {ex}")
    lines.append("bits a dump cannot hold: none on this kernel")
    _REPORT[kpage_vmcore.name] = lines
    print("\n".join(lines))
    assert not failures, "\n".join(failures)


def test_kpage_without_numpy_is_the_same(kpage_vmcore, monkeypatch):
    """The scans without numpy (bytes and memoryview compares) give the same three files as with it, on
    every PFN: test_kpage_files judges the numpy path against the kernel, this one the other path."""
    import drgn_ptwalk.kpage.scan as kpage_mod

    prog = kpage_vmcore.prog()
    if kpage_mod._np is None:
        pytest.fail("numpy is not installed: `pip install numpy` (the `test` extra has it)", pytrace=False)
    end = max_dump_pfn(prog)
    fast = kpage_values(prog, 0, end)
    monkeypatch.setattr(kpage_mod, "_np", None)
    slow = kpage_values(prog, 0, end)
    for name in ("flags", "count", "cgroup"):
        a, b = getattr(fast, name), getattr(slow, name)
        bad = [i for i in range(len(a)) if a[i] != b[i]] if a != b else []
        assert len(a) == len(b) and not bad, f"{name}: {len(bad)} PFNs differ, first {[hex(i) for i in bad[:8]]}"


def test_kpage_ranges_are_slices_of_the_file(default_vmcore):
    """A range read is what reading the file at ``start * 8`` returns: a slice of the whole file, cut at its
    end (a read past it returns nothing); a reversed range is refused."""
    prog = default_vmcore.prog()
    end = max_dump_pfn(prog)
    whole = kpage_values(prog, 0, end)
    for a, b in ((0, 1), (12345, 99999), (0x40000 - 3, 0x40000 + 5), (end - 2, end + 100), (end, end + 8)):
        part = kpage_values(prog, a, b)
        for name, fn in (("flags", kpageflags), ("count", kpagecount), ("cgroup", kpagecgroup)):
            assert getattr(part, name).tolist() == getattr(whole, name)[a:b].tolist(), (name, a, b)
            assert fn(prog, a, b) == _file_bytes(prog, getattr(whole, name)[a:b]), (fn.__name__, a, b)
    for fn in (kpage_values, kpageflags, kpagecount, kpagecgroup):
        with pytest.raises(ValueError):
            fn(prog, 5, 2)
