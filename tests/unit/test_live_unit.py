# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests for the pieces behind the live and kdump modes, on synthetic input (the real thing is in
test_live.py and test_kdump.py): a PTE table that changes while the walker reads it, and makedumpfile's
flattened format."""

import struct

import pytest

from drgn_ptwalk.arch.x86_64 import X86_64Decoder
from drgn_ptwalk.entry import PtType
from drgn_ptwalk.vmatree import LIVE_RETRIES
from drgn_ptwalk.walk import walk_tables
from test_walk_unit import X86_PTE, FakeMemory, _check_cover
from vmcores.flattened import FlattenedError, rearrange

BASE = 0x400000  # one PMD slot: [BASE, BASE + 2 MiB)


class RacingMemory(FakeMemory):
    """FakeMemory where reading a table can run a hook (the kernel changing the tables meanwhile), and
    single slots can be read back (the walker's re-check)."""

    def __init__(self, dec):
        super().__init__(dec)
        self.hooks = {}

    def read(self, addr, n, physical):
        if n == 1 and addr not in self.tables:
            base = max(b for b in self.tables if b <= addr)
            return (self.tables[base][(addr - base) // 8],)
        data = super().read(addr, n, physical)
        hook = self.hooks.get(addr)
        if hook:
            hook()
        return data


def _setup():
    d = X86_64Decoder()
    m = RacingMemory(d)
    m.table_bits = 0x67
    m.root = m.new_table(d.levels[0][2])
    m.set(BASE, (0xAAAA << 12) | X86_PTE)
    pmd = m.walk_down(m.root, BASE, 2)
    slot = (BASE >> 21) & 511
    return d, m, pmd, slot


def _walk(m, live):
    ents = list(walk_tables(m.dec, m.read, m.root, True, [(BASE, BASE + (2 << 20), None)], live=live))
    _check_cover(ents, BASE, BASE + (2 << 20))
    return ents


def _pfns(ents):
    return [e.pfn for e in ents if e.type == PtType.FOLIO]


def test_replaced_pte_table_is_followed():
    d, m, pmd, slot = _setup()
    old = d.table_addr(m.tables[pmd][slot])
    new = m.new_table(512)
    m.tables[new][0] = (0xBBBB << 12) | X86_PTE

    def replace():
        m.tables[pmd][slot] = new | 0x67
        m.hooks.pop(old)

    m.hooks[old] = replace
    assert _pfns(_walk(m, live=True)) == [0xBBBB]  # what the PMD points to now
    m.tables[pmd][slot] = old | 0x67
    m.hooks[old] = replace
    assert _pfns(_walk(m, live=False)) == [0xAAAA]  # a dump does not change: no re-check


def test_unlinked_pte_table_is_a_hole():
    d, m, pmd, slot = _setup()
    old = d.table_addr(m.tables[pmd][slot])

    def unmap():
        m.tables[pmd][slot] = 0
        m.tables[old][0] = 0xFFFF888812345678  # freed and reused: not PTEs any more

    m.hooks[old] = unmap
    ents = _walk(m, live=True)
    assert [e.type for e in ents] == [PtType.NONE]


def test_table_that_never_settles_is_an_error():
    d, m, pmd, slot = _setup()
    count = [0]

    def churn():
        count[0] += 1
        t = m.new_table(512)
        m.tables[t][0] = ((0xC000 + count[0]) << 12) | X86_PTE
        m.hooks[t] = churn
        m.tables[pmd][slot] = t | 0x67

    m.hooks[d.table_addr(m.tables[pmd][slot])] = churn
    ents = _walk(m, live=True)
    assert [e.type for e in ents] == [PtType.ERROR]
    assert "changed under the walk" in ents[0].reason and ents[0].level.name == "PTE"
    assert count[0] == 1 + LIVE_RETRIES  # the first read, then each re-read found it changed again


def _flat(records, end=True):
    head = b"makedumpfile\0\0\0\0" + struct.pack(">qq", 1, 1)
    out = head.ljust(4096, b"\0")
    for off, data in records:
        out += struct.pack(">qq", off, len(data)) + data
    if end:
        out += struct.pack(">qq", -1, -1)
    return out


def test_flattened_rearranged(tmp_path):
    src = tmp_path / "disk"
    # Records out of order, one overwriting part of another (makedumpfile rewrites its headers last).
    src.write_bytes(_flat([(8192, b"C" * 100), (0, b"A" * 4096), (4096, b"B" * 4096), (10, b"xy")])
                    + b"\0" * 5000)  # the rest of the disk
    dest = tmp_path / "dump"
    assert rearrange(src, dest) == 8292
    data = dest.read_bytes()
    assert data[:10] == b"A" * 10 and data[10:12] == b"xy" and data[4096:8192] == b"B" * 4096
    assert data[8192:] == b"C" * 100


@pytest.mark.parametrize("stream,msg", [
    (b"\0" * 8192, "does not start"),
    (_flat([(0, b"A" * 10)], end=False), "ends early"),
    (_flat([(-5, b"A")]), "bad record"),
])
def test_flattened_bad_input(tmp_path, stream, msg):
    src = tmp_path / "disk"
    src.write_bytes(stream)
    with pytest.raises(FlattenedError, match=msg):
        rearrange(src, tmp_path / "dump")
    assert not (tmp_path / "dump").exists()


# ---------------------------------------------------------------------------------------------------------
# The churn rule (vmcores/livecheck.py), judged on synthetic walks: what test_live.py and the in-guest check
# count as a misreport.

PS = 4096


class WordMemory:
    """Physical memory as the first word of each page (the churn process signs pages with their address)."""

    def __init__(self, words):
        self.words = words

    def read(self, addr, n, physical):
        assert physical and n == 8
        return self.words.get(addr // PS, 0).to_bytes(8, "little")


def _folio(start, pages, pfn):
    from drgn_ptwalk.entry import PtEntry, PtLevel

    return PtEntry(PtType.FOLIO, PtLevel.PTE, start, start + pages * PS, pfn=pfn)


def _judge(entries, words, now=None, monkeypatch=None):
    import drgn_ptwalk
    from vmcores.livecheck import ChurnTally, judge_churn_walk

    if monkeypatch is not None:
        # the re-check's walk of one page: what the page table maps there now
        monkeypatch.setattr(drgn_ptwalk, "pt_range_walk", lambda mm, a, b: [e for e in now if e.start <= a < e.end])
    tally = ChurnTally()
    judge_churn_walk(WordMemory(words), None, entries, PS, tally)
    return tally


def test_churn_walk_signed_pages_pass():
    from vmcores.livecheck import CHURN_LO

    a = CHURN_LO + 8 * PS
    t = _judge([_folio(a, 4, 0x100)], {0x100: a, 0x102: a + 2 * PS, 0x103: 0})
    assert not t.bad and t.checked == 3 and t.raced == 0 and t.walks == 1


def test_churn_walk_foreign_page_still_mapped_is_a_misreport(monkeypatch):
    from vmcores.livecheck import CHURN_LO

    a = CHURN_LO
    f = _folio(a, 1, 0x200)
    t = _judge([f], {0x200: 0xdead000}, now=[f], monkeypatch=monkeypatch)
    assert t.raced == 1 and len(t.bad) == 1 and "still mapped" in t.bad[0]


def test_churn_walk_page_remapped_since_is_a_race(monkeypatch):
    from vmcores.livecheck import CHURN_LO

    a = CHURN_LO
    t = _judge([_folio(a, 1, 0x200)], {0x200: 0xdead000}, now=[_folio(a, 1, 0x300)], monkeypatch=monkeypatch)
    assert t.raced == 1 and not t.bad


def test_churn_walk_out_of_order_and_file_entries_are_misreports():
    from drgn_ptwalk.entry import PtEntry, PtLevel
    from vmcores.livecheck import CHURN_LO

    a = CHURN_LO + 16 * PS
    t = _judge([_folio(a, 1, 0x10), _folio(a - 8 * PS, 1, 0x11),
                PtEntry(PtType.PFN, PtLevel.PTE, a + PS, a + 2 * PS)], {0x10: a, 0x11: a - 8 * PS})
    assert any("out of order" in b for b in t.bad) and any("only anonymous" in b for b in t.bad)
