# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Defects found while reshaping the code, each on a real reference dump whose memory is changed
through a drgn memory overlay (tests/faultinject.py): memtop goes on past a process it cannot read and says
why, pagemap's per-VMA records come from one read of the VMA tree, and the drgn shell commands turn a
corrupt VMA tree into a one-line CommandError.
"""

import io
import struct

import pytest
from drgn.helpers.linux.mm import virt_to_phys
from drgn.helpers.linux.pid import find_task

from drgn_ptwalk.tasks import get_task_mm
from faultinject import Overlay, open_dump

_Q = struct.Struct("<Q")


def _fresh(vmcore):
    """A program of its own (the overlay changes it)."""
    return open_dump(vmcore.core, vmcore.vmlinux, vmcore.arch if vmcore.dump == "qemu-kdump" else None)


def _ma_root(prog, pid):
    mm = find_task(prog, pid).mm
    return mm, mm.mm_mt.ma_root.address_of_().value_(), mm.mm_mt.ma_root.value_()


def _corrupt_tree(prog, pid):
    """Give the VMA tree of *pid* a root of node type 7 (no such maple node type)."""
    from drgn_ptwalk.arch import get_decoder

    mm, addr, root = _ma_root(prog, pid)
    ov = Overlay(prog, get_decoder(prog).page_size)
    ov.patch_virt(addr, _Q.pack((root & ~0xFF) | (7 << 3) | 2))
    return ov


def _rollup(vmcore, pid):
    out = {}
    for line in (vmcore.pid_dir(pid) / "smaps_rollup").read_text().splitlines()[1:]:
        key, val = line.split(":")
        out[key] = int(val.split()[0])
    return out


def test_memtop_goes_on_past_a_corrupt_process(default_vmcore):
    from drgn_ptwalk.procfs.memtop import memtop

    v = default_vmcore
    prog = _fresh(v)
    bad = v.pids["anon"]
    _corrupt_tree(prog, bad)
    rows = {r.pid: r for r in memtop(prog)}
    assert "VmaTreeError" in rows[bad].error and "bad node type 7" in rows[bad].error, rows[bad]
    for name, pid in v.pids.items():
        task = find_task(prog, pid)
        if name == "anon" or not get_task_mm(task) or task.pid != task.tgid:
            continue  # the corrupt one; not a process with an mm of its own (see test_cli.test_memtop)
        r = _rollup(v, pid)
        assert rows[pid].error is None and (rows[pid].rss_kb, rows[pid].pss_kb) == (r["Rss"], r["Pss"]), name


def test_drgn_command_corrupt_tree_is_command_error(default_vmcore):
    import drgn_ptwalk.plugin  # noqa: F401 (registers the commands)
    from drgn_ptwalk._compat import HAVE_COMMANDS

    v = default_vmcore
    prog = _fresh(v)
    bad = v.pids["anon"]
    _corrupt_tree(prog, bad)
    if not HAVE_COMMANDS:
        # drgn < 0.0.33 has no shell commands: the error the command would wrap, as the CLI tells it.
        from drgn_ptwalk.commands import USER_ERRORS, execute, make_parser, one_line, registry

        cmd = next(c for c in registry() if c.name == "smaps")
        with pytest.raises(USER_ERRORS) as e:
            execute(cmd, prog, make_parser(cmd).parse_args([str(bad)]), io.StringIO())
        assert "bad node type 7" in one_line(e.value)
        return
    from drgn.commands import CommandError, run_command

    with pytest.raises(CommandError) as e:
        run_command(prog, f"smaps {bad}")
    assert "bad node type 7" in str(e.value) and len(str(e.value).splitlines()) == 1


def test_pagemap_records_read_the_tree_once(default_vmcore):
    """
    The VMA tree changes between two reads (as on a live kernel): its root reads as empty the first time
    and as it is afterwards. The records must come from one read (before: the walk's second read met VMAs
    the records did not have, a KeyError).
    """
    from drgn_ptwalk.arch import get_decoder
    from drgn_ptwalk.procfs.pagemap import pagemap_records

    v = default_vmcore
    prog = _fresh(v)
    pid = v.pids["anon"]
    mm, addr, root = _ma_root(prog, pid)
    ps = get_decoder(prog).page_size
    page = addr - addr % ps
    orig = prog.read(page, ps)
    off = addr - page
    reads = []

    def read(address, count, offset, physical):
        data = orig
        if offset <= off < offset + count:
            reads.append(offset)
            if len(reads) == 1:  # the first read of the root: an empty tree
                data = orig[:off] + bytes(8) + orig[off + 8:]
        return data[offset:offset + count]

    prog.add_memory_segment(page, ps, read, False)
    prog.add_memory_segment(virt_to_phys(prog, page).value_(), ps, read, True)
    recs = pagemap_records(mm)
    assert len(reads) == 1, f"the VMA tree's root was read {len(reads)} times"
    assert recs == []  # what that one read saw
    # Read again (the root now reads as it is): every VMA, as the kernel printed them.
    from vmcores.truth import read_pagemap

    want = [(r.start, r.end, r.entries.tobytes()) for r in read_pagemap(v.pid_dir(pid) / "pagemap.bin")]
    assert [(r.start, r.end, r.entries.tobytes()) for r in pagemap_records(mm)] == want
