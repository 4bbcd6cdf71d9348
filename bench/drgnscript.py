# SPDX-License-Identifier: LGPL-2.1-or-later
"""
``python -m bench.drgnscript CORE VMLINUX ARCH SCRIPT [ARGS...]``: run a drgn script as drgn's CLI runs it
(``prog`` a global, also the default program; ``__name__ == "__main__"``; ``sys.argv`` the script and its
arguments) on a dump drgn's CLI cannot open by itself: a QEMU ``kdump-zlib`` dump names no architecture, and
``drgn -c CORE`` (0.3.0) fails with ``kdump_get_string_attr(KDUMP_ATTR_ARCH_NAME): Key has no value``. The
dump is opened as drgn-ptwalk opens it (:func:`~drgn_ptwalk.program.open_program`, the vmlinux's debug info).
The bench runs drgn's ``contrib/gcore.py`` this way on kdump dumps.
"""

import runpy
import sys

import drgn

from drgn_ptwalk.program import open_program


def main() -> None:
    core, vmlinux, arch, script = sys.argv[1:5]
    prog = open_program(core, symbols=[vmlinux], architecture=arch or None)
    drgn.set_default_prog(prog)
    sys.argv = [script] + sys.argv[5:]
    runpy.run_path(script, init_globals={"prog": prog}, run_name="__main__")


if __name__ == "__main__":
    main()
