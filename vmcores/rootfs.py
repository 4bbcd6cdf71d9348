"""Debian root filesystems for guests that run real userspace: verified packages, extracted, an ext4 image.

No target-architecture binary runs on the host: the package closure is resolved and downloaded by apt (the
private configuration of ``fetch.Apt``: InRelease checked against Debian's archive keyring, each .deb
against the signed index's hashes), each .deb's data is extracted with ``dpkg-deb --fsys-tarfile | tar``,
maintainer scripts are not run, and the little configuration they would have done (users, /bin/sh, hosts)
is written here.  ``mkfs.ext4 -d`` turns the tree into an image.  Images are cached by the digest of their
inputs (suite, architecture, the resolved package versions, this file), so a second build downloads and
builds nothing; the guest boots it with QEMU's ``snapshot=on`` and never changes the cached file.

What runs in the guest (its init, the servers' configuration, the load) is not in the image: it comes with
the initramfs (``vmcores/guest/rootfs-stage1`` mounts the image, copies ``/ptwalk`` to ``/run/ptwalk`` and
switches root to ``/run/ptwalk/init``), so changing it rebuilds no image.  A later guest (e.g. one running
drgn itself on ``/proc/kcore``) reuses this module with its own package set.
"""

import hashlib
import inspect
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

from . import fetch, guest
from .fetch import FetchError, cache_dir

HERE = Path(__file__).resolve().parent
STAGE1_SRC = HERE / "guest" / "rootfs-stage1"

# Package sets: name -> the packages apt installs (with their Depends/Pre-Depends, no Recommends).
# busybox-static gives /bin/sh (PostgreSQL's initdb and pg_ctl start their programs through it) and the
# guest init's tools; everything the init runs after the capture is static busybox, so no shared library
# page of the captured servers is touched between their capture and the dump.
PACKAGE_SETS: Dict[str, List[str]] = {
    "realuser": [
        "busybox-static",
        "postgresql-17",
        "redis-server",
        "redis-tools",
        "nginx",
        "python3",
        "openjdk-21-jre-headless",
    ],
}

# Users the packages' maintainer scripts would have made (uid, gid, home); root first.
USERS: List[Tuple[str, int, int, str]] = [
    ("root", 0, 0, "/root"),
    ("www-data", 33, 33, "/var/www"),
    ("postgres", 100, 102, "/var/lib/postgresql"),
    ("redis", 101, 103, "/var/lib/redis"),
    ("app", 1000, 1000, "/home/app"),
    ("nobody", 65534, 65534, "/nonexistent"),
]

# Static files nginx serves (and the other services read): deterministic contents, sizes from 1 KiB to
# 1 MiB, so the page cache of the ext4 image holds folios of several sizes.
WWW_FILES = 48

# Free space left in the image for the servers' data (PostgreSQL's cluster and pgbench tables, logs).
FREE_MIB = 768


def _apt_conf(apt: fetch.Apt, suite: str, arch: str) -> Path:
    """An apt configuration resolving for one suite and architecture against an empty dpkg status, with the
    index lists (and keyring) of ``apt``."""
    d = apt.root / "rootfs" / f"{suite}-{arch}"
    for sub in ("cache/archives/partial", "etc"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "status").touch()
    (d / "etc/sources.list").write_text(
        f"deb [arch={arch} signed-by={fetch.KEYRING}] {fetch.archive_uri()} {suite} main\n")
    debs = cache_dir() / "debs" / "rootfs"
    (debs / "partial").mkdir(parents=True, exist_ok=True)
    conf = d / "apt.conf"
    conf.write_text(
        f'Dir::State "{apt.root}/state";\n'
        f'Dir::State::Lists "{apt.root}/state/lists";\n'
        f'Dir::State::status "{d}/status";\n'
        f'Dir::Cache "{d}/cache";\n'
        f'Dir::Cache::archives "{debs}";\n'
        f'Dir::Etc::SourceList "{d}/etc/sources.list";\n'
        'Dir::Etc::SourceParts "/nonexistent";\n'
        f'Dir::Etc::Preferences "{apt.root}/etc/preferences";\n'
        f'Dir::Etc::PreferencesParts "{apt.root}/etc/preferences.d";\n'
        'Dir::Etc::Trusted "/nonexistent"; Dir::Etc::TrustedParts "/nonexistent";\n'
        f'APT::Architecture "{arch}";\n'
        f'APT::Architectures {{ "{arch}"; }};\n'
        'APT::Install-Recommends "false"; APT::Install-Suggests "false";\n'
        'Acquire::Languages "none";\n'
        'APT::Sandbox::User "root";\n'
        'Debug::NoLocking "true";\n'
    )
    return conf


