# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Who maps a physical page, and what the page is.

    drgn -c VMCORE -s VMLINUX contrib/whomaps.py ARGS...

The ``whomaps`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk whomaps`` and of ``%whomaps`` in drgn's shell (``contrib/whomaps.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "whomaps"))  # noqa: F821 (drgn provides prog)
