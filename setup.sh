#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install what drgn-ptwalk and its reference vmcores need on a Debian machine (idempotent):
# QEMU for every architecture of the matrix, the arm64, ppc64el and s390x cross compilers, archive tools, gdb and
# gdb-multiarch with binutils' readelf (the gcore tests open the cores with them), chromium (the report tests load
# the page in it, headless), then the package itself, ruff and mypy.
set -euo pipefail
cd "$(dirname "$0")"
pkgs="qemu-system-x86 qemu-system-arm qemu-system-ppc qemu-system-misc gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross gcc-s390x-linux-gnu libc6-dev-s390x-cross cpio kmod xz-utils zstd e2fsprogs xfsprogs
      debian-archive-keyring dpkg util-linux tar gdb gdb-multiarch binutils chromium"
missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"; done)
if [ -n "$missing" ]; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
# python-lzo (the read and test extras: lzo pages of zram/zswap) builds against liblzo2.
if ! dpkg-query -W -f='${Status}\n' liblzo2-dev 2>/dev/null | grep -q '^install ok installed$'; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q liblzo2-dev ||
        { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q liblzo2-dev; }
fi
# The package with the test dependencies and the pinned linter and type checker (ruff, mypy).
python3 -m pip install -q -e '.[test,lint]'
