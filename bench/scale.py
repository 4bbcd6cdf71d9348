# SPDX-License-Identifier: LGPL-2.1-or-later
"""
python -m bench.scale: range queries, per-VMA and per-process costs on the scale dumps (the workload's
``scale`` set, vmcores/scale.c), at two sizes in one run.

By default on ``x86_64-6.12-scale`` (100,000- and 10,000-VMA processes, 10,000 small processes) and
``x86_64-6.12-scale-bench`` (200,000, 20,000 and 20,000), built first if missing, each dump opened once, the
rows in turn:

* one VMA: ``pagemap(task, start, end)`` of one VMA of the largest VMA process, ``pt_range_walk(mm, start,
  end)`` of that VMA (consumed), and ``pagemap`` of one VMA of a small process (a child: ~10 VMAs), each the
  median over ``--sample`` VMAs (the same seeded choice for every size; each call timed alone);
* ``maps`` and ``smaps`` of the two VMA processes: time per VMA, and the growth between the two sizes
  (``(t_big - t_small) / (VMAs_big - VMAs_small)``: the cost per VMA beyond start-up and fixed costs);
* ``memtop`` over every process, and ``whomaps`` of the text page every child maps: time per process, and
  the growth per process between the two dumps;
* peak RSS of each (a fresh subprocess: one warm-up run, the high-water mark reset, the run again:
  ``VmHWM`` growth), unless ``--no-memory``;
* end to end, start-up included, as a user runs them: ``memtop`` and ``whomaps PFN`` of drgn-ptwalk, and with
  ``--crash DIR`` (``python -m bench.crashroot DIR`` makes one) crash's start-up alone and start-up + ``ps``
  (its nearest command: one line per task, no memory accounting), wall, CPU and peak RSS of each child.

Medians over ``--repeat`` runs (default 3; ``memtop`` and the end-to-end rows ``--repeat-slow``, default 1),
wall and CPU: the machine may be shared, so CPU is the column to compare.
"""

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from drgn import Program
from drgn.helpers.linux.pid import find_task

from bench.__main__ import _child, _crash_loader, crash_version, find_dump, fmt_kib, fmt_s, open_dump, timed

DEFAULT_KERNELS = ("x86_64-6.12-scale", "x86_64-6.12-scale-bench")

TARGETS = {
    "pagemap(1 VMA)/pt_range_walk(1 VMA)": 2.0,
    "pagemap(1 VMA, big)/pagemap(1 VMA, small)": 2.0,
    "maps us/VMA growth": 15.0,
    "smaps us/VMA growth": 60.0,
}


def _per_call(calls: List[Callable[[], Any]]) -> Dict[str, Any]:
    """Each call timed alone: median and mean wall/CPU of one call."""
    wall, cpu = [], []
    for fn in calls:
        c, t = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"median_s": statistics.median(wall), "cpu_median_s": statistics.median(cpu),
            "mean_s": statistics.mean(wall), "calls": len(calls)}


class Scale:
    """The scale processes of one dump."""

    def __init__(self, d: Dict[str, Any], prog: Program) -> None:
        self.d, self.prog = d, prog
        truth = os.path.join(d["truth"], "scale", "scale.json")
        with open(truth) as f:
            self.meta = json.load(f)
        pids = d["pids"]
        self.big, self.small_vmas = pids["scalevmas"], pids["scalevmas10"]
        self.children = [c for kids in self.meta["parents"].values() for c in kids]
        self.pfn = self.meta["shared_text_pfn"]

    def nvmas(self, pid: int) -> int:
        with open(os.path.join(self.d["truth"], str(pid), "maps")) as f:
            return sum(1 for _ in f)

    def vma_ranges(self, pid: int) -> List[Tuple[int, int]]:
        from drgn_ptwalk.vmatree import checked_vma_ranges

        mm = find_task(self.prog, pid).mm.read_()
        return [(a, b) for _, a, b in checked_vma_ranges(mm)]


