# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Write /proc/PID/pagemap of a task: one record per VMA (pagemap.bin layout), or one range.

    drgn -c VMCORE -s VMLINUX contrib/pagemap.py ARGS...

The ``pagemap`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk pagemap`` and of ``%pagemap`` in drgn's shell (``contrib/pagemap.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "pagemap"))  # noqa: F821 (drgn provides prog)
