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


def test_wanted_kernel_records_never_fail(monkeypatch):
    from vmcores import build

    entry = {"wanted_suite": "trixie", "suite": "sid", "arch": "s390x", "flavour": "s390x"}
    info = {"release": "6.12.117+deb13-s390x", "version": "6.12.117-1",
            "packages": ["linux-image-6.12.117+deb13-s390x"]}
    monkeypatch.setattr(fetch, "resolve_kernel", lambda apt, suite, arch, flavour: info)

    class Apt404(FakeApt):
        def download_many(self, pkgs, arch):
            raise fetch.FetchError("apt-get download failed: E: Failed to fetch http://mirror.invalid/x.deb  "
                                   "404  Not Found [IP: 192.0.2.1 80]")

    got = build._wanted_kernel(Apt404(), entry)
    assert got["downloadable"] is False and got["error"] == "HTTP 404 Not Found"
    assert "mirror" not in repr(got) and got["version"] == "6.12.117-1"

    class AptOk(FakeApt):
        def download_many(self, pkgs, arch):
            return {}

    assert build._wanted_kernel(AptOk(), entry)["downloadable"] is True

    def missing(apt, suite, arch, flavour):
        raise fetch.FetchError("linux-image-s390x:s390x not in trixie (have: {})")

    monkeypatch.setattr(fetch, "resolve_kernel", missing)
    got = build._wanted_kernel(Apt404(), entry)
    assert got["downloadable"] is False and "not in trixie" in got["error"]


def test_experimental_kernel_from_its_own_index_line():
    """experimental's kernel is resolved from experimental's line of the signed index (apt pins that suite
    low: the version is named, never chosen by apt), its 7.x packages from that version's Depends."""
    madison = (
        "linux-image-cloud-amd64 | 7.3~rc7-1~exp1 | http://archive/debian experimental/main amd64 Packages\n"
        "linux-image-cloud-amd64 | 7.2.13-1 | http://archive/debian sid/main amd64 Packages\n"
    )
    show = {
        ("linux-image-cloud-amd64", "7.3~rc7-1~exp1"): "Package: linux-image-cloud-amd64\nVersion: 7.3~rc7-1~exp1\n"
        "Depends: linux-image-7.3-cloud-amd64 (= 7.3~rc7-1~exp1)\n",
        ("linux-image-7.3-cloud-amd64", "7.3~rc7-1~exp1"): "Package: linux-image-7.3-cloud-amd64\n"
        "Version: 7.3~rc7-1~exp1\nDepends: linux-binary-7.3-cloud-amd64 (= 7.3~rc7-1~exp1), "
        "linux-modules-7.3-cloud-amd64 (= 7.3~rc7-1~exp1), kmod\n",
    }

    class ExpApt(FakeApt):
        def run(self, *args, cwd=None) -> str:
            self.calls.append(args)
            if args[:2] == ("apt-cache", "madison"):
                return madison
            if args[:2] == ("apt-cache", "show"):
                pkg, _, ver = args[2].partition("=")
                return show[(pkg.split(":")[0], ver)]
            raise AssertionError(args)

    assert "experimental" in fetch.SUITES
    got = fetch._resolve_kernel(ExpApt(), "experimental", "amd64", "cloud-amd64")
    assert got == {"release": "7.3-cloud-amd64", "version": "7.3~rc7-1~exp1",
                   "packages": ["linux-binary-7.3-cloud-amd64", "linux-modules-7.3-cloud-amd64"],
                   "dbg": "linux-image-7.3-cloud-amd64-dbg"}
