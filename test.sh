#!/usr/bin/env bash
# Set up a Debian machine for drgn-ptwalk's tests and run them: tools from apt, the package from PyPI,
# the reference vmcores (built once, cached in ${DRGN_PTWALK_CACHE:-~/.cache/drgn-ptwalk}), then pytest.
set -euo pipefail
cd "$(dirname "$0")"
pkgs="qemu-system-x86 qemu-system-arm gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross cpio kmod xz-utils zstd
      debian-archive-keyring dpkg util-linux"
missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"; done)
if [ -n "$missing" ]; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
python3 -m pip install -q -e '.[test]'
python3 -m vmcores build --keep-going ${PTWALK_KERNELS:+${PTWALK_KERNELS//,/ }} || true  # failures are reported by the tests
exec python3 -m pytest -q -rf "$@"
