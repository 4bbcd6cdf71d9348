# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Unit tests of the process memory reader's pieces on synthetic input: the lzo-rle decompressor against
python-lzo (plain LZO1X) and against the instruction the kernel's lzo-rle compressor writes for a run of
zeros; page decompression with each library; zsmalloc's ``obj`` decoding; the run merging of
:func:`~drgn_ptwalk.usermem.user_pages`; the ``memread`` command's hexdump and arguments.

The truth tests on the reference dumps are tests/test_usermem.py.
"""

import os
import random
import struct
import zlib

import pytest

from drgn_ptwalk._lzo import LzoError, lzo1x_decompress_safe
from drgn_ptwalk.commands.memread import hexdump_lines, parse_swap_images
from drgn_ptwalk.decompress import DecompressError, decompress_page
from drgn_ptwalk.usermem import MAX_RUN_PAGES, Fate, _merge
from drgn_ptwalk.zsmalloc import obj_location

PAGE = 4096


def _need(module: str, pip: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.fail(f"this test needs {module}: pip install {pip} (or pip install -e '.[test]')")


def _pages():
    """Pages of every shape a compressor meets: zeros, random, repeats, mixtures, short periods."""
    rng = random.Random(22)
    yield bytes(PAGE)
    yield bytes(rng.getrandbits(8) for _ in range(PAGE))
    yield b"abc" * (PAGE // 3) + b"x"
    yield (b"\x00" * 100 + b"\x01") * (PAGE // 101) + bytes(PAGE % 101)
    for _ in range(150):
        parts = []
        while sum(map(len, parts)) < PAGE:
            k = rng.randrange(4)
            if k == 0:
                parts.append(bytes(rng.randint(1, 3000)))
            elif k == 1:
                parts.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))))
            elif k == 2:
                parts.append(bytes([rng.getrandbits(8)]) * rng.randint(1, 500))
            elif parts:
                src = rng.choice(parts)
                parts.append(src[: rng.randint(1, 100)])
        yield b"".join(parts)[:PAGE]


def test_lzo1x_matches_python_lzo():
    """Plain LZO1X (lzo1x_1 and lzo1x_999 output of liblzo2) decompresses to the same bytes."""
    lzo = _need("lzo", "python-lzo")
    n = 0
    for page in _pages():
        for level in (1, 9):
            comp = lzo.compress(page, level, False)
            assert lzo1x_decompress_safe(comp, PAGE) == page
            assert lzo.decompress(comp, False, PAGE) == page
            n += 1
    assert n > 300


def _rle(run: int, trailing_literals: int = 0) -> bytes:
    """The instruction lib/lzo/lzo1x_compress.c writes for a run of *run* zeros (lzo-rle):
    ``put_unaligned_le32((run_length << 21) | 0xfffc18 | (run_length & 0x7), op)`` with
    ``run_length = run - MIN_ZERO_RUN_LENGTH``; up to 3 literals after it go in the low bits of its
    second byte (``op[state_offset]``, ``state_offset = -3``)."""
    rl = run - 4
    assert 0 <= rl <= 2047
    b = bytearray(struct.pack("<I", ((rl << 21) | 0xFFFC18 | (rl & 7)) & 0xFFFFFFFF))
    b[1] |= trailing_literals
    return bytes(b)


def test_lzo_rle_zero_runs():
    """A stream as the kernel's lzo-rle writes it: version header 17, 1; literals; runs of zeros (the
    longest, 2051 bytes, then the rest), literals carried by a run's instruction; the end marker."""
    stream = (bytes([17, 1]) + bytes([8 - 3]) + b"ABCDEFGH" + _rle(2051) + _rle(2034, trailing_literals=3) + b"xyz"
              + bytes([0x11, 0, 0]))
    want = b"ABCDEFGH" + bytes(2051) + bytes(2034) + b"xyz"
    assert len(want) == PAGE
    assert lzo1x_decompress_safe(stream, PAGE) == want


def test_lzo_rle_instruction_without_version_is_a_match():
    """Without the version header the same bytes are an M4 match (LZO1X), as the kernel reads them: here
    one that reaches before the output, which the kernel refuses."""
    stream = bytes([8 - 3 + 17]) + b"ABCDE" + _rle(100) + bytes([0x11, 0, 0])
    with pytest.raises(LzoError) as e:
        lzo1x_decompress_safe(stream, PAGE)
    assert e.value.code == "LZO_E_LOOKBEHIND_OVERRUN"


@pytest.mark.parametrize("cut", [1, 2, 5, 20])
def test_lzo_truncated(cut):
    lzo = _need("lzo", "python-lzo")
    comp = lzo.compress(b"hello world " * 300, 1, False)
    with pytest.raises(LzoError):
        lzo1x_decompress_safe(comp[:-cut], PAGE)


