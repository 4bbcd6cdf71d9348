# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fetch Debian kernels, their debug vmlinux and busybox from the archive this machine's apt already uses.

apt runs with a private configuration under the cache directory, so the packages are verified the way apt
verifies everything: the suite's InRelease is checked against Debian's archive keyring and each .deb against
the hashes of the signed index.  The archive address is read from the machine's apt sources, never written
here.  Everything lands in the cache atomically (temporary name, then rename), so a failed download or
check leaves no partial entry, and a second build downloads nothing.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

SUITES = ("bookworm", "trixie", "sid", "experimental")
ARCHES = ("amd64", "arm64", "ppc64el", "s390x", "loong64")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Index lists older than this are refreshed; set DRGN_PTWALK_REFRESH=1 to force a refresh.
LISTS_MAX_AGE = 24 * 3600


class FetchError(Exception):
    pass


def cache_dir() -> Path:
    d = Path(os.environ.get("DRGN_PTWALK_CACHE", "~/.cache/drgn-ptwalk")).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    return d


def archive_uri() -> str:
    """The Debian archive URI named by this machine's apt sources (deb822 or one-line format)."""
    candidates: List[str] = []
    src = Path("/etc/apt/sources.list.d")
    for f in sorted(src.glob("*.sources")) if src.is_dir() else []:
        for stanza in f.read_text().split("\n\n"):
            fields = dict(
                (m.group(1).lower(), m.group(2).strip())
                for m in re.finditer(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M)
            )
            if fields.get("enabled", "yes") == "no" or "deb" not in fields.get("types", "").split():
                continue
            suites = fields.get("suites", "").split()
            if any(not s.endswith("-security") for s in suites):
                candidates.extend(fields.get("uris", "").split())
    for f in [Path("/etc/apt/sources.list"), *sorted(src.glob("*.list"))]:
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            m = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and not m.group(3).endswith("-security"):
                candidates.append(m.group(2))
    for uri in candidates:
        if "security" not in uri:
            return uri.rstrip("/")
    raise FetchError(
        "no Debian archive found in /etc/apt/sources.list{,.d}; add one (e.g. the main archive of your mirror)"
    )


# apt's binary cache of the lists, kept on disk: a machine's apt.conf.d may turn it off (Docker images'
# docker-clean sets Dir::Cache::pkgcache ""), and that file is read after APT_CONFIG; without it every
# apt-cache call parses all suites' lists again (~10 s CPU each; 0.2 s with it). Options on the command
# line come last, so they win.
KEEP_CACHE = ("-o", "Dir::Cache::pkgcache=pkgcache.bin", "-o", "Dir::Cache::srcpkgcache=srcpkgcache.bin")


