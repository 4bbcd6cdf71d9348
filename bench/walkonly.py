# SPDX-License-Identifier: LGPL-2.1-or-later
"""
``python -m bench.walkonly CORE VMLINUX PID [ARCH]``: the walk alone as a user's process runs it — the
program opened as the CLI opens it, then :func:`~drgn_ptwalk.walk.pt_range_walk` of the task consumed, no
output. The end-to-end baseline of ``ptwalk PID`` (both pay drgn's start-up).
"""

import sys
from collections import deque

from drgn_ptwalk.program import open_program
from drgn_ptwalk.tasks import find_target, task_mm
from drgn_ptwalk.walk import pt_range_walk


def main() -> None:
    core, vmlinux, pid = sys.argv[1:4]
    prog = open_program(core, symbols=[vmlinux], architecture=sys.argv[4] if len(sys.argv) > 4 else None)
    deque(pt_range_walk(task_mm(find_target(prog, pid))), maxlen=0)


if __name__ == "__main__":
    main()
