# SPDX-License-Identifier: LGPL-2.1-or-later
"""Boot a guest under QEMU TCG, collect the truth it prints on its console, and dump it over QMP."""

import base64
import fcntl
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import elfcore, flattened
from .fetch import FetchError

QEMU = {
    "amd64": ("qemu-system-x86_64", "qemu-system-x86"),
    "arm64": ("qemu-system-aarch64", "qemu-system-arm"),
    "ppc64el": ("qemu-system-ppc64", "qemu-system-ppc"),
    "s390x": ("qemu-system-s390x", "qemu-system-misc"),
    # (loong64: sid's QEMU, from the sid tree, see sid_qemu())
    "loong64": ("qemu-system-loongarch64", "qemu-system-misc"),
}
# pseries: the console is the hypervisor's virtual terminal (spapr-vty), which QEMU's -serial backs;
# s390-ccw-virtio: the SCLP ASCII console.
CONSOLE = {"amd64": "ttyS0", "arm64": "ttyAMA0", "ppc64el": "hvc0", "s390x": "ttysclp0", "loong64": "ttyS0"}
# Machines without fw_cfg have no -device vmcoreinfo: the dump gets the kernel's own note afterwards
# (elfcore.add_vmcoreinfo, from the address the guest prints). LoongArch's virt machine has fw_cfg, but
# booted by edk2 with ACPI the guest's qemu_fw_cfg binds no device: QEMU 11.1 wrote no VMCOREINFO note.
FW_CFG = {"amd64": True, "arm64": True, "ppc64el": False, "s390x": False, "loong64": False}
# A console the host can write to (Guest.after_dump): a socket chardev that logs to serial.log. On
# s390-ccw-virtio (QEMU 7.2) the SCLP console behind such a chardev logged every line twice, which broke the
# base64 truth; s390x keeps a file console, and its guest reads kpage snapshot B before the dump
# (ptwalk.kpage=before; its physical side is refused anyway: a big-endian kernel).
INPUT_CONSOLE = {"amd64": True, "arm64": True, "ppc64el": True, "s390x": False, "loong64": True}
# QEMU refuses -numa on s390-ccw-virtio ("NUMA is not supported by this machine-type"): one node there.
NUMA = {"amd64": True, "arm64": True, "ppc64el": True, "s390x": False, "loong64": True}
# The virtio transport of the guest's disks: PCI, or channel I/O on s390x.
VIRTIO_BLK = {"amd64": "virtio-blk-pci", "arm64": "virtio-blk-pci", "ppc64el": "virtio-blk-pci",
              "s390x": "virtio-blk-ccw", "loong64": "virtio-blk-pci"}
VMCOREINFO = "=====VMCOREINFO====="
MEMORY_GIB = 6  # two 3 GiB nodes: the smallest guest that kept an aligned free gigabyte for a 1 GiB page
# (the manifest's per-entry `memory_gib` overrides it: the bench guests need room for a 6 GiB mapping)

BEGIN, END = "=====TRUTH-BEGIN=====", "=====TRUTH-END====="
# `workload kpage`'s blocks (after the truth archive): file in truth/ -> (begin, end) markers. kpage.bin
# (snapshot A) comes before READY-FOR-DUMP; kpage-changed.bin (the PFNs that differ in snapshot B) comes
# after the dumps, once the host has told the guest they are written (Guest.after_dump), or, on a kdump
# entry (the guest crashes into its capture kernel, nothing of it runs after the dump), before READY.
KPAGE_BLOCKS = {
    "kpage.bin": ("=====KPAGE-BEGIN=====", "=====KPAGE-END====="),
    "kpage-changed.bin": ("=====KPAGE-CHANGED=====", "=====KPAGE-CHANGED-END====="),
}
KPAGE_FAILED = "=====KPAGE-FAILED====="
# The line the host writes to the guest's console once every dump is written (workload.c KPAGE_DUMPED).
DUMPED = "=====DUMPED====="
# How long the guest may take, after the dumps, to read the kpage files again and send what changed.
AFTER_DUMP_TIMEOUT = 600.0
READY, FAILED = "=====READY-FOR-DUMP=====", "=====GUEST-FAILED====="
KDUMP_DONE = "=====KDUMP-DONE====="
# Room for the kdump kernel, its initramfs and makedumpfile's working memory on a 6 GiB guest.
CRASHKERNEL = "320M"