def one_vma_rows(s: Scale, sample: int) -> Dict[str, Any]:
    from drgn_ptwalk.procfs import pagemap
    from drgn_ptwalk.walk import pt_range_walk

    prog = s.prog
    rnd = random.Random(24)
    task = find_task(prog, s.big)
    mm = task.mm.read_()
    ranges = s.vma_ranges(s.big)
    pick = rnd.sample(ranges, min(sample, len(ranges)))
    child = find_task(prog, s.children[0])
    cranges = s.vma_ranges(s.children[0])
    cpick = [cranges[i % len(cranges)] for i in range(len(pick))]
    for a, b in pick[:5] + cpick[:5]:  # warm drgn's type caches
        pagemap(task, a, b)
    out = {
        "pagemap_big": _per_call([lambda a=a, b=b: pagemap(task, a, b) for a, b in pick]),
        "walk_big": _per_call([lambda a=a, b=b: sum(1 for _ in pt_range_walk(mm, a, b)) for a, b in pick]),
        "pagemap_small": _per_call([lambda a=a, b=b: pagemap(child, a, b) for a, b in cpick]),
    }
    out["big_vmas"], out["small_vmas"] = len(ranges), len(cranges)
    out["pages_big"] = sum((b - a) // s.d["page_size"] for a, b in pick) / len(pick)
    out["pages_small"] = sum((b - a) // s.d["page_size"] for a, b in cpick) / len(cpick)
    return out


def text_rows(s: Scale, repeat: int) -> Dict[str, Any]:
    from drgn_ptwalk.procfs import maps, smaps

    out: Dict[str, Any] = {}
    for kind, fn in (("maps", maps), ("smaps", smaps)):
        for which, pid in (("big", s.big), ("small", s.small_vmas)):
            task = find_task(s.prog, pid)
            fn(task)  # warm
            r = timed(lambda fn=fn, task=task: {"info": len(fn(task))}, repeat)
            r["vmas"] = s.nvmas(pid)
            r["us_per_vma"] = r["median_s"] / r["vmas"] * 1e6
            r["cpu_us_per_vma"] = r["cpu_median_s"] / r["vmas"] * 1e6
            out[f"{kind}_{which}"] = r
        big, small = out[f"{kind}_big"], out[f"{kind}_small"]
        n = big["vmas"] - small["vmas"]
        out[f"{kind}_growth_us_per_vma"] = (big["median_s"] - small["median_s"]) / n * 1e6
        out[f"{kind}_growth_cpu_us_per_vma"] = (big["cpu_median_s"] - small["cpu_median_s"]) / n * 1e6
    return out


def process_rows(s: Scale, repeat: int) -> Dict[str, Any]:
    from drgn_ptwalk.procfs.memtop import memtop
    from drgn_ptwalk.rmap import whomaps

    out: Dict[str, Any] = {}
    r = timed(lambda: {"info": len(memtop(s.prog))}, repeat)
    r["processes"] = r.pop("info")
    out["memtop"] = r
    w = timed(lambda: {"info": len(whomaps(s.prog, s.pfn))}, repeat)
    w["mappings"] = w.pop("info")
    out["whomaps"] = w
    return out


# ---------------------------------------------------------------- peak memory (a fresh process each)


def _prepare(prog: Program, what: str, pid: int, pfn: int) -> Callable[[], Any]:
    from drgn_ptwalk.procfs import maps, smaps
    from drgn_ptwalk.procfs.memtop import memtop
    from drgn_ptwalk.rmap import whomaps

    if what == "memtop":
        return lambda: memtop(prog)
    if what == "whomaps":
        return lambda: whomaps(prog, pfn)
    task = find_task(prog, pid)
    return {"maps": lambda: maps(task), "smaps": lambda: smaps(task)}[what]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def memchild(args) -> int:
    from drgn_ptwalk.program import open_program

    prog = open_program(args.core, symbols=[args.vmlinux])
    fn = _prepare(prog, args.memchild, args.pid, args.pfn)
    fn()
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    fn()
    print(json.dumps({"rss_base_kib": base, "rss_peak_growth_kib": _status_kib("VmHWM") - base}))
    return 0


def rss_peak(d: Dict[str, Any], what: str, pid: int = 0, pfn: int = 0) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.scale", "--memchild", what, "--core", d["core"], "--vmlinux", d["vmlinux"],
           "--pid", str(pid), "--pfn", str(pfn)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- end to end


def e2e_rows(d: Dict[str, Any], pfn: int, crash: Optional[str], repeat: int) -> Dict[str, Any]:
    base = [sys.executable, "-m", "drgn_ptwalk", "-c", d["core"], "-s", d["vmlinux"]]
    if d["dump"] == "qemu-kdump":
        base += ["--architecture", d["arch"]]
    rows: List[Tuple[str, List[str], Optional[bytes]]] = [
        ("e2e_memtop", base + ["memtop"], None),
        ("e2e_whomaps", base + ["whomaps", str(pfn)], None),
    ]
    if crash:
        loader, libs = _crash_loader(crash)
        c = [loader, "--library-path", libs, os.path.join(crash, "usr/bin/crash"), "-s", d["vmlinux"], d["core"]]
        rows += [("crash_startup", c, b"q\n"), ("crash_ps", c, b"ps\nq\n")]
    out: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ptwalk-bench-scale-") as tmp:
        path = os.path.join(tmp, "out")
        for key, cmd, stdin in rows:
            print(f"   {d['name']}: {key} ...", file=sys.stderr, flush=True)
            runs = [_child(cmd, stdin, path) for _ in range(repeat)]
            with open(path, "rb") as f:
                lines = sum(1 for _ in f)
            r = {"median_s": statistics.median(x["wall_s"] for x in runs),
                 "cpu_median_s": statistics.median(x["cpu_s"] for x in runs),
                 "maxrss_kib": max(x["maxrss_kib"] for x in runs), "out_lines": lines}
            errs = [x["error"] for x in runs if "error" in x]
            if errs:
                r["error"] = errs[-1]
            out[key] = r
    return out


# ---------------------------------------------------------------- report


def _ws(r: Dict[str, Any]) -> str:
    return f"{fmt_s(r['median_s'])} / {fmt_s(r['cpu_median_s'])}"


def report(res: Dict[str, Dict[str, Any]]) -> None:
    names = list(res)
    w = 44

    def line(label: str, cells: List[str]) -> None:
        print(label.ljust(w) + "".join(c.ljust(34) for c in cells))

    print()
    line("wall / CPU", names)
    line("processes (memtop rows)", [str(res[n]["proc"]["memtop"]["processes"]) for n in names])
    line("VMAs of the two VMA processes", [f"{res[n]['text']['maps_big']['vmas']:,} / "
                                           f"{res[n]['text']['maps_small']['vmas']:,}" for n in names])
    for key, label in (("pagemap_big", "pagemap, 1 VMA of the big process"),
                       ("walk_big", "pt_range_walk, that VMA"),
                       ("pagemap_small", "pagemap, 1 VMA of a ~10-VMA process")):
        line(label, [f"{res[n]['vma'][key]['median_s'] * 1e3:.3f} / "
                     f"{res[n]['vma'][key]['cpu_median_s'] * 1e3:.3f} ms" for n in names])
    def ratio(n: str, a: str, b: str) -> str:
        return f"{res[n]['vma'][a]['median_s'] / res[n]['vma'][b]['median_s']:.2f}"

    line("  pagemap / walk (target <= 2)", [ratio(n, "pagemap_big", "walk_big") for n in names])
    line("  pagemap big / small (target <= 2)", [ratio(n, "pagemap_big", "pagemap_small") for n in names])
    for kind in ("maps", "smaps"):
        for which in ("big", "small"):
            line(f"{kind}, {which} VMA process", [f"{_ws(res[n]['text'][f'{kind}_{which}'])} "
                                                  f"({res[n]['text'][f'{kind}_{which}']['cpu_us_per_vma']:.1f} us/VMA)"
                                                  for n in names])
        line(f"  {kind}: growth per VMA (wall / CPU)", [f"{res[n]['text'][f'{kind}_growth_us_per_vma']:.1f} / "
                                                        f"{res[n]['text'][f'{kind}_growth_cpu_us_per_vma']:.1f} us"
                                                        for n in names])
    for key, label in (("memtop", "memtop, every process"), ("whomaps", "whomaps of the shared text page")):
        line(label, [_ws(res[n]["proc"][key]) for n in names])
    def per_process(n: str) -> str:
        m = res[n]["proc"]["memtop"]
        return f"{m['cpu_median_s'] / m['processes'] * 1e6:.0f} us"

    line("  memtop per process (CPU)", [per_process(n) for n in names])
    line("  whomaps mappings", [str(res[n]["proc"]["whomaps"]["mappings"]) for n in names])
    if len(names) >= 2:
        a, b = res[names[0]]["proc"], res[names[-1]]["proc"]
        dn = b["memtop"]["processes"] - a["memtop"]["processes"]
        if dn:
            print(f"growth per process between the two dumps (CPU): memtop "
                  f"{(b['memtop']['cpu_median_s'] - a['memtop']['cpu_median_s']) / dn * 1e6:.0f} us, whomaps "
                  f"{(b['whomaps']['cpu_median_s'] - a['whomaps']['cpu_median_s']) / dn * 1e6:.1f} us")
    for n in names:
        mem = res[n].get("memory")
        if mem:
            print(f"peak RSS growth, {n}: " + ", ".join(
                f"{k} {fmt_kib(v.get('rss_peak_growth_kib'))}" if "error" not in v else f"{k} {v['error']}"
                for k, v in mem.items()))
        for k, r in res[n].get("e2e", {}).items():
            print(f"end to end, {n}: {k}: {_ws(r)}, peak RSS {fmt_kib(r['maxrss_kib'])}, {r['out_lines']} lines"
                  + (f" ERROR {r['error']}" if "error" in r else ""))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--kernel", action="append", metavar="ID",
                   help=f"scale entries (default {', '.join(DEFAULT_KERNELS)})")
    p.add_argument("--dump", metavar="KIND", help="dump kind (default: each entry's first)")
    p.add_argument("--repeat", type=int, default=3, help="runs per fast measurement (median; default 3)")
    p.add_argument("--repeat-slow", type=int, default=1, help="runs of memtop, whomaps and end to end (default 1)")
    p.add_argument("--sample", type=int, default=200, help="VMAs timed for the one-VMA rows (default 200)")
    p.add_argument("--crash", metavar="DIR", help="a root with crash (python -m bench.crashroot DIR)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak RSS measurements")
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end runs")
    p.add_argument("--no-build", action="store_true", help="do not build missing dumps")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--memchild", help=argparse.SUPPRESS)
    p.add_argument("--core", help=argparse.SUPPRESS)
    p.add_argument("--vmlinux", help=argparse.SUPPRESS)
    p.add_argument("--pid", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--pfn", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memchild:
        return memchild(args)
    res: Dict[str, Dict[str, Any]] = {}
    if args.crash:
        print(f"crash: {crash_version(args.crash)}", file=sys.stderr)
    for kid in args.kernel or DEFAULT_KERNELS:
        d = find_dump(kid, args.dump, not args.no_build)
        print(f"== {d['name']} ({d['release']}), load {os.getloadavg()}", file=sys.stderr, flush=True)
        prog = open_dump(d)
        s = Scale(d, prog)
        r: Dict[str, Any] = {"load_before": os.getloadavg()}
        r["vma"] = one_vma_rows(s, args.sample)
        r["text"] = text_rows(s, args.repeat)
        r["proc"] = process_rows(s, args.repeat_slow)
        if not args.no_memory:
            r["memory"] = {
                "maps(big)": rss_peak(d, "maps", s.big), "smaps(big)": rss_peak(d, "smaps", s.big),
                "maps(small)": rss_peak(d, "maps", s.small_vmas), "smaps(small)": rss_peak(d, "smaps", s.small_vmas),
                "memtop": rss_peak(d, "memtop"), "whomaps": rss_peak(d, "whomaps", pfn=s.pfn),
            }
        if not args.no_e2e:
            r["e2e"] = e2e_rows(d, s.pfn, args.crash, args.repeat_slow)
        r["load_after"] = os.getloadavg()
        res[d["name"]] = r
        del prog, s
        gc.collect()
    report(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
