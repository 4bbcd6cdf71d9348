# SPDX-License-Identifier: LGPL-2.1-or-later
"""The CLI's answer to bad input that needs no dump: one line on stderr, exit status 2, no traceback."""

import sys

from cli_common import cli, one_line_error
from drgn_ptwalk._compat import HAVE_QEMU_QMP, qemu_unsupported


def test_error_missing_file(tmp_path):
    one_line_error(cli("-c", tmp_path / "nope", "maps", "1"), "no such file")


def test_error_not_a_core(tmp_path):
    f = tmp_path / "text"
    f.write_text("hello\n" * 100)
    one_line_error(cli("-c", f, "maps", "1"))


def test_error_not_a_kernel():
    one_line_error(cli("-c", sys.executable, "maps", "1"))


def test_error_qemu(tmp_path):
    """--qemu: drgn 0.2.0 and newer open the QMP socket (here: none there); older drgn cannot, and it says so."""
    sock = tmp_path / "no-such.sock"
    err = one_line_error(cli("--qemu", sock, "maps", "1"))
    if HAVE_QEMU_QMP:
        assert f"{sock}: cannot open" in err
    else:
        assert err == f"drgn-ptwalk: {qemu_unsupported()}"
