# SPDX-License-Identifier: LGPL-2.1-or-later
"""
``drgn-ptwalk read`` (``memread``) run as a user runs it, on the reference dump: the bytes of the swap
scenario's region (a known xorshift pattern the workload wrote, pages in RAM, in the swap cache and in
zram) to ``-o FILE`` and as a hexdump, and bad input as one line and exit status 2 with nothing left
under the ``-o`` name.

The reader's truth tests on every dump are tests/test_usermem.py.
"""

import json
import struct
from pathlib import Path

import pytest

from procmem_common import READER_MODULES
from test_cli import cli, one_line_error
from vmcores.fetch import fetch_module_debug

_M64 = (1 << 64) - 1


def _xorshift_fill(state: int, nbytes: int):
    """vmcores/workload.c fill_random(): 64-bit words ``rnd() | 1`` of the xorshift64 generator."""
    out = []
    for _ in range(nbytes // 8):
        x = state
        x ^= (x << 13) & _M64
        x ^= x >> 7
        x ^= (x << 17) & _M64
        state = x
        out.append(x | 1)
    return struct.pack(f"<{len(out)}Q", *out), state


def _swap_anon(v):
    pid = v.pids["swap"]
    sc = json.loads((v.pid_dir(pid) / "scenario.json").read_text())
    reg = next(r for r in sc["regions"] if r["label"] == "swap_anon")
    start, end = int(reg["start"], 16), int(reg["end"], 16)
    # scen_swap(): rng_state = 0x1234567887654321, then fill_random() of the whole region.
    want, _ = _xorshift_fill(0x1234567887654321, end - start)
    return pid, start, end, want


@pytest.fixture(scope="module")
def swap_region(default_vmcore):
    return _swap_anon(default_vmcore)


def _symbols(v):
    """``-s`` of the vmlinux and of the zram and zsmalloc modules' debug files, as a user gives them."""
    out = ["-s", v.vmlinux]
    for p in fetch_module_debug(Path(v.vmlinux).parent, READER_MODULES):
        out += ["-s", str(p)]
    return out


def test_read_to_file_holds_the_pattern(default_vmcore, swap_region, tmp_path):
    """The region: a quarter in RAM or the swap cache (madvise WILLNEED, read back), the rest in zram;
    every byte the pattern, from the zsmalloc objects where zram has them."""
    v = default_vmcore
    pid, start, end, want = swap_region
    out = tmp_path / "mem.bin"
    p = cli("-c", v.core, *_symbols(v), "read", pid, hex(start), hex(end - start), "-o", out, check=0)
    assert out.read_bytes() == want
    err = p.stderr.decode()
    assert err.startswith(f"drgn-ptwalk: PID {pid} {start:#x}+{end - start:#x}: {end - start} of {end - start} "
                          "bytes readable (") and "zram " in err, err


def test_without_zram_debug_info_zero_filled(default_vmcore, swap_region, tmp_path):
    """Without the zram module's debug info the zram pages are unreadable (an ERROR fate saying what to
    give), zero-filled in the file: no byte is invented."""
    v = default_vmcore
    pid, start, end, want = swap_region
    out = tmp_path / "mem.bin"
    p = cli("-c", v.core, "-s", v.vmlinux, "read", pid, hex(start), hex(end - start), "-o", out, check=0)
    got = out.read_bytes()
    quarter = (end - start) // 4
    assert got[:quarter] == want[:quarter]
    ps = 4096
    for a in range(quarter, end - start, ps):
        assert got[a:a + ps] in (want[a:a + ps], bytes(ps)), f"page {start + a:#x}: neither the pattern nor zeros"
    assert "error " in p.stderr.decode() or got == want
    assert not [f for f in tmp_path.iterdir() if f.name != "mem.bin"], "a temporary file was left behind"


def test_hexdump_lines_and_fates(default_vmcore, swap_region):
    v = default_vmcore
    pid, start, end, want = swap_region
    n = 0x1800  # a page and a half, from the middle of a page
    p = cli("-c", v.core, "-s", v.vmlinux, "memread", pid, hex(start + 0x800), hex(n), check=0)
    lines = p.stdout.decode().splitlines()
    fates = [ln for ln in lines if ln.startswith("--- ")]
    assert [f.split()[1] for f in fates] == [hex(start), hex(start + 0x1000)]
    assert all(f.split()[2] in ("present", "swapcache") for f in fates), fates
    data = bytearray()
    addr = start + 0x800
    for ln in lines:
        if ln.startswith("--- "):
            continue
        a, rest = ln.split(": ", 1)
        assert int(a, 16) == addr + len(data)
        data += bytes.fromhex(rest[:39].replace(" ", ""))
    assert bytes(data) == want[0x800:0x800 + n]


def test_json_lines(default_vmcore, swap_region):
    v = default_vmcore
    pid, start, end, want = swap_region
    p = cli("-c", v.core, "-s", v.vmlinux, "read", pid, hex(start), "0x2000", "--json", check=0)
    recs = [json.loads(ln) for ln in p.stdout.decode().splitlines()]
    assert recs[0]["start"] == start and recs[-1]["end"] == start + 0x2000
    assert b"".join(bytes.fromhex(r["data"]) for r in recs) == want[:0x2000]
    assert all(r["readable"] and r["fate"] in ("present", "swapcache") for r in recs)


def test_bad_input_one_line(default_vmcore, swap_region, tmp_path):
    v = default_vmcore
    pid, start, end, _ = swap_region
    base = ("-c", v.core, "-s", v.vmlinux, "read")
    one_line_error(cli(*base, 2, "0x400000", "16"), "kernel thread")
    one_line_error(cli(*base, pid, "0x1000", "16"), "outside every VMA")
    img = tmp_path / "swap.img"
    img.write_bytes(bytes(8192))
    out = tmp_path / "out.bin"
    one_line_error(cli(*base, pid, hex(start), "4096", "--swap-image", f"0={img}", "-o", out), "SWAPSPACE2")
    one_line_error(cli(*base, pid, hex(start), "4096", "--swap-image", "zero"), "TYPE=FILE")
    one_line_error(cli(*base, pid, hex(start), "0"), "LEN")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["swap.img"], "something was written under -o"
