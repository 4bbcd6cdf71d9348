# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The report's pictures: matplotlib figures (no pyplot: no global state, no GUI backend) saved as SVG and
inlined in the page. Text is SVG ``<text>`` in the browser's own sans-serif (``svg.fonttype`` ``none``): no
font is embedded or fetched, and glyph paths, matplotlib's default, cost most of a chart's time; a raster (the
physical memory map) is embedded as a PNG data URI by matplotlib itself.
"""

import io
import re
from typing import Any, Dict, Optional, Sequence, Tuple

__all__ = (
    "KIND_COLORS",
    "address_space",
    "buddy_orders",
    "filecache_top",
    "hbar_stacked",
    "hugetlb_pools",
    "physical_map",
    "svg",
)

# memmap's rows, in a palette where the kernel's own memory is warm and user memory cool
KIND_COLORS: Dict[str, str] = {
    "hole": "#ffffff",
    "free": "#e8e8e8",
    "hugetlb": "#9467bd",
    "slab": "#d62728",
    "page_tables": "#ff7f0e",
    "anon_mapped": "#1f77b4",
    "anon_unmapped": "#aec7e8",
    "shmem": "#2ca02c",
    "shmem_swapcache": "#98df8a",
    "file_mapped": "#8c564b",
    "file_unmapped": "#c49c94",
    "zero_page": "#17becf",
    "reserved": "#393b41",
    "offline": "#bcbd22",
    "hwpoison": "#ff00ff",
    "other_kernel": "#f7b6d2",
}

USER_COLORS = {"anon": "#1f77b4", "file": "#8c564b", "shmem": "#2ca02c", "swap": "#e377c2",
               "hugetlb": "#9467bd"}


def _figure(width: float, height: float, left: float = 0.08, bottom: float = 0.15, right: float = 0.98,
            top: float = 0.9) -> Any:
    """A figure with fixed margins (in inches, converted here): constrained layout measured every tick label
    again and again, most of a chart's time."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=96)
    fig.subplots_adjust(left=min(left / width, 0.6), bottom=min(bottom / height, 0.6),
                        right=right, top=max(1 - top / height, 0.4) if top < 1 else top)
    return fig


def _plain_log(ax: Any, axis: str = "y") -> None:
    """Log-scale tick labels as plain text ("1", "10", "1k", "1M"): the default ones are mathtext, parsed
    per label."""
    from matplotlib.ticker import FuncFormatter

    def fmt(v: float, _pos: Any) -> str:
        if v <= 0:
            return "0"
        for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if v >= div:
                return f"{v / div:g}{unit}"
        return f"{v:g}"

    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(fmt))


_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)


def svg(fig: Any) -> str:
    """The figure as an ``<svg>`` element to inline (the XML prolog and DOCTYPE dropped, no date)."""
    import matplotlib

    buf = io.StringIO()
    # text as <text> in the page's sans-serif (the browser's own font: nothing fetched) rather than glyph
    # paths, which cost most of a chart's time
    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "sans-serif"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return _PROLOG.sub("", buf.getvalue(), count=1)


def _mib(pages: int, page_size: int) -> float:
    return pages * page_size / (1 << 20)


