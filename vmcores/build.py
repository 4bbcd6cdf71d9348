# SPDX-License-Identifier: LGPL-2.1-or-later
"""Build reference vmcores: fetch, boot, capture the truth, dump; and list what was built."""

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any, Dict, List

from . import elfcore, fetch, guest, qemu, rootfs
from .fetch import cache_dir

MANIFEST = Path(__file__).resolve().parent / "kernels.toml"
DRGN_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64", "s390x": "s390x", "loong64": "loongarch64"}
DUMP_FILES = {"elf": ("vmcore.elf", None), "qemu-kdump": ("vmcore.kdump", "kdump-zlib")}
# TCG is slow and arm64 TCG slower still; the workload itself waits for KSM and swap.
READY_TIMEOUT = float(os.environ.get("DRGN_PTWALK_GUEST_TIMEOUT", "900"))


def ready_timeout(e: Dict[str, Any]) -> float:
    """DRGN_PTWALK_GUEST_TIMEOUT if set, else the entry's `ready_timeout`, else 900 s."""
    if "DRGN_PTWALK_GUEST_TIMEOUT" in os.environ:
        return READY_TIMEOUT
    return float(e.get("ready_timeout", READY_TIMEOUT))


def matrix_ids() -> List[str]:
    """The kernels built and tested by default: every entry but the benchmark ones (`bench = true`)."""
    return [k["id"] for k in manifest() if not k.get("bench")]


def manifest() -> List[Dict[str, Any]]:
    with open(MANIFEST, "rb") as f:
        kernels = tomllib.load(f)["kernel"]
    ids = [k["id"] for k in kernels]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate ids in {MANIFEST}")
    for k in kernels:
        levels = qemu.kdump_levels(k)
        # The guest crashes right after its truth, so QMP cannot dump it as well.
        if levels and len(levels) != len(k["dumps"]):
            raise ValueError(f"{MANIFEST.name}: {k['id']} mixes makedumpfile dumps with {k['dumps']}")
        if not levels and not set(k["dumps"]) <= set(DUMP_FILES):
            raise ValueError(f"{MANIFEST.name}: {k['id']}: unknown dump kinds in {k['dumps']}")
    return kernels


def dump_kind(kind: str) -> Dict[str, Any]:
    """``dump`` and ``dump_level`` of a dump kind: makedumpfile-d31 -> makedumpfile, 31; elf -> elf, None."""
    if kind.startswith("makedumpfile-d"):
        return {"dump": "makedumpfile", "dump_level": int(kind.split("-d", 1)[1])}
    return {"dump": kind, "dump_level": None}


def entry(kernel_id: str) -> Dict[str, Any]:
    for k in manifest():
        if k["id"] == kernel_id:
            return k
    raise KeyError(f"no kernel {kernel_id!r} in {MANIFEST.name}; known: {', '.join(k['id'] for k in manifest())}")


def default_id() -> str:
    return next((k["id"] for k in manifest() if k.get("default")), manifest()[0]["id"])


def out_dir(kernel_id: str) -> Path:
    return cache_dir() / "vmcores" / kernel_id


def page_size_of(e: Dict[str, Any]) -> int:
    """The base page size of an entry's flavour (Debian names it: arm64-16k, powerpc64le-64k)."""
    if "64k" in e["flavour"]:
        return 65536
    if e["arch"] == "loong64":
        # Debian's loong64 flavour keeps LoongArch's default, CONFIG_PAGE_SIZE_16KB (its boot log:
        # end_pfn=0x3c000 for 3.75 GiB).
        return 16384
    return 16384 if "16k" in e["flavour"] else 4096


def _prepare(e: Dict[str, Any], apt: fetch.Apt, work: Path):
    """(kernel dir, kernel.json, initramfs, extra QEMU arguments, rootfs image description or None)."""
    kdir = fetch.fetch_kernel(apt, e["suite"], e["arch"], e["flavour"])
    kinfo = json.loads((kdir / "kernel.json").read_text())
    busybox = fetch.fetch_busybox(apt, e["arch"])
    workload = guest.build_workload(e["arch"])
    if e.get("rootfs"):
        # A Debian root image with real servers (vmcores/rootfs.py) instead of the workload's initramfs.
        initramfs, argv, image = rootfs.prepare_guest(e, apt, kdir, busybox, workload, work)
        return kdir, kinfo, initramfs, argv, image
    kdump = None
    if qemu.kdump_levels(e):
        # The capture kernel is the crashed one (as with Debian's kdump-tools); kexec, makedumpfile and
        # their libraries come from the entry's suite unless `tools_suite` says otherwise.
        tools = fetch.fetch_guest_tools(apt, e.get("tools_suite", e["suite"]), e["arch"])
        kernel = kdir / "vmlinuz"
        if e["arch"] == "arm64":
            kernel = qemu.unpack_zboot(kernel, work / "Image")
        kdump = {"tools": tools, "kernel": kernel,
                 "initrd": guest.build_capture_initramfs(kdir, busybox, tools, work / "capture.cpio.gz")}
    initramfs = guest.build_initramfs(kdir, e["arch"], busybox, workload, kinfo["release"],
                                      work / "initramfs.cpio.gz", kdump=kdump)
    return kdir, kinfo, initramfs, [], None


