#!/usr/bin/env bash
# The main job, on the default reference vmcore: build it if missing, print smaps of a workload process
# from the dump with drgn-ptwalk, and say whether it equals what the kernel itself printed.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
exec python3 -m vmcores demo "$@"
