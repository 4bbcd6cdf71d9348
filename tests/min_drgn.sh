#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The suite with the oldest drgn the project supports: the `drgn>=X` of pyproject.toml, from PyPI (a
# manylinux wheel: no compiler needed), in a venv under the cache (${DRGN_PTWALK_CACHE:-~/.cache/drgn-ptwalk}/
# venv-drgn-X), with this checkout installed in it (its console script and drgn plugin entry point).
#
# Every module runs, on the dumps users of that drgn have: Debian trixie's kernel on x86_64 as QEMU made it
# (ELF and kdump) and as makedumpfile saved it (kdump -d 0/-d 31), and on arm64; 1000 fault-injection cases.
# Left out, each for a reason that is not drgn-ptwalk's:
#   tests/test_live.py     opens a QEMU guest over QMP: Program.set_qemu_qmp, drgn 0.2.0 (the CLI's --qemu
#                          error on older drgn is tested in test_cli.py and test_compat.py);
#   tests/test_vmcores.py  checks the judge (the kernel's pagemap) against drgn's own follow_pfn(), which
#                          drgn 0.0.31 cannot do in dumps that have only physical addresses ("recursive
#                          address translation" on mm->pgd; drgn 0.3.0 can): drgn's helper, not ours;
#   tests/test_live_inguest.py  runs drgn inside a guest, with that guest's own drgns (Debian trixie's
#                          python3-drgn 0.0.31, the minimum, and PyPI's newest): the host's drgn plays no part;
#   tests/unit/test_loongarch64_unit.py::test_kernel_translation  makes a LoongArch program, and drgn 0.0.31
#                          has no Architecture.LOONGARCH64 (osandov/drgn#628 "libdrgn: add basic LoongArch64
#                          architecture support"; 0.3.0 has it): LoongArch needs the newer drgn anyway.
# PTWALK_KERNELS, if set, narrows the kernels as for the main run. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
min=$(sed -n 's/.*"drgn>=\([0-9.]*\)".*/\1/p' pyproject.toml)
[ -n "$min" ] || { echo "min_drgn.sh: no \"drgn>=X\" in pyproject.toml" >&2; exit 2; }
cache=${DRGN_PTWALK_CACHE:-$HOME/.cache/drgn-ptwalk}
venv=$cache/venv-drgn-$min
py=$venv/bin/python
reqs="drgn==$min tabulate pytest numpy matplotlib tqdm jsonschema lz4 zstandard python-lzo setuptools>=70.1"  # setuptools 70.1: bdist_wheel built in (editable install); matplotlib, tqdm, jsonschema: the report tests; lz4, zstandard, python-lzo: the reader's decompressors
if [ "$(cat "$venv/.ptwalk-reqs" 2>/dev/null)" != "$reqs" ]; then
    python3 -m venv --clear "$venv"
    "$py" -m pip install -q --disable-pip-version-check --only-binary=drgn $reqs
    echo "$reqs" >"$venv/.ptwalk-reqs"
fi
# This checkout (the CI clone moves): the package, its console script and its drgn.plugins entry point.
"$py" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . >/dev/null
echo "min_drgn.sh: drgn $("$py" -c 'import drgn; print(drgn.__version__)') in $venv"
export PATH="$venv/bin:$PATH"
export PTWALK_KERNELS=${PTWALK_KERNELS:-x86_64-6.12,x86_64-6.12-kdump,aarch64-6.12}
export PTWALK_FAULT_CASES=${PTWALK_FAULT_CASES:-1000}
exec "$py" -m pytest -q -rf -p no:cacheprovider --ignore=tests/test_live.py --ignore=tests/test_vmcores.py \
    --ignore=tests/test_live_inguest.py \
    --deselect=tests/unit/test_loongarch64_unit.py::test_kernel_translation "$@"
