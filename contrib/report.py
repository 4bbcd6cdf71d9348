# SPDX-License-Identifier: LGPL-2.1-or-later
"""
A self-contained HTML report (and its JSON) of where the memory went.

    drgn -c VMCORE -s VMLINUX contrib/report.py -o DIR

The ``report`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk report`` and of ``%report`` in drgn's shell (``contrib/report.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "report"))  # noqa: F821 (drgn provides prog)