def _inputs_digest(e: Dict[str, Any], kinfo: Dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps([e, kinfo["release"], kinfo["version"]], sort_keys=True).encode())
    h.update(guest.sources_digest().encode())
    h.update(Path(qemu.__file__).read_bytes())
    h.update(Path(elfcore.__file__).read_bytes())
    return h.hexdigest()[:16]


def build(kernel_id: str, force: bool = False, log=print) -> Dict[str, Any]:
    """Build one reference vmcore (all its dump kinds) unless an up-to-date one exists.

    Builds of one kernel are serialised by a lock file, so concurrent test runs wait and then reuse it.
    """
    out = out_dir(kernel_id)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"[vmcores] {kernel_id}: another build is running; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(kernel_id, out, force, log)


def _wanted_kernel(apt: "fetch.Apt", e: Dict[str, Any]) -> Dict[str, Any]:
    """
    For an entry whose kernel stands in for another (`wanted_suite`: the suite the matrix asks for, whose
    packages are listed in its signed index but cannot be downloaded here), that kernel and why it is not
    the one built: recorded in meta.json. Only the HTTP status is kept (no mirror address).
    """
    import re

    try:
        wanted = fetch.resolve_kernel(apt, e["wanted_suite"], e["arch"], e["flavour"])
    except fetch.FetchError as err:  # a record, never a reason to fail the build
        return {"suite": e["wanted_suite"], "downloadable": False, "error": str(err).splitlines()[0][:200],
                "note": f"{e['wanted_suite']} lists no {e['flavour']} kernel: {e['suite']}'s is built"}
    out: Dict[str, Any] = {"suite": e["wanted_suite"], "release": wanted["release"], "version": wanted["version"]}
    try:
        apt.download_many({p: wanted["version"] for p in wanted["packages"]}, e["arch"])
        out["downloadable"] = True
        out["note"] = (f"{e['wanted_suite']}'s packages download now: point the entry's suite at "
                       f"{e['wanted_suite']} (and its id at {wanted['release'].split('+')[0]})")
    except fetch.FetchError as err:
        status = re.search(r"\b([45]\d\d)\s+([A-Z][A-Za-z ]+?)(?:\s*\[|\s*$|\n)", str(err))
        out["downloadable"] = False
        out["error"] = f"HTTP {status.group(1)} {status.group(2).strip()}" if status else "download failed"
        out["note"] = (f"{e['wanted_suite']}'s {', '.join(wanted['packages'])} {wanted['version']} (in its "
                       f"signed index) cannot be downloaded: the newest kernel that can, from "
                       f"{e['suite']}, is built instead")
    return out