def _replace_text(path: Path, text: str) -> None:
    """Write *path* by renaming a new file over it: a cache copied with hard links (``cp -al``) keeps
    the other copy's file as it was."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Apt:
    """apt-get/apt-cache with a private state for all suites and both architectures."""

    def __init__(self) -> None:
        self.root = cache_dir() / "apt"
        self.conf = self.root / "apt.conf"
        self._madison: Dict[str, str] = {}

    def _setup(self) -> None:
        for d in ("etc/preferences.d", "state/lists/partial", "cache/archives/partial"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        uri = archive_uri()
        sources = "".join(
            f"deb [arch={','.join(ARCHES)} signed-by={KEYRING}] {uri} {suite} main\n" for suite in SUITES
        )
        _replace_text(self.root / "etc/sources.list", sources)
        _replace_text(
            self.conf,
            f'Dir::State "{self.root}/state";\n'
            f'Dir::Cache "{self.root}/cache";\n'
            f'Dir::Etc::SourceList "{self.root}/etc/sources.list";\n'
            'Dir::Etc::SourceParts "/nonexistent";\n'
            f'Dir::Etc::Preferences "{self.root}/etc/preferences";\n'
            f'Dir::Etc::PreferencesParts "{self.root}/etc/preferences.d";\n'
            'Dir::Etc::Trusted "/nonexistent"; Dir::Etc::TrustedParts "/nonexistent";\n'
            "APT::Architectures { " + " ".join(f'"{a}";' for a in ARCHES) + " };\n"
            'Acquire::Languages "none";\n'
            'APT::Sandbox::User "root";\n'
        )

    def run(self, *args: str, cwd: Optional[Path] = None) -> str:
        env = dict(os.environ, APT_CONFIG=str(self.conf), LC_ALL="C")
        p = subprocess.run((args[0], *KEEP_CACHE, *args[1:]), env=env, cwd=cwd, capture_output=True, text=True)
        if p.returncode != 0:
            raise FetchError(f"{' '.join(args)} failed: {p.stderr.strip()[-2000:]}")
        return p.stdout

    def update(self) -> None:
        if shutil.which("apt-get") is None:
            raise FetchError("apt-get not found: this builder needs a Debian machine (package apt)")
        if not Path(KEYRING).is_file():
            raise FetchError(f"{KEYRING} missing: apt-get install debian-archive-keyring")
        self._setup()
        stamp = self.root / "state/updated"
        # The stamp holds the sources it was made for: a new architecture or suite needs new lists.
        sources = (self.root / "etc/sources.list").read_text()
        fresh = (stamp.is_file() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE
                 and stamp.read_text() == sources)
        if fresh and not os.environ.get("DRGN_PTWALK_REFRESH"):
            return
        out = self.run("apt-get", "update", "-q")
        if re.search(r"^(W|E): ", out, re.M):
            raise FetchError(f"apt-get update reported problems:\n{out}")
        tmp = stamp.with_name(".updated.tmp")
        tmp.write_text(sources)
        os.replace(tmp, stamp)

    def versions(self, pkg: str, arch: str) -> Dict[str, str]:
        """suite -> version of ``pkg`` for ``arch``."""
        return self.versions_many([pkg], arch).get(pkg, {})

    def versions_many(self, pkgs: List[str], arch: str) -> Dict[str, Dict[str, str]]:
        """package -> suite -> version for ``arch``, in one apt-cache call (each call spends seconds
        loading every suite's lists)."""
        out = self.run("apt-cache", "madison", *(f"{p}:{arch}" for p in pkgs))
        result: Dict[str, Dict[str, str]] = {}
        for line in out.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) < 3:
                continue
            m = re.search(r"\s(\w+)/main\s+(\S+)\s+Packages", parts[2])
            if m and m.group(2) == arch:
                result.setdefault(parts[0].split(":")[0], {}).setdefault(m.group(1), parts[1])
        return result

    def depends(self, pkg: str, arch: str, version: str) -> List[str]:
        return self.depends_many({pkg: version}, arch).get(pkg, [])

    def depends_many(self, pkgs: Dict[str, str], arch: str) -> Dict[str, List[str]]:
        """package -> its ``Depends`` (the first of each alternative), for package -> version, in one
        apt-cache call."""
        out = self.run("apt-cache", "show", *(f"{p}:{arch}={v}" for p, v in pkgs.items()))
        result: Dict[str, List[str]] = {}
        for record in re.split(r"\n\s*\n", out):
            name = re.search(r"^Package: (\S+)$", record, re.M)
            if not name or name.group(1) not in pkgs or name.group(1) in result:
                continue
            m = re.search(r"^Depends: (.*)$", record, re.M)
            result[name.group(1)] = [d.strip().split()[0] for d in m.group(1).split(",")] if m else []
        return result

    def download(self, pkg: str, arch: str, version: str) -> Path:
        """Download one verified .deb into the cache (once) and return its path."""
        return self.download_many({pkg: version}, arch)[pkg]

    def download_many(self, pkgs: Dict[str, str], arch: str) -> Dict[str, Path]:
        """Download verified .debs (package -> version) into the cache, those missing in one apt-get
        call (each call spends seconds loading three suites' lists); returns package -> path."""
        debs = cache_dir() / "debs"
        debs.mkdir(exist_ok=True)
        dest = {pkg: debs / f"{pkg}_{v.replace(':', '%3a')}_{arch}.deb" for pkg, v in pkgs.items()}
        missing = sorted(pkg for pkg, d in dest.items() if not d.is_file())
        if not missing:
            return dest
        with tempfile.TemporaryDirectory(dir=debs, prefix=".dl-") as tmp:
            print(f"[fetch] downloading {', '.join(f'{p}:{arch}={pkgs[p]}' for p in missing)}", flush=True)
            self.run("apt-get", "download", "-q", *(f"{p}:{arch}={pkgs[p]}" for p in missing), cwd=Path(tmp))
            for pkg in missing:
                got = list(Path(tmp).glob(f"{pkg}_*.deb"))
                if len(got) != 1:
                    raise FetchError(f"apt-get download {pkg} produced {got}")
                os.replace(got[0], dest[pkg])
        return dest


