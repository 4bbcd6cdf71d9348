# SPDX-License-Identifier: LGPL-2.1-or-later
"""
python -m bench.crashroot DIR [--suite sid]: a root tree with crash and the shared libraries it loads, for
``python -m bench --crash DIR`` and ``python -m bench.scale --crash DIR`` (which run DIR's crash with DIR's
own dynamic loader and libraries, no chroot(2)).

The packages come from the suite's signed index through the builder's apt state (vmcores.fetch: every .deb
verified), the crash package and its library dependencies, transitively (``lib*``, ``zlib1g``; tools such
as binutils are not followed: crash's own gdb reads the dump), unpacked with ``dpkg-deb -x``; ``lib`` and
``lib64`` are made links into ``usr/`` as on a merged-/usr system.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parent.parent


def _is_library(pkg: str) -> bool:
    return pkg.startswith("lib") or pkg == "zlib1g"


def resolve(apt, suite: str, arch: str) -> Dict[str, str]:
    """package -> version: crash and its library dependencies in *suite*, transitively."""
    from vmcores.fetch import resolve_closure

    return resolve_closure(apt, suite, arch, ["crash"], _is_library)


def make_root(dest: Path, suite: str = "sid", arch: str = "amd64") -> Path:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from vmcores import fetch

    apt = fetch.Apt()
    apt.update()
    pkgs = resolve(apt, suite, arch)
    dest.mkdir(parents=True, exist_ok=True)
    for _, deb in sorted(apt.download_many(pkgs, arch).items()):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    for link in ("lib", "lib64"):
        if not (dest / link).exists() and (dest / "usr" / link).is_dir():
            os.symlink(f"usr/{link}", dest / link)
    if not (dest / "usr/bin/crash").is_file():
        raise SystemExit(f"bench.crashroot: no usr/bin/crash in {dest}")
    print(f"{dest}: crash {pkgs['crash']} from {suite} with {len(pkgs) - 1} library packages")
    return dest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.crashroot", description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="the root tree to make")
    p.add_argument("--suite", default="sid", help="Debian suite of crash (default sid: crash 9)")
    args = p.parse_args(argv)
    make_root(Path(args.dir), args.suite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
