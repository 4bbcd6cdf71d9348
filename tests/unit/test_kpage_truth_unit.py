# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests: the kpage truth's console blocks and files (vmcores/qemu.py, vmcores/truth.py), on synthetic
bytes. The guest (workload.c ``cmd_kpage``) sends snapshot A before the dump and the PFNs that differ in
snapshot B after it (bracketed) or, on kdump entries, before the crash; kpage-changed.bin says which."""

import base64
from pathlib import Path
from typing import Dict, List

import pytest

from vmcores import qemu
from vmcores.truth import KPAGE_SCHEMES, parse_kpage_changed, read_kpage, read_kpage_runs


def _varints(*values: int) -> bytes:
    out = bytearray()
    for v in values:
        while True:
            b = v & 0x7F
            v >>= 7
            out.append(b | (0x80 if v else 0))
            if not v:
                break
    return bytes(out)


def _changed(changed: Dict[int, int], overflow: bool = False, scheme=1) -> bytes:
    """kpage-changed.bin as workload.c kpage_send_changed() writes it (``scheme=None``: before the scheme
    was recorded)."""
    words: List[int] = [len(changed)]
    prev = 0
    for pfn in sorted(changed):
        words += [pfn - prev, changed[pfn]]
        prev = pfn
    words.append(int(overflow))
    if scheme is not None:
        words.append(scheme)
    return _varints(*words)


def _kpage_bin(npfn: int, values: List[int]) -> bytes:
    """kpage.bin with every file one run of one value (``values[f]``)."""
    out = b"KPG1" + _varints(npfn, 4096, len(values))
    for v in values:
        out += _varints(1, (npfn - 1) << 5 | 31, v)
    return out


@pytest.mark.parametrize("code, name", sorted(KPAGE_SCHEMES.items()))
def test_changed_schemes(code, name):
    changed = {3: 1, 200: 5, 1 << 30: 7}
    assert parse_kpage_changed(_changed(changed, scheme=code)) == (changed, False, name)


def test_changed_without_scheme_is_before_dump():
    # Builds from before the bracketing end at the overflow flag: their B was read before the dump.
    assert parse_kpage_changed(_changed({}, overflow=True, scheme=None)) == ({}, True, "before-dump")


def test_changed_bad_scheme_or_trailing_bytes():
    with pytest.raises(ValueError, match="scheme"):
        parse_kpage_changed(_changed({1: 1}, scheme=9))
    with pytest.raises(ValueError, match="after the scheme"):
        parse_kpage_changed(_changed({1: 1}) + b"\0")


def _console(*parts: str) -> str:
    return "boot\n" + "".join(parts)


def _block(name: str, data: bytes) -> str:
    begin, end = qemu.KPAGE_BLOCKS[name]
    return f"{begin}\n{base64.encodebytes(data).decode()}{end}\n"


def test_console_blocks_to_truth(tmp_path: Path):
    kpage = _kpage_bin(8, [1 << 10, 1, 0])
    changed = _changed({2: 1, 5: 6})
    before = _console(_block("kpage.bin", kpage), "[kpage] 8 PFNs\n", qemu.READY + "\n")
    # Bracketed: snapshot A sent, READY printed, the changed block only after the dumps.
    assert qemu.awaits_dump_signal(before)
    qemu._extract_blocks(before, tmp_path)
    assert read_kpage(tmp_path).scheme is None, "no changed list yet"
    assert read_kpage(tmp_path).changed_overflow
    after = before + _block("kpage-changed.bin", changed) + "[kpage] reread after the dump\n"
    assert not qemu.awaits_dump_signal(after)
    qemu._extract_blocks(after.split(qemu.READY, 1)[1], tmp_path, only=("kpage-changed.bin",))
    t = read_kpage(tmp_path)
    assert (t.npfn, t.scheme, t.changed, t.changed_overflow) == (8, "bracketed", {2: 1, 5: 6}, False)
    assert list(t.files["kpageflags"]) == [1 << 10] * 8 and list(t.files["kpagecount"]) == [1] * 8


def test_kdump_console_needs_no_signal(tmp_path: Path):
    # A kdump entry sends both blocks before READY (and crashes): nothing to wait for after the dump.
    text = _console(_block("kpage.bin", _kpage_bin(4, [0, 0, 0])),
                    _block("kpage-changed.bin", _changed({}, scheme=0)), qemu.READY + "\n")
    assert not qemu.awaits_dump_signal(text)
    qemu._extract_blocks(text, tmp_path)
    assert read_kpage(tmp_path).scheme == "before-dump"


def test_no_snapshot_needs_no_signal():
    assert not qemu.awaits_dump_signal(_console(qemu.KPAGE_FAILED + " no /proc/kpageflags\n", qemu.READY))
    # A block cut short (the guest still sending) is not complete: nothing is extracted from it.
    assert not qemu.awaits_dump_signal(_console(qemu.KPAGE_BLOCKS["kpage.bin"][0] + "\nAAAA"))


def _runs_bin(npfn: int, runs: List[List[int]]) -> bytes:
    """kpage.bin with file f the runs ``runs[f]`` ([count, value, count, value, ...]), each value sent as
    new (index 31) or, when seen before, by its move-to-front index, as workload.c cmd_kpage() does."""
    out = b"KPG1" + _varints(npfn, 4096, len(runs))
    for pairs in runs:
        out += _varints(1)
        tab: List[int] = []
        for count, value in zip(pairs[::2], pairs[1::2]):
            if value in tab:
                out += _varints((count - 1) << 5 | tab.index(value))
                tab.remove(value)
            else:
                out += _varints((count - 1) << 5 | 31, value)
            tab.insert(0, value)
    return out


def test_runs_reader_windows(tmp_path: Path):
    """read_kpage_runs() (the truth as runs, for guests too large to expand) gives, window by window, the
    values the runs say; read_kpage() expands the same."""
    runs = [[3, 7, 5, 1 << 40, 1, 7, 2, 9, 4, 1 << 40], [15, 0], [1, 0, 14, 5]]
    (tmp_path / "kpage.bin").write_bytes(_runs_bin(15, runs))
    npfn, page_size, files = read_kpage_runs(tmp_path)
    assert (npfn, page_size) == (15, 4096)
    whole = read_kpage(tmp_path)
    for name, pairs in zip(("kpageflags", "kpagecount", "kpagecgroup"), runs):
        want = [v for count, v in zip(pairs[::2], pairs[1::2]) for _ in range(count)]
        assert list(whole.files[name]) == want
        r = files[name]
        assert len(r.starts) == len(pairs) // 2
        for a in range(npfn + 1):
            for b in range(a, npfn + 3):
                assert list(r.window(a, b)) == want[a:b], (name, a, b)
