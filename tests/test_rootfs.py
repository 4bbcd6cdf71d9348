"""vmcores/rootfs.py without the network: a .deb made here is extracted the way the root images are made,
the configuration the maintainer scripts would have done is written, and the image digest follows its
inputs.  (The real images are built and booted by the realuser entries of the conformance matrix.)"""

import os
import subprocess
from pathlib import Path

from vmcores import rootfs


def _deb(tmp: Path) -> Path:
    pkg = tmp / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(
        "Package: ptwalk-test\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n")
    (pkg / "bin").mkdir()
    (pkg / "bin/tool").write_text("#!/bin/sh\n")
    (pkg / "bin/tool").chmod(0o755)
    (pkg / "var/lib/x").mkdir(parents=True)
    os.chown(pkg / "var/lib/x", 100, 102)
    # as root, the owners in the tree are the owners in the package
    subprocess.run(["dpkg-deb", "-b", str(pkg), str(tmp / "t.deb")], check=True, capture_output=True)
    return tmp / "t.deb"


def test_extract_keeps_merged_usr(tmp_path):
    deb = _deb(tmp_path)
    root = tmp_path / "root"
    rootfs._make_tree(root, "amd64", [deb])
    assert (root / "bin").is_symlink() and os.readlink(root / "bin") == "usr/bin"
    assert (root / "lib64").is_symlink()
    assert (root / "usr/bin/tool").is_file() and os.access(root / "usr/bin/tool", os.X_OK)
    st = (root / "var/lib/x").stat()
    assert (st.st_uid, st.st_gid) == (100, 102)
    # what the maintainer scripts would have done
    passwd = (root / "etc/passwd").read_text()
    for user in ("root:x:0:0:", "postgres:x:100:102:", "redis:x:101:103:", "www-data:x:33:33:", "app:x:1000:"):
        assert user in passwd
    assert os.readlink(root / "usr/bin/sh") == "busybox"
    assert (root / "var/lib/postgresql").stat().st_uid == 100
    assert len(list((root / "var/www/html").glob("f*.bin"))) == rootfs.WWW_FILES


def test_mkfs_makes_an_ext4_image(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello").write_text("hi\n")
    img = tmp_path / "img.ext4"
    used, size = rootfs._mkfs(root, img)
    assert size >= rootfs.FREE_MIB and img.stat().st_size == size << 20
    out = subprocess.run(["debugfs", "-R", "cat /hello", str(img)], capture_output=True, text=True)
    assert out.stdout == "hi\n"


def test_digest_follows_the_packages():
    a = rootfs.digest("trixie", "amd64", "realuser", [("libc6", "2.41-1", "amd64")])
    assert a == rootfs.digest("trixie", "amd64", "realuser", [("libc6", "2.41-1", "amd64")])
    assert a != rootfs.digest("trixie", "amd64", "realuser", [("libc6", "2.41-2", "amd64")])
    assert a != rootfs.digest("trixie", "arm64", "realuser", [("libc6", "2.41-1", "amd64")])


def test_guest_payload():
    files = rootfs.guest_files("realuser")
    assert {"init", "service.py", "Service.java"} <= set(files)
    assert all(f.is_file() for f in files.values())
    argv = rootfs.drive_args(Path("/x.ext4"))
    assert "snapshot=on" in argv[1] and "serial=ptwalk-rootfs" in argv[3]
