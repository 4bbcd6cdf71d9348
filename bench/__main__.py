# SPDX-License-Identifier: LGPL-2.1-or-later
"""
python -m bench: whole-task walk, smaps and memtop against drgn's idiom and the read floor.

On one reference dump per run (``vmcores/``, the manifest's ``bench = true`` entries by default, built if
missing), with medians over ``--repeat`` runs:

1. floor: reading every page-table page of the big task, PGD down, user half, with
   ``prog.read(phys, size, True)`` (only upper-level entries are decoded, to find the tables below);
   and what smaps must read at least: those pages and the ``struct page`` of every 4K-mapped page
   (one read per run, the list known in advance);
2. drgn idiom: ``follow_pfn()`` for every page of every VMA of the big task (``--idiom-sample F`` times a
   fraction F of the pages, in 512-page chunks spread over every VMA, and extrapolates: the output says so);
3. ``pt_range_walk()`` over the whole big task, generator consumed: as is (entries cut by folio, one per
   page of order-0 memory) and with ``split_folios=False`` (one entry per run: what smaps and memtop use);
4. smaps of the big task and of the many-VMA task (``drgn_ptwalk.procfs.smaps``);
5. memtop over every task of the dump (``drgn_ptwalk.procfs.memtop.memtop``, ``drgn_ptwalk.memtop.memtop``
   in older trees; in trees before memtop, a stand-in says so: ``pt_range_walk`` over every distinct mm summing
   mapped pages);

6. the commands' output in this process, start-up excluded: ``ptwalk`` of the big task as text and as JSON
   Lines to ``/dev/null`` (``drgn_ptwalk.commands.ptwalk``), ``pagemap`` of the whole big task
   (``pagemap_pieces`` consumed);
7. end to end, start-up included, as a user runs them (``python -m drgn_ptwalk -c CORE -s VMLINUX ...`` in a
   subprocess, output to a file): the walk alone (``bench.walkonly``: start-up + ``pt_range_walk``, no output),
   start-up alone (a one-page ``ptwalk``), ``ptwalk PID`` text and ``--json``,
   ``pagemap PID -o FILE``, ``smaps PID``, ``memtop``; wall, CPU (the child's user + system) and peak RSS of
   the child (flat output memory: the big task's ``ptwalk`` peak against the one-page run's);
8. gcore of the big task against its floor (within 2× is the target), in this process: the floor — the walk over
   the ranges ``core_segments()`` dumps, ``prog.read`` of each present run (at most 1024 pages a read) and ``os.pwrite``
   of it at its place in a file of the core's layout, holes sought over (``gcore_floor``) —, the same with the
   process memory reader (``user_pages()`` of each segment, readable runs written: ``gcore_userpages``) and
   ``gcore(task, path)`` itself; end to end, ``python -m drgn_ptwalk ... gcore PID -o FILE`` against drgn's
   own ``contrib/gcore.py`` (``--drgn-gcore PATH``: not shipped here; run as ``python -m drgn -c CORE -s
   VMLINUX PATH PID FILE``, x86_64 dumps only; on a QEMU kdump, which drgn's CLI cannot open, through
   ``bench.drgnscript``), with the cores' sizes (apparent and on disk) and whether
   ``readelf -l -n`` and gdb (``info threads``, with the dump's ``workload`` binary when kept) open them;
   the files go to ``--gcore-dir DIR`` (default: the system's temporary directory; each is removed after
   its run, outside the timing);
9. with ``--crash CHROOT`` (a Debian chroot with ``crash`` installed, e.g. by ``debootstrap sid``), crash side
   by side on the same dump, run with the chroot's own dynamic loader and libraries (no root needed): start-up
   alone (``crash -s`` then ``q``), start-up + ``vm -p PID`` (the page list) to a file, + ``vm PID``, + ``ps``;
   only on dumps of the host's architecture (a distribution's crash reads its own architecture's dumps);

then the ratios against the targets, peak memory of each, and memtop's time against the number of mapped
pages on two dumps (the bench dump and the default reference dump of the same kernel). ``--profile`` prints
the functions where ``ptwalk`` (text), smaps and memtop spend their time (``cProfile``, top by own time).

Peak memory is measured two ways, both stated in the output:

* RSS: a fresh subprocess per measurement opens the dump, runs the measurement once to warm drgn's caches,
  resets the kernel's high-water mark (``/proc/self/clear_refs`` = 5), runs it again and reports
  ``VmHWM`` minus the ``VmRSS`` before the run: all memory, Python and C (drgn, libkdumpfile).
* Python heap: ``tracemalloc`` peak of one run in this process (untimed; tracemalloc slows Python down).
"""

import argparse
import gc
import importlib
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import drgn
from drgn import FaultError, Object, Program
from drgn.helpers.linux.mm import follow_pfn, for_each_vma, virt_to_phys
from drgn.helpers.linux.pid import find_task, for_each_task

from drgn_ptwalk.arch import TABLE, get_decoder
from drgn_ptwalk.entry import PtLevel, PtType
from drgn_ptwalk.page import page_layout
from drgn_ptwalk.program import open_program
from drgn_ptwalk.walk import iter_tables, make_reader, mm_table_guard, pt_range_walk

ROOT = Path(__file__).resolve().parent.parent


_UNPACKERS: Dict[int, struct.Struct] = {}


def _unpacker(n: int) -> struct.Struct:
    """A ``struct.Struct`` decoding *n* little-endian u64 table entries (cached)."""
    try:
        return _UNPACKERS[n]
    except KeyError:
        u = _UNPACKERS[n] = struct.Struct(f"<{n}Q")
        return u
CHUNK = 512  # pages per idiom sample chunk

TARGETS = {
    "walk/floor": ("<=", 4.0),
    "idiom/walk": (">=", 20.0),
    "smaps(big)/walk": ("<=", 2.0),
    "walk_runs/floor": ("<=", 4.0),
    "idiom/walk_runs": (">=", 20.0),
    "smaps(big)/walk_runs": ("<=", 2.0),
    "kpageflags/memmap floor": ("<=", 4.0),
    "gcore/gcore floor": ("<=", 2.0),
}


# ---------------------------------------------------------------- dumps


def _vmcores():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        from vmcores import build as vbuild
    except ImportError as e:
        raise SystemExit(f"bench: the reference dumps come from vmcores/ in a clone of the repository: {e}") from None
    return vbuild


def find_dump(kernel_id: str, kind: Optional[str], build: bool) -> Dict[str, Any]:
    vbuild = _vmcores()
    e = vbuild.entry(kernel_id)
    if build:
        vbuild.build(kernel_id, log=lambda m: print(m, file=sys.stderr, flush=True))
    kinds = [kind] if kind else e["dumps"]
    for d in vbuild.built():
        if d["id"] == kernel_id and d["dump"] in kinds:
            if kind or d["dump"] == kinds[0]:
                return d
    for d in vbuild.built():
        if d["id"] == kernel_id and d["dump"] in kinds:
            return d
    raise SystemExit(f"bench: no {kind or ''} dump of {kernel_id} built: python -m vmcores build {kernel_id}")


def dump_from_dir(path: str, kind: Optional[str]) -> Dict[str, Any]:
    """The dump of a vmcores output directory (its ``meta.json``) as :func:`find_dump` gives it, whatever the
    tree it was built for (no digest check, never built)."""
    meta_path = Path(path) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"bench: {meta_path}: {e}") from None
    kinds = [kind] if kind else list(meta["dumps"])
    for k in kinds:
        core = meta["dumps"].get(k)
        if core and Path(core).is_file():
            return {"id": meta["id"], "name": f"{meta['id']}:{k}", "arch": meta["arch"], "release": meta["release"],
                    "version": meta["version"], "page_size": meta["page_size"],
                    **_vmcores().dump_kind(k), "core": core, "vmlinux": meta["vmlinux"], "truth": meta["truth"],
                    "pids": meta["pids"], "scenario": meta.get("scenario", "default")}
    raise SystemExit(f"bench: no {kind or ''} dump in {meta_path} (has {', '.join(meta['dumps'])})")


