# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests: how drgn_ptwalk.kpage cuts a section's ``struct page`` bytes into runs, on synthetic pages.

A run must hold pages equal in every field the values are computed from (masked flags, mapping type bits,
refcount, mapcount, memcg_data) and start at every place the caller knows the folio or free-block coverage
changes; fields nothing reads (lru, index, private, flags bits no rule tests) must not matter. The values
themselves are judged against real kernels by tests/test_kpage.py.
"""

import random
import struct
from array import array
from typing import List, Optional

import pytest

import drgn_ptwalk.kpage.scan as kpage_mod
from drgn_ptwalk.kpage.context import KpageContext
from drgn_ptwalk.kpage.scan import _DENSE_GAP, _DENSE_MIN
from drgn_ptwalk.kpage.scan import dense as _dense
from drgn_ptwalk.kpage.scan import keys_at as _keys_at
from drgn_ptwalk.kpage.scan import make_scan as _scan
from drgn_ptwalk.kpage.scan import run_starts as _run_starts
from drgn_ptwalk.page import PageLayout


@pytest.fixture(params=["numpy", "bytes"], autouse=True)
def scans(request, monkeypatch):
    """Each test runs with numpy's scans and with the bytes/memoryview ones (numpy not installed)."""
    if request.param == "bytes":
        monkeypatch.setattr(kpage_mod, "_np", None)
    elif kpage_mod._np is None:
        pytest.fail("numpy is not installed: `pip install numpy` (the `test` extra has it)", pytrace=False)
    return request.param

# A 64-byte struct page laid out as x86-64's (v6.12): flags, lru/compound_head, lru, mapping, index,
# private, _mapcount, _refcount, memcg_data.
_PG = {"locked": 0, "referenced": 2, "uptodate": 3, "dirty": 4, "lru": 5, "head": 6, "active": 8,
       "swapbacked": 17, "swapcache": 10, "slab": 9, "reserved": 13, "hwpoison": 20, "idle": 22}
_MASK = sum(1 << b for b in _PG.values())


def _lay(**kw) -> PageLayout:
    fields = dict(vmemmap=0, size=64, flags=0, refcount=52, mapcount=48, mapping=24, info=8, info_is_mask=False,
                  fake_heads=True, pg_head=_PG["head"], order_offset=64)
    fields.update(kw)
    return PageLayout(**fields)


def _ctx(memcg: bool = True) -> KpageContext:
    fields = dict.fromkeys(KpageContext._fields)
    fields.update(lay=_lay(), scheme="folio", private=40, memcg=56 if memcg else None, pg=_PG, pgty={})
    return KpageContext(**fields)


def _page(flags: int = 0, lru: int = 0, mapping: int = 0, index: int = 0, private: int = 0,
          mapcount: int = -1, refcount: int = 0, memcg: int = 0) -> bytearray:
    return bytearray(struct.pack("<QQQQQQiIQ", flags, lru, lru ^ 0x40, mapping, index, private, mapcount,
                                 refcount, memcg))


def _key(p: bytes, memcg: bool, covered: int) -> tuple:
    flags, _, _, mapping, _, _, mc, rc, mg = struct.unpack("<QQQQQQiIQ", p)
    # _refcount is read in free blocks only (a free block's tail with no reference is KPF_BUDDY)
    return (flags & _MASK, mapping & 3, mc, rc if covered else 0, mg if memcg else 0)


def _check(pages: List[bytearray], known: List[int], memcg: bool = True, covered: Optional[bytes] = None) -> List[int]:
    """_run_starts over *pages*, checked against the definition: every change of a page's key starts a
    run, every known index does, and no run holds two keys. *covered* (one byte per page, 1 in free
    blocks) changes only at *known* indexes, as the caller's free-block scan guarantees."""
    ctx = _ctx(memcg)
    buf = b"".join(pages)
    starts = _run_starts(ctx, _scan(ctx, memcg), buf, known, covered)
    assert starts == sorted(set(starts))
    assert starts[0] == known[0] and starts[-1] == known[-1]
    assert set(known) <= set(starts)
    cov = covered if covered is not None else bytes(len(pages))
    keys = [_key(p, memcg, cov[i]) for i, p in enumerate(pages)]
    changes = {i for i in range(known[0] + 1, known[-1]) if keys[i] != keys[i - 1]}
    assert changes <= set(starts), sorted(changes - set(starts))[:10]
    for a, b in zip(starts, starts[1:]):
        assert len(set(keys[a:b])) == 1, (a, b)
    return starts


