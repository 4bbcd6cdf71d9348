"""Build the guest: the static workload and an initramfs around busybox, the modules and the init script."""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from .fetch import FetchError, cache_dir, decompress_module, sid_root

HERE = Path(__file__).resolve().parent
WORKLOAD_SRC = HERE / "workload.c"
# Included by workload.c: the production scenarios; procmem (known patterns in every kind of memory); the tmpfs huge=
# mounts; the page-cache scenario; the scale set (100,000 VMAs, 10,000 processes); the large-memory scenario.
WORKLOAD_PARTS = (WORKLOAD_SRC, HERE / "production.c", HERE / "procmem.c", HERE / "thpsmall.c", HERE / "filecache.c",
                  HERE / "scale.c", HERE / "bigmem.c")
INIT_SRC = HERE / "guest" / "init"
CAPTURE_INIT_SRC = HERE / "guest" / "capture-init"

# Modules the guest loads (with their dependencies; built-in ones are skipped): fw_cfg for QEMU's
# -device vmcoreinfo, zram for swap; for the production scenarios overlayfs (containers), the virtio
# disk and ext4/xfs (block filesystems), udmabuf (dma-buf) and vhost-net.
# The crypto API's compressors (modules in 6.x): zram's second device and zswap (procmem scenario).
WANTED_MODULES = ("qemu_fw_cfg", "zram", "overlay", "virtio_pci", "virtio_blk", "ext4", "xfs", "udmabuf",
                  "vhost_net", "lzo_rle", "lzo", "lz4", "zstd")
# The kdump kernel writes its dumps to virtio disks: the PCI transport and the disk driver (modules in
# 6.1, built in later; built-in ones are skipped).
CAPTURE_MODULES = ("virtio_pci", "virtio_blk")

CC = {
    "amd64": ("gcc", "gcc"),
    "arm64": ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"),
    "ppc64el": ("powerpc64le-linux-gnu-gcc", "gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross"),
    "s390x": ("s390x-linux-gnu-gcc", "gcc-s390x-linux-gnu libc6-dev-s390x-cross"),
}
# Cross compilers this machine's Debian may not have (bookworm has no loong64 one): run in the sid tree
# (fetch.sid_root()) with chroot.
SID_CC = {"loong64": "loongarch64-linux-gnu-gcc"}


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise FetchError(f"{tool} not found: apt-get install {package}")
    return path


def sources_digest() -> str:
    """A digest of everything that goes into a guest, so a changed workload rebuilds the dumps."""
    h = hashlib.sha256()
    for f in (*WORKLOAD_PARTS, INIT_SRC, CAPTURE_INIT_SRC, Path(__file__)):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build_workload(arch: str) -> Path:
    if not WORKLOAD_SRC.is_file():
        raise FetchError(f"{WORKLOAD_SRC} missing")
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in WORKLOAD_PARTS)).hexdigest()[:16]
    out = cache_dir() / "workload" / f"workload-{arch}-{digest}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if arch in SID_CC:
        _compile_in_sid_root(SID_CC[arch], arch, tmp)
        os.replace(tmp, out)
        return out
    cc = _need(*CC[arch])
    p = subprocess.run(
        [cc, "-static", "-O2", "-g", "-Wall", "-o", str(tmp), str(WORKLOAD_SRC)], capture_output=True, text=True
    )
    if p.returncode != 0:
        raise FetchError(f"compiling {WORKLOAD_SRC.name} for {arch} failed:\n{p.stderr}")
    os.replace(tmp, out)
    return out


def _compile_in_sid_root(cc: str, arch: str, out: Path) -> None:
    """Compile the workload with the sid tree's ``cc`` (chroot; root only, as making the tree)."""
    root = sid_root()
    with tempfile.TemporaryDirectory(dir=root / "tmp", prefix="ptwalk-workload-") as tmp:
        for f in WORKLOAD_PARTS:
            shutil.copy(f, Path(tmp) / f.name)
        inside = "/" + str(Path(tmp).relative_to(root))
        p = subprocess.run(["chroot", str(root), cc, "-static", "-O2", "-g", "-Wall", "-o", f"{inside}/workload",
                            f"{inside}/{WORKLOAD_SRC.name}"], capture_output=True, text=True)
        if p.returncode != 0:
            raise FetchError(f"compiling {WORKLOAD_SRC.name} for {arch} in {root} failed:\n{p.stderr}")
        shutil.copy(Path(tmp) / "workload", out)


