#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Set up a Debian machine for drgn-ptwalk's tests and run them: tools from apt, the package from PyPI,
# the reference vmcores (built once, cached in ${DRGN_PTWALK_CACHE:-~/.cache/drgn-ptwalk}), then pytest.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
# Build failures are not fatal here: the tests that need a dump fail with the builder's message.
python3 -m vmcores build --keep-going ${PTWALK_KERNELS:+${PTWALK_KERNELS//,/ }} || true
exec python3 -m pytest -q -rf "$@"