class GuestError(Exception):
    pass


def kdump_levels(entry: Dict[str, Any]) -> List[int]:
    """The makedumpfile dump levels of an entry's ``makedumpfile-d<level>`` dump kinds, in order."""
    return [int(k.split("-d", 1)[1]) for k in entry.get("dumps", ()) if k.startswith("makedumpfile-d")]


def hugetlb_cmdline(arch: str, page_size: int) -> str:
    """Boot-time hugetlb pools of every size the architecture supports."""
    if arch in ("amd64", "ppc64el"):
        # ppc64 radix: 2M PMD and 1G PUD leaves, with 4K and 64K pages alike (radix-{4k,64k}.h).
        sizes = [("1G", 1), ("2M", 20)]
    elif arch == "s390x":
        # Large segment (1M, EDAT-1) and region-3 (2G, EDAT-2) entries.
        sizes = [("2G", 1), ("1M", 40)]
    elif arch == "loong64":
        # The PMD leaf only (HPAGE_SHIFT, asm/pgtable.h): 32M with 16K pages, 2M with 4K.
        sizes = [("32M", 8)] if page_size == 16384 else [("2M", 20)]
    elif page_size == 16384:
        # 2M is cont-PTE, 32M a PMD, 1G cont-PMD with 16K pages.
        sizes = [("1G", 1), ("32M", 3), ("2M", 8)]
    else:
        # 64K cont-PTE, 2M PMD, 32M cont-PMD, 1G PUD with 4K pages.
        sizes = [("1G", 1), ("32M", 2), ("2M", 12), ("64K", 32)]
    return " ".join(f"hugepagesz={s} hugepages={n}" for s, n in sizes)


def sid_qemu(name: str) -> Tuple[List[str], List[str]]:
    """(command, firmware arguments) of QEMU ``name`` of the sid tree (fetch.sid_root()), run with the
    tree's own dynamic loader and libraries (no chroot: the paths of the build stay the host's), its data
    files and modules; with edk2 as the firmware, which boots the kernel's EFI image (the package's vmlinuz,
    an EFI zboot image) and gives it ACPI tables (NUMA nodes, fw_cfg). Without edk2, QEMU 11.1's direct
    kernel boot of that image oopses in i8042_flush() (no ACPI: the legacy I/O ports are not mapped)."""
    from .fetch import sid_root

    root = sid_root()
    loader = root / "lib64/ld-linux-x86-64.so.2"
    libs = ":".join(str(root / d / "x86_64-linux-gnu") for d in ("lib", "usr/lib"))
    edk2 = root / "usr/share/qemu-efi-loongarch64/QEMU_EFI.fd"
    for f in (loader, root / "usr/bin" / name, edk2):
        if not f.is_file():
            raise FetchError(f"{f} missing: the sid tree {root} needs qemu-system-misc and qemu-efi-loongarch64")
    return ([str(loader), "--library-path", libs, str(root / "usr/bin" / name)],
            ["-L", str(root / "usr/share/qemu"), "-bios", str(edk2)])


def unpack_zboot(vmlinuz: Path, out: Path) -> Path:
    """arm64 EFI zboot images wrap a compressed Image that QEMU's -kernel cannot boot: unwrap it."""
    data = vmlinuz.read_bytes()
    if data[4:8] != b"zimg":
        return vmlinuz
    offset = int.from_bytes(data[8:12], "little")
    size = int.from_bytes(data[12:16], "little")
    comp = data[24:56].split(b"\0")[0].decode()
    payload = data[offset : offset + size]
    tool = {"gzip": ["gzip", "-dc"], "zstd": ["zstd", "-dc"], "xzkern": ["xz", "-dc"], "lzma": ["xz", "-dc"]}
    if comp not in tool:
        raise GuestError(f"unknown zboot compression {comp!r} in {vmlinuz}")
    p = subprocess.run(tool[comp], input=payload, capture_output=True)
    if p.returncode != 0 and not p.stdout:
        raise GuestError(f"cannot unpack {vmlinuz}: {p.stderr.decode()[-500:]}")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(p.stdout)
    os.replace(tmp, out)
    return out