def test_uniform_stretch_is_one_run():
    # Anonymous pages: lru and index differ on every page, the fields read do not.
    pages = [_page(flags=0x28, lru=0x1000 + 64 * i, mapping=0x5001, index=i, mapcount=0, refcount=1,
                   memcg=0xFFFF888000001000) for i in range(4096)]
    assert _check(pages, [0, 4096]) == [0, 4096]


def test_unread_bits_do_not_cut():
    # PG_waiters-like bit 7 and the node/zone bits at the top are not read by any rule: one run.
    pages = [_page(flags=0x28 | (0x80 if i % 3 else 0) | ((i % 5) << 58), lru=64 * i, mapping=0x5001 + (i % 7) * 8,
                   refcount=1, mapcount=0) for i in range(2000)]
    starts = _check(pages, [0, 2000])
    assert len(starts) < 40  # the halving marks (stretches are compared word by word first), no per-page runs


def test_every_field_read_cuts():
    n = 3000
    pages = [_page(flags=0x28, lru=64 * i, mapping=0x5001, index=i, mapcount=0, refcount=1, memcg=0x1000)
             for i in range(n)]
    pages[100][0] |= 1 << _PG["dirty"]                                # flags
    pages[700][24] = 0x02                                            # mapping type bits only
    struct.pack_into("<I", pages[1500], 52, 0)                        # refcount
    struct.pack_into("<i", pages[1501], 48, -129)                     # mapcount / page type
    struct.pack_into("<Q", pages[2999], 56, 0x2000)                   # memcg_data, last page
    starts = _check(pages, [0, n])
    for i in (100, 101, 700, 701, 1501, 1502, 2999):
        assert i in starts


def test_refcount_cuts_in_free_blocks_only():
    # Tails of free blocks: one with a reference (being allocated) is not KPF_BUDDY.
    n = 2048
    pages = [_page(mapcount=-1, refcount=0) for _ in range(n)]
    for i in (300, 301, 1500):
        struct.pack_into("<I", pages[i], 52, 1)
    covered = bytes(1024) + b"\1" * 1024
    starts = _check(pages, [0, 1024, n], covered=covered)
    assert {1500, 1501} <= set(starts) and not {300, 301} & set(starts)
    assert starts[:2] == [0, 1024]  # one run before the free block: its _refcount is not read
    # a stretch scanned lane by lane (changes close together) that holds both
    for i in range(1000, 1100, 7):
        struct.pack_into("<I", pages[i], 52, 2)
    for i in range(1024, 1100, 5):
        struct.pack_into("<I", pages[i], 52, 3)
    _check(pages, [0, 1024, n], covered=covered)


def test_memcg_ignored_without_memcg():
    pages = [_page(flags=0x28, lru=64 * i, refcount=1, memcg=i) for i in range(600)]
    assert _check(pages, [0, 600], memcg=False) == [0, 600]


def test_known_starts_kept_on_identical_bytes():
    # A compound head byte-identical to the free pages around it (as far as the words go): the folio is
    # known to change there, so runs start there even though no word differs.
    pages = [_page() for _ in range(64)]
    assert _check(pages, [0, 10, 11, 20, 64]) == [0, 10, 11, 20, 64]


def test_first_page_of_a_stretch_alone():
    # Free blocks: a PageBuddy head (page type, list pointers) then tails identical to each other.
    n = 4096
    pages = []
    for b in range(0, n, 1024):
        pages.append(_page(lru=0x1000 + b, mapcount=-0x10000000 - 1, private=10))
        pages += [_page() for _ in range(1023)]
    known = sorted({0, n} | {b for b in range(0, n, 1024)} | {b + 1024 for b in range(0, n - 1024, 1024)})
    starts = _check(pages, known)
    assert starts == sorted(set(known) | {b + 1 for b in range(0, n, 1024)})