def _build_locked(kernel_id: str, out: Path, force: bool, log) -> Dict[str, Any]:
    e = entry(kernel_id)
    apt = fetch.Apt()
    apt.update()
    info = fetch.resolve_kernel(apt, e["suite"], e["arch"], e["flavour"])
    meta_path = out / "meta.json"
    digest = _inputs_digest(e, info)
    if e.get("rootfs"):
        digest = hashlib.sha256((digest + rootfs.guest_digest(e, apt)).encode()).hexdigest()[:16]
    if meta_path.is_file() and not force:
        meta = json.loads(meta_path.read_text())
        if meta.get("digest") == digest and all(Path(p).is_file() for p in meta["dumps"].values()):
            log(f"[vmcores] {kernel_id}: up to date ({meta['release']})")
            return meta
    meta_path.unlink(missing_ok=True)
    t0 = time.monotonic()
    kdir, kinfo, initramfs, extra_argv, image = _prepare(e, apt, out)
    t_prep = time.monotonic() - t0
    log(f"[vmcores] {kernel_id}: booting {kinfo['release']} ({kinfo['version']}) on {e['cpu']}")
    g = qemu.Guest(e, kdir, initramfs, out, page_size_of(e))
    g.argv += extra_argv
    dumps: Dict[str, str] = {}
    try:
        g.start()
        g.wait_ready(ready_timeout(e))
        t_ready = time.monotonic() - t0
        log(f"[vmcores] {kernel_id}: guest ready after {t_ready - t_prep:.1f} s")
        g.extract_truth(out / "truth")
        if g.kdump_levels:
            t1 = time.monotonic()
            dests = {level: out / f"vmcore.makedumpfile-d{level}" for level in g.kdump_levels}
            seconds = g.wait_kdump(ready_timeout(e), dests)
            for level, dest in dests.items():
                dumps[f"makedumpfile-d{level}"] = str(dest)
                log(f"[vmcores] {kernel_id}: makedumpfile -d {level}: {dest.stat().st_size >> 20} MiB, "
                    f"written {seconds.get(level)} s after the crash")
            log(f"[vmcores] {kernel_id}: crash, capture kernel and dumps in {time.monotonic() - t1:.1f} s")
        for kind in (k for k in e["dumps"] if k in DUMP_FILES):
            fname, fmt = DUMP_FILES[kind]
            t1 = time.monotonic()
            g.dump(out / fname, fmt or "elf")
            dumps[kind] = str(out / fname)
            log(f"[vmcores] {kernel_id}: {kind} dump in {time.monotonic() - t1:.1f} s")
        # The kpage truth's snapshot B is read after the dumps (bracketed; a kdump entry's was read
        # before its crash and is in the truth already).
        t_after = g.after_dump(out / "truth")
        if t_after is not None:
            log(f"[vmcores] {kernel_id}: kpage reread after the dumps in {t_after:.1f} s")
    finally:
        g.kill()
    pids = json.loads((out / "truth" / "pids.json").read_text())
    # The workload binary with its debug info (gdb opens the procmem process's cores with it).
    workload = out / "workload"
    tmp_wl = out / "workload.tmp"
    shutil.copy(guest.build_workload(e["arch"]), tmp_wl)
    os.replace(tmp_wl, workload)
    meta = {
        "id": kernel_id,
        "digest": digest,
        "suite": e["suite"],
        "debian_arch": e["arch"],
        "arch": DRGN_ARCH[e["arch"]],
        "flavour": e["flavour"],
        "release": kinfo["release"],
        "version": kinfo["version"],
        "machine": e["machine"],
        "cpu": e["cpu"],
        "page_size": page_size_of(e),
        "scenario": e.get("scenario", "default"),
        "memory_gib": int(e.get("memory_gib", qemu.MEMORY_GIB)),
        "cmdline": g.cmdline,
        "qemu": subprocess.run([*g.launcher, "--version"], capture_output=True, text=True, env=g.env).stdout.splitlines()[0],
        "vmlinux": str(kdir / "vmlinux"),
        "truth": str(out / "truth"),
        "pids": pids,
        "dumps": dumps,
        "seconds": {"prepare": round(t_prep, 1), "ready": round(t_ready, 1),
                    "total": round(time.monotonic() - t0, 1)},
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
    }
    meta["workload"] = str(workload)
    if g.swap_image.is_file():
        # the swap disk's image as the guest left it: the swap device the procmem truth names swapdisk
        meta["swap_disk"] = str(g.swap_image)
    if image is not None:
        meta["rootfs"] = image
    if e.get("wanted_suite"):
        meta["wanted_kernel"] = _wanted_kernel(apt, e)
        log(f"[vmcores] {kernel_id}: {meta['wanted_kernel']['note']}")
    tmp = meta_path.with_name("meta.json.tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, meta_path)
    log(f"[vmcores] {kernel_id}: done in {meta['seconds']['total']} s: {', '.join(dumps)}")
    return meta


def built() -> List[Dict[str, Any]]:
    """One object per built dump (a kernel dumped two ways gives two objects sharing one truth)."""
    result = []
    for e in manifest():
        meta_path = out_dir(e["id"]) / "meta.json"
        if not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        for kind, core in meta["dumps"].items():
            if not Path(core).is_file():
                continue
            result.append({
                "id": meta["id"], "name": f"{meta['id']}:{kind}", "arch": meta["arch"],
                "release": meta["release"], "version": meta["version"], "suite": meta["suite"],
                "flavour": meta["flavour"], "cpu": meta["cpu"], "page_size": meta["page_size"],
                **dump_kind(kind), "core": core, "vmlinux": meta["vmlinux"], "truth": meta["truth"],
                "pids": meta["pids"], "scenario": meta.get("scenario", "default"),
            })
    return result


def live(kernel_id: str, log=print, churn: bool = False) -> qemu.Guest:
    """Boot a guest with the workload and leave it running for ``drgn --qemu``; returns the Guest.

    With ``churn``, the guest also runs ``workload churn``, a process whose memory keeps changing (its PID
    is ``g.churn_pid``); the other processes stay stopped, so their truth holds.
    """
    e = dict(entry(kernel_id))
    if qemu.kdump_levels(e):
        raise KeyError(f"{kernel_id} crashes into its capture kernel: it cannot run live")
    if churn:
        e["append"] = f"{e.get('append', '')} ptwalk.churn=1".strip()
    work = cache_dir() / "live" / f"{kernel_id}-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    apt = fetch.Apt()
    apt.update()
    kdir, kinfo, initramfs, extra_argv, _ = _prepare(e, apt, work)
    g = qemu.Guest(e, kdir, initramfs, work, page_size_of(e))
    g.argv += extra_argv
    g.start()
    try:
        g.wait_ready(ready_timeout(e))
        g.extract_truth(work / "truth")
        g.churn_pid = g.wait_churn(60) if churn else None  # type: ignore[attr-defined]
    except BaseException:
        g.kill()
        raise
    g.kernel_dir = kdir  # type: ignore[attr-defined]
    return g
