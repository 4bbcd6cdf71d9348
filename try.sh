#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job, on the default reference vmcore: build it if missing, print smaps of a workload process
# from the dump with drgn-ptwalk, and say whether it equals what the kernel itself printed.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
exec python3 -m vmcores demo "$@"
