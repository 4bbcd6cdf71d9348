#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Set up a Debian machine for drgn-ptwalk's tests and run them: tools from apt, the package from PyPI,
# the reference vmcores (built once, cached in ${DRGN_PTWALK_CACHE:-~/.cache/drgn-ptwalk}), then pytest with
# the oldest supported drgn (tests/min_drgn.sh) and with the newest; ruff check and mypy (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
# The main run uses the newest drgn on PyPI (a wheel: no compiler); tests/min_drgn.sh the oldest supported.
python3 -m pip install -q --disable-pip-version-check -U --only-binary=drgn drgn \
    || echo "test.sh: could not upgrade drgn; testing the installed one" >&2
# Lint and type check first (seconds); their failure fails the run, after the tests have run.
lint_rc=0
python3 -m ruff check . || lint_rc=$?
python3 -m mypy || lint_rc=$?
# Build failures are not fatal here: the tests that need a dump fail with the builder's message. Two
# builders (x86_64 and arm64 guests side by side): a TCG guest keeps about one of the two cores busy.
python3 -m vmcores build --keep-going --jobs 2 ${PTWALK_KERNELS:+${PTWALK_KERNELS//,/ }} || true
# The oldest drgn pyproject.toml accepts, on a subset that runs every module (see tests/min_drgn.sh): on a
# full run (no arguments), or whenever PTWALK_MIN_DRGN=1; PTWALK_MIN_DRGN=0 leaves it out.
min_rc=0
if [ "${PTWALK_MIN_DRGN:-$([ $# -eq 0 ] && echo 1 || echo 0)}" = 1 ]; then
    tests/min_drgn.sh || min_rc=$?
fi
python3 -c 'import drgn; print(f"test.sh: drgn {drgn.__version__}")'
rc=0
python3 -m pytest -q -rf "$@" || rc=$?
if [ "$rc" = 0 ] && [ "$min_rc" != 0 ]; then
    echo "test.sh: the suite with the oldest supported drgn failed (tests/min_drgn.sh exit $min_rc)" >&2
    rc=$min_rc
fi
if [ "$rc" = 0 ] && [ "$lint_rc" != 0 ]; then
    echo "test.sh: ruff check or mypy found errors (above, before the tests)" >&2
    rc=$lint_rc
fi
exit "$rc"
