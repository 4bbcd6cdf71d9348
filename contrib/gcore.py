# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Write an ELF core of one process, as the kernel's coredump would have (gdb opens it).

    drgn -c VMCORE -s VMLINUX contrib/gcore.py TASK -o FILE [--all-pages] [--swap-image TYPE=FILE ...]

The ``gcore`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk gcore`` and of ``%gcore`` in drgn's shell (``contrib/gcore.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "gcore"))  # noqa: F821 (drgn provides prog)