def _write_sparse(rfd: int, dest: Path, done: Dict[str, Any], block: int = 1 << 20) -> None:
    """Copy a pipe to ``dest``, seeking over all-zero blocks so they stay holes."""
    zero = bytes(block)
    buf = bytearray(block)
    view = memoryview(buf)
    try:
        try:
            fcntl.fcntl(rfd, 1031, block)  # F_SETPIPE_SZ: fewer, larger reads
        except OSError:
            pass
        with open(rfd, "rb", buffering=0, closefd=True) as src, open(dest, "wb") as out:
            size = 0
            while True:
                # Fill a whole block (a pipe read returns at most the pipe's size) so zero tests align.
                n = 0
                while n < block:
                    got = src.readinto(view[n:])
                    if not got:
                        break
                    n += got
                if n == 0:
                    break
                if n == block and buf == zero:
                    out.seek(n, os.SEEK_CUR)
                elif view[:n] == zero[:n]:
                    out.seek(n, os.SEEK_CUR)
                else:
                    out.write(view[:n])
                size += n
                if n < block:
                    break
            out.truncate(size)
    except Exception as e:  # reported by the caller
        done["error"] = e


# Empty filesystems the guest mounts (sparse image files made by the host's mkfs): size, mkfs command.
FS_IMAGES = {
    "ext4": (128 << 20, ["mkfs.ext4", "-q", "-F"], "e2fsprogs"),
    # mkfs.xfs refuses filesystems below 300 MiB (xfsprogs 5.19+).
    "xfs": (320 << 20, ["mkfs.xfs", "-q", "-f"], "xfsprogs"),
}


# The swap disk (procmem scenario): a sparse raw image the guest makes swap and pages out to.
SWAP_IMAGE, SWAP_IMAGE_SIZE = "swapdisk.img", 64 << 20


def make_fs_image(img: Path, fs: str) -> None:
    """A new empty *fs* filesystem in the sparse file *img*."""
    size, cmd, package = FS_IMAGES[fs]
    if shutil.which(cmd[0]) is None:
        raise FetchError(f"{cmd[0]} not found: apt-get install {package}")
    img.unlink(missing_ok=True)
    with open(img, "wb") as f:
        f.truncate(size)
    p = subprocess.run(cmd + [str(img)], capture_output=True, text=True)
    if p.returncode != 0:
        raise FetchError(f"{' '.join(cmd)} {img} failed: {p.stderr.strip()}")


def awaits_dump_signal(text: str) -> bool:
    """Whether the guest's console ``text`` says it sent its kpage snapshot A and waits for the dumps
    to read snapshot B (not so on a kdump entry, whose changed block comes before READY-FOR-DUMP)."""
    kpage_end, changed = KPAGE_BLOCKS["kpage.bin"][1], KPAGE_BLOCKS["kpage-changed.bin"][0]
    return kpage_end in text and changed not in text.split(kpage_end, 1)[1]


def _extract_blocks(text: str, dest: Path, only: Sequence[str] = tuple(KPAGE_BLOCKS)) -> None:
    """Write each complete kpage block of the console ``text`` (base64) into ``dest``/its file."""
    for name in only:
        begin, end = KPAGE_BLOCKS[name]
        if begin in text and end in text.split(begin, 1)[1]:
            body = text.split(begin, 1)[1].split(end, 1)[0]
            tmp = dest / f"{name}.tmp"
            tmp.write_bytes(base64.b64decode("".join(body.split())))
            os.replace(tmp, dest / name)