def hbar_stacked(labels: Sequence[str], parts: Sequence[Tuple[str, Sequence[float], str]], xlabel: str,
                 title: str = "", legend_cols: int = 5) -> str:
    """Horizontal stacked bars: one bar per label, one segment per part (name, values, color)."""
    n = len(labels)
    longest = max((len(x) for x in labels), default=4)
    fig = _figure(10, max(2.2, 0.32 * n + 1.6), left=0.3 + 0.065 * longest, bottom=1.0, top=0.35)
    ax = fig.add_subplot()
    left = [0.0] * n
    for name, values, color in parts:
        ax.barh(range(n), values, left=left, color=color, label=name, edgecolor="none")
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    fig.legend(fontsize=7, ncols=legend_cols, loc="lower center", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return svg(fig)


def memory_by_node(nodes: Sequence[Tuple[str, Dict[str, int]]], page_size: int) -> str:
    """Where the RAM of each node went: one stacked bar per node, memmap's rows in MiB."""
    kinds = [k for k in KIND_COLORS if k != "hole" and any(rows.get(k) for _, rows in nodes)]
    parts = [(k, [_mib(rows.get(k, 0), page_size) for _, rows in nodes], KIND_COLORS[k]) for k in kinds]
    return hbar_stacked([name for name, _ in nodes], parts, "MiB", legend_cols=6)


def rows_vs_counters(rows: Sequence[Tuple[str, int, Optional[int]]], page_size: int) -> str:
    """memmap's rows beside the kernel's counters (MiB, log scale)."""
    rows = [r for r in rows if r[1] or r[2]]
    fig = _figure(10, 3.4, left=0.7, bottom=1.0, top=0.2)
    ax = fig.add_subplot()
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [max(_mib(r[1], page_size), 1e-3) for r in rows], 0.4,
           color=[KIND_COLORS.get(r[0], "#777777") for r in rows], label="memmap row")
    ax.bar([i + 0.2 for i in x], [_mib(r[2], page_size) if r[2] is not None else 0 for r in rows], 0.4,
           color="none", edgecolor="black", hatch="//", label="kernel counter")
    ax.set_xticks(list(x), [r[0] for r in rows], rotation=35, ha="right", fontsize=8)
    ax.set_yscale("log")
    _plain_log(ax)
    ax.set_ylabel("MiB")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return svg(fig)


def physical_map(image: Any, kinds: Sequence[str], pfns_per_pixel: int, width: int,
                 marks: Sequence[Tuple[int, str]]) -> str:
    """
    Every PFN colored by kind: *image* (rows x *width* array of kind indices, -1 beyond the end) drawn with
    ``imshow``; *marks* (pixel row, label) name where each node and zone starts.
    """
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    rows = image.shape[0]
    longest = max((len(label) for _, label in marks), default=4)
    fig = _figure(10, min(14.0, max(2.5, rows / 96 + 1.4)), left=0.3 + 0.055 * longest, bottom=0.9, top=0.1)
    ax = fig.add_subplot()
    colors = ["#ffffff"] + [KIND_COLORS.get(k, "#777777") for k in kinds]
    cmap = ListedColormap(colors)
    ax.imshow(np.asarray(image) + 1, cmap=cmap, vmin=0, vmax=len(colors) - 1, aspect="auto",
              interpolation="nearest", resample=False)
    ax.set_xticks([])
    ticks = [r for r, _ in marks]
    ax.set_yticks(ticks, [label for _, label in marks], fontsize=7)
    for r in ticks:
        ax.axhline(r - 0.5, color="black", linewidth=0.6)
    ax.set_xlabel(f"{width} pixels per row, {pfns_per_pixel} PFN(s) per pixel (the most common kind)",
                  fontsize=8)
    present = sorted(set(int(v) for v in np.unique(image) if v >= 0))
    handles = [Patch(facecolor=KIND_COLORS.get(kinds[i], "#777777"), edgecolor="#999999", label=kinds[i])
               for i in present]
    fig.legend(handles=handles, fontsize=7, ncols=6, loc="lower center", frameon=False)
    return svg(fig)