def _apt_get(conf: Path, *args: str) -> str:
    env = dict(os.environ, APT_CONFIG=str(conf), LC_ALL="C", DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(["apt-get", *fetch.KEEP_CACHE, *args], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise FetchError(f"apt-get {' '.join(args)} failed: {p.stderr.strip()[-2000:]}")
    return p.stdout


def resolve(apt: fetch.Apt, suite: str, arch: str, packages: List[str]) -> List[Tuple[str, str, str]]:
    """The closure apt would install on an empty system: sorted (package, version, architecture)."""
    def compute():
        out = _apt_get(_apt_conf(apt, suite, arch), "install", "-s", "-q", *packages)
        got = re.findall(r"^Inst (\S+) \((\S+) .*\[(\S+)\]\)", out, re.M)
        if not got:
            raise FetchError(f"apt resolved nothing for {packages} in {suite}/{arch}:\n{out[-2000:]}")
        return sorted(got)
    return [tuple(x) for x in fetch._memo(apt, f"rootfs/{suite}/{arch}/{' '.join(sorted(packages))}", compute)]


def _deb_name(pkg: str, version: str, arch: str) -> str:
    return f"{pkg}_{version.replace(':', '%3a')}_{arch}.deb"


def download(apt: fetch.Apt, suite: str, arch: str, packages: List[str],
             closure: List[Tuple[str, str, str]]) -> List[Path]:
    """The closure's .debs, downloaded (verified by apt) into the cache unless there."""
    debs = cache_dir() / "debs" / "rootfs"
    paths = [debs / _deb_name(*x) for x in closure]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"[rootfs] downloading {len(missing)} of {len(paths)} packages for {suite}/{arch}", flush=True)
        _apt_get(_apt_conf(apt, suite, arch), "install", "--download-only", "-y", "-q", *packages)
        still = [p.name for p in paths if not p.is_file()]
        if still:
            raise FetchError(f"apt-get --download-only left out {still}")
    return paths


def digest(suite: str, arch: str, name: str, closure: List[Tuple[str, str, str]]) -> str:
    """The image's inputs: the resolved packages and the code and settings that lay out the tree."""
    h = hashlib.sha256(json.dumps([suite, arch, name, closure, USERS, WWW_FILES, FREE_MIB]).encode())
    for fn in (_make_tree, _extract, configure, _mkfs):
        h.update(inspect.getsource(fn).encode())
    return h.hexdigest()[:16]


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(mode)


def configure(root: Path, arch: str) -> None:
    """What the maintainer scripts and base-files would have done, as far as the guest needs it."""
    _write(root, "etc/passwd", "".join(
        f"{u}:x:{uid}:{gid}:{u}:{home}:{'/bin/sh' if u == 'root' else '/usr/sbin/nologin'}\n"
        for u, uid, gid, home in USERS))
    groups = [(u, gid) for u, _, gid, _ in USERS]
    _write(root, "etc/group", "".join(f"{g}:x:{gid}:\n" for g, gid in groups))
    _write(root, "etc/shadow", "".join(f"{u}:*:19000:0:99999:7:::\n" for u, *_ in USERS), 0o640)
    _write(root, "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    _write(root, "etc/hostname", "ptwalk\n")
    _write(root, "etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files\n")
    _write(root, "etc/shells", "/bin/sh\n")
    # /bin/sh: busybox (dash is Essential, not in the closure).
    sh = root / "usr/bin/sh"
    if not sh.exists():
        sh.symlink_to("busybox")
    for d, owner in [("var/lib/postgresql", "postgres"), ("var/lib/redis", "redis"), ("home/app", "app"),
                     ("var/log/nginx", None), ("var/log/postgresql", "postgres"), ("root", None),
                     ("proc", None), ("sys", None), ("dev", None), ("run", None), ("tmp", None), ("mnt", None)]:
        p = root / d
        p.mkdir(parents=True, exist_ok=True)
        if owner:
            uid, gid = next((uid, gid) for u, uid, gid, _ in USERS if u == owner)
            os.chown(p, uid, gid)
            p.chmod(0o750 if owner == "postgres" else 0o755)
    (root / "tmp").chmod(0o1777)
    # Static content: deterministic, sizes 1 KiB .. 1 MiB.
    rnd = random.Random(11)
    www = root / "var/www/html"
    www.mkdir(parents=True, exist_ok=True)
    for i in range(WWW_FILES):
        size = 1024 << (i % 11)
        (www / f"f{i:02d}.bin").write_bytes(rnd.randbytes(size))
    (www / "index.html").write_text("<html><body>ptwalk reference guest</body></html>\n")


def _extract(deb: Path, root: Path) -> None:
    """A .deb's data into ``root``, keeping the merged-/usr directory symlinks."""
    dpkg = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    tar = subprocess.run(["tar", "-x", "-C", str(root), "--keep-directory-symlink", "--numeric-owner",
                          "--same-owner", "-p"], stdin=dpkg.stdout, capture_output=True, text=True)
    assert dpkg.stdout is not None
    dpkg.stdout.close()
    if dpkg.wait() != 0 or tar.returncode != 0:
        raise FetchError(f"extracting {deb.name} failed: {tar.stderr.strip()[-1000:]}")


def _make_tree(root: Path, arch: str, debs: List[Path]) -> None:
    root.mkdir()
    # merged /usr, as trixie's base-files lays it out
    (root / "usr").mkdir()
    for d in ["bin", "sbin", "lib"] + (["lib64"] if arch == "amd64" else []):
        (root / "usr" / d).mkdir()
        (root / d).symlink_to(f"usr/{d}")
    for deb in debs:
        _extract(deb, root)
    configure(root, arch)


def _mkfs(root: Path, img: Path) -> Tuple[int, int]:
    """``root`` as an ext4 image with FREE_MIB to spare: (MiB used by the tree, image size in MiB)."""
    used = int(subprocess.run(["du", "-sm", "--apparent-size", str(root)], capture_output=True, text=True,
                              check=True).stdout.split()[0])
    size_mib = (used * 5 // 4 + FREE_MIB + 63) // 64 * 64
    p = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "ptwalk-root", "-d", str(root), str(img), f"{size_mib}M"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise FetchError(f"mkfs.ext4 -d failed: {p.stderr.strip()[-2000:]}")
    return used, size_mib


def build_image(apt: fetch.Apt, suite: str, arch: str, name: str) -> Dict[str, Any]:
    """The ext4 image of package set ``name`` for ``suite``/``arch`` (cached); returns its description:
    ``image``, ``digest``, ``packages`` (name=version), ``seconds`` spent building it now (0 if cached)."""
    packages = PACKAGE_SETS[name]
    closure = resolve(apt, suite, arch, packages)
    dig = digest(suite, arch, name, closure)
    out = cache_dir() / "rootfs" / f"{name}-{suite}-{arch}-{dig}.ext4"
    desc = {"image": str(out), "digest": dig, "name": name, "suite": suite, "arch": arch,
            "packages": [f"{p}={v}" for p, v, _ in closure]}
    if out.is_file():
        return dict(desc, seconds={})
    for tool, pkg in (("mkfs.ext4", "e2fsprogs"), ("dpkg-deb", "dpkg"), ("tar", "tar")):
        guest._need(tool, pkg)
    t0 = time.monotonic()
    debs = download(apt, suite, arch, packages, closure)
    t_dl = time.monotonic() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        root = Path(tmp) / "root"
        _make_tree(root, arch, debs)
        t_x = time.monotonic() - t0 - t_dl
        img = Path(tmp) / "image.ext4"
        used, size_mib = _mkfs(root, img)
        os.replace(img, out)
    # Older images of this set (other package versions) are not used again.
    for old in out.parent.glob(f"{name}-{suite}-{arch}-*.ext4"):
        if old != out:
            old.unlink(missing_ok=True)
    seconds = {"download": round(t_dl, 1), "extract": round(t_x, 1),
               "image": round(time.monotonic() - t0 - t_dl - t_x, 1)}
    print(f"[rootfs] {out.name}: {len(closure)} packages, {used} MiB in a {size_mib} MiB image; "
          f"download {seconds['download']} s, extract {seconds['extract']} s, mkfs {seconds['image']} s",
          flush=True)
    return dict(desc, seconds=seconds)


def build_stage1(kernel_dir: Path, busybox: Path, modules, payload: Dict[str, Path], out: Path) -> Path:
    """The initramfs that mounts the root image (/dev/vda) and switches to it: busybox, ``modules`` (with
    their dependencies), and ``payload`` (name -> file) in /ptwalk, which stage 1 copies to /run/ptwalk
    on the new root; ``payload["init"]`` becomes PID 1 there."""
    if "init" not in payload:
        raise ValueError("a stage-1 payload needs an init")
    with tempfile.TemporaryDirectory(prefix="ptwalk-stage1-") as tmp:
        root = Path(tmp)
        guest._base_root(root, busybox, STAGE1_SRC, kernel_dir / "modules", modules)
        (root / "ptwalk").mkdir()
        for name, src in payload.items():
            shutil.copy(src, root / "ptwalk" / name)
            (root / "ptwalk" / name).chmod(0o755)
        return guest._write_cpio(root, out)


def drive_args(image: Path) -> List[str]:
    """QEMU arguments for the root image as a virtio disk whose writes go to a temporary overlay."""
    return ["-drive", f"file={image},format=raw,if=none,id=rootfs,snapshot=on",
            "-device", "virtio-blk-pci,drive=rootfs,serial=ptwalk-rootfs"]


# ---------------------------------------------------------------------------------------------------------
# Guests booted from an image (kernels.toml: rootfs = "<package set>")

# What stage 1 loads (with dependencies; built-in ones are skipped): fw_cfg for QEMU's -device vmcoreinfo,
# the disk and the filesystem.
STAGE1_MODULES = ("qemu_fw_cfg", "virtio_pci", "virtio_blk", "ext4")


def guest_files(name: str) -> Dict[str, Path]:
    """The payload of package set ``name``'s guest: ``guest/<name>-init`` as its init and the files of
    ``guest/<name>/``."""
    files = {"init": HERE / "guest" / f"{name}-init"}
    d = HERE / "guest" / name
    if d.is_dir():
        files.update({f.name: f for f in sorted(d.iterdir()) if f.is_file()})
    return files


def guest_digest(e: Dict[str, Any], apt: fetch.Apt) -> str:
    """What a rootfs entry's dump depends on beyond the kernel: the image and the guest's files."""
    arch, name = e["arch"], e["rootfs"]
    h = hashlib.sha256(digest(e["suite"], arch, name, resolve(apt, e["suite"], arch, PACKAGE_SETS[name])).encode())
    for n, f in sorted(guest_files(name).items()):
        h.update(n.encode() + b"\0" + f.read_bytes())
    h.update(STAGE1_SRC.read_bytes())
    return h.hexdigest()[:16]


def prepare_guest(e: Dict[str, Any], apt: fetch.Apt, kernel_dir: Path, busybox: Path, workload: Path,
                  work: Path) -> Tuple[Path, List[str], Dict[str, Any]]:
    """Image and stage-1 initramfs of a rootfs entry: (initramfs, extra QEMU arguments, image description).

    The payload is the guest's files plus ``capture``, the reference workload binary (static) that reads
    the truth without sharing a page with the servers."""
    desc = build_image(apt, e["suite"], e["arch"], e["rootfs"])
    payload = dict(guest_files(e["rootfs"]), capture=workload)
    initramfs = build_stage1(kernel_dir, busybox, STAGE1_MODULES, payload, work / "initramfs.cpio.gz")
    return initramfs, drive_args(Path(desc["image"])), desc
