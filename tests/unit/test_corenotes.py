# SPDX-License-Identifier: LGPL-2.1-or-later
"""
gcore's encodings without a dump (drgn_ptwalk.corenotes, drgn_ptwalk.gcore): the notes and the ELF header
and program headers parsed back, in both byte orders, and the ``--swap-image`` argument. (On the reference
dumps: tests/test_gcore_unit.py and tests/test_gcore.py.)
"""

import argparse
import struct
from typing import List, Tuple

import pytest
from drgn import Architecture, Platform, PlatformFlags, Program

from drgn_ptwalk.commands.gcore import swap_image
from drgn_ptwalk.corenotes import CoreNote, encode_notes, file_note
from drgn_ptwalk.gcore import read_core

_LE = Platform(Architecture.X86_64, PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN)
_BE = Platform(Architecture.S390X, PlatformFlags.IS_64_BIT)


def _parse_notes(data: bytes, o: str) -> List[Tuple[bytes, int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        namesz, descsz, t = struct.unpack_from(o + "III", data, pos)
        pos += 12
        name = data[pos:pos + namesz]
        assert name.endswith(b"\0")
        pos += -(-namesz // 4) * 4
        out.append((name[:-1], t, data[pos:pos + descsz]))
        pos += -(-descsz // 4) * 4
    assert pos == len(data)
    return out


@pytest.mark.parametrize("platform,o", [(_LE, "<"), (_BE, ">")])
def test_notes_encode_and_parse_back(platform, o):
    prog = Program(platform)
    notes = [CoreNote(b"CORE", 1, b"\x01" * 5), CoreNote(b"LINUX", 0x202, b""), CoreNote(b"CORE", 6, b"x" * 8)]
    data = encode_notes(prog, notes)
    assert len(data) % 4 == 0
    assert _parse_notes(data, o) == [(n.name, n.type, n.desc) for n in notes]


@pytest.mark.parametrize("platform,o", [(_LE, "<"), (_BE, ">")])
def test_file_note_layout(platform, o):
    prog = Program(platform)
    files = [(0x400000, 0x401000, 0, b"/bin/x"), (0x7f0000000000, 0x7f0000002000, 3, b"/lib/y z")]
    desc = file_note(prog, files, 4096).desc
    count, ps = struct.unpack_from(o + "QQ", desc)
    assert (count, ps) == (2, 4096)
    assert struct.unpack_from(o + "6Q", desc, 16) == (0x400000, 0x401000, 0, 0x7f0000000000, 0x7f0000002000, 3)
    assert desc[16 + 48:] == b"/bin/x\0/lib/y z\0"


@pytest.mark.parametrize("platform,o", [(_LE, "<"), (_BE, ">")])
@pytest.mark.parametrize("phnum", [3, 0xFFFF, 70000])
def test_elf_header_and_extended_numbering_read_back(platform, o, phnum):
    """The header and program headers as gcore lays them out, read back by read_core; 65535 or more
    program headers use the kernel's extended numbering (e_phnum = PN_XNUM, sh_info of one section
    header)."""
    import io

    from drgn_ptwalk.gcore import _elf_header, _extnum_shdr, _phdr

    prog = Program(platform)
    shoff = 64 + 56 * phnum if phnum >= 0xFFFF else 0
    f = io.BytesIO()
    f.write(_elf_header(prog, phnum, shoff, 2))
    f.write(_phdr(prog, 4, 0, 0, 0, 0, 0, 0))
    for i in range(phnum - 1):
        f.write(_phdr(prog, 1, 5, 0x1000 * i, 0x400000 + 0x1000 * i, 0x1000, 0x2000, 4096))
    if shoff:
        f.write(_extnum_shdr(prog, phnum))
    raw = f.getvalue()
    assert raw[:4] == b"\x7fELF" and raw[4] == 2 and raw[5] == (2 if o == ">" else 1)
    assert struct.unpack_from(o + "H", raw, 56)[0] == min(phnum, 0xFFFF)  # e_phnum
    core = read_core(f)
    assert core.byte_order == o and core.e_flags == 2
    assert core.machine == (62 if platform is _LE else 22)
    assert len(core.phdrs) == phnum
    assert core.phdrs[0][0] == 4 and core.phdrs[-1] == (1, 5, 0x1000 * (phnum - 2), 0x400000 + 0x1000 * (phnum - 2),
                                                        0x1000, 0x2000, 4096)


def test_swap_image_argument():
    assert swap_image("1=/tmp/swap.img") == (1, "/tmp/swap.img")
    assert swap_image("0x2=a=b") == (2, "a=b")
    for bad in ("x=/f", "1", "1="):
        with pytest.raises(argparse.ArgumentTypeError):
            swap_image(bad)
