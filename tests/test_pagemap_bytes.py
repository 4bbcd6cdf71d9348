# SPDX-License-Identifier: LGPL-2.1-or-later
"""The judge for the bytes ``pagemap()`` returns: those of the kernel's /proc/PID/pagemap file, each u64 in
the dumped kernel's byte order (big-endian on s390x).

For every reference dump, every process the truth lists and every VMA of it (a record of its captured
``pagemap.bin``), ``pagemap(task, start, end)`` must equal the bytes the guest read from the file at
``start / PAGE_SIZE * 8``. ``pagemap.bin`` stores the entries little-endian whatever the guest's byte
order (``workload.c``: swapped on a big-endian guest), so the file's own bytes are its values written in
the kernel's order.
"""

import sys
from array import array

from drgn.helpers.linux.pid import find_task

import drgn_ptwalk.procfs as procfs
from drgn_ptwalk._byteorder import byte_order
from drgn_ptwalk.tasks import get_task_mm
from vmcores.truth import read_pagemap


def _file_bytes(values: array, order: str) -> bytes:
    """*values* as the kernel's file held them: u64s in byte order *order*."""
    out = array("Q", values)
    if order != sys.byteorder:
        out.byteswap()
    return out.tobytes()


def test_pagemap_bytes_are_the_files(vmcore):
    prog = vmcore.prog()
    order = byte_order(prog)
    ps = vmcore.page_size
    checked = 0
    bad = []
    for name, pid in sorted(vmcore.pids.items(), key=lambda x: x[1]):
        task = find_task(prog, pid)
        assert task, f"{name}: PID {pid} is not in the dump"
        path = vmcore.pid_dir(pid) / "pagemap.bin"
        assert path.exists(), f"{name} ({pid}): pagemap.bin missing from the truth"
        if not get_task_mm(task):
            continue  # no mm of its own: nothing captured (test_procfs checks the ESRCH)
        for rec in read_pagemap(path):
            want = _file_bytes(rec.entries, order)
            got = procfs.pagemap(task, rec.start, rec.start + len(rec.entries) * ps)
            checked += 1
            if got != want:
                n = sum(1 for i in range(0, min(len(got), len(want)), 8) if got[i:i + 8] != want[i:i + 8])
                bad.append(f"{name} ({pid}) VMA {rec.start:#x}: {n} of {len(rec.entries)} entries differ, "
                           f"{len(got)} bytes for {len(want)}; first 8 kernel {want[:8].hex()} ours {got[:8].hex()}")
    print(f"{vmcore.name}: pagemap() of {checked} VMAs in the {order}-endian file layout")
    assert checked, f"{vmcore.name}: no VMA compared"
    assert not bad, f"{vmcore.name}: {len(bad)} VMAs differ from the file's bytes:\n" + "\n".join(bad[:12])
