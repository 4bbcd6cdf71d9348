# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reassemble makedumpfile's flattened format (``makedumpfile -F``) into a regular dump file.

What ``makedumpfile -R`` does, so the host needs no makedumpfile of its own. The flattened stream is a
4096-byte header starting with the signature "makedumpfile", then records of (offset, size) as big-endian
int64 followed by ``size`` bytes to write at ``offset`` of the output, ended by a record (-1, -1)
(makedumpfile.h: struct makedumpfile_header, struct makedumpfile_data_header, END_FLAG_FLAT_HEADER).
"""

import os
import struct
from pathlib import Path
from typing import BinaryIO

SIGNATURE = b"makedumpfile\0"
HEADER_SIZE = 4096
END = -1


class FlattenedError(Exception):
    pass


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise FlattenedError(f"flattened dump ends early (wanted {n} bytes, got {len(data)})")
    return data


def rearrange(src: Path, dest: Path) -> int:
    """Write the dump carried by the flattened stream at the start of ``src`` (a file or a raw disk
    image) to ``dest`` atomically; returns the dump's size. Anything after the end record is ignored."""
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
    try:
        size = _rearrange(src, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    return size


def _rearrange(src: Path, tmp: Path) -> int:
    size = 0
    with open(src, "rb") as f, open(tmp, "wb") as out:
        head = _read_exact(f, HEADER_SIZE)
        if not head.startswith(SIGNATURE):
            raise FlattenedError(f"{src} does not start with a makedumpfile flattened header")
        ftype, version = struct.unpack(">qq", head[16:32])
        if ftype != 1 or version != 1:
            raise FlattenedError(f"{src}: unknown flattened header type {ftype} version {version}")
        while True:
            offset, length = struct.unpack(">qq", _read_exact(f, 16))
            if offset == END and length == END:
                break
            if offset < 0 or length < 0 or length > 1 << 32:
                raise FlattenedError(f"{src}: bad record (offset {offset}, size {length})")
            out.seek(offset)
            out.write(_read_exact(f, length))
            size = max(size, offset + length)
        out.truncate(size)
    return size