def open_dump(d: Dict[str, Any]) -> Program:
    return open_program(d["core"], symbols=[d["vmlinux"]])


# ---------------------------------------------------------------- measurements


def table_pages(prog: Program, mm: Object) -> List[Tuple[int, int]]:
    """``(phys, nbytes)`` of every page-table page of the user half of *mm*, PGD first: the walker's way down
    the tables (:func:`~drgn_ptwalk.walk.iter_tables`), with its guards."""
    dec = get_decoder(prog)
    root, physical = dec.root(mm)
    if not physical:
        root = virt_to_phys(prog, root).value_()
    tables = iter_tables(dec, make_reader(prog, dec), root, True, 0, dec.user_range()[1],
                         guard=mm_table_guard(mm, dec, root, True))
    return [(t.addr, t.entries * 8) for t in tables if t.error is None]


def m_floor(prog: Program, mm: Object) -> Callable[[], Dict[str, Any]]:
    """Read every table page, PGD down: upper levels decoded to find the tables, PTE tables only read."""
    dec = get_decoder(prog)
    root, physical = dec.root(mm)
    if not physical:
        root = virt_to_phys(prog, root).value_()
    levels = dec.levels
    last = len(levels) - 1
    user_end = dec.user_range()[1]
    read = prog.read
    kind = dec.kind
    table_addr = dec.table_addr

    def run() -> Dict[str, Any]:
        count = 0
        stack = [(root, 0)]
        while stack:
            phys, depth = stack.pop()
            _, shift, n = levels[depth]
            data = read(phys, n * 8, True)
            count += 1
            if depth == last:
                continue
            vals = _unpacker(n).unpack(data)
            nslots = min(n, -(-user_end >> shift)) if depth == 0 else n
            for i in range(nslots):
                v = vals[i]
                if v and kind(v, depth) == TABLE:
                    stack.append((table_addr(v), depth + 1))
        return {"table_pages": count}

    return run


def m_floor_reads(prog: Program, tables: List[Tuple[int, int]]) -> Callable[[], Dict[str, Any]]:
    """Only the reads: the list of table pages is known in advance."""
    read = prog.read

    def run() -> Dict[str, Any]:
        for phys, n in tables:
            read(phys, n, True)
        return {"table_pages": len(tables)}

    return run


def memmap_runs(mm: Object) -> List[Tuple[int, int]]:
    """``(first PFN, pages)`` of every run of 4K (PTE-mapped) folios of *mm*: the ``struct page`` smaps reads."""
    kw = {"split_folios": False} if _has_split_folios() else {}
    return [(e.pfn, e.nr_pages) for e in pt_range_walk(mm, include_none=False, **kw)
            if e.type == PtType.FOLIO and e.level == PtLevel.PTE]


def m_floor_smaps(prog: Program, tables: List[Tuple[int, int]],
                  runs: List[Tuple[int, int]]) -> Callable[[], Dict[str, Any]]:
    """What smaps must read at least: every table page and the ``struct page`` of every PTE-mapped page."""
    read = prog.read
    lay = page_layout(prog)

    def run() -> Dict[str, Any]:
        for phys, n in tables:
            read(phys, n, True)
        for pfn, n in runs:
            read(lay.vmemmap + pfn * lay.size, n * lay.size)
        return {"table_pages": len(tables), "struct_pages": sum(n for _, n in runs)}

    return run


def idiom_pages(mm: Object, ps: int, sample: float) -> Tuple[List[Tuple[int, int]], int]:
    """``([(start, npages), ...] to visit, total pages of all VMAs)``."""
    ranges = []
    total = 0
    k = max(1, round(1 / sample)) if sample < 1 else 1
    chunk_no = 0
    for vma in for_each_vma(mm):
        vs = vma.vm_start.value_()
        ve = vma.vm_end.value_()
        npages = (ve - vs) // ps
        total += npages
        for c in range(0, npages, CHUNK):
            if chunk_no % k == 0:
                ranges.append((vs + c * ps, min(CHUNK, npages - c)))
            chunk_no += 1
    return ranges, total


def m_idiom(prog: Program, mm: Object, sample: float) -> Tuple[Callable[[], Dict[str, Any]], float, int, int]:
    """What a drgn user writes today: follow_pfn() for every page of every VMA."""
    ps = prog["PAGE_SIZE"].value_() if "PAGE_SIZE" in prog else get_decoder(prog).page_size
    ranges, total = idiom_pages(mm, ps, sample)
    visited = sum(n for _, n in ranges)
    scale = total / visited if visited else 1.0

    def run() -> Dict[str, Any]:
        mapped = 0
        for start, n in ranges:
            for addr in range(start, start + n * ps, ps):
                try:
                    follow_pfn(mm, addr)
                    mapped += 1
                except FaultError:
                    pass
        return {"pages_visited": visited, "mapped_visited": mapped}

    return run, scale, visited, total


_PRESENT = frozenset((PtType.FOLIO, PtType.PFN))


def _has_split_folios() -> bool:
    # The bench also measures older trees (before/after comparisons), which have no split_folios.
    import inspect

    return "split_folios" in inspect.signature(pt_range_walk).parameters


def m_walk(mm: Object, start: Optional[int] = None, end: Optional[int] = None,
           split_folios: bool = True) -> Optional[Callable[[], Dict[str, Any]]]:
    kw: Dict[str, Any] = {}
    if not split_folios:
        if not _has_split_folios():
            return None
        kw["split_folios"] = False

    def run() -> Dict[str, Any]:
        n = 0
        for _ in pt_range_walk(mm, start, end, **kw):
            n += 1
        return {"entries": n}

    return run


def walk_stats(mm: Object) -> Dict[str, int]:
    entries = mapped = mapped_entries = 0
    for e in pt_range_walk(mm, include_none=False):
        entries += 1
        if e.type in _PRESENT:
            mapped += e.nr_pages
            mapped_entries += 1
    return {"entries": entries, "mapped_pages": mapped, "mapped_entries": mapped_entries}


def m_smaps(task: Object) -> Optional[Callable[[], Dict[str, Any]]]:
    try:
        from drgn_ptwalk.procfs import smaps
    except ImportError:
        return None

    def run() -> Dict[str, Any]:
        return {"bytes": len(smaps(task))}

    return run


def memtop_impl() -> Tuple[Optional[Callable], str]:
    for module in ("drgn_ptwalk.procfs.memtop", "drgn_ptwalk.memtop"):  # this tree's, older trees'
        try:
            memtop = importlib.import_module(module).memtop
        except (ImportError, AttributeError):
            continue
        return memtop, f"{module}.memtop(prog)"
    return None, "stand-in (no drgn_ptwalk memtop in this tree): pt_range_walk over every distinct mm"


def memtop_standin(prog: Program) -> List[Tuple[int, int]]:
    seen = set()
    rows = []
    for task in for_each_task(prog):
        mm = task.mm.read_()
        a = mm.value_()
        if not a or a in seen:
            continue
        seen.add(a)
        rss = 0
        for e in pt_range_walk(mm, include_none=False):
            if e.type in _PRESENT:
                rss += e.nr_pages
        rows.append((task.pid.value_(), rss))
    rows.sort(key=lambda r: -r[1])
    return rows


def m_memtop(prog: Program) -> Callable[[], Dict[str, Any]]:
    fn, _ = memtop_impl()

    def run() -> Dict[str, Any]:
        if fn is None:
            rows = memtop_standin(prog)
        else:
            r = fn(prog)
            rows = list(r) if r is not None and not isinstance(r, str) else [r]
        return {"rows": len(rows)}

    return run


