# SPDX-License-Identifier: LGPL-2.1-or-later
"""Unit tests: the kernel look-ups of drgn_ptwalk._kernel (VMCOREINFO's numbers, values kept per program)
and page.decode_head, the one decoder of a folio head, on synthetic bytes. The real kernels judge both
through tests/test_kpage.py, tests/test_procfs.py and tests/test_walk_truth.py."""

import struct

from drgn_ptwalk._kernel import cached, const, vmcoreinfo_length, vmcoreinfo_number
from drgn_ptwalk.page import PageLayout, decode_head


class _Note:
    def __init__(self, text: str) -> None:
        self.text = text

    def string_(self) -> bytes:
        return self.text.encode()


class _Prog:
    """What the look-ups use of a program: its cache, its objects by name, its constants."""

    def __init__(self, note: str = "", constants: dict = {}) -> None:  # noqa: B006 (read only)
        self.cache: dict = {}
        self.note = note
        self.constants = constants
        self.asked = 0

    def __getitem__(self, name: str) -> _Note:
        if name != "VMCOREINFO":
            raise KeyError(name)
        self.asked += 1
        return _Note(self.note)

    def constant(self, name: str):
        self.asked += 1
        try:
            v = self.constants[name]
        except KeyError:
            raise LookupError(name) from None
        return type("C", (), {"value_": lambda self: v})()


def test_vmcoreinfo_numbers_one_rule():
    prog = _Prog("OSRELEASE=6.12\nPAGESIZE=4096\nNUMBER(SECTION_SIZE_BITS)=27\nNUMBER(kimage_voffset)=0xffff7fff\n"
                 "NUMBER(sme_mask)=-1\nNUMBER(odd)=abc\nNUMBER(bad)=xyz\nLENGTH(mem_section)=1024\n"
                 "SYMBOL(swapper_pg_dir)=ffffffff82a0c000\n")
    assert vmcoreinfo_number(prog, "SECTION_SIZE_BITS") == 27  # %ld: decimal
    assert vmcoreinfo_number(prog, "PAGESIZE") == 4096  # a bare key
    assert vmcoreinfo_number(prog, "kimage_voffset") == 0xFFFF7FFF  # a 0x prefix: hex
    assert vmcoreinfo_number(prog, "sme_mask") == -1
    assert vmcoreinfo_number(prog, "odd") == 0xABC  # not decimal: bare hex, as SYMBOL() prints
    assert vmcoreinfo_number(prog, "bad") is None and vmcoreinfo_number(prog, "absent") is None
    assert vmcoreinfo_length(prog, "mem_section") == 1024 and vmcoreinfo_length(prog, "absent") is None
    assert prog.asked == 1  # the note is read and parsed once per program
    assert vmcoreinfo_number(_Prog(), "PAGESIZE") is None


def test_values_kept_per_program():
    prog = _Prog(constants={"PG_head": 6})
    assert const(prog, "PG_head") == 6 and const(prog, "PG_head") == 6
    assert const(prog, "PG_absent") is None and const(prog, "PG_absent", 3) == 3
    assert prog.asked == 2
    calls = []
    assert cached(prog, "k", lambda a, b: calls.append(1) or a + b, 2, 3) == 5
    assert cached(prog, "k", lambda a, b: calls.append(1) or a + b, 7, 7) == 5 and calls == [1]


def _layout(**kw) -> PageLayout:
    fields = dict(vmemmap=0, size=64, flags=0, refcount=52, mapcount=48, mapping=24, info=8, info_is_mask=False,
                  fake_heads=True, pg_head=6, order_offset=64 + 48, entire_mapcount=64 + 52,
                  large_mapcount=64 + 56, mm_ids=128 + 8, hugetlb=("pgty", 0xF4, 48))
    fields.update(kw)
    return PageLayout(**fields)


def _pages(lay: PageLayout, head: dict, second: dict, third: dict) -> bytes:
    buf = bytearray(3 * lay.size)
    for base, fields in ((0, head), (lay.size, second), (2 * lay.size, third)):
        for off, (fmt, v) in fields.items():
            struct.pack_into("<" + fmt, buf, base + off, v)
    return bytes(buf)


def test_decode_head():
    lay = _layout()
    # an order-9 THP head: mapcounts start at -1, page[1].flags kept, _mm_ids in page[2]
    buf = b"\0" * 64 + _pages(lay, {0: ("Q", 1 << 6 | 1 << 5), 24: ("Q", 0x5001), 48: ("i", -1), 52: ("i", 3)},
                              {0: ("Q", 1 << 9), 48: ("B", 9), 52: ("i", 0), 56: ("i", 511)},
                              {8: ("Q", 1 << 63)})
    h = decode_head(lay, buf, 64)
    assert (h.flags, h.refcount, h.mapping, h.mapcount, h.nr) == (1 << 6 | 1 << 5, 3, 0x5001, -1, 512)
    assert (h.entire, h.large, h.mm_ids, h.flags1, h.hugetlb) == (1, 512, 1 << 63, 1 << 9, False)
    # a small folio: no head flag, nothing read of the next pages
    buf = _pages(lay, {0: ("Q", 1 << 5), 48: ("i", 0), 52: ("i", 1)}, {48: ("B", 9)}, {})
    assert decode_head(lay, buf) == (1, 1 << 5, 1, 0, 0, 0, 0, 0, False, 0)
    # hugetlb: v6.12+'s page type, v6.1's destructor in page[1]
    buf = _pages(lay, {0: ("Q", 1 << 6), 48: ("I", 0xF4000000)}, {48: ("B", 9)}, {})
    assert decode_head(lay, buf).hugetlb
    lay61 = _layout(entire_mapcount=None, large_mapcount=None, mm_ids=None, compound_mapcount=64 + 52,
                    hugetlb=("dtor", 2, 50))
    buf = _pages(lay61, {0: ("Q", 1 << 6)}, {48: ("B", 9), 50: ("B", 2), 52: ("i", 4)}, {})
    h = decode_head(lay61, buf)
    assert (h.nr, h.entire, h.large, h.hugetlb) == (512, 5, 0, True)
