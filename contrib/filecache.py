# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The page cache by file, with totals per super block and next to the kernel's counters.

    drgn -c VMCORE -s VMLINUX contrib/filecache.py ARGS...

The ``filecache`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors
of ``drgn-ptwalk filecache`` and of ``%filecache`` in drgn's shell (``contrib/filecache.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "filecache"))  # noqa: F821 (drgn provides prog)
