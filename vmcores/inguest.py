# SPDX-License-Identifier: LGPL-2.1-or-later
"""The in-guest live check: drgn and drgn-ptwalk inside a Debian trixie guest, on its own /proc/kcore.

The guest is a realuser guest's kernel and root image (``kernels.toml``: ``<arch>-6.12-realuser``; the
image is shared, its digest unchanged) with ``vmcores/guest/inguest-init`` as init instead of the dump
guest's, and one more virtio disk, read-only, serial ``ptwalk-live`` (cached by the digest of what it
holds): what ``apt install python3-drgn python3-tabulate linux-image-<release>-dbg`` and ``pip install
drgn`` would put on the machine —

* ``root/``: the .debs the realuser closure lacks for python3-drgn and python3-tabulate (resolved and
  verified by apt like the image's), extracted; the init copies them over the root;
* ``pypi/``: the newest drgn wheel on PyPI for the guest's CPython and architecture, its sha256 checked
  against the package index's record (pip's configured index), unpacked;
* ``vmlinux``: the kernel's debug vmlinux (the -dbg package's), linked by the init where Debian puts it.

drgn-ptwalk itself (the checkout's ``drgn_ptwalk/``) goes in the stage-1 payload as ``src.tar``, so a code
change rebuilds no disk. The guest prints one base64 JSON result per check (``check.py``) and
``=====INGUEST-DONE=====``; :func:`run` returns them.
"""

import base64
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import build, fetch, guest, qemu, rootfs
from .fetch import FetchError, cache_dir

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GUEST_OF = {"x86_64": "x86_64-6.12-realuser", "aarch64": "aarch64-6.12-realuser"}
EXTRA_PACKAGES = ["python3-drgn", "python3-tabulate"]
WHEEL_PLATFORMS = {"amd64": ["manylinux2014_x86_64", "manylinux_2_28_x86_64"],
                   "arm64": ["manylinux2014_aarch64", "manylinux_2_28_aarch64"]}
RESULT, RESULT_END, DONE = "=====INGUEST-RESULT=====", "=====INGUEST-RESULT-END=====", "=====INGUEST-DONE====="
# Boot, servers, two drgn start-ups with their checks and four CLI runs under TCG beside other builds.
TIMEOUT = float(os.environ.get("DRGN_PTWALK_INGUEST_TIMEOUT", "1500"))


def extra_debs(apt: fetch.Apt, suite: str, arch: str) -> List[Path]:
    """The verified .debs python3-drgn and python3-tabulate need beyond the realuser image's closure."""
    base = set(rootfs.resolve(apt, suite, arch, rootfs.PACKAGE_SETS["realuser"]))
    more = rootfs.resolve(apt, suite, arch, rootfs.PACKAGE_SETS["realuser"] + EXTRA_PACKAGES)
    by_arch: Dict[str, Dict[str, str]] = {}
    for pkg, version, a in sorted(set(more) - base):
        by_arch.setdefault(a, {})[pkg] = version
    if "python3-drgn" not in by_arch.get(arch, {}):
        raise FetchError(f"python3-drgn not found in {suite}/{arch}")
    return sorted(p for a, pkgs in by_arch.items() for p in apt.download_many(pkgs, a).values())


