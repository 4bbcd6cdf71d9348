"""Print /proc/PID/smaps of a task as the kernel would have, from a dump or a live kernel.

    drgn -c VMCORE -s VMLINUX contrib/smaps.py PID [--rollup]
"""

import argparse
import sys

from drgn_ptwalk import find_target, smaps, smaps_rollup

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("task", help="PID, task_struct address or name")
p.add_argument("--rollup", action="store_true", help="print smaps_rollup instead")
args = p.parse_args()
task = find_target(prog, args.task)  # noqa: F821 (drgn provides prog)
sys.stdout.write(smaps_rollup(task) if args.rollup else smaps(task))
