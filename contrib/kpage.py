# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Write /proc/kpageflags, kpagecount or kpagecgroup of a PFN range.

    drgn -c VMCORE -s VMLINUX contrib/kpage.py ARGS...

The ``kpage`` command of :mod:`drgn_ptwalk.commands` as a drgn script: the arguments, output and errors of
``drgn-ptwalk kpage`` and of ``%kpage`` in drgn's shell (``contrib/kpage.py --help`` lists them).
"""

import sys

from drgn_ptwalk.commands import run_script

sys.exit(run_script(prog, "kpage"))  # noqa: F821 (drgn provides prog)
