# SPDX-License-Identifier: LGPL-2.1-or-later
"""
/proc/kpageflags, /proc/kpagecount and /proc/kpagecgroup from a dump (``fs/proc/page.c``): what reading
each file at offset ``start_pfn * 8`` returns, one u64 per PFN in the dumped kernel's byte order (big-endian
on s390x; :func:`kpage_values` gives the values as integers).

The ``struct page`` array is read one SPARSEMEM section at a time (one ``prog.read()`` per section), never
as drgn Objects. A page's values depend on a handful of its fields and, for a page of a large folio, on
its head; pages are cut into runs equal in those fields and each distinct state is computed once, so the
Python cost is per section and per run, not per page. Runs are found at C speed. With numpy, each field
read is copied out of the section by one strided pass and every page compared with the one before it.
Without numpy, a stretch of pages is first tested whole (equal ``struct page`` bytes, then strided
``memoryview`` compares of the few words that matter), and only stretches that differ are scanned byte
lane by byte lane (strided slices XORed as big integers) for where. Both give the same bytes
(tests/test_kpage.py checks it on every reference dump).

The rules follow ``stable_page_flags()``, ``kpagecount_read()`` and ``page_cgroup_ino()`` of each kernel
generation (:attr:`~drgn_ptwalk.generations.Generation.kpage_scheme`):

* ``"page"`` (v6.1): flags of the page itself, ``PageSlab``/``page_has_type`` pages count 0,
  ``page_mapcount()`` with ``compound_mapcount``, THP as ``PageLRU || PageAnon`` of the head,
  ``page_memcg_check()`` of the page itself;
* ``"folio"`` (v6.12): flags of the folio, ``KPF_THP`` for large rmappable folios,
  ``folio_precise_page_mapcount()``, ``folio_memcg_check()`` of the folio;
* ``"snapshot"`` (v7.x): the same on a ``snapshot_page()`` copy, with the zero pages told by PFN and
  page types tested on the folio.

What a dump cannot hold: ``KPF_IDLE`` kept in ``page_ext`` (32-bit kernels with ``CONFIG_PAGE_IDLE_FLAG``;
on 64-bit kernels ``PG_idle`` is a page flag and is read) — :func:`kpage_unsupported` names it;
ZONE_DEVICE sections (``pfn_to_online_page()``'s slow path) are not online memory and read as holes.

A big-endian kernel's (s390x) ``struct page`` array is read as a little-endian one's: each section's bytes
are byte-swapped word by word once, right after the read (the 8-byte fields then read as they do on a
little-endian kernel, and :func:`~drgn_ptwalk.page.page_layout` gives the 4- and 1-byte fields' offsets in
that swapped image), so every scan and rule is the same code for both byte orders and a
little-endian kernel's path does no more work than before.

The package's modules: :mod:`~drgn_ptwalk.kpage.context` (the ``KPF_*`` bits and what the rules read of
the kernel, built on :class:`~drgn_ptwalk.page.PageLayout`), :mod:`~drgn_ptwalk.kpage.sections` (online
sections, where the files end), :mod:`~drgn_ptwalk.kpage.rules` (a page's three values, per kernel
generation), :mod:`~drgn_ptwalk.kpage.scan` (runs of equal pages: the numpy and the bytes back-ends), and
this one, the files.
"""

import io
import struct
from array import array
from typing import Iterator, List, NamedTuple, Tuple

from drgn import Program

from drgn_ptwalk._byteorder import is_big_endian
from drgn_ptwalk.errors import ArgumentError
from drgn_ptwalk.kpage.context import KPF, kpage_context
from drgn_ptwalk.kpage.scan import Memo, backend, scan_for, section_values
from drgn_ptwalk.kpage.sections import kpage_unsupported, max_dump_pfn, pfn_online, section_states
from drgn_ptwalk.page import swap_words

__all__ = (
    "KPF",
    "KpageValues",
    "kpage_chunks",
    "kpage_values",
    "kpagecgroup",
    "kpagecount",
    "kpageflags",
    "kpage_unsupported",
    "max_dump_pfn",
    "pfn_online",
)

