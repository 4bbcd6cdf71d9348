# SPDX-License-Identifier: LGPL-2.1-or-later
"""vmcores.elfcore on synthetic QEMU-7.2-style dumps. ppc64le: big-endian headers and CPU notes rewritten
little-endian (pr_pid numbered), the VMCOREINFO note copied out of memory into a new PT_NOTE; both
idempotent. s390x: big-endian kept, the note added in it. The real dumps of the matrix are opened by drgn in
test_vmcores."""

import struct

from vmcores import elfcore

PADDR = 0x100000
NOTE_AT = 0x2000  # offset of the kernel's note inside the memory segment


def _note(order: str, name: bytes, ntype: int, desc: bytes) -> bytes:
    name0 = name + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack(order + "III", len(name0), len(desc), ntype) + pad(name0) + pad(desc)


def _core(tmp_path):
    regs = list(range(1, 49))
    prstatus = struct.pack(">iiihhQQIIII8Q48Qi4x", *([0] * 7), 0, 0, 0, 0, *([0] * 8), *regs, 0)
    fpregs = struct.pack(">33Q", *range(100, 133))
    notes = b"".join(_note(">", b"CORE", t, d) for t, d in ((1, prstatus), (2, fpregs))) * 2  # two CPUs
    info = _note("<", b"VMCOREINFO", 0, b"OSRELEASE=7.2.13\nPAGESIZE=4096\n")
    mem = bytearray(0x4000)
    mem[NOTE_AT : NOTE_AT + len(info)] = info
    phoff, nphdr = 64, 2
    notes_off = phoff + 56 * nphdr
    mem_off = notes_off + len(notes)
    ehdr = struct.pack(">16sHHIQQQIHHHHHH", b"\x7fELF\x02\x02\x01" + bytes(9), 4, 21, 1, 0, phoff, 0, 0, 64, 56,
                       nphdr, 0, 0, 0)
    phdrs = struct.pack(">IIQQQQQQ", 4, 0, notes_off, 0, 0, len(notes), len(notes), 0)
    phdrs += struct.pack(">IIQQQQQQ", 1, 0, mem_off, 0xC000000000000000 + PADDR, PADDR, len(mem), len(mem), 0)
    core = tmp_path / "vmcore.elf"
    core.write_bytes(ehdr + phdrs + notes + bytes(mem))
    return core, info, regs


def _phdrs(data: bytes):
    ehdr = struct.unpack_from("<16sHHIQQQIHHHHHH", data)
    return ehdr, [struct.unpack_from("<IIQQQQQQ", data, ehdr[5] + 56 * i) for i in range(ehdr[10])]


def test_little_endian_and_vmcoreinfo(tmp_path):
    core, info, regs = _core(tmp_path)
    assert elfcore.to_little_endian(core)
    assert not elfcore.to_little_endian(core)
    assert elfcore.add_vmcoreinfo(core, PADDR + NOTE_AT, 0x1024)
    assert not elfcore.add_vmcoreinfo(core, PADDR + NOTE_AT, 0x1024)
    data = core.read_bytes()
    ehdr, phdrs = _phdrs(data)
    assert data[5] == 1 and ehdr[2] == 21 and len(phdrs) == 3
    notes = phdrs[0]
    pids, pos = [], notes[2]
    while pos < notes[2] + notes[5]:
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        desc = data[pos + 12 + 8 : pos + 12 + 8 + descsz]
        if ntype == 1:
            vals = struct.unpack("<iiihhQQIIII8Q48Qi4x", desc)
            pids.append(vals[7])
            assert list(vals[19:67]) == regs
        else:
            assert struct.unpack("<33Q", desc) == tuple(range(100, 133))
        pos += 12 + 8 + descsz
    assert pids == [1, 2]
    new = phdrs[2]
    assert new[0] == 4 and data[new[2] : new[2] + new[5]] == info
    # The memory segment did not move.
    assert phdrs[1][2] == 64 + 56 * 2 + notes[5]


def test_s390x_big_endian_kept_vmcoreinfo_added(tmp_path):
    # QEMU's ELF of an s390x guest is big-endian like its kernel (and its note in memory): the byte
    # order stays, only the note is added, in the file's byte order.
    info = _note(">", b"VMCOREINFO", 0, b"OSRELEASE=7.2.13+deb14-s390x\nPAGESIZE=4096\n")
    mem = bytearray(0x4000)
    mem[NOTE_AT : NOTE_AT + len(info)] = info
    notes = _note(">", b"CORE", 1, bytes(336))
    phoff, nphdr = 64, 2
    notes_off = phoff + 56 * nphdr
    mem_off = notes_off + len(notes)
    ehdr = struct.pack(">16sHHIQQQIHHHHHH", b"\x7fELF\x02\x02\x01" + bytes(9), 4, elfcore.EM_S390, 1, 0, phoff,
                       0, 0, 64, 56, nphdr, 0, 0, 0)
    phdrs = struct.pack(">IIQQQQQQ", 4, 0, notes_off, 0, 0, len(notes), len(notes), 0)
    phdrs += struct.pack(">IIQQQQQQ", 1, 0, mem_off, PADDR, PADDR, len(mem), len(mem), 0)
    core = tmp_path / "vmcore.elf"
    core.write_bytes(ehdr + phdrs + notes + bytes(mem))
    assert not elfcore.to_little_endian(core)
    assert elfcore.add_vmcoreinfo(core, PADDR + NOTE_AT, 0x1024)
    assert not elfcore.add_vmcoreinfo(core, PADDR + NOTE_AT, 0x1024)
    data = core.read_bytes()
    assert data[5] == 2
    e = struct.unpack_from(">16sHHIQQQIHHHHHH", data)
    ph = [struct.unpack_from(">IIQQQQQQ", data, e[5] + 56 * i) for i in range(e[10])]
    assert e[2] == elfcore.EM_S390 and len(ph) == 3 and ph[1][2] == mem_off
    assert ph[2][0] == 4 and data[ph[2][2] : ph[2][2] + ph[2][5]] == info