def m_ptwalk_out(prog: Program, mm: Object, as_json: bool) -> Optional[Callable[[], Dict[str, Any]]]:
    """The ``ptwalk`` command's output of the whole task to /dev/null (what its run gives, as it writes it)."""
    try:
        from drgn_ptwalk.commands import execute, lookup, make_parser
        cmd = lookup("ptwalk")
    except (ImportError, KeyError):
        return None
    task_pid = _task_pid(mm)

    def run() -> Dict[str, Any]:
        args = make_parser(cmd).parse_args([str(task_pid)] + (["--json"] if as_json else []))
        with open(os.devnull, "w") as f:
            execute(cmd, prog, args, f)
        return {}

    return run


def _task_pid(mm: Object) -> int:
    for task in for_each_task(mm.prog_):
        if task.mm.value_() == mm.value_():
            return task.tgid.value_()
    raise LookupError("no task of this mm")


def m_pagemap_whole(mm: Object) -> Optional[Callable[[], Dict[str, Any]]]:
    try:
        from drgn_ptwalk.procfs.pagemap import pagemap_pieces
    except ImportError:
        return None

    def run() -> Dict[str, Any]:
        n = 0
        for _, vals in pagemap_pieces(mm):
            n += len(vals)
        return {"values": n}

    return run


# ---------------------------------------------------------------- gcore against its floor and drgn's gcore.py

GCORE_RUN_PAGES = 1024  # pages per read of the gcore floor: the process memory reader's MAX_RUN_PAGES


def _core_layout(task: Object) -> Optional[Tuple[List[Tuple[int, int, int]], int]]:
    """``([(start, filesz, file offset), ...], file size)`` of the segments gcore dumps with data, in a file
    laid out as gcore lays it (headers, then each segment's bytes from a page boundary), the gate VMA (not in
    the mm's page tables) left out. None in trees without gcore."""
    try:
        from drgn_ptwalk.gcore import core_segments
    except ImportError:
        return None
    prog = task.prog_
    dec = get_decoder(prog)
    ps = dec.page_size
    user_end = dec.user_range()[1]
    segs = core_segments(task)
    off = -(-(64 + 56 * (len(segs) + 1) + 65536) // ps) * ps  # headers and notes: their size does not matter
    out = []
    for c in segs:
        if c.filesz and c.start < user_end:
            out.append((c.start, c.filesz, off))
        off += c.filesz
    return out, off


def _pwrite_all(fd: int, data: bytes, at: int) -> None:
    mv = memoryview(data)
    while mv:
        n = os.pwrite(fd, mv, at)
        mv = mv[n:]
        at += n


def _unlinker(path: str) -> Callable[[], None]:
    def after() -> None:
        for p in (path, path + ".tmp"):
            if os.path.exists(p):
                os.unlink(p)

    return after


def m_gcore_floor(task: Object, out_dir: str) -> Optional[Callable[[], Dict[str, Any]]]:
    """
    The floor of gcore: ``pt_range_walk`` over each range gcore dumps (``split_folios=False``, no holes),
    ``prog.read`` of each present run (FOLIO and PFN entries, at most :data:`GCORE_RUN_PAGES` pages a read;
    a run the dump lacks is skipped) and ``os.pwrite`` of its bytes where gcore would put them; holes sought
    over, the file's size set at the end. No fates, no notes, no swap: what any core writer must do.
    """
    lay = _core_layout(task)
    if lay is None:
        return None
    layout, size = lay
    prog = task.prog_
    mm = task.mm.read_()
    shift = get_decoder(prog).page_size.bit_length() - 1
    read = prog.read
    folio, pfnmap = PtType.FOLIO, PtType.PFN
    step = GCORE_RUN_PAGES
    path = os.path.join(out_dir, "floor.core")

    def run() -> Dict[str, Any]:
        written = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for start, filesz, off in layout:
                base = off - start
                for e in pt_range_walk(mm, start, start + filesz, include_none=False, split_folios=False):
                    t = e.type
                    if t is not folio and t is not pfnmap:
                        continue
                    pfn, n, a = e.pfn, (e.end - e.start) >> shift, e.start
                    for i in range(0, n, step):
                        k = min(step, n - i)
                        try:
                            data = read((pfn + i) << shift, k << shift, True)
                        except FaultError:
                            continue
                        _pwrite_all(fd, data, base + a + (i << shift))
                        written += len(data)
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        return {"bytes_written": written, "file_bytes": size}

    run.after = _unlinker(path)  # type: ignore[attr-defined]
    return run


def m_gcore_userpages(task: Object, out_dir: str) -> Optional[Callable[[], Dict[str, Any]]]:
    """The floor through the process memory reader: ``user_pages()`` of each range gcore dumps, every readable
    run but never-faulted zeros written at its place (the fates computed: swap, page cache, ...)."""
    lay = _core_layout(task)
    try:
        from drgn_ptwalk.usermem import user_pages
    except ImportError:
        return None
    if lay is None:
        return None
    layout, size = lay
    path = os.path.join(out_dir, "userpages.core")

    def run() -> Dict[str, Any]:
        written = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for start, filesz, off in layout:
                base = off - start
                for r in user_pages(task, start, start + filesz):
                    if r.data is None or r.fate.name == "ZERO":
                        continue
                    _pwrite_all(fd, r.data, base + r.start)
                    written += len(r.data)
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        return {"bytes_written": written, "file_bytes": size}

    run.after = _unlinker(path)  # type: ignore[attr-defined]
    return run


def m_gcore(task: Object, out_dir: str) -> Optional[Callable[[], Dict[str, Any]]]:
    """``drgn_ptwalk.gcore.gcore(task, path)``: the whole core (notes, segments, fates), to a file."""
    try:
        from drgn_ptwalk.gcore import gcore
    except ImportError:
        return None
    path = os.path.join(out_dir, "gcore.core")

    def run() -> Dict[str, Any]:
        r = gcore(task, path)
        return {"bytes_written": r.bytes_written, "file_bytes": r.file_size, "pages": r.pages,
                "missing_ranges": len(r.missing)}

    run.after = _unlinker(path)  # type: ignore[attr-defined]
    return run


def check_core(core: str, binary: Optional[str]) -> Dict[str, Any]:
    """Whether ``readelf -l -n`` and gdb (``info threads``, with *binary* when given) open *core*."""
    import re
    import shutil

    out: Dict[str, Any] = {}
    if shutil.which("readelf"):
        p = subprocess.run(["readelf", "-l", "-n", "-W", core], capture_output=True, text=True)
        if p.returncode != 0 or "Error" in p.stderr:
            out["readelf_error"] = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        out["pt_load"] = sum(1 for ln in p.stdout.splitlines() if ln.split()[:1] == ["LOAD"])
        notes: Dict[str, int] = {}
        for m in re.finditer(r"^\s+\S+\s+0x[0-9a-f]+\s+(NT_\w+)", p.stdout, re.M):
            notes[m.group(1)] = notes.get(m.group(1), 0) + 1
        out["notes"] = notes
    if shutil.which("gdb"):
        cmd = ["gdb", "-batch", "-nx", "-ex", "info threads"] + ([binary] if binary else []) + [core]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            out["gdb_error"] = "timed out"
            return out
        threads = [ln.strip() for ln in p.stdout.splitlines() if re.match(r"^\*?\s+\d+\s+(LWP|Thread|process)", ln)]
        out["gdb_binary"] = binary
        out["gdb_threads"] = len(threads)
        out["gdb_first_thread"] = threads[0] if threads else None
        bad = [ln.strip() for ln in (p.stdout + p.stderr).splitlines()
               if re.search(r"not a core|not in executable format|[Ee]rror|Cannot access memory", ln)]
        if bad or not threads:
            out["gdb_error"] = bad[0] if bad else (p.stderr.strip().splitlines() or ["no thread listed"])[-1]
    return out


def _fmt_check(c: Dict[str, Any]) -> str:
    parts = []
    if "pt_load" in c:
        nts = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in c.get("notes", {}).items())
        parts.append(f"readelf: {c['pt_load']} PT_LOAD, notes {nts or 'none'}"
                     + (f" ({c['readelf_error']})" if "readelf_error" in c else ""))
    if "gdb_threads" in c or "gdb_error" in c:
        g = f"gdb{' with ' + os.path.basename(c['gdb_binary']) if c.get('gdb_binary') else ''}: "
        g += f"{c.get('gdb_threads', 0)} thread(s)"
        if c.get("gdb_first_thread"):
            g += f" [{c['gdb_first_thread'][:70]}]"
        if c.get("gdb_error"):
            g += f"; {c['gdb_error'][:100]}"
        parts.append(g)
    return "; ".join(parts)


_LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"status": os.waitstatus_to_exitcode(status), "cpu_s": ru.ru_utime + ru.ru_stime,
               "maxrss_kib": ru.ru_maxrss}, f)
"""
"""Runs a command and writes its rusage. A process's ``ru_maxrss`` starts at the high-water mark of the
process it was forked from (and ``exec`` keeps it): measured from this small launcher, not from the bench
(hundreds of MiB with a dump open), the command's own peak shows."""


def _child(cmd: List[str], stdin: Optional[bytes], out_path: str) -> Dict[str, Any]:
    """Run *cmd* (stdout to *out_path*) from :data:`_LAUNCHER`: wall, CPU and peak RSS of the command."""
    t = time.perf_counter()
    with open(out_path, "wb") as out:
        p = subprocess.Popen([sys.executable, "-c", _LAUNCHER, out_path + ".rusage", *cmd],
                             stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.PIPE)
        _, err = p.communicate(stdin)
    wall = time.perf_counter() - t
    with open(out_path + ".rusage") as f:
        ru = json.load(f)
    os.unlink(out_path + ".rusage")
    r = {"wall_s": wall, "cpu_s": ru["cpu_s"], "maxrss_kib": ru["maxrss_kib"],
         "out_bytes": os.path.getsize(out_path), "status": ru["status"]}
    if ru["status"] != 0:
        r["error"] = (err.decode(errors="replace").strip().splitlines() or [f"exit {ru['status']}"])[-1]
    return r


def e2e_children(d: Dict[str, Any], pid: int, first_start: int, ps: int, crash: Optional[str],
                 drgn_gcore: Optional[str] = None) -> List[Tuple[str, str, List[str], Optional[bytes], bool]]:
    """(key, label, command, stdin, writes to -o FILE) of the end-to-end runs."""
    base = [sys.executable, "-m", "drgn_ptwalk", "-c", d["core"], "-s", d["vmlinux"]]
    if d["dump"] == "qemu-kdump":
        base += ["--architecture", d["arch"]]
    walk = [sys.executable, "-m", "bench.walkonly", d["core"], d["vmlinux"], str(pid)]
    if d["dump"] == "qemu-kdump":
        walk.append(d["arch"])
    rows = [
        ("e2e_walk", "start-up + pt_range_walk PID, no output (bench.walkonly)", walk, None, False),
        ("e2e_startup", "start-up + one-page ptwalk", base + ["ptwalk", str(pid), "--start", hex(first_start),
                                                               "--end", hex(first_start + ps)], None, False),
        ("e2e_ptwalk", "start-up + ptwalk PID (text) > file", base + ["ptwalk", str(pid)], None, False),
        ("e2e_ptwalk_json", "start-up + ptwalk PID --json > file", base + ["ptwalk", str(pid), "--json"], None,
         False),
        ("e2e_pagemap", "start-up + pagemap PID -o FILE (whole task)", base + ["pagemap", str(pid), "-o"], None,
         True),
        ("e2e_smaps", "start-up + smaps PID > file", base + ["smaps", str(pid)], None, False),
        ("e2e_memtop", "start-up + memtop > file", base + ["memtop"], None, False),
        ("e2e_gcore", "start-up + gcore PID -o FILE", base + ["gcore", str(pid), "-o"], None, True),
    ]
    if drgn_gcore:
        # drgn's own script, as its users run it (the drgn CLI, here as `python -m drgn`: no shim in between);
        # its arguments: PID, then the output file.
        if d["dump"] == "qemu-kdump":
            # drgn's CLI cannot open these (no architecture in the header): the script run with the dump
            # opened as drgn-ptwalk opens it (bench.drgnscript).
            rows.append(("e2e_drgn_gcore", "drgn contrib/gcore.py PID FILE (bench.drgnscript: drgn's CLI cannot "
                         "open a QEMU kdump)", [sys.executable, "-m", "bench.drgnscript", d["core"], d["vmlinux"],
                                                d["arch"], drgn_gcore, str(pid)], None, True))
        else:
            rows.append(("e2e_drgn_gcore", "drgn contrib/gcore.py: drgn -c CORE -s VMLINUX gcore.py PID FILE",
                         [sys.executable, "-m", "drgn", "-c", d["core"], "-s", d["vmlinux"], drgn_gcore, str(pid)],
                         None, True))
    if crash:
        loader, libs = _crash_loader(crash)
        c = [loader, "--library-path", libs, os.path.join(crash, "usr/bin/crash"), "-s", d["vmlinux"], d["core"]]
        rows += [
            ("crash_startup", "crash: start-up (crash -s, q)", c, b"q\n", False),
            ("crash_vm_p", "crash: start-up + vm -p PID > file", c, f"vm -p {pid}\nq\n".encode(), False),
            ("crash_vm", "crash: start-up + vm PID > file", c, f"vm {pid}\nq\n".encode(), False),
            ("crash_ps", "crash: start-up + ps > file", c, b"ps\nq\n", False),
        ]
    return rows


_LOADERS = {"x86_64": ("lib64/ld-linux-x86-64.so.2", "x86_64-linux-gnu"),
            "aarch64": ("lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu")}


def _crash_loader(chroot: str) -> Tuple[str, str]:
    """The chroot's dynamic loader and library path, to run its crash on this machine without chroot(2)."""
    ld, triplet = _LOADERS[platform.machine()]
    libs = ":".join(os.path.join(chroot, x, triplet) for x in ("lib", "usr/lib"))
    return os.path.join(chroot, ld), libs


def crash_version(chroot: str) -> str:
    loader, libs = _crash_loader(chroot)
    p = subprocess.run([loader, "--library-path", libs, os.path.join(chroot, "usr/bin/crash"), "--version"],
                       capture_output=True, text=True)
    return (p.stdout.strip().splitlines() or ["?"])[0]


CORE_ROWS = ("e2e_gcore", "e2e_drgn_gcore")
"""End-to-end rows that write a core: readelf and gdb open their last run's file."""


def drgn_gcore_missing(d: Dict[str, Any], drgn_gcore: Optional[str]) -> Optional[str]:
    if not drgn_gcore:
        return "missing: no --drgn-gcore PATH (drgn's contrib/gcore.py)"
    if not os.path.isfile(drgn_gcore):
        return f"missing: {drgn_gcore} not found"
    if d["arch"] != "x86_64":
        return f"missing: drgn's contrib/gcore.py writes x86_64 cores only ({d['arch']} dump)"
    return None


