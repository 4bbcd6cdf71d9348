# SPDX-License-Identifier: LGPL-2.1-or-later
"""What test_usermem and test_gcore share: the dumps whose guest ran the procmem scenario, and that process's
truth (vmcores/procmem.c, truth/<pid>/procmem.json, its captured pagemap) read once per dump."""

import json
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest

from conftest import _matrix
from drgn_ptwalk.arch.loongarch64 import load_module_debug_info
from vmcores import build as vbuild
from vmcores.fetch import fetch_module_debug
from vmcores.truth import (
    PM_PFN_MASK,
    PM_PRESENT,
    PM_SWAP,
    ProcmemRegion,
    ProcmemTruth,
    read_pagemap,
    read_procmem,
)


def procmem_dumps() -> List[str]:
    """The matrix's dumps whose guest runs the workload's default scenario set (procmem is in it); the
    real-userspace and benchmark guests run other programs."""
    out = []
    for name in _matrix():
        e = vbuild.entry(name.split(":")[0])
        if not e.get("rootfs") and e.get("scenario", "default") == "default":
            out.append(name)
    return out


def swap_entry(e: int) -> Tuple[int, int]:
    """(type, offset) of a swap pagemap entry (pagemap.rst: bits 0-4 type, 5-54 offset)."""
    return e & 0x1F, (e >> 5) & ((1 << 50) - 1)


# Modules whose debug info the reader needs (zram's table and zsmalloc's pools; built into some kernels).
READER_MODULES = ("zram", "zsmalloc")
_loaded: Set[int] = set()


def reader_prog(v: Any) -> Any:
    """The dump's program with the debug info of the zram and zsmalloc modules loaded too (from the kernel's
    -dbg package, extracted once: vmcores.fetch.fetch_module_debug), as a user reading zram pages has it."""
    prog = v.prog()
    if id(prog) not in _loaded:
        paths = fetch_module_debug(Path(v.vmlinux).parent, READER_MODULES)
        if paths:
            # (relocated by drgn-ptwalk first on LoongArch, where drgn relocates no module)
            load_module_debug_info(prog, paths, tempfile.mkdtemp(prefix="ptwalk-modules-"))
        _loaded.add(id(prog))
    return prog


class Procmem:
    """The procmem process of one dump: its truth, pagemap and the build's kept files."""

    def __init__(self, v: Any) -> None:
        self.v = v
        if "procmem" not in v.pids:
            pytest.fail(f"{v.name}: no procmem process in pids.json: the build predates the procmem scenario "
                        f"(rebuild it: python -m vmcores build {v.id})", pytrace=False)
        self.pid: int = v.pids["procmem"]
        self.truth: ProcmemTruth = read_procmem(v.truth, self.pid)
        self.page_size: int = v.page_size
        self.meta = json.loads((vbuild.out_dir(v.id) / "meta.json").read_text())
        self.pagemap: Dict[int, int] = {}
        for rec in read_pagemap(v.pid_dir(self.pid) / "pagemap.bin"):
            for i, e in enumerate(rec.entries):
                self.pagemap[rec.start + i * self.page_size] = e
        self.steps = (v.truth / "steps.log").read_text().splitlines()

    @property
    def swap_disk_image(self) -> Optional[str]:
        return self.meta.get("swap_disk")

    @property
    def workload(self) -> str:
        path = self.meta.get("workload")
        if not path or not Path(path).is_file():
            pytest.fail(f"{self.v.name}: meta.json names no kept workload binary ({path!r}): rebuild with "
                        f"python -m vmcores build --force {self.v.id}", pytrace=False)
        return path

    def disk_type(self) -> Optional[int]:
        return self.truth.swap_types.get("swapdisk")

    def zram_types(self) -> List[int]:
        return [t for n, t in self.truth.swap_types.items() if n.startswith("zram")]

    def swap_images(self) -> Dict[int, str]:
        t = self.disk_type()
        if t is None or not self.swap_disk_image:
            return {}
        return {t: self.swap_disk_image}

    def refused(self, step: str) -> bool:
        return any(line.startswith(f"procmem {step} refused") for line in self.steps)

    def pages(self, r: ProcmemRegion):
        """(address, pagemap entry) of each page of a region."""
        for a in range(r.start, r.end, self.page_size):
            yield a, self.pagemap.get(a, 0)

    def present(self, e: int) -> bool:
        return bool(e & PM_PRESENT)

    def swapped(self, e: int) -> bool:
        return bool(e & PM_SWAP) and not e & PM_PRESENT

    def pfn(self, e: int) -> int:
        return e & PM_PFN_MASK

    def region_of(self, addr: int) -> Optional[ProcmemRegion]:
        for r in self.truth.regions:
            if r.start <= addr < r.end:
                return r
        return None


_cache: Dict[str, Procmem] = {}


def procmem_of(v: Any) -> Procmem:
    if v.name not in _cache:
        _cache[v.name] = Procmem(v)
    return _cache[v.name]