def module_load_order(modules_dir: Path, wanted=WANTED_MODULES) -> List[Path]:
    """The .ko files of ``wanted`` and their dependencies, dependencies first.

    Read from each module's own ``depends`` field (modinfo) because 7.x packages ship no modules.dep.
    A wanted module that is not a file is built in and needs nothing.
    """
    modinfo = _need("modinfo", "kmod")
    by_name: Dict[str, Path] = {}
    for ko in modules_dir.rglob("*.ko*"):
        by_name[ko.name.split(".ko")[0].replace("-", "_")] = ko
    order: List[Path] = []
    seen = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in seen or name not in by_name:
            return
        seen.add(name)
        ko = by_name[name]
        deps = subprocess.run([modinfo, "-F", "depends", str(ko)], capture_output=True, text=True).stdout
        for dep in filter(None, deps.strip().split(",")):
            visit(dep)
        order.append(ko)

    for name in wanted:
        visit(name)
    return order


def _write_cpio(root: Path, out: Path) -> Path:
    """``root`` as a gzip'ed newc cpio at ``out`` (atomically)."""
    _need("cpio", "cpio")
    files = subprocess.run(["find", ".", "-mindepth", "1"], cwd=root, capture_output=True, check=True).stdout
    tmp_out = out.with_name(out.name + ".tmp")
    with open(tmp_out, "wb") as f:
        cpio = subprocess.Popen(
            ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=f)
        assert cpio.stdin is not None and cpio.stdout is not None
        cpio.stdout.close()
        cpio.stdin.write(files)
        cpio.stdin.close()
        if cpio.wait() != 0 or gz.wait() != 0:
            raise FetchError("building the initramfs failed")
    os.replace(tmp_out, out)
    return out


def _base_root(root: Path, busybox: Path, init: Path, modules_dir: Path, modules) -> None:
    """busybox, ``init`` as /init, the modules (uncompressed) with their load order, /dev/console."""
    if not init.is_file():
        raise FetchError(f"{init} missing")
    for d in ("bin", "dev", "proc", "sys", "tmp", "run", "etc", "lib/modules", "mnt"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(busybox, root / "bin/busybox")
    shutil.copy(init, root / "init")
    for f in ("bin/busybox", "init"):
        (root / f).chmod(0o755)
    load = []
    for ko in module_load_order(modules_dir, modules):
        name = ko.name.split(".ko")[0] + ".ko"
        decompress_module(ko, root / "lib/modules" / name)
        load.append(f"/lib/modules/{name}\n")
    (root / "lib/modules/load.list").write_text("".join(load))
    # The kernel opens /dev/console before devtmpfs is mounted.
    subprocess.run(["mknod", str(root / "dev/console"), "c", "5", "1"], check=True)


def build_capture_initramfs(kernel_dir: Path, busybox: Path, tools: Path, out: Path) -> Path:
    """The kdump kernel's initramfs: busybox, makedumpfile with its libraries, virtio_blk, capture-init."""
    with tempfile.TemporaryDirectory(prefix="ptwalk-capture-") as tmp:
        root = Path(tmp)
        _base_root(root, busybox, CAPTURE_INIT_SRC, kernel_dir / "modules", CAPTURE_MODULES)
        shutil.copytree(tools, root, dirs_exist_ok=True, symlinks=True)
        return _write_cpio(root, out)


def build_initramfs(kernel_dir: Path, arch: str, busybox: Path, workload: Path, release: str, out: Path,
                    kdump: Optional[Dict[str, Path]] = None) -> Path:
    """A gzip'ed newc cpio with /init, busybox, the workload and the modules it needs.

    With ``kdump`` ({"kernel": image, "initrd": capture initramfs, "tools": root tree with kexec}), also
    what /init needs to load a capture kernel with ``kexec -p``: /kdump/kernel, /kdump/initrd, kexec.
    """
    with tempfile.TemporaryDirectory(prefix="ptwalk-initramfs-") as tmp:
        root = Path(tmp)
        _base_root(root, busybox, INIT_SRC, kernel_dir / "modules", WANTED_MODULES)
        shutil.copy(workload, root / "workload")
        # The capturer is the same program under another name, so its text is not the workload's pages.
        shutil.copy(workload, root / "capture")
        for f in ("workload", "capture"):
            (root / f).chmod(0o755)
        (root / "etc/kernel-release").write_text(release + "\n")
        if kdump is not None:
            shutil.copytree(kdump["tools"], root, dirs_exist_ok=True, symlinks=True)
            (root / "kdump").mkdir()
            shutil.copy(kdump["kernel"], root / "kdump/kernel")
            shutil.copy(kdump["initrd"], root / "kdump/initrd")
        return _write_cpio(root, out)
