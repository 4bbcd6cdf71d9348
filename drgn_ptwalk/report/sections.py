# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The report's sections: each a function of a :class:`Context` (the program and what the sections share)
returning its numbers (JSON-able, what ``report.json`` holds) and its HTML (pictures and tables). A section
that raises is recorded with its error; the others do not depend on it (what they share is computed by the
first that asks, inside its own time and error).
"""

import bisect
import html
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from drgn import FaultError, Object, Program, TypeKind

from drgn_ptwalk.report import charts

__all__ = ("Context", "SECTIONS", "SectionDef")

# the log lines a triager looks for first
_LOG_PATTERNS = (
    "Kernel panic", "Oops", "BUG:", "WARNING:", "general protection fault", "Unable to handle",
    "Out of memory", "invoked oom-killer", "oom-kill:", "Killed process", "Memory cgroup out of memory",
    "sysrq: Trigger a crash", "page allocation failure", "hung_task", "soft lockup", "hard LOCKUP",
    "Hardware Error", "Machine check", "Memory failure",
)


class Context:
    """The program and the results the sections share (computed once, by the first section asking)."""

    def __init__(self, prog: Program, top: int = 15, address_spaces: int = 3) -> None:
        self.prog = prog
        self.top = top
        self.address_spaces = address_spaces
        self._cache: Dict[str, Any] = {}

    def get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = (make(), None)
            except Exception as e:  # recorded: every later section asking gets the same error
                self._cache[key] = (None, e)
        value, err = self._cache[key]
        if err is not None:
            raise err
        return value

    @property
    def page_size(self) -> int:
        return 1 << self.prog["PAGE_SHIFT"].value_()

    def memmap(self) -> Any:
        from drgn_ptwalk.memmap import memmap

        return self.get("memmap", lambda: memmap(self.prog))

    def memtop(self) -> Any:
        from drgn_ptwalk.procfs.memtop import memtop

        return self.get("memtop", lambda: memtop(self.prog, sort="rss"))

    def filecache(self) -> Any:
        from drgn_ptwalk.filecache import filecache

        return self.get("filecache", lambda: filecache(self.prog))

    def physical(self) -> "Physical":
        return self.get("physical", lambda: _physical_scan(self.prog))

    def nodes(self) -> List[Dict[str, Any]]:
        return self.get("nodes", lambda: _nodes(self.prog))


class SectionDef(NamedTuple):
    name: str
    title: str
    run: Callable[[Context], Tuple[Dict[str, Any], str]]


# ---------------------------------------------------------------------------------------------------------
# HTML helpers


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc('' if c is None else c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure(svg: str, caption: str) -> str:
    return f'<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>'


def _mib(pages: Optional[int], page_size: int) -> str:
    if pages is None:
        return "-"
    return f"{pages * page_size / (1 << 20):,.1f}"


# ---------------------------------------------------------------------------------------------------------
# machine


def _nodes(prog: Program) -> List[Dict[str, Any]]:
    from drgn_ptwalk._compat import online_pgdats

    out = []
    for pgdat in online_pgdats(prog):
        zones = []
        for z in range(pgdat.node_zones.type_.length):
            zone = pgdat.node_zones[z]
            spanned = zone.spanned_pages.value_()
            if not spanned:
                continue
            managed = zone.managed_pages
            managed_v = managed.counter.value_() if hasattr(managed, "counter") else managed.value_()
            zones.append({
                "name": zone.name.string_().decode(),
                "start_pfn": zone.zone_start_pfn.value_(),
                "spanned_pages": spanned,
                "present_pages": zone.present_pages.value_(),
                "managed_pages": managed_v,
                "index": z,
            })
        out.append({
            "node": pgdat.node_id.value_(),
            "start_pfn": pgdat.node_start_pfn.value_(),
            "spanned_pages": pgdat.node_spanned_pages.value_(),
            "present_pages": pgdat.node_present_pages.value_(),
            "zones": zones,
        })
    return out


def _uptime_seconds(prog: Program) -> Tuple[Optional[float], str]:
    try:
        from drgn.helpers.linux.timekeeping import uptime

        return float(uptime(prog)), "CLOCK_BOOTTIME at the last tick (drgn's uptime())"
    except (ImportError, LookupError, FaultError, AttributeError, TypeError):
        pass
    try:
        # ktime_get_coarse_boottime(): the monotonic base plus the boot offset (drgn < 0.0.32 has no
        # uptime())
        tk = prog["tk_core"].timekeeper
        ns = tk.tkr_mono.base.value_() + (tk.tkr_mono.xtime_nsec.value_() >> tk.tkr_mono.shift.value_()) \
            + tk.offs_boot.value_()
        return ns / 1e9, "CLOCK_BOOTTIME at the last tick (tk_core)"
    except (LookupError, FaultError, AttributeError):
        return None, "not found"


def _machine(ctx: Context) -> Tuple[Dict[str, Any], str]:
    prog = ctx.prog
    from drgn.helpers.linux.cpumask import for_each_online_cpu, for_each_possible_cpu

    uts = prog["init_uts_ns"].name
    release = uts.release.string_().decode()
    version = uts.version.string_().decode()
    nodename = uts.nodename.string_().decode(errors="replace")
    arch = prog.platform.arch.name.lower() if prog.platform is not None else "unknown"
    ps = ctx.page_size
    try:
        totalram = prog["_totalram_pages"].counter.value_()
    except (KeyError, LookupError):
        totalram = prog["totalram_pages"].value_()
    nodes = ctx.nodes()
    present = sum(n["present_pages"] for n in nodes)
    cpus_online = sum(1 for _ in for_each_online_cpu(prog))
    cpus_possible = sum(1 for _ in for_each_possible_cpu(prog))
    up, up_src = _uptime_seconds(prog)
    log_lines: List[Dict[str, Any]] = []
    tail: List[str] = []
    log_error = None
    try:
        from drgn.helpers.linux.printk import get_printk_records

        records = get_printk_records(prog)
        for r in records:
            text = r.text.decode("utf-8", "replace")
            if any(p in text for p in _LOG_PATTERNS):
                log_lines.append({"time": r.timestamp / 1e9, "text": text})
        log_lines = log_lines[-40:]
        tail = [f"[{r.timestamp / 1e9:12.6f}] {r.text.decode('utf-8', 'replace')}" for r in records[-15:]]
        last_log = records[-1].timestamp / 1e9 if records else None
    except Exception as e:  # the log is one part: its failure is said, the machine is still described
        log_error = f"{type(e).__name__}: {e}"
        last_log = None
    data = {
        "release": release, "version": version, "nodename": nodename, "arch": arch, "page_size": ps,
        "memtotal_pages": totalram, "present_pages": present, "nodes": len(nodes),
        "cpus_online": cpus_online, "cpus_possible": cpus_possible,
        "uptime_seconds": up, "uptime_source": up_src, "last_log_seconds": last_log,
        "log_matches": log_lines, "log_tail": tail, "log_error": log_error,
    }
    rows = [
        ("kernel", f"{release} {version}"), ("architecture", arch), ("host name", nodename),
        ("page size", f"{ps} bytes"),
        ("RAM present", f"{_mib(present, ps)} MiB"), ("MemTotal (managed)", f"{_mib(totalram, ps)} MiB"),
        ("NUMA nodes", len(nodes)), ("CPUs online / possible", f"{cpus_online} / {cpus_possible}"),
        ("uptime at the dump", "unknown" if up is None else f"{up:,.1f} s ({up / 3600:.2f} h)"),
        ("last log line at", "-" if last_log is None else f"{last_log:,.1f} s"),
    ]
    out = table(("", ""), rows, "kv")
    node_rows = [(n["node"], z["name"], f"{z['start_pfn']:#x}", z["spanned_pages"], z["present_pages"],
                  z["managed_pages"], _mib(z["managed_pages"], ps)) for n in nodes for z in n["zones"]]
    out += "<h3>Nodes and zones</h3>" + table(
        ("node", "zone", "start PFN", "spanned", "present", "managed", "managed MiB"), node_rows)
    if log_lines:
        out += "<h3>What the log says (panic, oops, OOM)</h3><pre class=\"log\">" + esc(
            "\n".join(f"[{m['time']:12.6f}] {m['text']}" for m in log_lines)) + "</pre>"
    else:
        out += "<p>No panic, oops or OOM line in the kernel log.</p>"
    if log_error:
        out += f'<p class="err">kernel log unreadable: {esc(log_error)}</p>'
    if tail:
        out += "<details><summary>Last lines of the kernel log</summary><pre class=\"log\">" + esc(
            "\n".join(tail)) + "</pre></details>"
    return data, out


# ---------------------------------------------------------------------------------------------------------
# the physical scan: every PFN's kpageflags, classified as memmap classifies it, per node and downsampled


class Physical(NamedTuple):
    kinds: List[str]
    node_rows: List[Tuple[int, Dict[str, int]]]
    image: Any
    """rows x width array of kind indices (-1 past the end)"""
    pfns_per_pixel: int
    width: int
    end_pfn: int


_WIDTH = 1024
_MAX_ROWS = 640


def _physical_scan(prog: Program) -> Physical:
    import numpy as np

    from drgn_ptwalk._byteorder import struct_order
    from drgn_ptwalk.kpage import KPF, kpage_chunks, max_dump_pfn
    from drgn_ptwalk.memmap import RULES

    # memmap's classification of one kpageflags value (private to memmap: see the lead's note)
    from drgn_ptwalk.memmap import kpf_row as memmap_row

    order = struct_order(prog)  # /proc/kpageflags is in the kernel's byte order (big-endian on s390x)
    kinds = list(RULES)
    hole = kinds.index("hole")
    hugetlb = kinds.index("hugetlb")
    tail_bit = np.uint64(1 << KPF["COMPOUND_TAIL"])
    head_bit = np.uint64(1 << KPF["COMPOUND_HEAD"])
    from drgn_ptwalk.memmap import hole_value, offline_sections

    nopage = hole_value(prog)
    end = max_dump_pfn(prog)
    # Where holes read as 0 (newer kernels), a 0 is a hole only in a section with no online struct page.
    pps, offline = offline_sections(prog, end) if nopage == 0 else (1, [])
    offline_arr = np.array(offline, dtype=bool)
    ppp = max(1, -(-end // (_WIDTH * _MAX_ROWS)))
    npix = -(-end // ppp)
    nk = len(kinds)
    counts = np.zeros(npix * nk, dtype=np.int32)  # a pixel holds at most end / 655,360 PFNs
    # every pixel starts as all holes: sections the files skip are holes
    counts[hole::nk] = ppp
    counts[(npix - 1) * nk + hole] = end - (npix - 1) * ppp
    nodes = _nodes(prog)
    node_counts = {n["node"]: np.zeros(nk, dtype=np.int64) for n in nodes}
    ranges = sorted((n["start_pfn"], n["start_pfn"] + n["spanned_pages"], n["node"]) for n in nodes)
    code_of: Dict[int, int] = {}
    for pfn, data in kpage_chunks(prog, "kpageflags", 0, end):
        vals = np.frombuffer(data, dtype=order + "u8")
        uniq, inv = np.unique(vals, return_inverse=True)
        lut = np.empty(len(uniq), dtype=np.int64)
        for i, v in enumerate(uniq.tolist()):
            c = code_of.get(v)
            if c is None:
                c = hole if v == nopage and nopage else kinds.index(memmap_row(v))
                code_of[v] = c
            lut[i] = c
        codes = lut[inv.reshape(-1)]
        n = len(codes)
        if nopage == 0 and len(offline_arr):
            secs = (pfn + np.arange(n, dtype=np.int64)) // pps
            codes[offline_arr[np.minimum(secs, len(offline_arr) - 1)] & (vals == 0)] = hole
        # A tail page is in its folio's row, as memmap() puts it: v6.1's kpageflags gives tails their own
        # page->flags (a shmem THP's tails would be other_kernel), later kernels the folio's (nothing moves).
        # Folios other than hugetlb ones never cross a section, so the head is in the same chunk.
        tails = (uniq & tail_bit) != 0
        if (tails & (lut != hugetlb)).any():
            pos = np.where((vals & head_bit) != 0, np.arange(n), -1)
            last = np.maximum.accumulate(pos)
            move = ((vals & tail_bit) != 0) & (codes != hugetlb) & (last >= 0)
            codes[move] = codes[last[move]]
        pix = (pfn + np.arange(n, dtype=np.int64)) // ppp
        p0 = int(pix[0])
        span = int(pix[-1]) + 1 - p0
        local = pix - p0
        window = counts[p0 * nk:(p0 + span) * nk]
        window += np.bincount(local * nk + codes, minlength=span * nk).astype(np.int32)
        # these PFNs are no longer holes in their pixels
        window[hole::nk] -= np.bincount(local, minlength=span).astype(np.int32)
        for lo, hi, node in ranges:
            a, b = max(lo, pfn), min(hi, pfn + n)
            if a < b:
                node_counts[node] += np.bincount(codes[a - pfn:b - pfn], minlength=nk)
    grid = counts.reshape(npix, nk)
    best = grid.argmax(axis=1)
    rows = -(-npix // _WIDTH)
    image = np.full(rows * _WIDTH, -1, dtype=np.int64)
    image[:npix] = best
    node_rows = [(node, {kinds[i]: int(c) for i, c in enumerate(node_counts[node]) if c})
                 for _, _, node in ranges]
    return Physical(kinds, node_rows, image.reshape(rows, _WIDTH), ppp, _WIDTH, end)


# ---------------------------------------------------------------------------------------------------------
# where all RAM went


def _memory(ctx: Context) -> Tuple[Dict[str, Any], str]:
    from drgn_ptwalk.memmap import RULES

    res = ctx.memmap()
    ps = res.page_size
    phys = ctx.physical()
    rows = [{"name": r.name, "pages": r.pages, "kernel_counter_pages": r.counter} for r in res.rows]
    data = {
        "page_size": ps, "total_pages": res.total, "rows": rows,
        "nodes": [{"node": node, "start_pfn": n["start_pfn"], "spanned_pages": n["spanned_pages"], "rows": counts}
                  for (node, counts), n in zip(phys.node_rows, sorted(ctx.nodes(), key=lambda x: x["start_pfn"]),
                                                 strict=True)],
    }
    out = figure(charts.memory_by_node([(f"node {node}", counts) for node, counts in phys.node_rows], ps),
                 "Each node's PFNs by what they hold (memmap's rows; holes left out).")
    out += figure(charts.rows_vs_counters([(r.name, r.pages, r.counter) for r in res.rows], ps),
                  "memmap's rows (every PFN in one) beside the kernel's counters where it keeps one.")
    trows = [(r.name, r.pages, _mib(r.pages, ps), "" if r.counter is None else r.counter,
              "" if r.counter is None else r.pages - r.counter, RULES[r.name]) for r in res.rows]
    trows.append(("total", res.total, _mib(res.total, ps), "", "", "PFNs up to the end of /proc/kpageflags"))
    out += table(("row", "pages", "MiB", "kernel counter", "row - counter", "rule"), trows)
    return data, out


def _physmap(ctx: Context) -> Tuple[Dict[str, Any], str]:
    phys = ctx.physical()
    nodes = ctx.nodes()
    marks: List[Tuple[int, str]] = []
    for n in nodes:
        for z in n["zones"]:
            marks.append((z["start_pfn"] // phys.pfns_per_pixel // phys.width, f"node {n['node']} {z['name']}"))
    # labels closer than about a line of text are joined (DMA and DMA32 start a few rows apart)
    gap = max(1, int(phys.image.shape[0]) // 40)
    joined: List[Tuple[int, str]] = []
    for r, label in sorted(marks):
        if joined and r - joined[-1][0] < gap:
            joined[-1] = (joined[-1][0], joined[-1][1] + ", " + label)
        else:
            joined.append((r, label))
    marks = joined
    svg = charts.physical_map(phys.image, phys.kinds, phys.pfns_per_pixel, phys.width, marks)
    data = {"end_pfn": phys.end_pfn, "pfns_per_pixel": phys.pfns_per_pixel, "width": phys.width,
            "rows": int(phys.image.shape[0]), "kinds": phys.kinds,
            "zones": [{"node": n["node"], **z} for n in nodes for z in n["zones"]]}
    out = figure(svg, f"Every PFN from 0 to {phys.end_pfn:#x}, left to right and top to bottom, colored by "
                      "kind (memmap's rows); lines mark where each zone starts.")
    return data, out


def _buddy(ctx: Context) -> Tuple[Dict[str, Any], str]:
    from drgn_ptwalk._compat import online_pgdats

    prog = ctx.prog
    zones = []
    for pgdat in online_pgdats(prog):
        node = pgdat.node_id.value_()
        for z in range(pgdat.node_zones.type_.length):
            zone = pgdat.node_zones[z]
            if not zone.spanned_pages.value_():
                continue
            fa = zone.free_area
            counts = [fa[o].nr_free.value_() for o in range(fa.type_.length)]
            zones.append({"node": node, "zone": zone.name.string_().decode(), "nr_free": counts,
                          "free_pages": sum(c << o for o, c in enumerate(counts))})
    data = {"zones": zones}
    svg = charts.buddy_orders([(f"node {z['node']} {z['zone']}", z["nr_free"]) for z in zones])
    out = figure(svg, "Free blocks per buddy order (zone->free_area[order].nr_free): many small blocks and "
                      "no large ones is fragmentation.")
    orders = max((len(z["nr_free"]) for z in zones), default=0)
    out += table(("node", "zone", *[str(o) for o in range(orders)], "free pages"),
                 [(z["node"], z["zone"], *z["nr_free"], z["free_pages"]) for z in zones])
    return data, out


# ---------------------------------------------------------------------------------------------------------
# processes


def _vma_usage(prog: Program, task: Object) -> List[Dict[str, Any]]:
    from drgn_ptwalk.entry import PtLevel, PtType
    from drgn_ptwalk.procfs.maps import maps_vmas
    from drgn_ptwalk.procfs.vma import default_root, vm_flag_bits
    from drgn_ptwalk.tasks import get_task_mm
    from drgn_ptwalk.vmatree import checked_vma_ranges
    from drgn_ptwalk.walk import pt_range_walk

    mm = get_task_mm(task)
    ps = 1 << prog["PAGE_SHIFT"].value_()
    hugetlb_bit = 1 << vm_flag_bits(prog).get("HUGETLB", 22)
    ranges = list(checked_vma_ranges(mm))
    if len(ranges) <= _MAX_BARS:
        # each bar is one VMA: named as maps names it
        vmas = [(f.start, f.end, f.flags, (f.name or b"").decode("utf-8", "replace"))
                for f in maps_vmas(mm, default_root(prog)) if f.end <= mm.task_size.value_()]
    else:
        # runs of VMAs are merged into bars: the names (a path per VMA) are not worth their time
        vmas = [(start, end, vma.vm_flags.value_(), "") for vma, start, end in ranges]
    starts = [v[0] for v in vmas]
    out = [{"start": start, "end": end, "name": name, "pages": (end - start) // ps, "resident": 0, "huge": 0,
            "swapped": 0, "hugetlb": bool(flags & hugetlb_bit)} for start, end, flags, name in vmas]
    for e in pt_range_walk(mm, include_none=False, split_folios=False, vma_ranges=ranges,
                           types=(PtType.FOLIO, PtType.PFN, PtType.SWAP)):
        i = bisect.bisect_right(starts, e.start) - 1
        if i < 0 or e.start >= out[i]["end"]:
            continue
        v = out[i]
        if e.type == PtType.SWAP:
            v["swapped"] += e.nr_pages
        else:
            v["resident"] += e.nr_pages
            if e.level >= PtLevel.PMD or e.cont:
                v["huge"] += e.nr_pages
    return _merge_vmas(out, _MAX_BARS)


_MAX_BARS = 300
"""VMAs drawn one bar each; a process with more (a JVM, 21,000 mappings) gets runs of neighbours merged."""


def _merge_vmas(vmas: List[Dict[str, Any]], limit: int) -> List[Dict[str, Any]]:
    """*vmas* as at most *limit* entries: runs of neighbouring VMAs summed (``merged``: how many)."""
    if len(vmas) <= limit:
        for v in vmas:
            v["merged"] = 1
        return vmas
    size = -(-len(vmas) // limit)
    out = []
    for i in range(0, len(vmas), size):
        run = vmas[i:i + size]
        out.append({
            "start": run[0]["start"], "end": run[-1]["end"],
            "name": f"{len(run)} VMAs from {run[0]['start']:#x}",
            "pages": sum(v["pages"] for v in run), "resident": sum(v["resident"] for v in run),
            "huge": sum(v["huge"] for v in run), "swapped": sum(v["swapped"] for v in run),
            "hugetlb": any(v["hugetlb"] for v in run), "merged": len(run),
        })
    return out


def _processes(ctx: Context) -> Tuple[Dict[str, Any], str]:
    from drgn.helpers.linux.pid import find_task

    rows = ctx.memtop()
    top = [r for r in rows if not r.error][: ctx.top]
    data: Dict[str, Any] = {"rows": [r._asdict() for r in rows], "address_spaces": []}
    labels = [f"{r.pid} {r.comm}" for r in top]
    parts = [(k, [getattr(r, f"{k}_kb") / 1024 for r in top], charts.USER_COLORS[k])
             for k in ("anon", "file", "shmem", "swap", "hugetlb")]
    out = figure(charts.hbar_stacked(labels, parts, "MiB (PSS of anon, file, shmem; swap; hugetlb)"),
                 f"The {len(top)} largest processes by RSS (smaps_rollup accounting).")
    out += table(("PID", "COMM", "RSS kB", "PSS kB", "anon kB", "file kB", "shmem kB", "swap kB", "hugetlb kB",
                  "error"), [tuple(r) for r in rows[: max(ctx.top, 30)]])
    for r in top[: ctx.address_spaces]:
        try:
            task = find_task(ctx.prog, r.pid)
            usage = _vma_usage(ctx.prog, task)
        except Exception as e:  # one picture that fails is said there; the section goes on
            out += f'<p class="err">address space of {r.pid} {esc(r.comm)}: {esc(type(e).__name__)}: {esc(e)}</p>'
            data["address_spaces"].append({"pid": r.pid, "comm": r.comm, "error": f"{type(e).__name__}: {e}"})
            continue
        data["address_spaces"].append({"pid": r.pid, "comm": r.comm, "vmas": usage})
        if usage:
            nvmas = sum(v["merged"] for v in usage)
            merged = (f" (runs of up to {max(v['merged'] for v in usage)} neighbours merged into one bar)"
                      if nvmas > len(usage) else "")
            title = f"{r.pid} {r.comm}: {nvmas} VMAs{merged}"
            out += figure(charts.address_space(title, usage),
                          f"Address space of {r.pid} {r.comm}: each VMA in address order (x: its start), its "
                          "pages resident (orange: mapped by PMD/PUD or contiguous entries), swapped, not "
                          "resident; hugetlb VMAs hatched.")
    return data, out


# ---------------------------------------------------------------------------------------------------------
# page cache


def _pagecache(ctx: Context) -> Tuple[Dict[str, Any], str]:
    from drgn_ptwalk.commands.filecache import filecache_json

    s = ctx.filecache()
    try:
        mm = ctx.memmap()
    except Exception:  # the memory section says why; the page cache does without memmap's rows
        mm = None
    ps = s.page_size
    data = filecache_json(s, mm, limit=50)
    top = s.files[: ctx.top + 5]
    out = figure(charts.filecache_top([(f.path, f.pages, f.dirty, f.evicted) for f in top], ps),
                 "The files with the most pages in the page cache: clean, dirty, and evicted pages the kernel "
                 "still remembers.")
    out += table(("cached MiB", "dirty MiB", "writeback MiB", "evicted MiB", "mapped by", "large folios",
                  "kind", "fs", "path"),
                 [(_mib(f.pages, ps), _mib(f.dirty, ps), _mib(f.writeback, ps), _mib(f.evicted, ps), f.mapped,
                   ", ".join(f"{n}x order {o}" for o, n in f.folios if o) or "-", f.kind, f.fstype, f.path)
                  for f in s.files[:30]])
    out += "<h3>Per super block</h3>" + table(
        ("fs", "dev", "mount", "files", "cached MiB", "dirty MiB", "writeback MiB", "evicted MiB"),
        [(b.fstype, b.dev, b.mount or "-", b.files, _mib(b.pages, ps), _mib(b.dirty, ps), _mib(b.writeback, ps),
          _mib(b.evicted, ps)) for b in s.super_blocks])
    t, c = s.totals, s.counters
    swc = c.get("nr_swapcache") or 0
    out += "<h3>Totals beside the kernel's counters</h3>" + table(
        ("", "pages", "kernel counter", "counter"),
        [("page cache + swap cache", t["pages"] + swc, c.get("nr_file_pages"), "NR_FILE_PAGES"),
         ("shmem", t["shmem"], c.get("nr_shmem"), "NR_SHMEM"),
         ("dirty", t["dirty"], c.get("nr_dirty"), "NR_FILE_DIRTY"),
         ("writeback", t["writeback"], c.get("nr_writeback"), "NR_WRITEBACK"),
         ("hugetlbfs files (not page-cache counters)", t["hugetlbfs"], None, "")]
        + ([(f"memmap row {k}", v, None, "") for k, v in data.get("memmap_rows", {}).items()]))
    return data, out


# ---------------------------------------------------------------------------------------------------------
# swap


def _swap(ctx: Context) -> Tuple[Dict[str, Any], str]:
    from drgn_ptwalk._compat import type_unaliased
    from drgn_ptwalk.procfs.vma import d_path_kernel, default_root

    prog = ctx.prog
    ps = ctx.page_size
    root = default_root(prog)
    used_flag = prog.constant("SWP_USED").value_()
    devs = []
    for i in range(prog["nr_swapfiles"].value_()):
        si = prog["swap_info"][i].read_()
        if not si or not si.flags.value_() & used_flag:
            continue
        f = si.swap_file.read_()
        path = d_path_kernel(f.f_path.address_of_(), root).decode("utf-8", "replace") if f else "?"
        # inuse_pages: an unsigned int, an atomic_long_t after v6.12 (the swap allocator's rework, by
        # Kairui Song; Debian's 7.2 has it): detected by its type
        inuse = si.inuse_pages
        if type_unaliased(inuse.type_).kind == TypeKind.STRUCT:
            inuse = inuse.counter
        devs.append({"type": i, "path": path, "pages": si.pages.value_(), "inuse_pages": inuse.value_(),
                     "prio": si.prio.value_()})
    rows = ctx.memtop()
    users = sorted((r for r in rows if r.swap_kb), key=lambda r: -r.swap_kb)
    data = {"devices": devs, "users": [{"pid": r.pid, "comm": r.comm, "swap_kb": r.swap_kb} for r in users]}
    out = ""
    if devs:
        out += figure(charts.swap_devices([(d["path"], d["pages"], d["inuse_pages"]) for d in devs], ps),
                      "Swap devices: slots in use and free.")
    out += table(("type", "path", "size MiB", "used MiB", "priority"),
                 [(d["type"], d["path"], _mib(d["pages"], ps), _mib(d["inuse_pages"], ps), d["prio"]) for d in devs])
    if users:
        top = users[: ctx.top]
        out += figure(charts.hbar_stacked([f"{r.pid} {r.comm}" for r in top],
                                          [("swap", [r.swap_kb / 1024 for r in top], charts.USER_COLORS["swap"])],
                                          "MiB swapped (smaps_rollup Swap)"),
                      "The processes with the most memory on swap.")
    else:
        out += "<p>No process has pages on swap.</p>"
    return data, out


# ---------------------------------------------------------------------------------------------------------
# hugetlb


def _hugetlb(ctx: Context) -> Tuple[Dict[str, Any], str]:
    prog = ctx.prog
    ps = ctx.page_size
    try:
        n = prog["hugetlb_max_hstate"].value_()
    except (KeyError, LookupError):
        return {"pools": []}, "<p>This kernel has no hugetlb (no hstates).</p>"
    nodes = [nd["node"] for nd in ctx.nodes()]
    pools = []
    for i in range(n):
        h = prog["hstates"][i]
        size = ps << h.order.value_()
        per_node = [{"node": nd, "total": h.nr_huge_pages_node[nd].value_(),
                     "free": h.free_huge_pages_node[nd].value_(),
                     "surplus": h.surplus_huge_pages_node[nd].value_()} for nd in nodes]
        pools.append({"size": size, "name": h.name.string_().decode(), "total": h.nr_huge_pages.value_(),
                      "free": h.free_huge_pages.value_(), "reserved": h.resv_huge_pages.value_(),
                      "surplus": h.surplus_huge_pages.value_(), "nodes": per_node})
    data = {"pools": pools}
    bars = [(f"{p['size'] >> 10} kB node {x['node']}", x["total"], x["free"]) for p in pools for x in p["nodes"]]
    out = ""
    if bars:
        out += figure(charts.hugetlb_pools(bars), "Huge page pools per size and node: in use and free.")
    out += table(("size kB", "total", "free", "reserved", "surplus", "per node (total/free)"),
                 [(p["size"] >> 10, p["total"], p["free"], p["reserved"], p["surplus"],
                   ", ".join(f"{x['node']}: {x['total']}/{x['free']}" for x in p["nodes"])) for p in pools])
    return data, out


SECTIONS: Tuple[SectionDef, ...] = (
    SectionDef("machine", "The machine", _machine),
    SectionDef("memory", "Where all the RAM went", _memory),
    SectionDef("processes", "Processes", _processes),
    SectionDef("physmap", "Physical memory map", _physmap),
    SectionDef("buddy", "Free memory by buddy order", _buddy),
    SectionDef("pagecache", "Page cache by file", _pagecache),
    SectionDef("swap", "Swap", _swap),
    SectionDef("hugetlb", "Huge page pools", _hugetlb),
)
"""The sections, in the page's order."""
