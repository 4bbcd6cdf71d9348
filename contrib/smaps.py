# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Print /proc/PID/smaps of a task as its kernel would have.

    drgn -c VMCORE -s VMLINUX contrib/smaps.py ARGS...

The ``smaps`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk smaps`` and of ``%smaps`` in drgn's shell (``contrib/smaps.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "smaps"))  # noqa: F821 (drgn provides prog)
