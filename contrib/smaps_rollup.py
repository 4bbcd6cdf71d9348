# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Print /proc/PID/smaps_rollup of a task as its kernel would have.

    drgn -c VMCORE -s VMLINUX contrib/smaps_rollup.py ARGS...

The ``smaps_rollup`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk smaps_rollup`` and of ``%smaps_rollup`` in drgn's shell (``contrib/smaps_rollup.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "smaps_rollup"))  # noqa: F821 (drgn provides prog)
