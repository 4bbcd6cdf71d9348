# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Print /proc/PID/numa_maps of a task as its kernel would have.

    drgn -c VMCORE -s VMLINUX contrib/numa_maps.py ARGS...

The ``numa_maps`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk numa_maps`` and of ``%numa_maps`` in drgn's shell (``contrib/numa_maps.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "numa_maps"))  # noqa: F821 (drgn provides prog)