class Guest:
    """One QEMU process: started, waited on, dumped, stopped."""

    def __init__(self, entry: Dict[str, Any], kernel_dir: Path, initramfs: Path, workdir: Path,
                 page_size: int) -> None:
        self.entry = entry
        self.arch = entry["arch"]
        self.workdir = workdir
        self.serial = workdir / "serial.log"
        # The console: a socket QEMU listens on (the host writes DUMPED to the guest through it after the
        # dumps), logging all the guest writes to serial.log whether a client is connected or not.
        self.console_path = workdir / "console.sock"
        self.qmp_path = workdir / "qmp.sock"
        self.proc: Optional[subprocess.Popen] = None
        self._qmp: Optional[socket.socket] = None
        self._buf = b""
        firmware: List[str] = []
        self.env: Optional[Dict[str, str]] = None
        if self.arch == "loong64":
            launcher, firmware = sid_qemu(QEMU[self.arch][0])
            # Its own modules, not this machine's QEMU's.
            self.env = dict(os.environ, QEMU_MODULE_DIR=str(Path(launcher[-1]).parents[2] / "lib/x86_64-linux-gnu/qemu"))
        else:
            binary = shutil.which(QEMU[self.arch][0])
            if binary is None:
                raise FetchError(f"{QEMU[self.arch][0]} not found: apt-get install {QEMU[self.arch][1]}")
            launcher = [binary]
        # The QEMU command (sid's: its loader, libraries and binary) before the arguments.
        self.launcher = launcher
        kernel = kernel_dir / "vmlinuz"
        if self.arch == "arm64":
            kernel = unpack_zboot(kernel, workdir / "Image")
        # (ppc64el: the package's ELF vmlinux, which pseries boots as is.)
        # The guest's init passes ptwalk.scenario= to the workload as its scenario set.
        scenario = entry.get("scenario", "default")
        # capture = "kexec": a crashkernel= reservation, and ptwalk.kdump= tells init to load a capture
        # kernel and crash; the capture kernel writes one makedumpfile dump per level to its own disk.
        self.kdump_levels = kdump_levels(entry)
        kdump = (f" crashkernel={entry.get('crashkernel', CRASHKERNEL)}"
                 f" ptwalk.kdump={','.join(map(str, self.kdump_levels))}") if self.kdump_levels else ""
        cmdline = (
            f"console={CONSOLE[self.arch]} panic=-1 loglevel=4 numa_balancing=disable "
            f"{entry.get('hugepages') or hugetlb_cmdline(self.arch, page_size)} {entry.get('append', '')}"
            + (f" ptwalk.scenario={scenario}" if scenario != "default" else "") + kdump
            + ("" if INPUT_CONSOLE[self.arch] else " ptwalk.kpage=before")
        ).strip()
        memory_mib = int(entry.get("memory_gib", MEMORY_GIB)) * 1024
        half = memory_mib // 2
        # reserve=off: no swap space reserved for the guest's RAM, so the host does not refuse a guest larger
        # than its memory (the pages the guest never writes are never allocated).
        self.argv: List[str] = [
            *launcher, *firmware, "-accel", "tcg,thread=multi", "-M", entry["machine"], "-cpu", entry["cpu"],
            "-smp", "2", "-m", f"{memory_mib}M",
            *([
                "-object", f"memory-backend-ram,id=m0,size={half}M,reserve=off",
                "-object", f"memory-backend-ram,id=m1,size={memory_mib - half}M,reserve=off",
                "-numa", "node,nodeid=0,cpus=0,memdev=m0", "-numa", "node,nodeid=1,cpus=1,memdev=m1",
            ] if NUMA[self.arch] else []),
            "-kernel", str(kernel), "-initrd", str(initramfs), "-append", cmdline,
            *(["-device", "vmcoreinfo"] if FW_CFG[self.arch] else []), "-display", "none", "-monitor", "none",
            *(["-chardev", f"socket,id=console,path={self.console_path},server=on,wait=off,logfile={self.serial}",
                "-serial", "chardev:console"] if INPUT_CONSOLE[self.arch] else ["-serial", f"file:{self.serial}"]),
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-no-reboot", "-net", "none",
        ]
        self.disks = [workdir / f"kdump-d{level}.disk" for level in self.kdump_levels]
        for i, disk in enumerate(self.disks):
            self.argv += ["-drive", f"file={disk},format=raw,if=none,id=kd{i}",
                          "-device", f"{VIRTIO_BLK[self.arch]},drive=kd{i}"]
        # The production scenarios' block filesystems, found by the guest from their serial; after the
        # kdump disks, so the capture kernel's /dev/vda, /dev/vdb... stay the dump disks.
        self.fs_images = [(workdir / f"{fs}.img", fs) for fs in FS_IMAGES]
        for img, fs in self.fs_images:
            self.argv += ["-drive", f"file={img},format=raw,if=none,id={fs}",
                          "-device", f"{VIRTIO_BLK[self.arch]},drive={fs},serial=ptwalk-{fs}"]
        # The procmem scenario's swap disk (serial ptwalk-swap; the guest runs mkswap): its image stays in
        # the build directory, the swap device's content at the dump (the reader's swap image).
        self.swap_image = workdir / SWAP_IMAGE
        self.argv += ["-drive", f"file={self.swap_image},format=raw,if=none,id=swapdisk",
                      "-device", f"{VIRTIO_BLK[self.arch]},drive=swapdisk,serial=ptwalk-swap"]
        self.cmdline = cmdline

    def start(self) -> None:
        for f in (self.serial, self.qmp_path, self.console_path):
            f.unlink(missing_ok=True)
        for img, fs in self.fs_images:
            make_fs_image(img, fs)
        self.swap_image.unlink(missing_ok=True)
        with open(self.swap_image, "wb") as f:
            f.truncate(SWAP_IMAGE_SIZE)
        for disk in self.disks:
            # Sparse: a flattened dump of a 6 GiB guest cannot be larger than its memory plus headers.
            with open(disk, "wb") as f:
                f.truncate((int(self.entry.get("memory_gib", MEMORY_GIB)) + 1) << 30)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=self.env,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def serial_tail(self, lines: int = 40) -> str:
        try:
            text = self.serial.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return "(no serial output)"
        # Do not show pages of base64.
        for begin, end in ((BEGIN, END), *KPAGE_BLOCKS.values()):
            if begin in text:
                text = text.split(begin)[0] + begin + " ...\n" + text.split(end)[-1]
        return "\n".join(text.splitlines()[-lines:])

    def _wait_serial(self, timeout: float, done: Callable[[str], bool], failed: Sequence[Tuple[str, str]],
                     exited: str, late: str, since: Optional[str] = None,
                     poll: Callable[[], None] = lambda: None) -> str:
        """Read serial.log every 0.5 s (after ``poll()``) until ``done(text)``, and return that text (what
        follows the first ``since`` if given). A GuestError ending with the serial log's tail otherwise:
        ``what: <line>`` for a (marker, what) of ``failed`` in the text, QEMU's exit (``exited`` says before
        what), or ``late`` past the timeout; the guest is killed first."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            poll()
            text = self.serial.read_bytes().decode(errors="replace") if self.serial.exists() else ""
            if since is not None:
                text = text.split(since, 1)[-1]
            if done(text):
                return text
            for marker, what in failed:
                if marker in text:
                    self.kill()
                    line = text[text.index(marker):].splitlines()[0]
                    raise GuestError(f"{what}: {line}\n--- serial log (tail) ---\n{self.serial_tail()}")
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise GuestError(f"QEMU exited with {self.proc.returncode}{exited}: {out.strip()[-2000:]}\n"
                                 f"--- serial log (tail) ---\n{self.serial_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise GuestError(f"{late}; killed the guest\n--- serial log (tail) ---\n{self.serial_tail()}")
            time.sleep(0.5)

    def wait_ready(self, timeout: float) -> None:
        """Wait until the guest has printed its truth and is ready to be dumped."""
        self._wait_serial(timeout, lambda text: READY in text, [(FAILED, "guest failed")], "",
                          f"guest not ready within {timeout:.0f} s")

    def wait_churn(self, timeout: float) -> int:
        """The PID of the churning process init starts after the truth (ptwalk.churn=1)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"^=====CHURN===== (\d+)", self.serial.read_bytes().decode(errors="replace"), re.M)
            if m:
                return int(m.group(1))
            time.sleep(0.2)
        raise GuestError(f"no churn process within {timeout:.0f} s\n--- serial log (tail) ---\n{self.serial_tail()}")

    def wait_kdump(self, timeout: float, dests: Dict[int, Path]) -> Dict[int, float]:
        """After the truth, wait for the crash, the capture kernel and its makedumpfile runs; then
        reassemble each level's flattened dump from its disk into ``dests[level]``.

        Returns the seconds from the crash to each level's dump being written, in the guest.
        """
        assert self.proc is not None
        t0 = time.monotonic()
        seconds: Dict[int, float] = {}

        def done(after: str) -> bool:
            for m in re.finditer(r"^=====KDUMP-LEVEL===== (\d+) (\S+) rc=(\d+)", after, re.M):
                level, rc = int(m.group(1)), int(m.group(3))
                if rc != 0:
                    self.kill()
                    raise GuestError(f"makedumpfile -d {level} exited with {rc}\n"
                                     f"--- serial log (tail) ---\n{self.serial_tail()}")
                seconds.setdefault(level, round(time.monotonic() - t0, 1))
            return KDUMP_DONE in after and self.proc.poll() is not None

        self._wait_serial(timeout, done, [(FAILED, "capture kernel failed")], " before the capture kernel finished",
                          f"no kdump within {timeout:.0f} s after the crash", since=READY)
        for level, disk in zip(self.kdump_levels, self.disks):
            try:
                flattened.rearrange(disk, dests[level])
            except flattened.FlattenedError as e:
                raise GuestError(f"dump level {level}: {e}") from None
            disk.unlink()
        return seconds

    def extract_truth(self, dest: Path) -> None:
        text = self.serial.read_bytes().decode(errors="replace")
        if BEGIN not in text or END not in text:
            raise GuestError("guest said ready but printed no truth")
        body = text.split(BEGIN, 1)[1].split(END, 1)[0]
        data = base64.b64decode("".join(body.split()))
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
            tf.extractall(tmp, filter="data")
        _extract_blocks(text, tmp)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)

    def after_dump(self, truth: Path, timeout: float = AFTER_DUMP_TIMEOUT) -> Optional[float]:
        """After every dump: tell the guest they are written, and wait for the kpage block it then sends
        (the PFNs whose values changed between snapshot A, before the dumps, and snapshot B, after them),
        written to ``truth``/kpage-changed.bin. The guest is resumed first if it is paused.

        Returns the seconds it took, or ``None`` if the guest waits for no such signal (a kdump entry, or
        no snapshot A).
        """
        assert self.proc is not None
        if not awaits_dump_signal(self.serial.read_bytes().decode(errors="replace")):
            return None
        t0 = time.monotonic()
        if not self.qmp("query-status").get("running"):
            self.qmp("cont")
        con = socket.socket(socket.AF_UNIX)
        try:
            try:
                con.connect(str(self.console_path))
                con.sendall(f"{DUMPED}\n".encode())
            except OSError as e:
                raise GuestError(f"cannot write {DUMPED} to the guest's console {self.console_path}: {e}\n"
                                 f"--- serial log (tail) ---\n{self.serial_tail()}") from None
            # What the guest writes now comes through the socket as well as into serial.log: it is read
            # and dropped, so the console never waits for this reader.
            con.setblocking(False)

            def drain() -> None:
                try:
                    while con.recv(65536):
                        pass
                except OSError:  # nothing to read now (BlockingIOError), or QEMU went away (seen after)
                    pass

            end = KPAGE_BLOCKS["kpage-changed.bin"][1]
            after = self._wait_serial(
                timeout, lambda text: end in text,
                [(KPAGE_FAILED, "guest failed after the dump"), (FAILED, "guest failed after the dump")],
                " before the guest sent its after-dump kpage block",
                f"no after-dump kpage block within {timeout:.0f} s of {DUMPED}", since=READY, poll=drain)
        finally:
            con.close()
        _extract_blocks(after, Path(truth), only=("kpage-changed.bin",))
        return time.monotonic() - t0

    # QMP: one JSON object per line; events are skipped.
    def qmp(self, command: str, _fds: Sequence[int] = (), **arguments: Any) -> Any:
        if self._qmp is None:
            s = socket.socket(socket.AF_UNIX)
            for _ in range(100):
                try:
                    s.connect(str(self.qmp_path))
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise GuestError(f"cannot connect to QMP at {self.qmp_path}")
            self._qmp = s
            self._read_msg()  # greeting
            self.qmp("qmp_capabilities")
        msg: Dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        data = json.dumps(msg).encode() + b"\n"
        if _fds:
            # File descriptors travel as SCM_RIGHTS ancillary data with the command (QMP getfd).
            socket.send_fds(self._qmp, [data], list(_fds))
        else:
            self._qmp.sendall(data)
        while True:
            reply = self._read_msg()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise GuestError(f"QMP {command}: {reply['error'].get('desc')}")

    def _read_msg(self) -> Dict[str, Any]:
        assert self._qmp is not None
        while b"\n" not in self._buf:
            chunk = self._qmp.recv(65536)
            if not chunk:
                raise GuestError("QMP connection closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def dump(self, path: Path, fmt: str) -> None:
        """Dump guest memory (the guest is paused first) to ``path`` atomically.

        ELF dumps go through a pipe into a sparse file: a 6 GiB guest is mostly zero pages, and writing
        them to disk only to dig the holes out again took most of a build's time.
        """
        self.qmp("stop")
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        if fmt != "elf":
            self.qmp("dump-guest-memory", paging=False, protocol=f"file:{tmp}", format=fmt)
            os.replace(tmp, path)
            return
        rfd, wfd = os.pipe()
        done: Dict[str, Any] = {}
        writer = threading.Thread(target=_write_sparse, args=(rfd, tmp, done))
        writer.start()
        try:
            self.qmp("getfd", fdname="ptwalk-dump", _fds=[wfd])
            os.close(wfd)
            wfd = -1
            self.qmp("dump-guest-memory", paging=False, protocol="fd:ptwalk-dump")
        finally:
            if wfd >= 0:
                os.close(wfd)
            writer.join()
        if "error" in done:
            raise GuestError(f"writing {tmp}: {done['error']}")
        if not FW_CFG[self.arch]:
            self.fix_elf(tmp)
        os.replace(tmp, path)

    def guest_vmcoreinfo(self) -> Tuple[int, int]:
        """(physical address, size) of the kernel's VMCOREINFO note, as the guest's init printed
        /sys/kernel/vmcoreinfo on the console."""
        text = self.serial.read_bytes().decode(errors="replace")
        # "%pa %x": the address with 0x and leading zeros, the size in bare hex.
        m = re.search(rf"^{VMCOREINFO} ((?:0x)?[0-9a-fA-F]+) ((?:0x)?[0-9a-fA-F]+)\s*$", text, re.M)
        if m is None:
            raise GuestError(f"the guest printed no {VMCOREINFO} line (no /sys/kernel/vmcoreinfo?)")
        return int(m.group(1), 16), int(m.group(2), 16)

    def fix_elf(self, core: Path) -> None:
        """Make QEMU's ELF dump of a machine without fw_cfg readable by drgn: little-endian where
        QEMU wrote it big-endian (7.2, ppc64le guests; an s390x guest's is big-endian as its kernel is),
        and a VMCOREINFO note copied out of memory."""
        try:
            if self.arch == "ppc64el":
                elfcore.to_little_endian(core)
            elfcore.add_vmcoreinfo(core, *self.guest_vmcoreinfo())
        except elfcore.ElfCoreError as e:
            raise GuestError(f"{core}: {e}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
