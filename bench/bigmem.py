# SPDX-License-Identifier: LGPL-2.1-or-later
"""
python -m bench.bigmem: the physical side of large machines — kpageflags, memmap and whomaps over all of RAM
at two RAM sizes (the manifest's "bigmem" entries: 256 GiB and 64 GiB over two NUMA nodes, mostly free,
hugetlb pages in use on both nodes), so each figure's growth per GiB is measured, with the peak memory
each needs and crash's nearest commands side by side.

On each dump (built first if missing, unless ``--no-build``), medians over ``--repeat`` runs (default 1:
a pass over 256 GiB of struct pages is minutes under load), wall and CPU time:

1. in this process, start-up excluded: the memmap floor (every online section's ``struct page`` array read
   once, ``prog.read``), ``kpage_chunks(prog, "kpageflags", 0, end)`` consumed (all of /proc/kpageflags, a
   section at a time), ``memmap(prog)`` (the rows of all of RAM), ``whomaps(prog, pfn)`` of the head page of
   a 2 MiB and of a 1 GiB hugetlb page on each node (PFNs from the captured pagemaps);
2. peak RSS of each: a fresh subprocess opens the dump, runs the measurement once, and reports its RSS
   high-water mark (``VmHWM``) minus its RSS before the run: all memory, Python and C (drgn, libkdumpfile),
   drgn's caches of the dump included (what a user's first call costs);
3. end to end, start-up included (``python -m drgn_ptwalk -c CORE -s VMLINUX ...`` in a subprocess): start-up
   alone (a one-PFN ``kpage``), ``kpage kpageflags -o FILE`` of all of RAM and of one GiB of PFNs,
   ``memmap``, ``whomaps PFN``; wall, CPU and peak RSS of the child;
4. with ``--crash CHROOT`` (a Debian sid chroot with crash installed), crash on the same dump with the
   chroot's own loader and libraries: start-up alone, ``kmem -i`` (memmap's nearest), ``kmem -p`` of one
   page and of all of RAM (kpageflags' nearest, one line per page, to a file: crash's ``kmem -p`` takes no
   range).

Then the growth between the two sizes: each figure per GiB of RAM at each size, and the slope (the
difference over the difference in GiB), for time and for peak RSS.
"""

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.__main__ import (  # noqa: E402
    _child,
    _crash_loader,
    crash_version,
    fmt_kib,
    fmt_s,
    m_memmap_floor,
    timed,
    write_runs,
)
from drgn_ptwalk.program import open_program  # noqa: E402

KERNELS = ("x86_64-6.12-bigmem64", "x86_64-6.12-bigmem")
RANGE_GIB = 1
"""GiB of PFNs of the range rows (from the first PFN of node 1)."""


def reassembled(core: str) -> str:
    """A regular kdump file of the flattened one QEMU wrote (*core* itself if it is not flattened), made
    once under the cache: libkdumpfile finds each read's place in a flattened file by scanning its list of
    segments (``flatmap_pread()``), one per page QEMU wrote, so a read costs in proportion to the dump and a
    pass over all of RAM grows with its square; ``makedumpfile -R`` (here ``vmcores.flattened``) is what
    drgn's warning about such files advises."""
    from vmcores.fetch import cache_dir
    from vmcores.flattened import SIGNATURE, rearrange

    with open(core, "rb") as f:
        if not f.read(len(SIGNATURE)).startswith(SIGNATURE):
            return core
    src = Path(core)
    dest = cache_dir() / "bench-bigmem" / f"{src.parent.name}.kdump"
    if not dest.is_file() or dest.stat().st_mtime < src.stat().st_mtime:
        dest.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        rearrange(src, dest)
        print(f"   reassembled {core} into {dest} in {fmt_s(time.perf_counter() - t)}", file=sys.stderr, flush=True)
    return str(dest)


def _dump(kernel_id: str, build: bool, as_built: bool = False) -> Dict[str, Any]:
    from vmcores import build as vbuild

    if build:
        vbuild.build(kernel_id, log=lambda m: print(m, file=sys.stderr, flush=True))
    for d in vbuild.built():
        if d["id"] == kernel_id:
            d["built_core"] = d["core"]
            if not as_built:
                d["core"] = reassembled(d["core"])
            return d
    raise SystemExit(f"bench.bigmem: no dump of {kernel_id} built: python -m vmcores build {kernel_id}")


def _open(d: Dict[str, Any]):
    return open_program(d["core"], symbols=[d["vmlinux"]],
                        architecture=d["arch"] if d["dump"] == "qemu-kdump" else None)


