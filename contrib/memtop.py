# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Who ate the memory? One row per process (RSS, PSS, anon, file, shmem, swap, hugetlb), largest first.

    drgn -c VMCORE -s VMLINUX contrib/memtop.py ARGS...

The ``memtop`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk memtop`` and of ``%memtop`` in drgn's shell (``contrib/memtop.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "memtop"))  # noqa: F821 (drgn provides prog)
