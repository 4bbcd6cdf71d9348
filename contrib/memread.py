# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The bytes of a range of a process's memory, each page with its fate.

    drgn -c VMCORE -s VMLINUX contrib/memread.py TASK ADDR LEN [-o FILE] [--swap-image TYPE=FILE] [--root DIR] [--json]

The ``memread`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk read`` (``drgn-ptwalk memread``) and of ``%memread`` in drgn's shell (``contrib/memread.py --help``
lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "memread"))  # noqa: F821 (drgn provides prog)
