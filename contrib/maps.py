# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Print /proc/PID/maps of a task as its kernel would have.

    drgn -c VMCORE -s VMLINUX contrib/maps.py ARGS...

The ``maps`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk maps`` and of ``%maps`` in drgn's shell (``contrib/maps.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "maps"))  # noqa: F821 (drgn provides prog)
