# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Walk a task's page tables: one line (or JSON object) per batched entry.

    drgn -c VMCORE -s VMLINUX contrib/ptwalk.py ARGS...

The ``ptwalk`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk ptwalk`` and of ``%ptwalk`` in drgn's shell (``contrib/ptwalk.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "ptwalk"))  # noqa: F821 (drgn provides prog)
