# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Where all the memory went: every PFN in one row, next to the kernel's counters.

    drgn -c VMCORE -s VMLINUX contrib/memmap.py ARGS...

The ``memmap`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk memmap`` and of ``%memmap`` in drgn's shell (``contrib/memmap.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "memmap"))  # noqa: F821 (drgn provides prog)
