# SPDX-License-Identifier: LGPL-2.1-or-later
"""The bulk VMA reader (drgn_ptwalk.procfs.vma.VmaReader, behind maps, smaps and numa_maps) gives what the
one-VMA functions give, on every VMA of every process of the reference dumps, and on VMAs whose pointers were
corrupted (through tests/faultinject.py's memory overlay) the same errors."""

import struct

import pytest
from drgn import Object, offsetof
from drgn.helpers.linux.mm import virt_to_phys
from drgn.helpers.linux.pid import find_task

from drgn_ptwalk.errors import VmaFieldError
from drgn_ptwalk.procfs.vma import (
    VmaReader,
    default_root,
    vm_flags_string,
    vma_facts,
    vma_kernel_pagesize,
    vmas,
)
from drgn_ptwalk.tasks import get_task_mm
from faultinject import Overlay, open_dump


def test_reader_equals_one_vma_functions(vmcore):
    prog = vmcore.prog()
    root = default_root(prog)
    n = files = 0
    for _, pid in sorted(vmcore.pids.items()):
        mm = get_task_mm(find_task(prog, pid))
        if not mm:
            continue
        reader = VmaReader(mm, root)
        for v in vmas(mm):
            raw = reader.raw(v)
            assert raw is not None
            assert (raw.start, raw.end, raw.flags, raw.pgoff, raw.file, raw.ops, raw.mm) == (
                v.vm_start.value_(), v.vm_end.value_(), v.vm_flags.value_(), v.vm_pgoff.value_(),
                v.vm_file.value_(), v.vm_ops.value_(), v.vm_mm.value_())
            assert reader.facts(v, raw) == vma_facts(v, mm, root), (pid, hex(raw.start))
            assert reader.kernel_pagesize(v, raw) == vma_kernel_pagesize(v), (pid, hex(raw.start))
            assert reader.flags_string(raw.flags) == vm_flags_string(v)
            n += 1
            files += bool(raw.file)
    assert n > 3000 and files > 20, (n, files)


@pytest.fixture(scope="module")
def overlaid(default_vmcore):
    v = default_vmcore
    prog = open_dump(v.core, v.vmlinux, v.arch if v.dump == "qemu-kdump" else None)
    return v, prog, Overlay(prog, v.page_size)


def _errors(fn):  # type: ignore[no-untyped-def]
    try:
        fn()
    except VmaFieldError as e:
        return str(e)
    return None


@pytest.mark.parametrize("field", ["vm_file", "vm_ops", "vm_private_data"])
def test_reader_bad_pointer_same_error(overlaid, field):
    v, prog, ov = overlaid
    mm = get_task_mm(find_task(prog, v.pids["anon"]))
    root = default_root(prog)
    t = prog.type("struct vm_area_struct")
    off = offsetof(t, field)
    # A VMA that has the pointer and whose name needs it (file mappings; [vdso]/[vvar]: vm_ops and
    # vm_private_data).
    target = next(x for x in vmas(mm) if getattr(x, field).value_() and (field == "vm_file") == bool(x.vm_file))
    bad = 0xFFFFFFFF00000000 | 0xDEAD000  # kernel half, not mapped
    ov.reset()
    try:
        ov.patch(virt_to_phys(prog, target.value_() + off).value_(), struct.pack("<Q", bad))
        vma = Object(prog, "struct vm_area_struct *", target.value_())
        reader = VmaReader(mm, root)
        want = _errors(lambda: vma_facts(vma, mm, root))
        got = _errors(lambda: reader.facts(vma))
        assert want is not None and got == want, (field, want, got)
        # The others are untouched and still read in bulk.
        other = next(x for x in vmas(mm) if x.value_() != target.value_())
        assert reader.facts(other) == vma_facts(other, mm, root)
    finally:
        ov.reset()
