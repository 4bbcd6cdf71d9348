# SPDX-License-Identifier: LGPL-2.1-or-later
"""Make QEMU's ELF dumps of machines without fw_cfg (pseries, s390-ccw-virtio) readable by drgn, in place.

Two fixes, each a no-op on a dump that does not need it:

* :func:`to_little_endian`: QEMU 7.2 writes the ELF of a ppc64le guest big-endian (it takes the byte order
  from the interrupt-endianness state of the CPU, which is big-endian on pseries under TCG); the ELF
  header, the program headers and the CPU notes are rewritten little-endian, the byte order of the
  kernel's data, and each NT_PRSTATUS gets a non-zero ``pr_pid`` (QEMU before 9.1 left it 0 on ppc).
* :func:`add_vmcoreinfo`: without ``-device vmcoreinfo`` (fw_cfg) the dump has no VMCOREINFO note, and
  drgn takes it for a user-space core ("core file is missing NT_AUXV"). The kernel keeps its own note in
  memory at the physical address ``/sys/kernel/vmcoreinfo`` gives (``"%lx %x"``: address, size); the note
  is copied out of the dump's memory into a new PT_NOTE segment appended to the file, with a new program
  header table after it (``e_phoff`` points there; the data segments do not move, so a sparse dump stays
  sparse). On s390x the dump, the note and the kernel are all big-endian: only the note is added.

``python -m vmcores fix-elf CORE ADDR SIZE`` runs both on a dump (ADDR and SIZE in hex, as the guest's
``/sys/kernel/vmcoreinfo`` prints them).
"""

import os
import struct
from pathlib import Path
from typing import List, Tuple

__all__ = ("ElfCoreError", "to_little_endian", "add_vmcoreinfo")

_EHDR = "16sHHIQQQIHHHHHH"  # Elf64_Ehdr after e_ident's byte order is chosen
_PHDR = "IIQQQQQQ"  # Elf64_Phdr
_NHDR = "III"  # Elf64_Nhdr
PT_LOAD, PT_NOTE = 1, 4
EM_PPC64, EM_S390 = 21, 22
ELFDATA2LSB, ELFDATA2MSB = 1, 2
NT_PRSTATUS, NT_PRFPREG = 1, 2
NT_PPC_VMX, NT_PPC_SPE, NT_PPC_VSX = 0x100, 0x101, 0x102

# Each CPU note's fields as struct codes (Linux's ppc64 elf_prstatus: pr_info (3 ints), pr_cursig, pad,
# pr_sigpend, pr_sighold, pr_pid/ppid/pgrp/sid, 4 timevals, 48 registers, pr_fpvalid; QEMU writes the
# same size, target/ppc/arch_dump.c).
_NOTE_FIELDS = {
    NT_PRSTATUS: "iiihhQQIIII8Q48Qi4x",
    NT_PRFPREG: "33Q",  # fpr[32], fpscr
    NT_PPC_VSX: "32Q",  # the low doublewords of vs0-vs31
    NT_PPC_SPE: "32IQI",  # evr[32], acc, fscr (packed)
}
_PRSTATUS_PID = 7  # index of pr_pid in the NT_PRSTATUS fields


class ElfCoreError(Exception):
    pass


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _read_headers(f, order: str) -> Tuple[tuple, List[list]]:
    f.seek(0)
    ehdr = struct.unpack(order + _EHDR, f.read(struct.calcsize(_EHDR)))
    phoff, phentsize, phnum = ehdr[5], ehdr[9], ehdr[10]
    if phentsize != struct.calcsize(_PHDR) or phnum == 0xFFFF:
        raise ElfCoreError(f"unexpected program headers (entry size {phentsize}, {phnum} entries)")
    f.seek(phoff)
    phdrs = [list(struct.unpack(order + _PHDR, f.read(phentsize))) for _ in range(phnum)]
    return ehdr, phdrs


def _byte_order(f) -> str:
    f.seek(0)
    ident = f.read(16)
    if ident[:4] != b"\x7fELF" or ident[4] != 2:
        raise ElfCoreError("not a 64-bit ELF file")
    if ident[5] == ELFDATA2LSB:
        return "<"
    if ident[5] == ELFDATA2MSB:
        return ">"
    raise ElfCoreError(f"unknown ELF byte order {ident[5]}")


def _swap_desc(ntype: int, desc: bytes, cpu: int) -> bytes:
    """A big-endian CPU note's descriptor, little-endian; NT_PPC_VMX vectors are reversed whole."""
    if ntype == NT_PPC_VMX:
        return b"".join(desc[i : i + 16][::-1] for i in range(0, len(desc), 16))
    fields = _NOTE_FIELDS.get(ntype)
    if fields is None:
        raise ElfCoreError(f"note type {ntype:#x}: unknown layout, cannot change its byte order")
    size = struct.calcsize(">" + fields)
    if len(desc) != size:
        raise ElfCoreError(f"note type {ntype:#x}: {len(desc)} bytes, expected {size}")
    vals = list(struct.unpack(">" + fields, desc))
    if ntype == NT_PRSTATUS and vals[_PRSTATUS_PID] == 0:
        # drgn tells CPUs apart by pr_pid; QEMU numbers them from 1 on other architectures.
        vals[_PRSTATUS_PID] = cpu + 1
    return struct.pack("<" + fields, *vals)