def python_version(apt: fetch.Apt, suite: str, arch: str) -> str:
    """The guest's python3 as a wheel tag version: "313" for Debian's python3 3.13.x."""
    closure = rootfs.resolve(apt, suite, arch, rootfs.PACKAGE_SETS["realuser"])
    version = next(v for p, v, _ in closure if p == "python3")
    major, minor = version.split(".")[:2]
    return f"{major}{minor}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _index_sha256(filename: str, request: List[str]) -> Optional[str]:
    """The sha256 the package index (pip's configured one: the machine's mirror) records for *filename*:
    ``archive_info`` of what ``pip install --dry-run --report`` resolves for the same *request*."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed",
                            "--target", tmp, "--report", str(report), *request], capture_output=True, text=True)
        if p.returncode != 0 or not report.is_file():
            raise FetchError(f"cannot ask the package index for {filename}'s hash: {p.stderr.strip()[-1000:]}")
        for item in json.loads(report.read_text()).get("install", []):
            info = item.get("download_info", {})
            if info.get("url", "").split("#")[0].rsplit("/", 1)[-1] == filename:
                return info.get("archive_info", {}).get("hashes", {}).get("sha256")
    return None


def drgn_wheel(arch: str, py: str) -> Path:
    """The newest drgn wheel for CPython ``py`` on ``arch`` (pip, the ordinary client), in the cache,
    its sha256 checked against the one the package index records (pip's configured index: the
    machine's mirror; once: a ``.sha256`` beside it records the check)."""
    d = cache_dir() / "pypi"
    d.mkdir(parents=True, exist_ok=True)
    request = ["--disable-pip-version-check", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", py, "--abi", f"cp{py}", "drgn"]
    for plat in WHEEL_PLATFORMS[arch]:
        request += ["--platform", plat]
    p = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(d), *request],
                       capture_output=True, text=True)
    if p.returncode != 0:
        # drgn has published manylinux wheels for x86_64 only: elsewhere pip would build it from source.
        raise FetchError(f"pip download drgn (a cp{py} wheel for {arch}) failed: {p.stderr.strip()[-1000:]}")
    plat_re = "|".join(re.escape(x) for x in WHEEL_PLATFORMS[arch])
    wheels = sorted((w for w in d.glob(f"drgn-*-cp{py}-cp{py}-*.whl") if re.search(plat_re, w.name)),
                    key=lambda w: [int(x) for x in re.findall(r"\d+", w.name.split("-")[1])])
    if not wheels:
        raise FetchError(f"pip download left no drgn wheel for cp{py}/{arch} in {d}")
    wheel = wheels[-1]
    stamp = wheel.with_name(wheel.name + ".sha256")
    digest = _sha256(wheel)
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return wheel
    want = _index_sha256(wheel.name, request)
    if want != digest:
        wheel.unlink()
        raise FetchError(f"{wheel.name}: sha256 {digest} is not the index's ({want}); removed it")
    stamp.write_text(digest + "\n")
    return wheel


def _lay_out(tree: Path, debs: List[Path], wheel: Path, vmlinux: Path) -> None:
    """The live disk's tree: root/ (the .debs extracted as on the image: merged /usr), pypi/, vmlinux."""
    root = tree / "root"
    (root / "usr").mkdir(parents=True)
    links = ["bin", "sbin", "lib", "lib64"]
    for d in links:
        (root / "usr" / d).mkdir()
        (root / d).symlink_to(f"usr/{d}")
    for deb in debs:
        rootfs._extract(deb, root)
    for d in links:  # the image has them: copying links over its links would replace nothing useful
        (root / d).unlink()
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tree / "pypi")
    for so in (tree / "pypi").rglob("*.so*"):
        so.chmod(0o755)
    try:
        os.link(vmlinux, tree / "vmlinux")
    except OSError:
        shutil.copy(vmlinux, tree / "vmlinux")


def live_disk(apt: fetch.Apt, e: Dict[str, Any], kdir: Path) -> Tuple[Path, Dict[str, Any]]:
    """The cached ``ptwalk-live`` ext4 image of entry ``e``'s suite, architecture and kernel, and what it
    holds: ``debs`` (file names), ``wheel`` (file name)."""
    debs = extra_debs(apt, e["suite"], e["arch"])
    wheel = drgn_wheel(e["arch"], python_version(apt, e["suite"], e["arch"]))
    h = hashlib.sha256(json.dumps([kdir.name, [d.name for d in debs], wheel.name]).encode())
    h.update(inspect.getsource(_lay_out).encode())
    out = cache_dir() / "inguest" / f"live-{e['arch']}-{h.hexdigest()[:16]}.ext4"
    holds = {"debs": [d.name for d in debs], "wheel": wheel.name}
    if out.is_file():
        return out, holds
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        tree = Path(tmp) / "tree"
        _lay_out(tree, debs, wheel, kdir / "vmlinux")
        img = Path(tmp) / "live.ext4"
        mib = int(subprocess.run(["du", "-sm", "--apparent-size", str(tree)], capture_output=True, text=True,
                                 check=True).stdout.split()[0]) * 9 // 8 + 64
        p = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "ptwalk-live", "-d", str(tree), str(img), f"{mib}M"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise FetchError(f"mkfs.ext4 -d (live disk) failed: {p.stderr.strip()[-1500:]}")
        os.replace(img, out)
    for old in out.parent.glob(f"live-{e['arch']}-*.ext4"):
        if old != out:
            old.unlink(missing_ok=True)
    return out, holds


def source_tar(out: Path) -> Path:
    """The checkout's drgn_ptwalk package and the live tests' rules (``vmcores/livecheck.py``) as a tar."""
    with tarfile.open(out, "w") as tf:
        tf.add(REPO / "drgn_ptwalk", "drgn_ptwalk",
               filter=lambda t: None if "__pycache__" in t.name or t.name.endswith(".pyc") else t)
        for f in ("__init__.py", "livecheck.py"):
            tf.add(HERE / f, f"vmcores/{f}")
    return out