def _deb_members(deb: Path, want, stop_after: Optional[int] = None) -> Dict[str, bytes]:
    """Stream a .deb's data tarball and return the members for which ``want(name)`` is true.

    With ``stop_after``, stop reading once that many members were found: the debug vmlinux comes early in
    a 2 GB -dbg tarball, and decompressing the rest would cost most of a build's fetch time.
    """
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL if stop_after else None)
    found: Dict[str, bytes] = {}
    assert p.stdout is not None
    complete = True
    with tarfile.open(fileobj=p.stdout, mode="r|") as tf:
        for m in tf:
            if m.isfile() and want(m.name):
                f = tf.extractfile(m)
                assert f is not None
                found[m.name] = f.read()
                if stop_after is not None and len(found) >= stop_after:
                    complete = False
                    break
    p.stdout.close()
    if complete:
        if p.wait() != 0:
            raise FetchError(f"dpkg-deb --fsys-tarfile {deb} failed")
    else:
        p.kill()
        p.wait()
    return found


def _extract_to(deb: Path, want, dest_of, stop_after: Optional[int] = None) -> List[Path]:
    out = []
    for name, data in _deb_members(deb, want, stop_after).items():
        dest = dest_of(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        out.append(dest)
    return out


def _memo(apt: Apt, key: str, compute):
    """``compute()`` remembered under ``key`` until the index lists are next refreshed.

    apt-cache takes seconds per call on three suites' lists.
    """
    memo_path = apt.root / "state" / "resolved.json"
    stamp = apt.root / "state" / "updated"
    key = f"{key}@{stamp.stat().st_mtime if stamp.exists() else 0}"
    memo = json.loads(memo_path.read_text()) if memo_path.is_file() else {}
    if key not in memo:
        memo[key] = compute()
        tmp = memo_path.with_name(f".resolved.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo, indent=1))
        os.replace(tmp, memo_path)
    return memo[key]


def resolve_kernel(apt: Apt, suite: str, arch: str, flavour: str) -> Dict[str, str]:
    """Find the newest kernel of a flavour in a suite: its release, version and packages."""
    return _memo(apt, f"{suite}/{arch}/{flavour}", lambda: _resolve_kernel(apt, suite, arch, flavour))


def _resolve_kernel(apt: Apt, suite: str, arch: str, flavour: str) -> Dict[str, str]:
    meta = f"linux-image-{flavour}"
    vers = apt.versions(meta, arch)
    if suite not in vers:
        raise FetchError(f"{meta}:{arch} not in {suite} (have: {vers})")
    version = vers[suite]
    image = next(
        (d for d in apt.depends(meta, arch, version) if d.startswith("linux-image-") and d != meta), None
    )
    if image is None:
        raise FetchError(f"cannot find the versioned image package {meta}={version} depends on")
    release = image[len("linux-image-"):]
    # 7.x splits the image into linux-binary-* (vmlinuz) and linux-modules-*; earlier ones ship both in
    # linux-image-*.
    parts = [d for d in apt.depends(image, arch, version) if d in (f"linux-binary-{release}", f"linux-modules-{release}")]
    return {
        "release": release,
        "version": version,
        "packages": parts or [image],
        "dbg": f"linux-image-{release}-dbg",
    }


def _boot_image(name: str) -> bool:
    """Whether a member of a kernel image package is the image QEMU boots: ``vmlinuz*`` (``/boot`` up to
    6.x, ``/usr/lib/modules/<release>/`` in 7.x, an ELF on ppc64el), or 6.x ppc64el's ``/boot/vmlinux-*``."""
    return name.rsplit("/", 1)[-1].startswith("vmlinuz") or re.search(r"(^|/)boot/vmlinux-[^/]+$", name) is not None


def fetch_kernel(apt: Apt, suite: str, arch: str, flavour: str) -> Path:
    """Kernel image, all modules and the debug vmlinux in one cache directory.

    The directory holds ``vmlinuz``, ``vmlinux``, ``modules/<path>.ko[.xz|.zst|.gz]`` (as packaged; the
    few the guest loads are decompressed into its initramfs) and ``kernel.json``.
    """
    info = resolve_kernel(apt, suite, arch, flavour)
    kdir = cache_dir() / "kernels" / f"{arch}-{info['release']}-{info['version']}"
    if (kdir / "kernel.json").is_file():
        return kdir
    kdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=kdir.parent, prefix=".x-"))
    try:
        for pkg in info["packages"]:
            deb = apt.download(pkg, arch, info["version"])

            def want(n: str) -> bool:
                return re.search(r"/modules/[^/]+/kernel/.*\.ko(\.xz|\.zst|\.gz)?$", n) is not None or (
                    _boot_image(n)
                )

            def dest_of(n: str) -> Path:
                if _boot_image(n):
                    return tmp / "vmlinuz"
                return tmp / "modules" / n.split("/kernel/", 1)[1]

            _extract_to(deb, want, dest_of)
        deb = apt.download(info["dbg"], arch, info["version"])
        got = _extract_to(
            deb,
            lambda n: re.search(r"/usr/lib/debug/(boot/vmlinux-|lib/modules/[^/]+/vmlinux$)", n) is not None,
            lambda n: tmp / "vmlinux",
            stop_after=1,
        )
        if not (tmp / "vmlinuz").is_file() or not got:
            raise FetchError(f"kernel packages for {info['release']} lack vmlinuz or the debug vmlinux")
        (tmp / "kernel.json").write_text(json.dumps(dict(info, suite=suite, arch=arch, flavour=flavour), indent=1))
        os.replace(tmp, kdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return kdir


def fetch_module_debug(kdir: Path, names: Sequence[str]) -> List[Path]:
    """The debug files of the modules ``names`` (e.g. ``zram``, ``zsmalloc``) of a kernel fetched by
    :func:`fetch_kernel`, extracted once from its -dbg package (already downloaded for the vmlinux) into
    ``kdir/debug-modules/``. A name that is not a module of that kernel (built in: its debug info is the
    vmlinux's) is left out."""
    info = json.loads((kdir / "kernel.json").read_text())
    modules = {ko.name.split(".ko")[0].replace("-", "_"): ko for ko in (kdir / "modules").rglob("*.ko*")}
    wanted = sorted({n.replace("-", "_") for n in names} & set(modules))
    out_dir = kdir / "debug-modules"
    dests = [out_dir / f"{n}.ko" for n in wanted]
    missing = [n for n, d in zip(wanted, dests) if not d.is_file()]
    if missing:
        apt = Apt()
        deb = apt.download(info["dbg"], info["arch"], info["version"])
        rel = {str(modules[n].relative_to(kdir / "modules")).split(".ko")[0] + ".ko": n for n in missing}
        tmp = Path(tempfile.mkdtemp(dir=kdir, prefix=".dbgmod-"))
        try:
            got = _extract_to(
                deb,
                lambda m: "/usr/lib/debug/lib/modules/" in m and m.split("/kernel/", 1)[-1] in rel,
                lambda m: tmp / f"{rel[m.split('/kernel/', 1)[-1]]}.ko",
                stop_after=len(rel),
            )
            if len(got) != len(rel):
                raise FetchError(f"{info['dbg']} lacks the debug files of {sorted(rel.values())}")
            out_dir.mkdir(exist_ok=True)
            for f in got:
                os.replace(f, out_dir / f.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dests


def decompress_module(ko: Path, dest: Path) -> None:
    """Copy a module to ``dest`` uncompressed (busybox insmod takes plain .ko files)."""
    tool = {".xz": ["xz", "-dc"], ".zst": ["zstd", "-q", "-dc"], ".gz": ["gzip", "-dc"]}.get(ko.suffix)
    if tool is None:
        shutil.copy(ko, dest)
        return
    if shutil.which(tool[0]) is None:
        raise FetchError(f"{tool[0]} not found: apt-get install {'xz-utils' if tool[0] == 'xz' else tool[0]}")
    with open(dest, "wb") as f:
        subprocess.run([*tool, str(ko)], check=True, stdout=f)


# The suite a static busybox comes from: bookworm's, or sid's for an architecture bookworm does not have.
BUSYBOX_SUITE = {"loong64": "sid"}


def fetch_busybox(apt: Apt, arch: str) -> Path:
    """A static busybox for ``arch`` (Debian bookworm's busybox-static; sid's for loong64)."""
    dest = cache_dir() / "busybox" / arch / "busybox"
    if dest.is_file():
        return dest
    suite = BUSYBOX_SUITE.get(arch, "bookworm")
    vers = apt.versions("busybox-static", arch)
    if suite not in vers:
        raise FetchError(f"busybox-static:{arch} not found in {suite} ({vers})")
    deb = apt.download("busybox-static", arch, vers[suite])
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(".busybox.tmp")
    data = _deb_members(deb, lambda n: n.endswith("/bin/busybox"))
    if not data:
        raise FetchError(f"{deb} has no bin/busybox")
    tmp.write_bytes(next(iter(data.values())))
    tmp.chmod(0o755)
    os.replace(tmp, dest)
    return dest


# The crash-capture tools a production kdump uses, from the guest's own suite and architecture.
GUEST_TOOLS = {"kexec-tools": "kexec", "makedumpfile": "makedumpfile"}


def resolve_closure(apt: Apt, suite: str, arch: str, roots: Sequence[str],
                    follow: Callable[[str], bool]) -> Dict[str, str]:
    """package -> version in *suite*: *roots* and the dependencies *follow* accepts, transitively (one level
    of the dependency tree per two apt-cache calls)."""
    result: Dict[str, str] = {}
    level = sorted(roots)
    while level:
        vers = apt.versions_many(level, arch)
        for pkg in level:
            if suite not in vers.get(pkg, {}):
                raise FetchError(f"{pkg}:{arch} not in {suite} (have: {vers.get(pkg, {})})")
            result[pkg] = vers[pkg][suite]
        deps = apt.depends_many({pkg: result[pkg] for pkg in level}, arch)
        level = sorted({d for pkg in level for d in (x.split(":")[0] for x in deps.get(pkg, []))
                        if d not in result and follow(d)})
    return result


def _resolve_tools(apt: Apt, suite: str, arch: str) -> Dict[str, str]:
    """package -> version: GUEST_TOOLS and the shared-library packages they depend on, transitively.

    Maintainer-script needs (debconf, dpkg, perl) are not followed; which of the libraries are really
    loaded is decided later from the binaries' DT_NEEDED.
    """
    return resolve_closure(apt, suite, arch, GUEST_TOOLS,
                           lambda d: d not in ("debconf", "dpkg") and not d.startswith("perl"))


def _elf_info(path: Path):
    """(PT_INTERP or None, DT_NEEDED sonames) of an ELF file, read with binutils' readelf."""
    readelf = shutil.which("readelf")
    if readelf is None:
        raise FetchError("readelf not found: apt-get install binutils")
    out = subprocess.run([readelf, "-ldW", str(path)], capture_output=True, text=True).stdout
    interp = re.search(r"\[Requesting program interpreter: ([^\]]+)\]", out)
    return (interp.group(1) if interp else None), re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def fetch_guest_tools(apt: Apt, suite: str, arch: str) -> Path:
    """A root tree with kexec and makedumpfile for ``arch`` and exactly the shared objects they load.

    The tree (``usr/sbin/<tool>``, the dynamic loader at its PT_INTERP path, libraries under
    ``usr/lib/``) is copied as is into a busybox initramfs, which has no libc of its own.
    """
    pkgs = _memo(apt, f"tools/{suite}/{arch}", lambda: _resolve_tools(apt, suite, arch))
    key = hashlib.sha256(json.dumps(pkgs, sort_keys=True).encode()).hexdigest()[:12]
    dest = cache_dir() / "tools" / f"{arch}-{suite}-{key}"
    if (dest / "tools.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".stage-") as stage_dir:
        stage = Path(stage_dir) / "stage"
        root = Path(stage_dir) / "root"
        for pkg, deb in sorted(apt.download_many(pkgs, arch).items()):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(stage)], check=True)
        by_name: Dict[str, Path] = {}
        for f in stage.rglob("*"):
            if f.is_file() and ("/lib" in str(f.relative_to(stage)) or f.name.startswith("ld-")):
                by_name.setdefault(f.name, f)
        todo: List[Path] = []
        for tool in GUEST_TOOLS.values():
            found = [f for f in stage.rglob(tool) if f.is_file() and f.parent.name in ("sbin", "bin")]
            if not found:
                raise FetchError(f"no {tool} binary in {', '.join(GUEST_TOOLS)} for {arch}/{suite}")
            (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
            shutil.copy(found[0], root / "usr/sbin" / tool)
            todo.append(root / "usr/sbin" / tool)
        seen = set()
        while todo:
            interp, needed = _elf_info(todo.pop())
            wanted = [(n, None) for n in needed] + ([(Path(interp).name, interp)] if interp else [])
            for soname, at in wanted:
                if (soname, at) in seen:
                    continue
                seen.add((soname, at))
                src = by_name.get(soname)
                if src is None:
                    raise FetchError(f"{soname} (needed by the guest tools) is in none of {sorted(pkgs)}")
                # Real file content (symlinks resolved), at the loader's default search path or PT_INTERP.
                target = root / (at.lstrip("/") if at else str(src.relative_to(stage)).replace("lib/", "usr/lib/", 1)
                                 if not str(src.relative_to(stage)).startswith("usr/") else str(src.relative_to(stage)))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src.resolve(), target)
                todo.append(target)
        (root / "tools.json").write_text(json.dumps(pkgs, indent=1))
        os.replace(root, dest)
    return dest


# A Debian sid tree (debootstrap) for what this machine's Debian release lacks: QEMU with LoongArch's
# EFI boot (bookworm's QEMU 7.2 loads only an ELF kernel and gives it no EFI system table: Debian's loong64
# kernel, an EFI zboot image, does not start), edk2 for LoongArch, and the loong64 cross compiler.
# gdb-multiarch: the gcore tests read LoongArch cores with it (bookworm's GDB 13 finds no registers in one:
# "Couldn't find general-purpose registers in core file"; sid's GDB 18 reads them).
SID_ROOT_PACKAGES = ("qemu-system-misc", "qemu-efi-loongarch64", "gcc-loongarch64-linux-gnu",
                     "libc6-dev-loong64-cross", "gdb-multiarch")


def sid_root() -> Path:
    """The sid tree under the cache (made once with ``debootstrap``, which checks the suite's signed
    Release against Debian's archive keyring), with :data:`SID_ROOT_PACKAGES` installed.

    ``DRGN_PTWALK_SID_ROOT`` names an existing tree instead.
    """
    given = os.environ.get("DRGN_PTWALK_SID_ROOT")
    if given:
        root = Path(given)
        if not (root / "usr/bin/qemu-system-loongarch64").is_file():
            raise FetchError(f"DRGN_PTWALK_SID_ROOT={given} has no usr/bin/qemu-system-loongarch64: "
                             f"install {' '.join(SID_ROOT_PACKAGES)} there")
        return root
    root = cache_dir() / "sid-root"
    done = root / ".complete"
    if done.is_file():
        # A tree made for fewer packages gets the others (its apt sources are the archive's sid).
        missing = sorted(set(SID_ROOT_PACKAGES) - set(done.read_text().split()))
        if missing:
            print(f"[fetch] installing {', '.join(missing)} into {root}", flush=True)
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            # (Valid-Until not enforced, as debootstrap does not: the signature is still checked.)
            for cmd in (["apt-get", "-o", "Acquire::Check-Valid-Until=false", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]):
                p = subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True, env=env)
                if p.returncode != 0:
                    raise FetchError(f"{' '.join(cmd)} in {root} failed: {(p.stdout + p.stderr).strip()[-2000:]}")
            _replace_text(done, " ".join(SID_ROOT_PACKAGES))
        return root
    if os.geteuid() != 0:
        raise FetchError(f"making the sid tree {root} with debootstrap needs root; or make one and set "
                         f"DRGN_PTWALK_SID_ROOT (debootstrap --variant=minbase --include={','.join(SID_ROOT_PACKAGES)} sid DIR)")
    tmp = root.with_name(".sid-root.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    debootstrap, env = _debootstrap()
    print(f"[fetch] debootstrap sid into {root} ({', '.join(SID_ROOT_PACKAGES)})", flush=True)
    p = subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(SID_ROOT_PACKAGES)}",
                        f"--keyring={KEYRING}", "sid", str(tmp), archive_uri()], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise FetchError(f"debootstrap sid failed: {(p.stdout + p.stderr).strip()[-2000:]}")
    (tmp / ".complete").write_text(" ".join(SID_ROOT_PACKAGES))
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)
    return root


def _debootstrap():
    """(debootstrap command, its environment): this machine's, else sid's package (a shell script, checked
    against the signed index like every .deb here) unpacked under the cache and run from there."""
    system = shutil.which("debootstrap") or next((p for p in ("/usr/sbin/debootstrap",) if Path(p).is_file()), None)
    if system:
        return system, None
    apt = Apt()
    apt.update()
    vers = apt.versions("debootstrap", "amd64")
    if "sid" not in vers:
        raise FetchError(f"debootstrap not found here nor in sid ({vers}): apt-get install debootstrap")
    dest = cache_dir() / "tools" / f"debootstrap-{vers['sid']}"
    if not (dest / "usr/sbin/debootstrap").is_file():
        deb = apt.download("debootstrap", "amd64", vers["sid"])
        tmp = Path(tempfile.mkdtemp(dir=dest.parent if dest.parent.is_dir() else cache_dir(), prefix=".debootstrap-"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    return str(dest / "usr/sbin/debootstrap"), dict(os.environ, DEBOOTSTRAP_DIR=str(dest / "usr/share/debootstrap"))
