# SPDX-License-Identifier: LGPL-2.1-or-later
"""Live mode as users run it: drgn and drgn-ptwalk *inside* a Debian trixie guest, on its /proc/kcore.

``vmcores/inguest.py`` boots the realuser guest's kernel and root image with Redis, nginx and a Python
service doing real work, python3-drgn (Debian's 0.0.31) installed from its .debs, the newest PyPI drgn
unpacked beside it and the kernel's debug vmlinux where the -dbg package puts it. In the guest,
``vmcores/guest/inguest/check.py`` runs once per drgn: every user process stopped, each of its five files
computed over /proc/kcore and compared with the kernel's file read by that same process around it; then
``workload churn`` walked while it changes its memory; then the ``drgn-ptwalk -k`` CLI on two servers.
One boot (~6-10 min under TCG) serves every test here.
"""

import os
import statistics
from typing import Any, Dict, List

import pytest

from vmcores import inguest
from vmcores.fetch import FetchError
from vmcores.qemu import GuestError

LABELS = ("debian", "pypi")
FILES = ("maps", "smaps", "smaps_rollup", "numa_maps", "pagemap")


def _arches() -> List[str]:
    """x86_64 unless PTWALK_INGUEST_ARCHES names others (drgn has no arm64 wheel on PyPI: aarch64 fails)."""
    return [a for a in os.environ.get("PTWALK_INGUEST_ARCHES", "x86_64").split(",") if a]


@pytest.fixture(scope="module", params=_arches())
def inguest_run(request) -> Dict[str, Any]:
    try:
        run = inguest.run(request.param)
    except (FetchError, GuestError, OSError) as e:
        pytest.fail(f"in-guest live check on {request.param} could not run: {e}", pytrace=False)
    run["arch"] = request.param
    print(timings(run))
    return run


def _result(run: Dict[str, Any], label: str) -> Dict[str, Any]:
    res = run["results"].get(f"{label}-api")
    assert res is not None, f"{run['arch']}: the guest printed no {label} result: {sorted(run['results'])}"
    assert "error" not in res, f"{run['arch']} {label}: the in-guest check failed: {res['error']}"
    return res


def timings(run: Dict[str, Any]) -> str:
    """Per drgn: start-up, and per file the median and largest cost of one call beyond it."""
    lines = [f"in-guest live check, {run['arch']}: {run['seconds']}"]
    for label in LABELS:
        res = run["results"].get(f"{label}-api") or {}
        procs = res.get("processes", {})
        if not procs:
            continue
        lines.append(f"  {label}: drgn {res['drgn']}, program open {res['open_seconds']} s, {len(procs)} processes")
        for f in FILES:
            secs = [p["files"][f]["seconds"] for p in procs.values() if "seconds" in p["files"][f]]
            if secs:
                lines.append(f"    {f:13} median {statistics.median(secs):.3f} s, max {max(secs):.3f} s, "
                             f"total {sum(secs):.1f} s")
        for key, cli in sorted(run["results"].items()):
            if key.startswith(f"{label}-cli"):
                lines.append(f"    cli {cli.get('file')} of {cli.get('comm')}: {cli.get('seconds')} s")
    return "\n".join(lines)


def test_inguest_drgn_versions(inguest_run):
    """The Debian drgn is the python3-drgn package's; the PyPI one is the wheel's, shadowing it on
    PYTHONPATH."""
    deb, pypi = _result(inguest_run, "debian"), _result(inguest_run, "pypi")
    package = next(d for d in inguest_run["debs"] if d.startswith("python3-drgn_"))
    assert deb["drgn_file"].startswith("/usr/lib/python3/dist-packages/"), deb["drgn_file"]
    assert package.split("_")[1].startswith(deb["drgn"] + "-"), f"drgn {deb['drgn']} is not {package}'s"
    assert pypi["drgn_file"].startswith("/mnt/live/pypi/"), pypi["drgn_file"]
    assert inguest_run["wheel"].split("-")[1] == pypi["drgn"], f"drgn {pypi['drgn']} is not {inguest_run['wheel']}'s"


@pytest.mark.parametrize("label", LABELS)
def test_inguest_every_process_equals_kernel(inguest_run, label):
    res = _result(inguest_run, label)
    procs = res["processes"]
    comms = {p["comm"] for p in procs.values()}
    # The servers the guest started must be among what was checked (else it checked too little).
    assert {"redis-server", "nginx", "python3"} <= comms, f"servers missing from {sorted(comms)}"
    assert res["stopped"], "no process was stopped"
    bad = [f"{pid} {p['comm']}/{f}: {r.get('detail', '?')} (tries {r['tries']})"
           for pid, p in procs.items() for f, r in p["files"].items() if not r["ok"]]
    assert set(f for p in procs.values() for f in p["files"]) == set(FILES)
    assert not bad, f"{inguest_run['arch']} drgn {res['drgn']}: differs from the kernel: {bad[:20]}"


@pytest.mark.parametrize("label", LABELS)
def test_inguest_churn(inguest_run, label):
    churn = _result(inguest_run, label)["churn"]
    assert not churn["bad"], "\n".join(churn["bad"][:20])
    assert churn["walks"] >= 3 and churn["states"] > 1, f"churn's page tables never changed: {churn}"
    assert churn["types"].get("FOLIO") and churn["checked"] > 100, f"too little walked: {churn}"


@pytest.mark.parametrize("label", LABELS)
def test_inguest_cli(inguest_run, label):
    runs = {k: v for k, v in inguest_run["results"].items() if k.startswith(f"{label}-cli-")}
    assert len(runs) == 2, f"expected two CLI runs for {label}: {sorted(inguest_run['results'])}"
    for key, r in runs.items():
        assert "error" not in r, f"{key}: {r['error']}"
        assert r["rc"] == 0, f"{key}: drgn-ptwalk exited with {r['rc']}: {r['stderr']}"
        assert r["stable"], f"{key}: the kernel's file changed between two reads right after the CLI"
        assert r["ok"], f"{key}: differs from the kernel: {r.get('detail')}"
