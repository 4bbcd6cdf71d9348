# SPDX-License-Identifier: LGPL-2.1-or-later
"""
LZO1X decompression with the kernel's lzo-rle extension, in Python.

The one decompressor no maintained library provides: zram's default compressor since v5.1 is ``lzo-rle``
(commit 45ec975efb52 "lib/lzo: separate lzo-rle from lzo", v5.1), an LZO1X bitstream that may start with
the byte 17 and a bitstream version byte, after which an M4 instruction whose distance bits are all ones
(``(next & 0xfffc) == 0xfffc``, ``(t & 0xf8) == 0x18``) encodes a run of zeros instead of a match
(commit 5ee4014af99f "lib/lzo: implement run-length encoding", v5.1). :func:`lzo1x_decompress_safe` follows
``lib/lzo/lzo1x_decompress_safe.c`` step by step (v5.1 to v7.x: unchanged since), so it also decompresses
plain LZO1X (python-lzo's ``lzo1x_1`` output), and fails where the kernel's would, with the kernel's error
name.
"""

from typing import Tuple

from drgn_ptwalk.errors import LzoError

__all__ = ("LzoError", "lzo1x_decompress_safe")

_M2_MAX_OFFSET = 0x0800
_MIN_ZERO_RUN_LENGTH = 4
_MAX_255_COUNT = (((1 << 64) - 1) // 255) - 2


class _Overrun(Exception):
    pass


def _count_zeros(data: bytes, ip: int, n: int) -> Tuple[int, int]:
    """The ``while (*ip == 0) ip++`` loop of a long length: (number of zero bytes, new ip)."""
    start = ip
    while True:
        if ip >= n:
            raise _Overrun("LZO_E_INPUT_OVERRUN")
        if data[ip]:
            break
        ip += 1
        if ip >= n:  # NEED_IP(1) after each step
            raise _Overrun("LZO_E_INPUT_OVERRUN")
    return ip - start, ip


def lzo1x_decompress_safe(data: bytes, out_len: int) -> bytes:
    """
    Decompress an LZO1X or lzo-rle stream as the kernel's ``lzo1x_decompress_safe()``.

    :param data: the compressed bytes (``const unsigned char *in``, ``in_len``)
    :param out_len: the size of the output buffer (``*out_len`` on entry; a page for zram)
    :return: the decompressed bytes (``*out_len`` on return)
    :raises LzoError: on what the kernel returns an error for (input, output or look-behind overrun,
        input not consumed, a bad end marker)
    """
    try:
        return _decompress(bytes(data), out_len)
    except _Overrun as e:
        raise LzoError(str(e), -1) from None
    except IndexError:
        raise LzoError("LZO_E_INPUT_OVERRUN", -1) from None


def _decompress(data: bytes, out_len: int) -> bytes:
    n = len(data)
    out = bytearray()
    ip = 0
    state = 0
    t = 0
    nxt = 0

    def need_ip(x: int) -> None:
        if n - ip < x:
            raise LzoError("LZO_E_INPUT_OVERRUN", len(out))

    def need_op(x: int) -> None:
        if out_len - len(out) < x:
            raise LzoError("LZO_E_OUTPUT_OVERRUN", len(out))

    def copy_match(dist: int, length: int) -> None:
        """Append *length* bytes starting *dist* bytes back (overlapping copies repeat the pattern)."""
        if dist <= 0 or dist > len(out):
            raise LzoError("LZO_E_LOOKBEHIND_OVERRUN", len(out))
        need_op(length)
        start = len(out) - dist
        if dist >= length:
            out.extend(out[start:start + length])
        else:
            chunk = bytes(out[start:])
            reps, rest = divmod(length, dist)
            out.extend(chunk * reps + chunk[:rest])

    if n < 3:
        raise LzoError("LZO_E_INPUT_OVERRUN", 0)
    bitstream_version = 0
    if n >= 5 and data[0] == 17:
        bitstream_version = data[1]
        ip = 2
    # "goto" targets of the C code, as a small state machine.
    goto = None
    if data[ip] > 17:
        t = data[ip] - 17
        ip += 1
        if t < 4:
            nxt = t
            goto = "match_next"
        else:
            goto = "copy_literal_run"
    while True:
        if goto is None:
            need_ip(1)
            t = data[ip]
            ip += 1
        if goto == "copy_literal_run" or (goto is None and t < 16 and state == 0):
            if goto is None:
                if t == 0:
                    zeros, ip = _count_zeros(data, ip, n)
                    if zeros > _MAX_255_COUNT:
                        raise LzoError("LZO_E_ERROR", len(out))
                    t += (zeros << 8) - zeros + 15 + data[ip]
                    ip += 1
                t += 3
            goto = None
            need_op(t)
            need_ip(t + 3)
            out.extend(data[ip:ip + t])
            ip += t
            state = 4
            continue
        if goto == "match_next":
            goto = None
        else:
            if t < 16:
                if state != 4:
                    nxt = t & 3
                    need_ip(1)
                    dist = 1 + (t >> 2) + (data[ip] << 2)
                    ip += 1
                    copy_match(dist, 2)
                    # goto match_next
                else:
                    nxt = t & 3
                    need_ip(1)
                    dist = 1 + _M2_MAX_OFFSET + (t >> 2) + (data[ip] << 2)
                    ip += 1
                    copy_match(dist, 3)
            elif t >= 64:
                nxt = t & 3
                need_ip(1)
                dist = 1 + ((t >> 2) & 7) + (data[ip] << 3)
                ip += 1
                copy_match(dist, (t >> 5) - 1 + 2)
            elif t >= 32:
                t = (t & 31) + 2
                if t == 2:
                    zeros, ip = _count_zeros(data, ip, n)
                    if zeros > _MAX_255_COUNT:
                        raise LzoError("LZO_E_ERROR", len(out))
                    t += (zeros << 8) - zeros + 31 + data[ip]
                    ip += 1
                    need_ip(2)
                need_ip(2)
                v = data[ip] | (data[ip + 1] << 8)
                ip += 2
                dist = 1 + (v >> 2)
                nxt = v & 3
                copy_match(dist, t)
            else:
                need_ip(2)
                v = data[ip] | (data[ip + 1] << 8)
                if (v & 0xFFFC) == 0xFFFC and (t & 0xF8) == 0x18 and bitstream_version:
                    need_ip(3)
                    t = (t & 7) | (data[ip + 2] << 3)
                    t += _MIN_ZERO_RUN_LENGTH
                    need_op(t)
                    out.extend(bytes(t))
                    nxt = v & 3
                    ip += 3
                else:
                    back = (t & 8) << 11
                    t = (t & 7) + 2
                    if t == 2:
                        zeros, ip = _count_zeros(data, ip, n)
                        if zeros > _MAX_255_COUNT:
                            raise LzoError("LZO_E_ERROR", len(out))
                        t += (zeros << 8) - zeros + 7 + data[ip]
                        ip += 1
                        need_ip(2)
                        v = data[ip] | (data[ip + 1] << 8)
                    ip += 2
                    back += v >> 2
                    nxt = v & 3
                    if back == 0:
                        # eof_found
                        if t != 3:
                            raise LzoError("LZO_E_ERROR", len(out))
                        if ip < n:
                            raise LzoError("LZO_E_INPUT_NOT_CONSUMED", len(out))
                        if ip > n:
                            raise LzoError("LZO_E_INPUT_OVERRUN", len(out))
                        return bytes(out)
                    copy_match(back + 0x4000, t)
        # match_next
        state = nxt
        t = nxt
        need_ip(t + 3)
        need_op(t)
        if t:
            out.extend(data[ip:ip + t])
            ip += t