def run_e2e(d: Dict[str, Any], pid: int, first_start: int, ps: int, crash: Optional[str], repeat: int,
            only: Optional[List[str]], drgn_gcore: Optional[str] = None,
            out_dir: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    import tempfile

    out: Dict[str, Dict[str, Any]] = {}
    if crash and d["arch"] != platform.machine():
        out["crash"] = {"missing": f"crash of this {platform.machine()} machine does not read {d['arch']} dumps"}
        crash = None
    why = drgn_gcore_missing(d, drgn_gcore)
    if why and (not only or "e2e_drgn_gcore" in only):
        out["e2e_drgn_gcore"] = {"missing": why}
    binary = os.path.join(os.path.dirname(d["core"]), "workload")  # the bench dump's workload, when kept
    binary_ok = os.path.isfile(binary)
    with tempfile.TemporaryDirectory(prefix="ptwalk-bench-", dir=out_dir) as tmp:
        path = os.path.join(tmp, "out")
        for key, label, cmd, stdin, to_file in e2e_children(d, pid, first_start, ps, crash,
                                                            None if why else drgn_gcore):
            if only and key not in only:
                continue
            print(f"   measuring {key} ...", file=sys.stderr, flush=True)
            runs = []
            for i in range(repeat):
                gc.collect()
                runs.append(_child(cmd + ([path + ".pm"] if to_file else []), stdin, path))
                if to_file:
                    if os.path.exists(path + ".pm"):
                        st = os.stat(path + ".pm")
                        runs[-1]["file_bytes"], runs[-1]["disk_bytes"] = st.st_size, st.st_blocks * 512
                        if key in CORE_ROWS and i == repeat - 1 and "error" not in runs[-1]:
                            runs[-1]["core_check"] = check_core(path + ".pm", binary if binary_ok else None)
                        os.unlink(path + ".pm")
                    else:
                        runs[-1]["file_bytes"] = runs[-1]["disk_bytes"] = 0
                    if key not in CORE_ROWS:
                        runs[-1]["out_bytes"] = runs[-1]["file_bytes"]
                os.unlink(path)
            r = {"label": label, "runs": runs, "median_s": statistics.median(x["wall_s"] for x in runs),
                 "min_s": min(x["wall_s"] for x in runs), "cpu_median_s": statistics.median(x["cpu_s"] for x in runs),
                 "maxrss_kib": max(x["maxrss_kib"] for x in runs), "out_bytes": runs[-1]["out_bytes"]}
            errs = [x["error"] for x in runs if "error" in x]
            if errs:
                r["error"] = errs[-1]
            if to_file:
                r["file_bytes"], r["disk_bytes"] = runs[-1]["file_bytes"], runs[-1]["disk_bytes"]
            if "core_check" in runs[-1]:
                r["core_check"] = runs[-1]["core_check"]
            out[key] = r
    return out


def profile(prog: Program, btask: Object, n: int = 12) -> Dict[str, List[Tuple[str, int, float, float]]]:
    """Where ptwalk (text), smaps and memtop spend their time: cProfile, top *n* functions by own time."""
    import cProfile
    import pstats

    out = {}
    fns = {"ptwalk (text)": m_ptwalk_out(prog, btask.mm.read_(), False), "smaps (big task)": m_smaps(btask),
           "memtop": m_memtop(prog)}
    for name, fn in fns.items():
        if fn is None:
            continue
        pr = cProfile.Profile()
        pr.enable()
        fn()
        pr.disable()
        st = pstats.Stats(pr)
        rows = []
        for (file, line, func), (_cc, nc, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
            rows.append((f"{os.path.basename(file)}:{line}({func})", nc, tt, ct))
        rows.sort(key=lambda r: -r[2])
        total = sum(r[2] for r in rows)
        out[name] = [("(total)", 0, total, total)] + rows[:n]
    return out


def _online_sections(prog: Program) -> Optional[List[Tuple[int, int]]]:
    """(first PFN, PFNs) of every online section up to where /proc/kpageflags ends (None: an old tree)."""
    try:
        from drgn_ptwalk.kpage import max_dump_pfn
        from drgn_ptwalk.kpage.context import kpage_context
        from drgn_ptwalk.kpage.sections import section_state
    except ImportError:
        return None
    pps = kpage_context(prog).pages_per_section
    return [(nr * pps, pps) for nr in range(max_dump_pfn(prog) // pps) if section_state(prog, nr)[0]]


def m_memmap_floor(prog: Program) -> Optional[Callable[[], Dict[str, Any]]]:
    """Read the struct pages of all of RAM once, one read per section (what kpageflags must read)."""
    sections = _online_sections(prog)
    if sections is None:
        return None
    from drgn_ptwalk.page import page_layout

    lay = page_layout(prog)

    def run() -> Dict[str, Any]:
        n = 0
        for pfn, count in sections:
            n += len(prog.read(lay.vmemmap + pfn * lay.size, count * lay.size))
        return {"bytes": n, "pfns": sum(c for _, c in sections)}

    return run


def m_kpageflags(prog: Program) -> Optional[Callable[[], Dict[str, Any]]]:
    """``kpageflags()`` of every PFN: the bytes of /proc/kpageflags."""
    try:
        from drgn_ptwalk.kpage import kpageflags, max_dump_pfn
    except ImportError:
        return None

    def run() -> Dict[str, Any]:
        return {"pfns": len(kpageflags(prog, 0, max_dump_pfn(prog))) // 8}

    return run


def m_kpage_values(prog: Program) -> Optional[Callable[[], Dict[str, Any]]]:
    """``kpage_values()`` of every PFN: kpageflags, kpagecount and kpagecgroup in one pass."""
    try:
        from drgn_ptwalk.kpage import kpage_values, max_dump_pfn
    except ImportError:
        return None

    def run() -> Dict[str, Any]:
        return {"pfns": len(kpage_values(prog, 0, max_dump_pfn(prog)).flags)}

    return run


def m_whomaps(prog: Program, mm: Object) -> Optional[Callable[[], Dict[str, Any]]]:
    """whomaps of one anonymous page of the big task (a fresh call: process list and rmap tree read)."""
    try:
        from drgn_ptwalk.rmap import whomaps
    except ImportError:
        return None
    from drgn_ptwalk.entry import PtType
    from drgn_ptwalk.walk import pt_range_walk

    pfn = next(e.pfn for e in pt_range_walk(mm, include_none=False, types=(PtType.FOLIO,)))

    def run() -> Dict[str, Any]:
        return {"mappings": len(whomaps(prog, pfn))}

    return run


def dump_census(prog: Program) -> Dict[str, int]:
    """Tasks, distinct mms, VMAs, walk entries and mapped pages of the whole dump (untimed)."""
    tasks = mms = vmas = entries = mapped = 0
    seen = set()
    for task in for_each_task(prog):
        tasks += 1
        mm = task.mm.read_()
        a = mm.value_()
        if not a or a in seen:
            continue
        seen.add(a)
        mms += 1
        vmas += sum(1 for _ in for_each_vma(mm))
        s = walk_stats(mm)
        entries += s["entries"]
        mapped += s["mapped_pages"]
    return {"tasks": tasks, "mms": mms, "vmas": vmas, "entries": entries, "mapped_pages": mapped}


# ---------------------------------------------------------------- timing and memory


def timed(fn: Callable[[], Dict[str, Any]], repeat: int) -> Dict[str, Any]:
    times = []
    cpu = []
    info: Dict[str, Any] = {}
    for _ in range(repeat):
        gc.collect()
        c = time.process_time()
        t = time.perf_counter()
        info = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        after = getattr(fn, "after", None)
        if after is not None:  # e.g. remove the file the run wrote, untimed
            after()
    # CPU time (user + system of this process) as well: on a shared machine wall time includes waiting
    # for a CPU.
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times,
            "cpu_median_s": statistics.median(cpu), "cpu_s": cpu, **info}


def py_peak(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        after = getattr(fn, "after", None)
        if after is not None:
            after()


def _status_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _prepare(prog: Program, what: str, pid: int, sample: float) -> Callable[[], Any]:
    task = find_task(prog, pid) if pid else None
    mm = task.mm.read_() if task is not None else None
    if what == "floor":
        return m_floor(prog, mm)
    if what == "idiom":
        return m_idiom(prog, mm, sample)[0]
    if what == "walk":
        return m_walk(mm)
    if what == "walk_runs":
        return m_walk(mm, split_folios=False)
    if what == "smaps":
        fn = m_smaps(task)
        if fn is None:
            raise SystemExit(3)
        return fn
    if what == "memtop":
        return m_memtop(prog)
    raise ValueError(what)


def memchild(args) -> int:
    prog = open_program(args.core, symbols=[args.vmlinux])
    fn = _prepare(prog, args.memchild, args.pid, args.idiom_sample)
    fn()  # warm drgn's caches: the second run's peak is what the measurement itself needs
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    base = _status_kib("VmRSS")
    fn()
    print(json.dumps({"rss_base_kib": base, "rss_peak_growth_kib": _status_kib("VmHWM") - base,
                      "hwm_reset": reset}))
    return 0


def rss_peak(d: Dict[str, Any], what: str, pid: int, sample: float) -> Optional[Dict[str, Any]]:
    cmd = [sys.executable, "-m", "bench", "--memchild", what, "--core", d["core"],
           "--vmlinux", d["vmlinux"], "--pid", str(pid), "--idiom-sample", str(sample)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT))
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the run


def pick_tasks(prog: Program, pids: Dict[str, int]) -> Tuple[int, int]:
    big = pids.get("big")
    vmas = pids.get("vmas") or pids.get("manyvmas")
    if big is None:  # a non-bench dump: the workload process with the most mapped pages
        best = (-1, 0)
        for name, pid in pids.items():
            if name == "kthread":
                continue
            t = find_task(prog, pid)
            if t and t.mm:
                best = max(best, (walk_stats(t.mm.read_())["mapped_pages"], pid))
        big = best[1]
    return big, vmas or big


def _loadavg(la: Tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in la)


def write_runs(path: str, results: List[Dict[str, Any]]) -> None:
    """The runs as JSON, with the time they were written."""
    Path(path).write_text(json.dumps({"runs": results, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                            time.gmtime())}, indent=1))
    print(f"\nwrote {path}")


def fmt_s(s: Optional[float]) -> str:
    if s is None:
        return "-"
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt_kib(k: Optional[float]) -> str:
    if k is None:
        return "-"
    return f"{k / 1024:.1f} MiB" if k >= 1024 else f"{k:.0f} KiB"


def run_one(d: Dict[str, Any], base: Optional[Dict[str, Any]], args) -> Dict[str, Any]:
    t = time.perf_counter()
    prog = open_dump(d)
    t_open = time.perf_counter() - t
    big, vmas_pid = pick_tasks(prog, d["pids"])
    btask = find_task(prog, big)
    bmm = btask.mm.read_()
    vtask = find_task(prog, vmas_pid)
    ps = get_decoder(prog).page_size
    tables = table_pages(prog, bmm)
    stats = walk_stats(bmm)
    nvmas_big = sum(1 for _ in for_each_vma(bmm))
    nvmas_v = sum(1 for _ in for_each_vma(vtask.mm.read_()))
    res: Dict[str, Any] = {
        "dump": d["name"], "core": d["core"], "kernel": d["release"], "arch": d["arch"], "page_size": ps,
        "scenario": d.get("scenario", "default"), "open_s": t_open,
        "host": {"machine": platform.machine(), "python": platform.python_version(), "drgn": drgn.__version__,
                 "cpus": os.cpu_count()},
        "big": {"pid": big, "comm": btask.comm.string_().decode(), "vmas": nvmas_big,
                "table_pages": len(tables), **stats},
        "vmas": {"pid": vmas_pid, "comm": vtask.comm.string_().decode(), "vmas": nvmas_v},
        "repeat": args.repeat, "idiom_sample": args.idiom_sample, "measurements": {},
        "loadavg_start": os.getloadavg(),
    }
    print(f"\n== {d['name']}: {d['release']} ({d['arch']}, {ps // 1024} KiB pages, {d['dump']} dump)\n"
          f"   core {d['core']}\n   opened in {fmt_s(t_open)}; big task: PID {big} ({res['big']['comm']}), "
          f"{nvmas_big} VMAs, {stats['mapped_pages']:,} mapped pages in {stats['mapped_entries']:,} entries, "
          f"{len(tables):,} table pages; many-VMA task: PID {vmas_pid} ({res['vmas']['comm']}), {nvmas_v:,} VMAs",
          flush=True)

    import tempfile

    gdir = tempfile.mkdtemp(prefix="ptwalk-bench-gcore-", dir=args.gcore_dir)
    try:
        return _run_one(d, base, args, prog, big, vmas_pid, btask, bmm, vtask, ps, tables, stats, nvmas_v, res, gdir)
    finally:
        import shutil

        shutil.rmtree(gdir, ignore_errors=True)


def _run_one(d: Dict[str, Any], base: Optional[Dict[str, Any]], args, prog: Program, big: int, vmas_pid: int,
             btask: Object, bmm: Object, vtask: Object, ps: int, tables: List[Tuple[int, int]], stats: Dict[str, int],
             nvmas_v: int, res: Dict[str, Any], gdir: str) -> Dict[str, Any]:
    from tabulate import tabulate

    idiom_fn, scale, visited, total = m_idiom(prog, bmm, args.idiom_sample)
    ms: List[Tuple[str, str, Optional[Callable], int, str, float]] = [
        # (key, label, fn, pid for the RSS child, child kind, time scale)
        ("floor", "floor: read every table page (PGD down)", m_floor(prog, bmm), big, "floor", 1.0),
        ("floor_reads", "floor, reads only (table list known)", m_floor_reads(prog, tables), 0, "", 1.0),
        ("idiom", "drgn idiom: follow_pfn per page", idiom_fn, big, "idiom", scale),
        ("walk", "pt_range_walk (whole big task)", m_walk(bmm), big, "walk", 1.0),
        ("walk_runs", "pt_range_walk(split_folios=False)", m_walk(bmm, split_folios=False), big, "walk_runs", 1.0),
        ("ptwalk_text", "ptwalk command, text to /dev/null", m_ptwalk_out(prog, bmm, False), 0, "", 1.0),
        ("ptwalk_json", "ptwalk command, JSON Lines to /dev/null", m_ptwalk_out(prog, bmm, True), 0, "", 1.0),
        ("pagemap_whole", "pagemap of the whole big task (values)", m_pagemap_whole(bmm), 0, "", 1.0),
        ("smaps_big", "smaps (big task)", m_smaps(btask), big, "smaps", 1.0),
        ("smaps_vmas", f"smaps ({nvmas_v:,}-VMA task)", m_smaps(vtask), vmas_pid, "smaps", 1.0),
        ("memtop", "memtop (all tasks)", m_memtop(prog), 0, "memtop", 1.0),
        ("whomaps", "whomaps of one page of the big task", m_whomaps(prog, bmm), 0, "", 1.0),
        ("memmap_floor", "memmap floor: every online section's struct pages", m_memmap_floor(prog), 0, "", 1.0),
        ("kpageflags", "kpageflags(), all of RAM", m_kpageflags(prog), 0, "", 1.0),
        ("kpage_values", "kpage_values(): kpageflags + kpagecount + kpagecgroup, all of RAM",
         m_kpage_values(prog), 0, "", 1.0),
        # gcore: files of ~7 GB each on the bench dump, removed after each run (untimed).
        ("gcore_floor", "gcore floor: walk + prog.read of present runs + pwrite", m_gcore_floor(btask, gdir), 0, "",
         1.0),
        ("gcore_userpages", "user_pages() of gcore's ranges + pwrite", m_gcore_userpages(btask, gdir), 0, "", 1.0),
        ("gcore", "gcore(task, path), big task", m_gcore(btask, gdir), 0, "", 1.0),
        # Last: reading 100 MB of struct pages fills a compressed dump's page cache (libkdumpfile), which
        # made the idiom measured after it many times slower.
        ("floor_smaps", "smaps floor: reads of tables + struct pages", m_floor_smaps(prog, tables, memmap_runs(bmm)),
         0, "", 1.0),
    ]
    if args.only:
        ms = [m for m in ms if m[0] in args.only]
    rows = []
    warm = m_gcore_floor(btask, gdir) if any(k.startswith("gcore") and f is not None for k, _, f, *_ in ms) else None
    if warm is not None:
        # The gcore rows read every dumped page (7.6 GB on the bench dump): the first pass over a dump not in
        # the page cache reads it from disk (3-4x slower on the ELF dump). One untimed pass first.
        print("   warming: one untimed gcore floor run (the dump's pages into the page cache) ...", file=sys.stderr,
              flush=True)
        t0 = time.perf_counter()
        warm()
        warm.after()  # type: ignore[attr-defined]
        res["gcore_warmup_s"] = time.perf_counter() - t0
    for key, label, fn, pid, kind, sc in ms:
        if fn is None:
            res["measurements"][key] = {"missing": "not in this tree (drgn_ptwalk.procfs.smaps not importable, "
                                                   "or pt_range_walk without split_folios)"}
            rows.append([label, "missing", "", "", "", "", ""])
            continue
        print(f"   measuring {key} ...", file=sys.stderr, flush=True)
        r = timed(fn, args.repeat)
        if sc != 1.0:
            r["sampled_median_s"] = r["median_s"]
            r["median_s"] *= sc
            r["min_s"] *= sc
            r["cpu_median_s"] *= sc
            r["extrapolated_from"] = {"pages_visited": visited, "pages_total": total, "factor": sc}
        if not args.no_memory and not key.startswith("gcore"):  # gcore rows: ~7 GB written per run
            r["py_peak_bytes"] = py_peak(fn)
            if kind:
                r["rss"] = rss_peak(d, kind, pid, args.idiom_sample)
        res["measurements"][key] = r
        note = ""
        if sc != 1.0:
            note = f"extrapolated x{sc:.1f} from {visited:,} of {total:,} pages"
        elif key == "memtop":
            note = memtop_impl()[1]
        rss = r.get("rss") or {}
        rows.append([label, fmt_s(r["median_s"]), fmt_s(r["min_s"]), fmt_s(r["cpu_median_s"]),
                     fmt_kib(rss.get("rss_peak_growth_kib")) if "rss_peak_growth_kib" in rss else rss.get("error", "-"),
                     fmt_kib(r["py_peak_bytes"] / 1024) if "py_peak_bytes" in r else "-", note])
    res["loadavg_end"] = os.getloadavg()
    print()
    print(tabulate(rows, headers=["measurement", f"median of {args.repeat}", "min", "CPU median", "peak RSS growth",
                                  "tracemalloc peak", "note"]))
    print(f"\n   load average (1/5/15 min) at start {_loadavg(res['loadavg_start'])}, after the timings "
          f"{_loadavg(res['loadavg_end'])} ({os.cpu_count()} CPUs): the machine may be shared")

    m = res["measurements"]

    def med(k: str) -> Optional[float]:
        return m.get(k, {}).get("median_s")

    def cpu(k: str) -> Optional[float]:
        return m.get(k, {}).get("cpu_median_s")

    ratios = {}
    cpu_ratios = {}
    for name, a, b in (("walk/floor", "walk", "floor"), ("walk/floor(reads only)", "walk", "floor_reads"),
                       ("idiom/walk", "idiom", "walk"), ("smaps(big)/walk", "smaps_big", "walk"),
                       ("walk_runs/floor", "walk_runs", "floor"), ("idiom/walk_runs", "idiom", "walk_runs"),
                       ("smaps(big)/walk_runs", "smaps_big", "walk_runs"),
                       ("smaps(big)/smaps floor", "smaps_big", "floor_smaps"),
                       ("kpageflags/memmap floor", "kpageflags", "memmap_floor"),
                       ("kpage_values/memmap floor", "kpage_values", "memmap_floor"),
                       ("gcore/gcore floor", "gcore", "gcore_floor"),
                       ("gcore/user_pages+write", "gcore", "gcore_userpages"),
                       ("user_pages+write/gcore floor", "gcore_userpages", "gcore_floor"),
                       ("gcore floor/walk", "gcore_floor", "walk"), ("gcore/walk", "gcore", "walk")):
        if med(a) and med(b):
            ratios[name] = med(a) / med(b)
        if cpu(a) and cpu(b):
            cpu_ratios[name] = cpu(a) / cpu(b)
    res["ratios"] = ratios
    res["cpu_ratios"] = cpu_ratios
    rrows = []
    for name, v in ratios.items():
        tgt = TARGETS.get(name)
        ok = "" if tgt is None else ("met" if (v <= tgt[1] if tgt[0] == "<=" else v >= tgt[1]) else "MISSED")
        c = cpu_ratios.get(name)
        ok_cpu = "" if tgt is None or c is None else (
            "met" if (c <= tgt[1] if tgt[0] == "<=" else c >= tgt[1]) else "MISSED")
        rrows.append([name, f"{v:.2f}", f"{c:.2f}" if c is not None else "-", f"{tgt[0]} {tgt[1]:g}" if tgt else "",
                      ok, ok_cpu])
    e2e: Dict[str, Dict[str, Any]] = {}
    if not args.no_e2e:
        first = min(v.vm_start.value_() for v in for_each_vma(bmm))
        e2e = run_e2e(d, big, first, ps, args.crash, args.repeat, args.only, args.drgn_gcore, args.gcore_dir)
        res["e2e"] = e2e
        res["loadavg_e2e_end"] = os.getloadavg()
        if args.crash and "crash" not in e2e:
            res["crash_version"] = crash_version(args.crash)
        erows = []
        for key, r in e2e.items():
            if "missing" in r:
                erows.append([key, r["missing"], "", "", "", ""])
                continue
            erows.append([r["label"], fmt_s(r["median_s"]), fmt_s(r["cpu_median_s"]), fmt_kib(r["maxrss_kib"]),
                          f"{r.get('file_bytes', r['out_bytes']) / 1e6:.1f} MB"
                          + (f" ({r['disk_bytes'] / 1e6:.1f} MB on disk)" if "disk_bytes" in r else ""),
                          r.get("error", "")])
        print()
        print(tabulate(erows, headers=["end to end (a subprocess)", f"wall, median of {args.repeat}", "CPU median",
                                       "peak RSS", "output", "error"]))
        if res.get("crash_version"):
            print(f"   crash: {res['crash_version']} from {args.crash}")
        for key in CORE_ROWS:
            if "core_check" in e2e.get(key, {}):
                print(f"   {key}: {_fmt_check(e2e[key]['core_check'])}")
        if "e2e_drgn_gcore" in e2e and args.drgn_gcore:
            res["drgn_gcore"] = {"path": args.drgn_gcore, "drgn": drgn.__version__}
        print(f"   load average after the end-to-end runs {_loadavg(res['loadavg_e2e_end'])}")
        m.update({k: v for k, v in e2e.items() if "median_s" in v})
    for name, a, b, tgt in (("ptwalk text/walk (in process)", "ptwalk_text", "walk", ("<=", 2.0)),
                            ("ptwalk JSON/walk (in process)", "ptwalk_json", "walk", ("<=", 2.0)),
                            ("pagemap whole/walk (in process)", "pagemap_whole", "walk", ("<=", 2.0)),
                            ("ptwalk text e2e/walk", "e2e_ptwalk", "walk", ("<=", 2.0)),
                            ("ptwalk JSON e2e/walk", "e2e_ptwalk_json", "walk", ("<=", 2.0)),
                            ("pagemap e2e/walk", "e2e_pagemap", "walk", ("<=", 2.0)),
                            # both sides start drgn: what the output costs over a walk a user can run
                            ("ptwalk text e2e/walk e2e", "e2e_ptwalk", "e2e_walk", ("<=", 2.0)),
                            ("ptwalk JSON e2e/walk e2e", "e2e_ptwalk_json", "e2e_walk", ("<=", 2.0)),
                            ("pagemap e2e/walk e2e", "e2e_pagemap", "e2e_walk", ("<=", 2.0)),
                            ("start-up/walk (in process)", "e2e_startup", "walk", None),
                            ("ptwalk text e2e/crash vm -p", "e2e_ptwalk", "crash_vm_p", ("<", 1.0)),
                            ("ptwalk JSON e2e/crash vm -p", "e2e_ptwalk_json", "crash_vm_p", ("<", 1.0)),
                            ("start-up/crash start-up", "e2e_startup", "crash_startup", None),
                            ("gcore e2e/gcore in process", "e2e_gcore", "gcore", None),
                            ("gcore e2e/gcore floor (in process)", "e2e_gcore", "gcore_floor", None),
                            ("drgn contrib/gcore.py e2e/gcore e2e", "e2e_drgn_gcore", "e2e_gcore", None)):
        w, c = med(a), cpu(a)
        if not (w and med(b)):
            continue
        v = w / med(b)  # type: ignore[operator]
        cv = c / cpu(b) if c and cpu(b) else None  # type: ignore[operator]
        ratios[name] = v
        if cv is not None:
            cpu_ratios[name] = cv

        def met(x: Optional[float], tgt: Optional[Tuple[str, float]] = tgt) -> str:
            if tgt is None or x is None:
                return ""
            return "met" if (x <= tgt[1] if tgt[0] == "<=" else x < tgt[1]) else "MISSED"

        rrows.append([name, f"{v:.2f}", f"{cv:.2f}" if cv is not None else "-", f"{tgt[0]} {tgt[1]:g}" if tgt else "",
                      met(v), met(cv)])
    if "e2e_ptwalk" in e2e and "e2e_startup" in e2e:
        grow = e2e["e2e_ptwalk"]["maxrss_kib"] - e2e["e2e_startup"]["maxrss_kib"]
        res["e2e_ptwalk_rss_growth_kib"] = grow
        rrows.append(["ptwalk e2e peak RSS over the one-page run", fmt_kib(grow), "", "", "", ""])
    if med("walk") and stats["mapped_entries"]:
        rrows.append(["walk per mapped entry", f"{med('walk') / stats['mapped_entries'] * 1e9:.0f} ns", "", "", "", ""])
    runs_entries = m.get("walk_runs", {}).get("entries")
    if med("walk_runs") and runs_entries:
        rrows.append(["walk_runs per entry (all types)", f"{med('walk_runs') / runs_entries * 1e6:.1f} us", "", "", "",
                      ""])
    if med("floor") and len(tables):
        rrows.append(["floor per table page", f"{med('floor') / len(tables) * 1e6:.1f} us", "", "", "", ""])
    print()
    print(tabulate(rrows, headers=["ratio", "wall", "CPU", "target", "wall", "CPU"]))

    if args.profile:
        prof = profile(prog, btask)
        res["profile"] = {k: [list(r) for r in v] for k, v in prof.items()}
        for name, rows_ in prof.items():
            print(f"\n   profile of {name} (cProfile; own time, cumulative time):")
            print(tabulate([[f, n or "", f"{tt:.3f} s", f"{ct:.3f} s"] for f, n, tt, ct in rows_],
                           headers=["function", "calls", "own", "cumulative"]))

    # Streaming: Python heap peak of a walk over 1/16 of the big mapping against the whole big task.
    if not args.no_memory and (not args.only or "walk" in args.only):
        vs = max(((v.vm_end - v.vm_start).value_(), v.vm_start.value_()) for v in for_each_vma(bmm))
        size, start = vs
        part = max(ps, size // 16 // ps * ps)
        p_part = py_peak(m_walk(bmm, start, start + part))
        p_all = m["walk"]["py_peak_bytes"]
        res["streaming"] = {"part_bytes": part, "part_py_peak": p_part, "whole_py_peak": p_all}
        print(f"\n   streaming: tracemalloc peak of pt_range_walk over 1/16 of the largest VMA "
              f"({part >> 20} MiB): {fmt_kib(p_part / 1024)}; over the whole task: {fmt_kib(p_all / 1024)}")

    # memtop against mapped pages, on this dump and the default reference dump of the same kernel.
    if not args.only or "memtop" in args.only:
        scaling = []
        for dd, p in ((d, prog), (base, None)):
            if dd is None:
                continue
            if p is None:
                p = open_dump(dd)
            c = dump_census(p)
            tm = m["memtop"]["median_s"] if dd is d else timed(m_memtop(p), args.repeat)["median_s"]
            scaling.append({"dump": dd["name"], **c, "memtop_s": tm,
                            "us_per_mapped_page": tm / c["mapped_pages"] * 1e6 if c["mapped_pages"] else None,
                            "us_per_entry": tm / c["entries"] * 1e6 if c["entries"] else None})
        res["memtop_scaling"] = scaling
        print()
        print(tabulate([[s["dump"], s["tasks"], s["mms"], f"{s['vmas']:,}", f"{s['mapped_pages']:,}",
                         f"{s['entries']:,}", fmt_s(s["memtop_s"]),
                         f"{s['us_per_mapped_page']:.2f}" if s["us_per_mapped_page"] else "-",
                         f"{s['us_per_entry']:.2f}" if s["us_per_entry"] else "-"] for s in scaling],
                       headers=["memtop on", "tasks", "mms", "VMAs", "mapped pages", "walk entries", "time",
                                "us/mapped page", "us/entry"]))
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernel", action="append", metavar="ID",
                   help="vmcores manifest id (repeatable; default: every `bench = true` entry)")
    p.add_argument("--dump", metavar="KIND", help="dump kind (elf, qemu-kdump; default: the entry's first)")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (median; default 3)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--idiom-sample", type=float, default=1.0, metavar="F",
                   help="time follow_pfn on a fraction F of the pages and extrapolate (default 1: all)")
    p.add_argument("--no-build", action="store_true", help="do not build missing dumps")
    p.add_argument("--no-base", action="store_true", help="skip memtop on the default reference dump")
    p.add_argument("--no-memory", action="store_true", help="skip the peak memory measurements")
    p.add_argument("--crash", metavar="CHROOT",
                   help="also run crash (CHROOT/usr/bin/crash, with the chroot's libraries) on the same dumps")
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end (subprocess) runs")
    p.add_argument("--profile", action="store_true", help="print where ptwalk, smaps and memtop spend their time")
    p.add_argument("--drgn-gcore", metavar="PATH",
                   help="drgn's contrib/gcore.py (from a drgn checkout: not shipped here), run end to end beside "
                        "`gcore` on x86_64 dumps; without it the row says missing")
    p.add_argument("--gcore-dir", metavar="DIR",
                   help="where the gcore rows write their cores (~7 GB each on the bench dump; default: the "
                        "system's temporary directory)")
    p.add_argument("--dump-dir", metavar="DIR",
                   help="use the dump described by DIR/meta.json as is (built by vmcores, possibly for another "
                        "tree: no digest check, never built); --dump picks its kind")
    p.add_argument("--only", action="append", help=argparse.SUPPRESS)
    p.add_argument("--memchild", help=argparse.SUPPRESS)
    p.add_argument("--core", help=argparse.SUPPRESS)
    p.add_argument("--vmlinux", help=argparse.SUPPRESS)
    p.add_argument("--pid", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memchild:
        return memchild(args)
    if not 0 < args.idiom_sample <= 1:
        p.error("--idiom-sample must be in (0, 1]")
    results = []
    if args.dump_dir:
        d = dump_from_dir(args.dump_dir, args.dump)
        print(f"bench: {d['name']} from {args.dump_dir} as built (digest not checked)", file=sys.stderr)
        results.append(run_one(d, None, args))
    vbuild = _vmcores()
    # the large-memory entries have their own bench (python -m bench.bigmem: the physical side at two sizes)
    ids = [] if args.dump_dir else args.kernel or [k["id"] for k in vbuild.manifest()
                                                   if k.get("bench") and k.get("scenario") != "bigmem"]
    for kid in ids:
        d = find_dump(kid, args.dump, not args.no_build)
        base = None
        base_id = kid[: -len("-bench")] if kid.endswith("-bench") else None
        if base_id and not args.no_base:
            for kind in (d["dump"], None):
                try:
                    base = find_dump(base_id, kind, not args.no_build)
                    break
                except SystemExit as e:
                    msg = e
            else:
                print(f"bench: memtop scaling without the default dump: {msg}", file=sys.stderr)
        results.append(run_one(d, base, args))
    if args.json:
        write_runs(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