def payload(work: Path, workload: Path) -> Dict[str, Path]:
    """Stage 1's payload: the init, check.py, the realuser guest's Python service, the workload binary
    (``capture churn``: the churning process) and the source tar."""
    files = rootfs.guest_files("inguest")
    files["service.py"] = HERE / "guest" / "realuser" / "service.py"
    files["capture"] = workload
    files["src.tar"] = source_tar(work / "src.tar")
    return files


def parse_results(text: str) -> Dict[str, Any]:
    """label -> result of every complete result block on the console."""
    out = {}
    text = text.replace("\r\n", "\n")  # the serial console's line ends
    for m in re.finditer(re.escape(RESULT) + r" (\S+)\n(.*?)" + re.escape(RESULT_END), text, re.S):
        data = "".join(l.strip() for l in m.group(2).splitlines() if re.fullmatch(r"[A-Za-z0-9+/=]+", l.strip()))
        out[m.group(1)] = json.loads(zlib.decompress(base64.b64decode(data)))
    return out


def _wait_done(g: qemu.Guest, timeout: float, log: Callable[[str], None]) -> str:
    """The console once the guest printed DONE; a GuestError with the console's tail otherwise."""
    assert g.proc is not None
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        text = g.serial.read_bytes().decode(errors="replace") if g.serial.exists() else ""
        for line in text[seen:].splitlines(keepends=True):
            if not line.endswith("\n"):
                break
            seen += len(line)
            if line.startswith(("[inguest", "[check]")):
                log(line.rstrip())
        if DONE in text:
            return text
        why = None
        if qemu.FAILED in text:
            why = "guest failed: " + text[text.index(qemu.FAILED):].splitlines()[0]
        elif g.proc.poll() is not None:
            why = f"QEMU exited with {g.proc.returncode}"
        elif time.monotonic() > deadline:
            why = f"no {DONE} within {timeout:.0f} s"
        if why:
            tail = "\n".join(re.sub(r"(?m)^[A-Za-z0-9+/=]{60,}\n", "", text).splitlines()[-60:])
            raise qemu.GuestError(f"{why}\n--- serial log (tail) ---\n{tail}")
        time.sleep(1)


def run(arch: str, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Boot the in-guest check on ``arch`` (drgn's name) and return ``{"results": {label: result},
    "seconds": {...}, "kernel": kernel directory, "disk": live disk, "debs": [...], "wheel": name}``."""
    t0 = time.monotonic()
    e = dict(build.entry(GUEST_OF[arch]), scenario="inguest")
    apt = fetch.Apt()
    apt.update()
    kdir = fetch.fetch_kernel(apt, e["suite"], e["arch"], e["flavour"])
    busybox = fetch.fetch_busybox(apt, e["arch"])
    workload = guest.build_workload(e["arch"])
    image = rootfs.build_image(apt, e["suite"], e["arch"], "realuser")
    disk, holds = live_disk(apt, e, kdir)
    work = cache_dir() / "live" / f"inguest-{arch}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    initramfs = rootfs.build_stage1(kdir, busybox, rootfs.STAGE1_MODULES, payload(work, workload),
                                    work / "initramfs.cpio.gz")
    prepared = time.monotonic() - t0
    g = qemu.Guest(e, kdir, initramfs, work, build.page_size_of(e))
    g.argv += rootfs.drive_args(Path(image["image"]))
    g.argv += ["-drive", f"file={disk},format=raw,if=none,id=live,readonly=on",
               "-device", "virtio-blk-pci,drive=live,serial=ptwalk-live"]
    log(f"[inguest] {arch}: booting {kdir.name} with {Path(image['image']).name} and {disk.name}")
    g.start()
    try:
        text = _wait_done(g, TIMEOUT, log)
    finally:
        g.kill()
    results = parse_results(text)
    # The console of the last run stays for a look after a failure; the rest (overlays, images) goes.
    shutil.copy(g.serial, cache_dir() / "inguest" / f"last-serial-{arch}.log")
    shutil.rmtree(work, ignore_errors=True)
    return {"results": results, "kernel": kdir.name, "disk": disk.name, **holds,
            "seconds": {"prepare": round(prepared, 1), "total": round(time.monotonic() - t0, 1)}}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "x86_64",
                         log=lambda m: print(m, file=sys.stderr, flush=True)), indent=1))