def to_little_endian(core: Path) -> bool:
    """Rewrite a big-endian ELF core of a ppc64 guest little-endian in place; returns whether it was
    rewritten (``False``: already little-endian, or another machine: s390x is big-endian for real)."""
    with open(core, "r+b") as f:
        if _byte_order(f) == "<":
            return False
        ehdr, phdrs = _read_headers(f, ">")
        if ehdr[2] != EM_PPC64:
            return False
        cpu = 0
        for ph in phdrs:
            if ph[0] != PT_NOTE:
                continue
            f.seek(ph[2])
            data = f.read(ph[5])
            out = bytearray()
            pos = 0
            while pos + 12 <= len(data):
                namesz, descsz, ntype = struct.unpack_from(">" + _NHDR, data, pos)
                name_end = pos + 12 + _align4(namesz)
                desc = data[name_end : name_end + descsz]
                out += struct.pack("<" + _NHDR, namesz, descsz, ntype) + data[pos + 12 : name_end]
                out += _swap_desc(ntype, desc, cpu) + data[name_end + descsz : name_end + _align4(descsz)]
                cpu += ntype == NT_PRSTATUS
                pos = name_end + _align4(descsz)
            out += data[pos:]
            f.seek(ph[2])
            f.write(out)
        ident = bytearray(ehdr[0])
        ident[5] = ELFDATA2LSB
        f.seek(0)
        f.write(struct.pack("<" + _EHDR, bytes(ident), *ehdr[1:]))
        f.seek(ehdr[5])
        f.write(b"".join(struct.pack("<" + _PHDR, *ph) for ph in phdrs))
    return True


def _notes(f, phdrs: List[list], order: str = "<") -> List[bytes]:
    """The names of the notes of every PT_NOTE segment (*order*: the file's struct byte order)."""
    names = []
    for ph in phdrs:
        if ph[0] != PT_NOTE:
            continue
        f.seek(ph[2])
        data = f.read(ph[5])
        pos = 0
        while pos + 12 <= len(data):
            namesz, descsz, _ = struct.unpack_from(order + _NHDR, data, pos)
            names.append(data[pos + 12 : pos + 12 + namesz].rstrip(b"\0"))
            pos += 12 + _align4(namesz) + _align4(descsz)
    return names


def _read_phys(f, phdrs: List[list], paddr: int, size: int) -> bytes:
    for ph in phdrs:
        if ph[0] == PT_LOAD and ph[4] <= paddr and paddr + size <= ph[4] + ph[5]:
            f.seek(ph[2] + paddr - ph[4])
            return f.read(size)
    raise ElfCoreError(f"physical range {paddr:#x}+{size:#x} is in no PT_LOAD segment")


def add_vmcoreinfo(core: Path, paddr: int, size: int) -> bool:
    """Append the kernel's VMCOREINFO note (at physical *paddr*, *size* bytes at most) as a PT_NOTE;
    returns whether one was added (``False``: the dump had one). The file's byte order must be the
    kernel's (the note in memory is in the kernel's): a ppc64le dump goes through
    :func:`to_little_endian` first; an s390x dump is big-endian like its kernel."""
    with open(core, "r+b") as f:
        order = _byte_order(f)
        ehdr, phdrs = _read_headers(f, order)
        if order == ">" and ehdr[2] == EM_PPC64:
            raise ElfCoreError("big-endian ELF of a ppc64 guest: run to_little_endian() first")
        if b"VMCOREINFO" in _notes(f, phdrs, order):
            return False
        buf = _read_phys(f, phdrs, paddr, size)
        namesz, descsz, _ = struct.unpack_from(order + _NHDR, buf)
        note_len = 12 + _align4(namesz) + _align4(descsz)
        if buf[12 : 12 + namesz].rstrip(b"\0") != b"VMCOREINFO" or note_len > len(buf):
            raise ElfCoreError(f"no VMCOREINFO note at physical {paddr:#x} (found {buf[:32]!r})")
        note = buf[:note_len]
        end = f.seek(0, os.SEEK_END)
        note_off = (end + 7) & ~7
        phoff = (note_off + note_len + 7) & ~7
        phdrs.append([PT_NOTE, 0, note_off, 0, 0, note_len, note_len, 1])
        f.seek(note_off)
        f.write(note)
        f.seek(phoff)
        f.write(b"".join(struct.pack(order + _PHDR, *ph) for ph in phdrs))
        f.seek(0)
        f.write(struct.pack(order + _EHDR, ehdr[0], *ehdr[1:5], phoff, *ehdr[6:10], len(phdrs), *ehdr[11:]))
    return True