def hugetlb_heads(d: Dict[str, Any]) -> Dict[str, int]:
    """label (``bignuma_2m_node0`` ...) -> PFN of the first page of each hugetlb region of the bignuma
    process, from its captured pagemap."""
    from vmcores.truth import PM_PFN_MASK, PM_PRESENT, pids, read_pagemap

    truth = Path(d["truth"])
    pid = pids(truth)["bignuma"]
    regions = json.loads((truth / str(pid) / "scenario.json").read_text())["regions"]
    starts = {int(r["start"], 16): r["label"] for r in regions if r["expect"] == "hugetlb-shared-both-present"}
    out = {}
    for rec in read_pagemap(truth / str(pid) / "pagemap.bin"):
        if rec.start in starts and rec.entries and rec.entries[0] & PM_PRESENT:
            out[starts[rec.start]] = rec.entries[0] & PM_PFN_MASK
    return out


def node_ranges(prog) -> List[Tuple[int, int]]:
    """(first PFN, spanned PFNs) of each online node."""
    return [(int(prog["node_data"][n].node_start_pfn), int(prog["node_data"][n].node_spanned_pages))
            for n in range(int(prog["nr_online_nodes"]))]


# ---------------------------------------------------------------- measurements


def m_kpageflags_stream(prog) -> Callable[[], Dict[str, Any]]:
    from drgn_ptwalk.kpage import kpage_chunks, max_dump_pfn

    def run() -> Dict[str, Any]:
        n = 0
        for _, data in kpage_chunks(prog, "kpageflags", 0, max_dump_pfn(prog)):
            n += len(data)
        return {"pfns": n // 8}

    return run


def m_memmap(prog) -> Callable[[], Dict[str, Any]]:
    from drgn_ptwalk.memmap import memmap

    def run() -> Dict[str, Any]:
        res = memmap(prog)
        return {"pfns": res.total, "rows": {r.name: r.pages for r in res.rows}}

    return run


def m_whomaps(prog, pfn: int) -> Callable[[], Dict[str, Any]]:
    from drgn_ptwalk.rmap import whomaps

    def run() -> Dict[str, Any]:
        return {"mappings": len(whomaps(prog, pfn))}

    return run


def measurements(prog, d: Dict[str, Any]) -> List[Tuple[str, str, Callable[[], Dict[str, Any]]]]:
    floor = m_memmap_floor(prog)
    rows = [("memmap_floor", "memmap floor: every online section's struct pages read", floor)] if floor else []
    rows += [("kpageflags", "kpage_chunks(kpageflags), all of RAM, consumed", m_kpageflags_stream(prog)),
             ("memmap", "memmap(prog): the rows of all of RAM", m_memmap(prog))]
    for label, pfn in sorted(hugetlb_heads(d).items()):
        rows.append((f"whomaps_{label[len('bignuma_'):]}", f"whomaps of a {label[8:].replace('_', ' page on ')} "
                     f"(PFN {pfn:#x})", m_whomaps(prog, pfn)))
    return rows


def _status_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def memchild(kernel_id: str, key: str, as_built: bool) -> int:
    """In a fresh process: the RSS growth of one run of measurement *key* (drgn's caches filled by it)."""
    d = _dump(kernel_id, False, as_built)
    prog = _open(d)
    fn = dict((k, f) for k, _, f in measurements(prog, d))[key]
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    base = _status_kib("VmRSS")
    fn()
    print(json.dumps({"rss_base_kib": base, "rss_peak_growth_kib": _status_kib("VmHWM") - base}))
    return 0


def rss_peak(kernel_id: str, key: str, as_built: bool) -> Dict[str, Any]:
    p = subprocess.run([sys.executable, "-m", "bench.bigmem", "--memchild", key, "--kernel", kernel_id]
                       + (["--as-built"] if as_built else []),
                       capture_output=True, text=True, cwd=str(ROOT))
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def e2e_rows(d: Dict[str, Any], prog, crash: Optional[str], whomaps_pfn: int
             ) -> List[Tuple[str, str, List[str], Optional[bytes], bool]]:
    base = [sys.executable, "-m", "drgn_ptwalk", "-c", d["core"], "-s", d["vmlinux"]]
    if d["dump"] == "qemu-kdump":
        base += ["--architecture", d["arch"]]
    ps = d["page_size"]
    first = node_ranges(prog)[-1][0]
    rows = [
        ("e2e_startup", "start-up + kpage kpageflags of one PFN", base + ["kpage", "kpageflags", "--end", "1", "-o"],
         None, True),
        ("e2e_kpageflags", "start-up + kpage kpageflags -o FILE (all of RAM)", base + ["kpage", "kpageflags", "-o"],
         None, True),
        ("e2e_kpageflags_range", f"start-up + kpage kpageflags of {RANGE_GIB} GiB of PFNs (node 1's first) -o FILE",
         base + ["kpage", "kpageflags", "--start", str(first), "--end", str(first + (RANGE_GIB << 30) // ps), "-o"],
         None, True),
        ("e2e_memmap", "start-up + memmap > file", base + ["memmap"], None, False),
        ("e2e_whomaps", f"start-up + whomaps {whomaps_pfn:#x} (1 GiB hugetlb head) > file",
         base + ["whomaps", hex(whomaps_pfn)], None, False),
    ]
    if crash:
        loader, libs = _crash_loader(crash)
        c = [loader, "--library-path", libs, os.path.join(crash, "usr/bin/crash"), "-s", d["vmlinux"], d["core"]]
        lo = node_ranges(prog)[-1][0] * d["page_size"]
        rows += [
            ("crash_startup", "crash: start-up (crash -s, q)", c, b"q\n", False),
            ("crash_kmem_i", "crash: start-up + kmem -i > file", c, b"kmem -i\nq\n", False),
            # crash's kmem -p takes no range: one page (by physical address), or every page
            ("crash_kmem_p_one", f"crash: start-up + kmem -p {lo:#x} (one page)", c, f"kmem -p {lo:#x}\nq\n".encode(),
             False),
            ("crash_kmem_p", "crash: start-up + kmem -p (all of RAM) > file", c, b"kmem -p\nq\n", False),
        ]
    return rows


def run_e2e(d: Dict[str, Any], prog, crash: Optional[str], repeat: int, whomaps_pfn: int,
            only: Optional[List[str]]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ptwalk-bigmem-") as tmp:
        path = os.path.join(tmp, "out")
        for key, label, cmd, stdin, to_file in e2e_rows(d, prog, crash, whomaps_pfn):
            if only and key not in only:
                continue
            print(f"   measuring {key} ...", file=sys.stderr, flush=True)
            runs = []
            for _ in range(repeat):
                gc.collect()
                runs.append(_child(cmd + ([path + ".o"] if to_file else []), stdin, path))
                if to_file and os.path.exists(path + ".o"):
                    runs[-1]["out_bytes"] = os.path.getsize(path + ".o")
                    os.unlink(path + ".o")
                os.unlink(path)
            r = {"label": label, "runs": runs, "median_s": statistics.median(x["wall_s"] for x in runs),
                 "cpu_median_s": statistics.median(x["cpu_s"] for x in runs),
                 "maxrss_kib": max(x["maxrss_kib"] for x in runs), "out_bytes": runs[-1]["out_bytes"]}
            errs = [x["error"] for x in runs if "error" in x]
            if errs:
                r["error"] = errs[-1]
            out[key] = r
    return out


def run_one(kernel_id: str, args) -> Dict[str, Any]:
    from tabulate import tabulate

    d = _dump(kernel_id, not args.no_build, args.as_built)
    t = time.perf_counter()
    prog = _open(d)
    t_open = time.perf_counter() - t
    meta = json.loads((Path(d["built_core"]).parent / "meta.json").read_text())
    gib = meta["memory_gib"]
    res: Dict[str, Any] = {"dump": d["name"], "core": d["core"], "kernel": d["release"], "memory_gib": gib,
                           "open_s": t_open, "built_core": d["built_core"],
                           "core_bytes": os.path.getsize(d["core"]),
                           "core_disk_bytes": os.stat(d["core"]).st_blocks * 512,
                           "build_seconds": meta.get("seconds"), "nodes": node_ranges(prog),
                           "loadavg_start": os.getloadavg(), "measurements": {}}
    what = "as QEMU wrote it" if d["core"] == d["built_core"] else "reassembled"
    print(f"\n== {d['name']}: {d['release']}, {gib} GiB over {len(res['nodes'])} nodes, {d['dump']} dump ({what}) of "
          f"{res['core_bytes'] / 1e9:.2f} GB ({res['core_disk_bytes'] / 1e9:.2f} GB on disk); opened in "
          f"{fmt_s(t_open)}", flush=True)
    rows = []
    for key, label, fn in measurements(prog, d):
        if args.only and key not in args.only:
            continue
        print(f"   measuring {key} ...", file=sys.stderr, flush=True)
        r = timed(fn, args.repeat)
        if not args.no_memory:
            r["rss"] = rss_peak(kernel_id, key, args.as_built)
        res["measurements"][key] = r
        rss = r.get("rss") or {}
        rows.append([label, fmt_s(r["median_s"]), fmt_s(r["cpu_median_s"]),
                     fmt_kib(rss["rss_peak_growth_kib"]) if "rss_peak_growth_kib" in rss else rss.get("error", "-")])
    print(tabulate(rows, headers=["in process", f"wall, median of {args.repeat}", "CPU", "peak RSS growth (fresh)"]))
    if not args.no_e2e:
        heads = hugetlb_heads(d)
        pfn = heads.get("bignuma_1g_node1") or next(iter(heads.values()))
        e2e = run_e2e(d, prog, args.crash, args.repeat, pfn, args.only)
        res["e2e"] = e2e
        if args.crash:
            res["crash_version"] = crash_version(args.crash)
        print(tabulate([[r["label"], fmt_s(r["median_s"]), fmt_s(r["cpu_median_s"]), fmt_kib(r["maxrss_kib"]),
                         fmt_kib(r["out_bytes"] / 1024), r.get("error", "")] for r in e2e.values()],
                       headers=["end to end (a subprocess)", "wall", "CPU", "peak RSS", "output", "error"]))
        if args.crash:
            print(f"   crash: {res['crash_version']} from {args.crash}")
    res["loadavg_end"] = os.getloadavg()
    print(f"   load average at start {res['loadavg_start']}, at the end {res['loadavg_end']} "
          f"({os.cpu_count()} CPUs: the machine may be shared)")
    return res


def growth(results: List[Dict[str, Any]]) -> List[List[str]]:
    """Per GiB at each size and the slope between the smallest and the largest, for every figure both have."""
    if len(results) < 2:
        return []
    small, big = min(results, key=lambda r: r["memory_gib"]), max(results, key=lambda r: r["memory_gib"])
    dg = big["memory_gib"] - small["memory_gib"]
    if dg <= 0:
        return []
    rows = []
    for key in big["measurements"]:
        a, b = small["measurements"].get(key), big["measurements"][key]
        if not a:
            continue
        per_a, per_b = a["median_s"] / small["memory_gib"], b["median_s"] / big["memory_gib"]
        slope = (b["median_s"] - a["median_s"]) / dg
        ra = (a.get("rss") or {}).get("rss_peak_growth_kib")
        rb = (b.get("rss") or {}).get("rss_peak_growth_kib")
        rows.append([key, fmt_s(a["median_s"]), fmt_s(b["median_s"]), fmt_s(per_a), fmt_s(per_b), fmt_s(slope),
                     fmt_kib(ra), fmt_kib(rb), fmt_kib((rb - ra) / dg) if ra is not None and rb is not None else "-"])
    for key in big.get("e2e", {}):
        a, b = small.get("e2e", {}).get(key), big["e2e"][key]
        if not a:
            continue
        rows.append([key, fmt_s(a["median_s"]), fmt_s(b["median_s"]), fmt_s(a["median_s"] / small["memory_gib"]),
                     fmt_s(b["median_s"] / big["memory_gib"]), fmt_s((b["median_s"] - a["median_s"]) / dg),
                     fmt_kib(a["maxrss_kib"]), fmt_kib(b["maxrss_kib"]),
                     fmt_kib((b["maxrss_kib"] - a["maxrss_kib"]) / dg)])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bigmem", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernel", action="append", metavar="ID",
                   help=f"vmcores manifest id (repeatable; default: {', '.join(KERNELS)})")
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement (median; default 1)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--no-build", action="store_true", help="do not build missing dumps")
    p.add_argument("--no-memory", action="store_true", help="skip the peak RSS subprocesses")
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end (subprocess) runs")
    p.add_argument("--crash", metavar="CHROOT", help="also run crash (CHROOT/usr/bin/crash) on the same dumps")
    p.add_argument("--only", action="append", help="only these measurement keys (repeatable)")
    p.add_argument("--as-built", action="store_true",
                   help="bench the dump file as QEMU wrote it (flattened: see reassembled()), not a reassembled copy")
    p.add_argument("--memchild", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memchild:
        return memchild(args.kernel[0], args.memchild, args.as_built)
    from tabulate import tabulate

    if args.crash and platform.machine() != "x86_64":
        p.error("crash of this machine does not read the x86_64 dumps")
    results = [run_one(k, args) for k in (args.kernel or KERNELS)]
    rows = growth(results)
    if rows:
        small, big = sorted(r["memory_gib"] for r in results)[0], sorted(r["memory_gib"] for r in results)[-1]
        print()
        print(tabulate(rows, headers=["growth", f"{small} GiB", f"{big} GiB", f"per GiB at {small}",
                                      f"per GiB at {big}", "slope per GiB", f"peak RSS {small} GiB",
                                      f"peak RSS {big} GiB", "RSS slope per GiB"]))
    if args.json:
        write_runs(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
