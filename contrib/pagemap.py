"""Dump /proc/PID/pagemap of every VMA of a task (what reading it as root would give), or one range.

    drgn -c VMCORE -s VMLINUX contrib/pagemap.py PID [--start A --end B] -o FILE

Without --start/--end it writes one record per VMA: little-endian u64 start, u64 end, u64 n, then n
u64 entries — the same layout as the reference vmcores' pagemap.bin.
"""

import argparse
import struct

from drgn.helpers.linux.mm import for_each_vma

from drgn_ptwalk import find_target, pagemap, task_mm

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("task", help="PID, task_struct address or name")
p.add_argument("--start", type=lambda s: int(s, 0))
p.add_argument("--end", type=lambda s: int(s, 0))
p.add_argument("-o", "--output", required=True)
args = p.parse_args()
task = find_target(prog, args.task)  # noqa: F821
with open(args.output, "wb") as f:
    if args.start is not None and args.end is not None:
        f.write(pagemap(task, args.start, args.end))
    else:
        for vma in for_each_vma(task_mm(task)):
            start, end = vma.vm_start.value_(), vma.vm_end.value_()
            data = pagemap(task, start, end)
            f.write(struct.pack("<QQQ", start, end, len(data) // 8) + data)