_U64 = struct.Struct("<Q")


class KpageValues(NamedTuple):
    """The three files for PFNs ``[start, start + len(flags))``: one value per PFN each (``array("Q")`` of
    integers, whatever the dumped kernel's byte order)."""

    start: int
    flags: array
    count: array  # type: ignore[assignment]  # (a field named as tuple's count(), as the file is)
    cgroup: array


_FILES = ("kpageflags", "kpagecount", "kpagecgroup")
"""The three files, in the order of :class:`KpageValues`' arrays and of a state's values."""


def _chunks(prog: Program, start: int, end: int, which: Tuple[int, ...]) -> Iterator[Tuple[int, List[bytes]]]:
    """
    The files *which* (indexes into :data:`_FILES`) for PFNs ``[start, end)`` (cut at
    :func:`max_dump_pfn`), a section at a time: (first PFN, the values of each file as little-endian
    u64s; :func:`kpage_chunks` gives them in the kernel's byte order).
    """
    if start < 0 or end < start:
        raise ArgumentError(f"bad PFN range {start:#x}-{end:#x}")
    ctx = kpage_context(prog)
    end = min(end, max_dump_pfn(prog))
    # memcg_data is read (a run boundary where it changes) only for kpagecgroup
    scan = scan_for(prog, ctx, 2 in which)
    # A run's state (see scan.keys_at) holds for the whole call (a folio read per folio names it by PFN).
    memo = Memo()
    scanner = backend()  # numpy or not: chosen once for the call
    pps = ctx.pages_per_section
    first_nr = start // pps
    states = section_states(prog, first_nr, -(-end // pps)) if end > start else []
    pfn = start
    while pfn < end:
        nr = pfn // pps
        base = nr * pps
        online, smap = states[nr - first_nr]
        lo, hi = pfn - base, min(end, base + pps) - base
        if not online:
            yield pfn, [(_U64.pack(ctx.nopage) if f == 0 else bytes(8)) * (hi - lo) for f in which]
        else:
            valid = None
            if smap is not None:
                sub_ = ctx.pages_per_subsection
                bits = int.from_bytes(smap, "little")
                nsub = pps // sub_
                if bits & ((1 << nsub) - 1) != (1 << nsub) - 1:
                    valid = bytearray(pps)
                    for b in range(nsub):
                        if bits >> b & 1:
                            valid[b * sub_ : (b + 1) * sub_] = b"\1" * sub_
            yield pfn, section_values(prog, ctx, scan, base, pps, bytes(valid) if valid is not None else None,
                                      memo, lo, hi, which, scanner)
        pfn = base + hi


def kpage_values(prog: Program, start: int, end: int) -> KpageValues:
    """
    /proc/kpageflags, kpagecount and kpagecgroup for PFNs ``[start, end)`` (cut at
    :func:`max_dump_pfn`, where the kernel's files end), computed in one pass.

    :param start: first PFN
    :param end: end PFN, exclusive
    :return: the three files' values, as arrays of integers
    :raises ArgumentError: if the range is negative or reversed
    :raises drgn.FaultError: if an online section's ``struct page`` array is not in the dump
    """
    if start < 0 or end < start:
        raise ArgumentError(f"bad PFN range {start:#x}-{end:#x}")
    total = max(min(end, max_dump_pfn(prog)) - start, 0)
    # The arrays are made whole first and filled a section at a time: growing them section by section
    # costs more than computing the values.
    out = KpageValues(start, array("Q", [0]) * total, array("Q", [0]) * total, array("Q", [0]) * total)
    views = [memoryview(a).cast("B") for a in out[1:]]
    try:
        for pfn, data in _chunks(prog, start, end, (0, 1, 2)):
            at = (pfn - start) * 8
            for view, b in zip(views, data):
                view[at : at + len(b)] = b
    finally:
        for view in views:
            view.release()
    return out


def kpage_chunks(prog: Program, file: str, start_pfn: int, end_pfn: int) -> Iterator[Tuple[int, bytes]]:
    """
    One of the files (``"kpageflags"``, ``"kpagecount"`` or ``"kpagecgroup"``) for PFNs
    ``[start_pfn, end_pfn)`` a SPARSEMEM section at a time: (first PFN, its bytes: u64s in the dumped
    kernel's byte order, as the file's). For writing a large range out without holding all of it (a 1 TiB
    machine's /proc/kpageflags is 2 GiB).

    :param file: ``"kpageflags"``, ``"kpagecount"`` or ``"kpagecgroup"``
    :param start_pfn: first PFN
    :param end_pfn: end PFN, exclusive
    :return: ``(first PFN, bytes)`` of each section of the range, in order
    :raises ArgumentError: if *file* is not one of the three, or the range is negative or reversed (on the
        first item)
    :raises drgn.FaultError: if an online section's ``struct page`` array is not in the dump
    """
    return file_chunks(prog, file, start_pfn, end_pfn, True)


def file_chunks(prog: Program, file: str, start_pfn: int, end_pfn: int,
                 kernel_order: bool) -> Iterator[Tuple[int, bytes]]:
    """:func:`kpage_chunks`, or with *kernel_order* false the values as little-endian u64s (the same
    bytes on a little-endian kernel)."""
    if file not in _FILES:
        raise ArgumentError(f"no such file: {file!r} (one of {', '.join(_FILES)})")
    swap = kernel_order and is_big_endian(prog)
    for pfn, data in _chunks(prog, start_pfn, end_pfn, (_FILES.index(file),)):
        yield pfn, swap_words(data[0]) if swap else data[0]


def one_file(prog: Program, start: int, end: int, file: str, kernel_order: bool = True) -> bytes:
    """One of the files (see :func:`kpage_chunks`) for PFNs ``[start, end)`` as one ``bytes``: u64s in the
    kernel's byte order, or with *kernel_order* false as little-endian u64s (for readers of the values)."""
    # Each section's bytes are copied out and dropped at once (their memory is reused: a join of all of
    # them would hold twice the output); the buffer is sized once (grown write by write, it was copied
    # as it grew: a fifth of the time on a 10 GiB dump), and getvalue() hands it over.
    chunks = file_chunks(prog, file, start, end, kernel_order)
    first = next(chunks, None)  # the range is checked here
    out = io.BytesIO()
    if first is not None:
        out.seek((min(end, max_dump_pfn(prog)) - start) * 8 - 1)
        out.write(b"\0")
        out.seek(0)
        out.write(first[1])
    for _, data in chunks:
        out.write(data)
    out.truncate()
    return out.getvalue()


def kpageflags(prog: Program, start_pfn: int, end_pfn: int) -> bytes:
    """
    What reading /proc/kpageflags at ``start_pfn * 8`` for ``end_pfn - start_pfn`` entries returns (cut at
    :func:`max_dump_pfn`, where the file ends): u64s in the dumped kernel's byte order (big-endian on
    s390x). Computes this file alone; :func:`kpage_values` computes the three in one pass, as values.

    :param start_pfn: first PFN
    :param end_pfn: end PFN, exclusive
    :return: 8 bytes per PFN
    :raises ArgumentError: if the range is negative or reversed
    :raises drgn.FaultError: if an online section's ``struct page`` array is not in the dump
    """
    return one_file(prog, start_pfn, end_pfn, "kpageflags")


def kpagecount(prog: Program, start_pfn: int, end_pfn: int) -> bytes:
    """
    What reading /proc/kpagecount at ``start_pfn * 8`` returns (see :func:`kpageflags`).

    :param start_pfn: first PFN
    :param end_pfn: end PFN, exclusive
    :return: 8 bytes per PFN: how many times each page is mapped
    """
    return one_file(prog, start_pfn, end_pfn, "kpagecount")


def kpagecgroup(prog: Program, start_pfn: int, end_pfn: int) -> bytes:
    """
    What reading /proc/kpagecgroup at ``start_pfn * 8`` returns (see :func:`kpageflags`).

    :param start_pfn: first PFN
    :param end_pfn: end PFN, exclusive
    :return: 8 bytes per PFN: the inode number of each page's memory cgroup (0: none)
    """
    return one_file(prog, start_pfn, end_pfn, "kpagecgroup")