def test_lzo_output_overrun():
    lzo = _need("lzo", "python-lzo")
    comp = lzo.compress(bytes(range(256)) * 16, 1, False)
    with pytest.raises(LzoError) as e:
        lzo1x_decompress_safe(comp, PAGE // 2)
    assert e.value.code == "LZO_E_OUTPUT_OVERRUN"


def test_decompress_page_each_library():
    """Each compressor name zram and zswap use, with its library, on the format the kernel writes."""
    lz4block = _need("lz4.block", "lz4")
    zstandard = _need("zstandard", "zstandard")
    lzo = _need("lzo", "python-lzo")
    page = next(p for i, p in enumerate(_pages()) if i == 10)
    d = zlib.compressobj(9, zlib.DEFLATED, -11)  # crypto/deflate.c: -DEFLATE_DEF_WINBITS
    deflated = d.compress(page) + d.flush()
    cases = {
        "lz4": lz4block.compress(page, store_size=False),
        "lz4hc": lz4block.compress(page, mode="high_compression", store_size=False),
        "zstd": zstandard.ZstdCompressor(level=3).compress(page),
        "deflate": deflated,
        "lzo": lzo.compress(page, 1, False),
        "lzo-rle": lzo.compress(page, 1, False),  # a stream without RLE is valid lzo-rle
    }
    for alg, comp in cases.items():
        assert decompress_page(alg, comp, PAGE) == page, alg


def test_decompress_page_errors():
    lz4block = _need("lz4.block", "lz4")
    with pytest.raises(DecompressError, match="not supported"):
        decompress_page("842", b"\0" * 10, PAGE)
    with pytest.raises(DecompressError, match="corrupt"):
        decompress_page("lz4", b"\xff" * 40, PAGE)
    short = lz4block.compress(b"x" * 100, store_size=False)
    with pytest.raises(DecompressError):
        decompress_page("lz4", short, PAGE)
    with pytest.raises(DecompressError):
        decompress_page("zstd", os.urandom(64), PAGE)
    with pytest.raises(DecompressError):
        decompress_page("lzo-rle", b"\x11\x01\x00", PAGE)


def _location_to_obj(pfn: int, idx: int, pfn_bits: int, tag_bits: int) -> int:
    """mm/zsmalloc.c location_to_obj(): v6.1 (``obj <<= OBJ_TAG_BITS``) and v6.12+ (no shift)."""
    index_bits = 64 - pfn_bits - tag_bits
    obj = pfn << index_bits
    obj |= idx & ((1 << index_bits) - 1)
    return (obj << tag_bits) & ((1 << 64) - 1)


@pytest.mark.parametrize("tag_bits", [0, 1])
@pytest.mark.parametrize("physmem_bits,page_shift", [(52, 12), (48, 12), (46, 12), (52, 14), (52, 16)])
def test_zsmalloc_obj_location(tag_bits, physmem_bits, page_shift):
    pfn_bits = physmem_bits - page_shift
    for pfn, idx in [(1, 0), (0x123456, 7), ((1 << pfn_bits) - 1, 511), (0x104F28, 254)]:
        obj = _location_to_obj(pfn, idx, pfn_bits, tag_bits)
        assert obj_location(obj, pfn_bits, tag_bits) == (pfn, idx)


@pytest.mark.parametrize("obj,pfn,idx,cls", [(0x104371018009, 0x104371, 9, 3), (0x10654B7F0000, 0x10654B, 0, 254)])
def test_zsmalloc_obj_location_with_class(obj, pfn, idx, cls):
    """v7.3's [PFN | class_idx | obj_idx] (9 class bits, x86_64: 40 PFN bits): objects of Debian's 7.3~rc7
    x86_64 dump, a class-3 one and a huge (class 254) one."""
    from drgn_ptwalk.zsmalloc import _obj_class

    assert obj_location(obj, 40, 0, 64, 9) == (pfn, idx)
    assert _obj_class(obj, 40, 9, 64) == cls
    assert obj_location(obj, 40, 0)[1] != idx  # read without the class bits, the index is wrong


def _piece(start, n, fate, pfn=None, so=None, detail="", data=True):
    return (start, start + n * PAGE, fate, bytes([start // PAGE % 251]) * (n * PAGE) if data else None,
            pfn, 0 if so is not None else None, so, detail)


def test_merge_runs():
    pieces = [
        _piece(0x1000, 1, Fate.PRESENT, pfn=10),
        _piece(0x2000, 2, Fate.PRESENT, pfn=11),      # continues the PFNs: merged
        _piece(0x4000, 1, Fate.PRESENT, pfn=20),      # does not: a new run
        _piece(0x5000, 1, Fate.ZRAM, so=5, detail="zram0: lz4"),
        _piece(0x6000, 1, Fate.ZRAM, so=6, detail="zram0: lz4"),
        _piece(0x7000, 1, Fate.ZRAM, so=7, detail="zram0: zstd"),   # another detail: a new run
        _piece(0x8000, 1, Fate.SWAP_DEVICE, so=9, detail="on swap device 1 (/dev/vdc)", data=False),
        _piece(0x9000, 1, Fate.SWAP_DEVICE, so=10, detail="on swap device 1 (/dev/vdc)", data=False),
    ]
    got = list(_merge(iter(pieces), 12))
    assert [(r.start, r.end, r.fate, r.pfn, r.swap_offset) for r in got] == [
        (0x1000, 0x4000, Fate.PRESENT, 10, None),
        (0x4000, 0x5000, Fate.PRESENT, 20, None),
        (0x5000, 0x7000, Fate.ZRAM, None, 5),
        (0x7000, 0x8000, Fate.ZRAM, None, 7),
        (0x8000, 0xA000, Fate.SWAP_DEVICE, None, 9),
    ]
    assert got[0].data == pieces[0][3] + pieces[1][3]
    assert got[4].data is None and not got[4].readable
    assert got[4].detail == "on swap device 1 (/dev/vdc), slots 0x9-0xa"
    assert all(len(r.data) == r.size for r in got if r.readable)


def test_merge_bounds_memory():
    """Readable runs stop growing at MAX_RUN_PAGES; unreadable ones (no bytes) do not."""
    pieces = [_piece(i * PAGE, 1, Fate.PRESENT, pfn=100 + i) for i in range(MAX_RUN_PAGES + 5)]
    got = list(_merge(iter(pieces), 12))
    assert [r.size // PAGE for r in got] == [MAX_RUN_PAGES, 5]
    pieces = [_piece(i * PAGE, 1, Fate.NO_VMA, data=False) for i in range(MAX_RUN_PAGES + 5)]
    assert len(list(_merge(iter(pieces), 12))) == 1


def test_hexdump_like_xxd():
    """xxd's layout (``xxd -o ADDR``, 12 hex digits of address here): 8 groups of 2 bytes, then the text."""
    data = b"hello, world\x00\x01\x02\x03" + b"0123456789"
    assert list(hexdump_lines(0x7F0000001000, data)) == [
        "7f0000001000: 6865 6c6c 6f2c 2077 6f72 6c64 0001 0203  hello, world....",
        "7f0000001010: 3031 3233 3435 3637 3839                 0123456789",
    ]


def test_swap_image_arguments():
    assert parse_swap_images(["1=/tmp/a.img", "0x2=b"]) == {1: "/tmp/a.img", 2: "b"}
    assert parse_swap_images(None) == {}
    for bad in ("1", "x=/a", "=/a", "1="):
        with pytest.raises(ValueError, match="TYPE=FILE"):
            parse_swap_images([bad])


class _HoleyMemory:
    """A physical memory with some pages missing (as makedumpfile leaves a -d 31 dump), read like
    :meth:`drgn.Program.read` reads one: a read over a missing page fails at that page's address."""

    def __init__(self, missing):
        self.missing = set(missing)
        self.reads = 0

    def read(self, addr, n, physical=False):
        from drgn import FaultError

        assert physical
        self.reads += 1
        for pfn in range(addr >> 12, (addr + n - 1 >> 12) + 1):
            if pfn in self.missing:
                raise FaultError("memory not saved in core dump", max(addr, pfn << 12))
        return b"".join(bytes([pfn % 251]) * PAGE for pfn in range(addr >> 12, (addr + n - 1 >> 12) + 1))[
            addr % PAGE: addr % PAGE + n]


@pytest.mark.parametrize("missing", [(), (100,), (100, 101, 102), (103,), (105, 107), range(100, 110)])
def test_read_phys_splits_at_missing_pages(missing):
    from drgn_ptwalk.usermem import _Reader

    r = _Reader.__new__(_Reader)
    r.prog = _HoleyMemory(missing)
    r.page_shift = 12
    runs = r.read_phys(100, 10)
    assert sum(n for _, n, _ in runs) == 10 and runs[0][0] == 100
    assert all(a + n == b for (a, n, _), (b, _, _) in zip(runs, runs[1:])), "runs do not continue each other"
    for pfn, n, data in runs:
        if data is None:
            assert all(p in r.prog.missing for p in range(pfn, pfn + n))
        else:
            assert not any(p in r.prog.missing for p in range(pfn, pfn + n))
            assert data == b"".join(bytes([p % 251]) * PAGE for p in range(pfn, pfn + n))
    if not missing:
        assert r.prog.reads == 1, "a run the dump has whole is one read"