def test_window_and_chunk_edges():
    # Runs cut at the ends of the pages looked at (a window of a section) and changes right at the edges
    # of stretches, of the halving and of the byte-lane scans.
    n = 8 * _DENSE_MIN + 3
    pages = [_page(flags=0x28, lru=64 * i, refcount=1) for i in range(n)]
    edges = [1, _DENSE_MIN - 1, _DENSE_MIN, _DENSE_MIN + 1, 2 * _DENSE_MIN, n // 2, n // 2 + 1, n - 2, n - 1]
    for i in edges:
        pages[i][0] ^= 1 << _PG["referenced"]
    _check(pages, [0, n])
    _check(pages, [5, 777, n - 9])
    _check(pages, [_DENSE_MIN, n // 2, n // 2 + 1, n - 1])


@pytest.mark.parametrize("seed", range(8))
def test_random_sections(seed):
    rnd = random.Random(seed)
    n = rnd.choice([512, 4096, 32768])
    pages = []
    state = dict(flags=0x28, mapping=0x5001, mapcount=0, refcount=1, memcg=0x1000)
    while len(pages) < n:
        # runs of varied length, sparse or dense changes, one field at a time or several
        length = rnd.choice([1, 2, 3, 10, 100, _DENSE_GAP - 1, _DENSE_GAP, _DENSE_MIN, 3000])
        for _ in range(rnd.randrange(1, 3)):
            f = rnd.choice(list(state))
            if f == "flags":
                state[f] ^= 1 << rnd.choice(list(_PG.values()) + [7, 30, 60])
            elif f == "mapping":
                state[f] = rnd.choice([0, 0x5001, 0x5003, 0x5002, 0x6000, 0x6001])
            elif f == "mapcount":
                state[f] = rnd.choice([-1, 0, 1, 2, -129, -0x10000000 - 1, 0x7FFFFFFF])
            elif f == "refcount":
                state[f] = rnd.choice([0, 1, 2, 3, 0xFFFFFFFF, 0x100])
            else:
                state[f] = rnd.choice([0, 0x1000, 0x1003, 0xFFFF888000001000, 1 << 40])
        for _ in range(min(length, n - len(pages))):
            pages.append(_page(lru=rnd.getrandbits(64), index=rnd.getrandbits(64), **state))
    known = sorted({0, n} | {rnd.randrange(n) for _ in range(rnd.choice([0, 3, 50]))})
    # free blocks: between known indexes (the caller's free-block scan adds their ends to them)
    covered = bytearray(n)
    for a, b in zip(known, known[1:]):
        if rnd.random() < 0.3:
            covered[a:b] = b"\1" * (b - a)
    _check(pages, known, covered=bytes(covered))
    a, b = sorted(rnd.sample(range(n + 1), 2))
    if b > a:
        sub = sorted({a, b} | {k for k in known if a < k < b})
        # a window cuts a free block: its coverage changes at the window's ends only
        _check(pages, sub, covered=bytes(covered))


def test_dense_lanes():
    ctx = _ctx()
    scan = _scan(ctx)
    lanes = [lane for _, _, field in scan.fields for lane in field]
    pages = [_page(flags=0x28, lru=i, refcount=1) for i in range(300)]
    pages[50][1] ^= 1 << (_PG["active"] - 8)       # a bit read, in flags' second byte
    pages[60][0] ^= 0x80                          # a bit not read
    pages[70][24] = 0x03                          # mapping type bits
    pages[71][24] = 0x07                          # same type bits, other address bits
    buf = b"".join(pages)
    assert _dense(lanes, buf, 64, 0, 300) == [50, 51, 70, 72]
    assert _dense(lanes, buf, 64, 51, 300) == [70, 72]
    assert _dense([], buf, 64, 0, 300) == []


def test_scan_fields_and_lanes():
    scan = _scan(_ctx())
    fields = {off: (fmt, lanes) for off, fmt, lanes in scan.fields}
    # flags, mapping, mapcount without _refcount, memcg_data
    assert {off: fmt for off, (fmt, _) in fields.items()} == {0: "Q", 24: "Q", 48: "I", 56: "Q"}
    # flags: only the bytes with bits the rules read, masked
    lanes = fields[0][1]
    assert [off for off, _ in lanes] == [0, 1, 2]
    assert lanes[0][1][0xFF] == 0x7D and lanes[1][1][0xFF] == 0x27 and lanes[2][1][0xFF] == 0x52
    assert [off for off, _ in fields[24][1]] == [24]
    assert [off for off, _ in fields[48][1]] == [48, 49, 50, 51]
    assert [off for off, _ in fields[56][1]] == list(range(56, 64))
    assert scan.refcount[:2] == (52, "I") and [off for off, _ in scan.refcount[2]] == [52, 53, 54, 55]
    assert scan.head == (0, bytes((x >> 6) & 1 for x in range(256)))
    assert [off for off, _, _ in _scan(_ctx(memcg=False)).fields] == [0, 24, 48]
    assert [off for off, _, _ in _scan(_ctx(), memcg=False).fields] == [0, 24, 48]
    # a flag read above bit 31 has its byte lane
    ctx = _ctx()._replace(pg=dict(_PG, arch_3=40))
    assert [off for off, _ in _scan(ctx).fields[0][2]] == [0, 1, 2, 5]


@pytest.mark.parametrize("memcg", [True, False])
def test_keys_at(memcg):
    pages = [_page(flags=0x28 + i, mapping=0x5000 + i, mapcount=i - 1, refcount=i, memcg=0x1000 * i)
             for i in range(8)]
    mv = memoryview(b"".join(pages))
    q, w = mv.cast("Q"), mv.cast("I")
    cols = (q[0::8], mv[24::64], w[13::16], w[12::16], q[7::8] if memcg else None)
    owner = array("q", [0, -3, 2, 2, 0, 0, 0, 0])
    covered = bytearray([0, 0, 0, 0, 1, 1, 0, 0])
    keys = _keys_at(cols, owner, covered, [0, 2, 5, 7])
    assert keys == [(o, 0x28 + i, i & 3, i * covered[i], (i - 1) & 0xFFFFFFFF, covered[i], 0x1000 * i if memcg else 0)
                    for o, i in zip((0, 2, 0, 0), (0, 2, 5, 7))]


def test_folios_alike_share_a_state():
    # Three order-2 folios with equal heads, at 4, 20 and 62 (its page[1]'s fields end past the section's
    # 64 pages: read per folio), and one whose head differs in page[1] (flags1) at 40.
    from types import SimpleNamespace

    from drgn_ptwalk.kpage.scan import head_states as _head_states

    base = 0x1000
    ctx = _ctx()._replace(zero_pfn=base + 50, huge_zero=None, hvo=False)
    head_flags = 0x28 | 1 << _PG["head"]
    pages = [_page(flags=0x28, lru=64 * i, refcount=1) for i in range(64)]
    owner = array("q", [0]) * 64
    for h in (4, 20, 40, 62):
        pages[h] = _page(flags=head_flags, lru=64 * h, mapping=0x7001, refcount=3, mapcount=0)
        owner[h] = -(base + h + 1)
        for t in range(h + 1, min(h + 4, 64)):
            pages[t] = _page(flags=0x28, lru=base + h + 1, mapping=0x400, mapcount=-1)
            owner[t] = base + h + 1
        if h + 1 < 64:
            pages[h + 1][0] = 2  # order
    pages[41][8 * 0 + 1] = 0x40  # page[1].flags of the folio at 40: another bit
    sec = SimpleNamespace(ctx=ctx, buf=b"".join(pages), n=64, base=base, prog=SimpleNamespace(cache={}))
    firsts = [0, 4, 5, 8, 20, 21, 24, 40, 41, 44, 62, 63]
    states = _head_states(sec, [4, 20, 40, 62], owner, firsts)
    assert states[0] is None
    assert states[-(base + 5)] == states[-(base + 21)] == states[base + 5] == states[base + 21]
    assert states[-(base + 41)] != states[-(base + 5)]
    assert states[-(base + 63)] == ("pfn", -(base + 63)) and states[base + 63] == ("pfn", base + 63)
    mv = memoryview(sec.buf)
    q, w = mv.cast("Q"), mv.cast("I")
    cols = (q[0::8], mv[24::64], w[13::16], w[12::16], q[7::8])
    keys = dict(zip(firsts, _keys_at(cols, owner, bytearray(64), firsts, states)))
    assert keys[4] == keys[20] != keys[40] and keys[5] == keys[21] != keys[41]
    assert keys[5][0] is True and keys[4][0] is False and keys[0][:2] == (False, None)
    assert keys[63][1] == ("pfn", base + 63)
    # a zero page's folio is not shared (its values depend on its PFN)
    sec.ctx = ctx._replace(zero_pfn=base + 20)
    states = _head_states(sec, [4, 20, 40, 62], owner, firsts)
    assert states[-(base + 21)] == ("pfn", -(base + 21)) and states[-(base + 5)] != states[-(base + 21)]
