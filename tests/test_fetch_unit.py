# SPDX-License-Identifier: LGPL-2.1-or-later
"""vmcores.fetch's batched apt-cache parsing on canned output: madison and show of many packages in one
call, and the kdump tools' dependency closure taken level by level (what the apt-cache calls were asked
and what came back). The real closure is fetched and used by the x86_64-6.12-kdump build."""

from typing import List, Tuple

from vmcores import fetch

MADISON = """\
kexec-tools | 1:2.0.29-2+b2 | http://archive/debian trixie/main amd64 Packages
kexec-tools | 1:2.0.31-1 | http://archive/debian sid/main amd64 Packages
makedumpfile | 1:1.7.6-1 | http://archive/debian trixie/main amd64 Packages
makedumpfile | 1:1.7.6-1 | http://archive/debian trixie/main arm64 Packages
    libc6 | 2.41-12 | http://archive/debian trixie/main amd64 Packages
   zlib1g | 1:1.3.1-1 | http://archive/debian trixie/main amd64 Packages
"""

SHOW = {
    "kexec-tools": "Package: kexec-tools\nVersion: 1:2.0.29-2+b2\nDepends: libc6 (>= 2.38), zlib1g, debconf\n",
    "makedumpfile": "Package: makedumpfile\nVersion: 1:1.7.6-1\nDepends: libc6, zlib1g | libz-alt, perl:any\n",
    "libc6": "Package: libc6\nVersion: 2.41-12\n",
    "zlib1g": "Package: zlib1g\nVersion: 1:1.3.1-1\nPre-Depends: libc6\n",
}


class FakeApt(fetch.Apt):
    def __init__(self) -> None:
        self.calls: List[Tuple[str, ...]] = []

    def run(self, *args, cwd=None) -> str:
        self.calls.append(args)
        if args[:2] == ("apt-cache", "madison"):
            want = {a.split(":")[0] for a in args[2:]}
            return "".join(line + "\n" for line in MADISON.splitlines() if line.split("|")[0].strip() in want)
        if args[:2] == ("apt-cache", "show"):
            return "\n".join(SHOW[a.split(":")[0]] for a in args[2:])
        raise AssertionError(args)


def test_versions_many():
    apt = FakeApt()
    got = apt.versions_many(["kexec-tools", "makedumpfile", "libc6"], "amd64")
    assert got == {"kexec-tools": {"trixie": "1:2.0.29-2+b2", "sid": "1:2.0.31-1"},
                   "makedumpfile": {"trixie": "1:1.7.6-1"}, "libc6": {"trixie": "2.41-12"}}
    assert len(apt.calls) == 1


def test_depends_many_first_alternative():
    apt = FakeApt()
    got = apt.depends_many({"kexec-tools": "1:2.0.29-2+b2", "makedumpfile": "1:1.7.6-1", "libc6": "2.41-12"},
                           "amd64")
    assert got == {"kexec-tools": ["libc6", "zlib1g", "debconf"], "makedumpfile": ["libc6", "zlib1g", "perl:any"],
                   "libc6": []}
    assert len(apt.calls) == 1


def test_tools_closure_by_level():
    apt = FakeApt()
    got = fetch._resolve_tools(apt, "trixie", "amd64")
    assert got == {"kexec-tools": "1:2.0.29-2+b2", "makedumpfile": "1:1.7.6-1", "libc6": "2.41-12",
                   "zlib1g": "1:1.3.1-1"}
    # two levels (the tools, then libc6 + zlib1g), two calls each; debconf and perl not followed
    assert [c[:2] for c in apt.calls] == [("apt-cache", "madison"), ("apt-cache", "show")] * 2
