# SPDX-License-Identifier: LGPL-2.1-or-later
"""Running the drgn-ptwalk CLI as a user does, for the CLI tests (tests/test_cli.py on the dumps,
tests/unit/test_cli_errors.py without)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, check=None):
    p = subprocess.run([sys.executable, "-m", "drgn_ptwalk", *map(str, args)], capture_output=True, cwd=ROOT)
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout: {p.stdout[-2000:]!r}\nstderr: {p.stderr.decode()}"
    return p


def one_line_error(p, *needles):
    err = p.stderr.decode().strip()
    assert p.returncode == 2, f"exit {p.returncode}, stderr {err!r}"
    assert len(err.splitlines()) == 1 and err.startswith("drgn-ptwalk: "), f"not one line: {err!r}"
    assert "Traceback" not in err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    return err