def buddy_orders(zones: Sequence[Tuple[str, Sequence[int]]]) -> str:
    """Free blocks by buddy order, one group of bars per order, one bar per zone (log scale)."""
    fig = _figure(10, 3.0, left=0.7, bottom=0.5, top=0.15)
    ax = fig.add_subplot()
    n = max(1, len(zones))
    width = 0.8 / n
    orders = max((len(c) for _, c in zones), default=0)
    for i, (name, counts) in enumerate(zones):
        ax.bar([o - 0.4 + width * (i + 0.5) for o in range(len(counts))], [max(c, 0) for c in counts], width,
               label=name)
    ax.set_xticks(range(orders))
    ax.set_xlabel("order (block of 2^order pages)")
    ax.set_ylabel("free blocks")
    ax.set_yscale("symlog", linthresh=1)
    _plain_log(ax)
    ax.legend(fontsize=7, ncols=4, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return svg(fig)


def address_space(title: str, vmas: Sequence[Dict[str, Any]]) -> str:
    """
    One process's address space: its VMAs in address order along the x axis, each a stacked bar of
    resident (THP / hugetlb marked), swapped and empty pages (log scale); big gaps between VMAs are ticks.
    """
    n = len(vmas)
    fig = _figure(10, 3.2, left=0.7, bottom=1.15, top=0.35)
    ax = fig.add_subplot()
    x = list(range(n))
    small = [max(v["resident"] - v["huge"], 0) for v in vmas]
    huge = [v["huge"] for v in vmas]
    swapped = [v["swapped"] for v in vmas]
    empty = [max(v["pages"] - v["resident"] - v["swapped"], 0) for v in vmas]
    hug = ["hugetlb" if v["hugetlb"] else "" for v in vmas]
    ax.bar(x, small, 0.85, color="#1f77b4", label="resident")
    ax.bar(x, huge, 0.85, bottom=small, color="#ff7f0e", label="resident in THP / hugetlb (PMD, PUD)")
    b2 = [a + b for a, b in zip(small, huge, strict=True)]
    ax.bar(x, swapped, 0.85, bottom=b2, color="#e377c2", label="swapped")
    b3 = [a + b for a, b in zip(b2, swapped, strict=True)]
    ax.bar(x, empty, 0.85, bottom=b3, color="#dddddd", label="not resident")
    hx = [i for i, h in enumerate(hug) if h]
    if hx:
        ax.bar(hx, [vmas[i]["pages"] for i in hx], 0.85, color="none", edgecolor="#9467bd", hatch="xx",
               linewidth=0, label="hugetlb VMA")
    ax.set_yscale("symlog", linthresh=1)
    _plain_log(ax)
    ax.set_ylabel("pages")
    step = max(1, n // 12)
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks, [f"{vmas[i]['start']:#x}" for i in ticks], rotation=35, ha="right", fontsize=6)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_title(title, fontsize=10)
    fig.legend(fontsize=7, ncols=5, frameon=False, loc="lower center")
    return svg(fig)


def filecache_top(files: Sequence[Tuple[str, int, int, int]], page_size: int) -> str:
    """The largest cached files: (label, cached, dirty, evicted pages) as bars in MiB."""
    labels = [f[0] if len(f[0]) <= 60 else "…" + f[0][-59:] for f in files]
    parts = [
        ("clean", [_mib(f[1] - f[2], page_size) for f in files], "#8c564b"),
        ("dirty", [_mib(f[2], page_size) for f in files], "#d62728"),
        ("evicted (shadow / swap entries)", [_mib(f[3], page_size) for f in files], "#dddddd"),
    ]
    return hbar_stacked(labels, parts, "MiB", legend_cols=3)


def hugetlb_pools(pools: Sequence[Tuple[str, int, int]]) -> str:
    """Per (size, node): used and free huge pages."""
    labels = [p[0] for p in pools]
    parts = [("in use", [float(p[1] - p[2]) for p in pools], "#9467bd"),
             ("free", [float(p[2]) for p in pools], "#d5c4e6")]
    return hbar_stacked(labels, parts, "huge pages", legend_cols=2)


def swap_devices(devs: Sequence[Tuple[str, int, int]], page_size: int) -> str:
    """Per swap device: used and free (MiB)."""
    labels = [d[0] for d in devs]
    parts = [("used", [_mib(d[2], page_size) for d in devs], "#e377c2"),
             ("free", [_mib(d[1] - d[2], page_size) for d in devs], "#eeeeee")]
    return hbar_stacked(labels, parts, "MiB", legend_cols=2)


def batch_ram(dumps: Sequence[Tuple[str, Dict[str, int], int]]) -> str:
    """RAM by kind per dump (memmap's rows in MiB): (label, rows in pages, page size)."""
    kinds = [k for k in KIND_COLORS if k != "hole" and any(rows.get(k) for _, rows, _ in dumps)]
    parts = [(k, [_mib(rows.get(k, 0), ps) for _, rows, ps in dumps], KIND_COLORS[k]) for k in kinds]
    return hbar_stacked([d[0] for d in dumps], parts, "MiB", legend_cols=6)


def ensure() -> None:
    """Import matplotlib (with its SVG backend) or raise what to install."""
    try:
        import matplotlib  # noqa: F401
        import numpy  # noqa: F401
        from matplotlib.backends import backend_svg  # noqa: F401
    except ImportError as e:
        from drgn_ptwalk.errors import MissingDependencyError

        raise MissingDependencyError(
            f"the report needs matplotlib and numpy ({e.name} is missing): pip install 'drgn-ptwalk[report]' "
            "(Debian: apt install python3-matplotlib python3-numpy)") from None
