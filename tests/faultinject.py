# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Fault injection: corrupt page tables, ``mm_struct`` fields and the VMA tree
of a real dump through a drgn memory overlay, then check that
:func:`~drgn_ptwalk.walk.pt_range_walk` and the procfs views survive.

The overlay (:class:`Overlay`) registers, once per page it may corrupt, a
physical memory segment and a virtual one (the page's direct-map address)
whose read function returns the page's patched bytes if the current case
patched it, else its original bytes (drgn gives later segments precedence).
Swapping cases is then a dictionary update: one :class:`drgn.Program` serves
thousands of cases.

A case (:class:`Case`) is a list of patches plus what to run (a walk of a
range, and for some cases maps/smaps/smaps_rollup/pagemap of the task) and
what must be seen. Each case is bounded in time (``SIGALRM``); its outcome
is one of:

* ``ok``: everything returned, the invariants hold (entries in order,
  covering the walked range, FOLIO PFNs within the memmap, ERROR entries
  with a level, a range and a reason) and every expected report is there
  (a table beyond RAM, a huge bit on a level that cannot have one, a table
  pointing at one of its ancestors: an ERROR entry with the level and the
  address range);
* ``crash``: an exception escaped (other than a documented one: ArgumentError
  for bad arguments we passed on purpose, NoMmError for no mm);
* ``hang``: over the deadline (or a runaway output of more than
  :data:`MAX_ENTRIES` entries);
* ``invariant``: output that breaks the invariants above;
* ``unreported``: an expected ERROR entry is missing.

A test helper (``tests/test_corruption.py`` runs it), not part of the installed package. Run as
``python tests/faultinject.py -c CORE -s VMLINUX --pids P,... [--cases N] [--seed S] [--case I]``;
``--case I`` replays one case with its traceback.
"""

import argparse
import collections
import random
import signal
import struct
import sys
import time
import traceback
import warnings
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from drgn import FaultError, Object, Program, offsetof, sizeof
from drgn.helpers.linux.mm import for_each_vma, phys_to_virt, virt_to_phys
from drgn.helpers.linux.pid import find_task

from drgn_ptwalk.arch import TABLE, ArchDecoder, get_decoder
from drgn_ptwalk.entry import PtType
from drgn_ptwalk.errors import ArgumentError, PtWalkError
from drgn_ptwalk.page import highest_memmap_pfn
from drgn_ptwalk.program import open_program

__all__ = ("Case", "FaultInjector", "Overlay", "Result", "Summary")

_U64 = (1 << 64) - 1
_Q = struct.Struct("<Q")
DEADLINE = 5.0
"""Seconds a case may take."""
MAX_ENTRIES = 2_000_000
"""More entries than this from one walk of a reference task is a runaway."""


class Overlay:
    """
    Page-granular, swappable overlay of a program's memory.

    :meth:`track` a page once (two memory segments); :meth:`patch` bytes of
    tracked pages for a case; :meth:`reset` returns to the original bytes.
    """

    def __init__(self, prog: Program, page_size: int) -> None:
        self.prog = prog
        self.ps = page_size
        self.orig: Dict[int, bytes] = {}
        self.patched: Dict[int, bytearray] = {}
        self.reads = 0

    def _reader(self, page: int) -> Callable[[int, int, int, bool], bytes]:
        orig = self.orig[page]
        patched = self.patched

        def read(address: int, count: int, offset: int, physical: bool) -> bytes:
            self.reads += 1
            data = patched.get(page)
            if data is None:
                data = orig
            return bytes(data[offset : offset + count])

        return read

    def track(self, phys: int) -> int:
        """Overlay the page holding physical address *phys*; returns the page address."""
        page = phys - phys % self.ps
        if page in self.orig:
            return page
        data = self.prog.read(page, self.ps, True)
        self.orig[page] = data
        read = self._reader(page)
        self.prog.add_memory_segment(page, self.ps, read, True)
        virt = phys_to_virt(self.prog, page).value_()
        self.prog.add_memory_segment(virt, self.ps, read, False)
        return page

    def track_virt(self, virt: int, size: int = 1) -> None:
        """Overlay the (direct-mapped) pages of ``[virt, virt + size)``."""
        a = virt - virt % self.ps
        while a < virt + size:
            self.track(virt_to_phys(self.prog, a).value_())
            a += self.ps

    def patch(self, phys: int, data: bytes) -> None:
        """Patch *data* at physical address *phys* (may not cross a page)."""
        page = self.track(phys)
        off = phys - page
        assert off + len(data) <= self.ps, "patch crosses a page"
        buf = self.patched.get(page)
        if buf is None:
            buf = self.patched[page] = bytearray(self.orig[page])
        buf[off : off + len(data)] = data

    def patch_virt(self, virt: int, data: bytes) -> None:
        """Patch *data* at direct-mapped virtual address *virt* (split at pages)."""
        i = 0
        while i < len(data):
            n = min(len(data) - i, self.ps - (virt + i) % self.ps)
            self.patch(virt_to_phys(self.prog, virt + i).value_(), data[i : i + n])
            i += n

    def reset(self) -> None:
        self.patched.clear()


class Table(NamedTuple):
    """One page-table page of a task, as found in the unpatched dump."""

    pid: int
    phys: int
    depth: int
    base: int
    """First address the table maps."""
    parent: Optional[int]
    """Index (in the target's table list) of the parent table."""
    slot: Optional[int]
    """Slot of the parent that points here."""
    values: Tuple[int, ...]


class Expect(NamedTuple):
    """An ERROR entry that must be seen: *level* over ``[start, end)``."""

    level: int
    start: int
    end: int
    why: str


class Case(NamedTuple):
    index: int
    kind: str
    pid: int
    desc: str
    patches: Tuple[Tuple[str, int, bytes], ...]
    """``("phys"|"virt", address, bytes)``."""
    walk: Optional[Tuple[int, int]]
    """Range for :func:`pt_range_walk` (None: whole mm)."""
    procfs: bool
    expect: Tuple[Expect, ...] = ()
    value_error: bool = False
    """The walk range is bad on purpose: ArgumentError is the documented answer."""
    views: bool = False


class Result(NamedTuple):
    case: Case
    outcome: str
    detail: str
    errors: int
    """ERROR entries and procfs warnings reported."""
    seconds: float


class Summary:
    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: Dict[str, int] = collections.Counter()
        self.kinds: Dict[str, Dict[str, int]] = collections.defaultdict(collections.Counter)
        self.errors_reported = 0
        self.warnings = 0
        self.failures: List[Result] = []
        self.slowest: Optional[Result] = None
        self.seconds = 0.0

    def add(self, r: Result) -> None:
        self.counts[r.outcome] += 1
        self.kinds[r.case.kind][r.outcome] += 1
        self.errors_reported += r.errors
        if r.outcome != "ok":
            self.failures.append(r)
        if self.slowest is None or r.seconds > self.slowest.seconds:
            self.slowest = r

    @property
    def cases(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        c = self.counts
        return (
            f"{self.name}: cases={self.cases} crashes={c['crash']} hangs={c['hang']} "
            f"invariant={c['invariant']} unreported={c['unreported']} "
            f"errors_reported={self.errors_reported} time={self.seconds:.1f}s "
            f"slowest={self.slowest.seconds if self.slowest else 0:.2f}s"
        )

    def report(self, max_failures: int = 40) -> str:
        out = [self.line()]
        for kind in sorted(self.kinds):
            out.append(f"  {kind:<22} " + " ".join(f"{k}={v}" for k, v in sorted(self.kinds[kind].items())))
        seen: Dict[Tuple[str, str, str], int] = collections.Counter()
        shown = 0
        for r in self.failures:
            key = (r.outcome, r.case.kind, r.detail.split("\n")[0][:80])
            seen[key] += 1
            if seen[key] > 2 or shown >= max_failures:
                continue
            shown += 1
            out.append(f"  FAIL #{r.case.index} {r.outcome} [{r.case.kind}] {r.case.desc}\n      {r.detail}")
        return "\n".join(out)


class _Deadline(BaseException):
    pass


def _alarm(signum, frame):
    raise _Deadline()


def _entry_level_ok(dec: ArchDecoder, level) -> bool:
    return level in {lvl for lvl, _, _ in dec.levels}


class FaultInjector:
    """
    Generates and runs the cases for one program.

    :param prog: a program opened on a reference dump (it gets overlay
        segments: do not share it with other tests)
    :param pids: the workload PIDs to corrupt
    """

    def __init__(self, prog: Program, pids: List[int], seed: int = 0, name: str = "") -> None:
        self.prog = prog
        self.dec = get_decoder(prog)
        self.ps = self.dec.page_size
        self.rng = random.Random(seed)
        self.seed = seed
        self.name = name
        self.overlay = Overlay(prog, self.ps)
        self.highest = highest_memmap_pfn(prog)
        self.max_pfn = prog["max_pfn"].value_()
        self.tasks: Dict[int, Object] = {}
        self.tables: Dict[int, List[Table]] = {}
        self.vmas: Dict[int, List[Tuple[int, int, int]]] = {}
        self.nodes: Dict[int, List[Tuple[int, int, Optional[int]]]] = {}
        self.mm_layout = {
            "pgd": offsetof(prog.type("struct mm_struct"), "pgd"),
            "task_size": offsetof(prog.type("struct mm_struct"), "task_size"),
            "ma_root": offsetof(prog.type("struct mm_struct"), "mm_mt.ma_root"),
        }
        vt = prog.type("struct vm_area_struct")
        self.vma_fields = {
            f: (offsetof(vt, f), sizeof(vt.member(f).type))
            for f in ("vm_start", "vm_end", "vm_flags", "vm_file", "vm_mm", "vm_pgoff", "anon_vma")
            if vt.has_member(f)
        }
        self.node_size = sizeof(prog.type("struct maple_node"))
        self.user_end = self.dec.user_range()[1]
        for pid in pids:
            self._discover(pid)
        self.pids = [p for p in pids if p in self.tables]
        self.hangs_by_kind: Dict[str, int] = collections.Counter()

    # Discovery of what to corrupt (unpatched memory).
    def _discover(self, pid: int) -> None:
        prog, dec = self.prog, self.dec
        task = find_task(prog, pid)
        if not task or not task.mm:
            return
        mm = task.mm.read_()
        self.tasks[pid] = task
        root, root_phys = dec.root(mm)
        root_pa = root if root_phys else virt_to_phys(prog, root).value_()
        tables: List[Table] = []
        task_size = mm.task_size.value_()
        pte_depth = len(dec.levels) - 1

        def rec(pa: int, depth: int, base: int, parent: Optional[int], slot: Optional[int]) -> None:
            level, shift, n = dec.levels[depth]
            try:
                vals = struct.unpack(f"<{n}Q", prog.read(pa, n * 8, True))
            except FaultError:
                return
            idx = len(tables)
            tables.append(Table(pid, pa, depth, base, parent, slot, vals))
            if depth == pte_depth:
                return
            for i, v in enumerate(vals):
                a = base + (i << shift)
                if a >= task_size:
                    break
                if dec.kind(v, depth) == TABLE:
                    rec(dec.table_addr(v), depth + 1, a, idx, i)

        rec(root_pa, 0, 0, None, None)
        self.tables[pid] = tables
        for t in tables:
            self.overlay.track(t.phys)
        self.vmas[pid] = [(v.value_(), v.vm_start.value_(), v.vm_end.value_()) for v in for_each_vma(mm)]
        for addr, _, _ in self.vmas[pid]:
            self.overlay.track_virt(addr, sizeof(prog.type("struct vm_area_struct")))
        self.overlay.track_virt(mm.value_(), sizeof(mm.type_.type))
        # Maple nodes: (encoded entry, node address, parent node index).
        nodes: List[Tuple[int, int, Optional[int]]] = []
        root_entry = mm.mm_mt.ma_root.value_()
        queue = collections.deque([(root_entry, None)])
        while queue and len(nodes) < 10000:
            enc, parent = queue.popleft()
            if not (enc & 3 == 2 and enc > 4096):  # xa_is_node()
                continue
            node = enc & ~0xFF
            typ = (enc >> 3) & 0xF
            idx = len(nodes)
            nodes.append((enc, node, parent))
            self.overlay.track_virt(node, self.node_size)
            if typ == 1:  # leaf
                continue
            m = Object(prog, "struct maple_node *", node)
            slots = m.ma64.slot if typ == 3 else m.mr64.slot
            for s in slots:
                v = s.value_()
                if v:
                    queue.append((v, idx))
        self.nodes[pid] = nodes

    # Entry encoding helpers.
    def _encode_addr(self, pa: int) -> int:
        dec = self.dec
        if hasattr(dec, "pte_pfn_mask"):  # x86-64
            return pa & dec.pte_pfn_mask
        v = pa & dec.pa_low_mask
        if dec.pa_high_mask:
            v |= (pa >> dec.pa_high_shift) & dec.pa_high_mask
        return v

    def _addr_mask(self) -> int:
        dec = self.dec
        if hasattr(dec, "pte_pfn_mask"):
            return dec.pte_pfn_mask
        return dec.pa_low_mask | dec.pa_high_mask

    def _table_entry(self, pa: int) -> int:
        """A valid table descriptor pointing at *pa*."""
        if hasattr(self.dec, "pte_pfn_mask"):
            return self._encode_addr(pa) | 0x67  # PRESENT|RW|USER|ACCESSED|DIRTY
        return self._encode_addr(pa) | 0x3  # VALID|TABLE

    def _beyond_ram_pa(self) -> int:
        rng = self.rng
        phys_bits = 46 if hasattr(self.dec, "pte_pfn_mask") else 48
        choice = rng.random()
        if choice < 0.4:
            pfn = self.max_pfn + rng.randrange(1, 1 << 16)
        elif choice < 0.7:
            pfn = self.highest + 1 + rng.randrange(0, 1 << 20)
        else:
            pfn = rng.randrange(self.max_pfn + 1, 1 << (phys_bits - self.dec.page_shift))
        return pfn << self.dec.page_shift

    # Case generation.
    def _slot_range(self, t: Table, i: int) -> Tuple[int, int]:
        _, shift, _ = self.dec.levels[t.depth]
        return t.base + (i << shift), t.base + ((i + 1) << shift)

    def _table_range(self, t: Table) -> Tuple[int, int]:
        _, shift, n = self.dec.levels[t.depth]
        return t.base, min(t.base + (n << shift), self._task_size(t.pid))

    def _task_size(self, pid: int) -> int:
        return min(self.tasks[pid].mm.task_size.value_(), self.user_end)

    def _user_slots(self, t: Table) -> int:
        _, shift, n = self.dec.levels[t.depth]
        ts = self._task_size(t.pid)
        return min(n, max(1, (ts - t.base + (1 << shift) - 1) >> shift))

    def _pick_slot(self, t: Table) -> int:
        rng = self.rng
        nslots = self._user_slots(t)
        used = [i for i, v in enumerate(t.values[:nslots]) if v]
        if used and rng.random() < 0.75:
            return rng.choice(used)
        return rng.randrange(nslots)

    def _table_case(self, index: int, pid: int) -> Case:
        rng, dec = self.rng, self.dec
        tables = self.tables[pid]
        pte_depth = len(dec.levels) - 1
        # Upper levels are few: weight them up.
        by_depth: Dict[int, List[Table]] = collections.defaultdict(list)
        for t in tables:
            by_depth[t.depth].append(t)
        t = rng.choice(by_depth[rng.choice(sorted(by_depth))])
        level = dec.levels[t.depth][0]
        upper = t.depth < pte_depth
        kinds = ["bitflip", "random", "pfn_beyond_ram", "fill_random", "swap_garbage", "zero"]
        if upper:
            kinds += ["table_beyond_ram", "self_loop", "parent_loop", "huge_bad_level", "cross_level", "fill_same"]
        else:
            kinds += ["leaf_bad_bits"]
        kind = rng.choice(kinds)
        i = self._pick_slot(t)
        old = t.values[i]
        sa, sb = self._slot_range(t, i)
        new: Optional[int] = None
        page: Optional[bytes] = None
        expect: List[Expect] = []
        child_level = dec.levels[t.depth + 1][0] if upper else None
        if kind == "bitflip":
            new = old
            for _ in range(rng.randint(1, 3)):
                new ^= 1 << rng.randrange(64)
        elif kind == "random":
            new = rng.getrandbits(64)
        elif kind == "zero":
            new = 0
        elif kind == "pfn_beyond_ram":
            base = old or (self._table_entry(0) if upper else self._table_entry(0) | 0)
            new = (base & ~self._addr_mask() & _U64) | self._encode_addr(self._beyond_ram_pa())
        elif kind == "table_beyond_ram":
            new = self._table_entry(self._beyond_ram_pa())
            expect.append(Expect(child_level, sa, sb, "table beyond RAM"))
        elif kind == "self_loop":
            new = self._table_entry(t.phys)
            expect.append(Expect(child_level, sa, sb, "table points at itself"))
        elif kind == "parent_loop":
            anc = tables[t.parent] if t.parent is not None else t
            # Any ancestor, the root most often.
            chain = [t]
            while chain[-1].parent is not None:
                chain.append(tables[chain[-1].parent])
            anc = rng.choice(chain)
            new = self._table_entry(anc.phys)
            expect.append(Expect(child_level, sa, sb, f"table points at its depth-{anc.depth} ancestor"))
        elif kind == "huge_bad_level":
            new = self._huge_bad(old, t.depth)
            if new is None:
                kind = "huge_ok_level"
                new = self._huge_ok(old, t.depth)
            else:
                expect.append(Expect(level, sa, sb, "huge bit on a level that cannot have one"))
        elif kind == "cross_level":
            others = [o for o in tables if o.depth != t.depth + 1 and o.phys != t.phys]
            o = rng.choice(others) if others else t
            new = self._table_entry(o.phys)
        elif kind == "swap_garbage":
            new = self._swap_garbage(t.depth)
        elif kind == "leaf_bad_bits":
            new = self._leaf_bad_bits(old)
        elif kind == "fill_random":
            n = dec.levels[t.depth][2]
            page = bytes(rng.getrandbits(8) for _ in range(n * 8))
        elif kind == "fill_same":
            # Every user slot points at one child: a DAG no kernel builds.
            child = [o for o in tables if o.parent is not None and tables[o.parent] is t]
            v = self._table_entry(rng.choice(child).phys) if child else self._table_entry(t.phys)
            n = dec.levels[t.depth][2]
            nslots = self._user_slots(t)
            vals = [v] * nslots + list(t.values[nslots:])
            page = struct.pack(f"<{n}Q", *vals)
        patches: List[Tuple[str, int, bytes]]
        if page is not None:
            patches = [("phys", t.phys, page)]
            desc = f"pid {pid} {level.name} table {t.phys:#x} (va {t.base:#x}): {kind}"
        else:
            new &= _U64  # type: ignore[operator]
            patches = [("phys", t.phys + 8 * i, _Q.pack(new))]
            desc = (
                f"pid {pid} {level.name} table {t.phys:#x} slot {i} (va {sa:#x}-{sb:#x}): "
                f"{old:#x} -> {new:#x} ({kind})"
            )
        lo, hi = self._table_range(t)
        if rng.random() < 0.05:
            lo, hi = 0, self._task_size(pid)  # now and then the whole mm
        return Case(
            index, kind, pid, desc, tuple(patches), (lo, hi), procfs=rng.random() < 0.02,
            expect=tuple(e for e in expect if e.start < hi and e.end > lo), views=rng.random() < 0.1,
        )

    def _huge_bad(self, old: int, depth: int) -> Optional[int]:
        dec = self.dec
        if hasattr(dec, "pte_pfn_mask"):
            # x86-64: PSE only at PMD and PUD (pgd_bad()/p4d_bad()).
            if depth <= len(dec.levels) - 4:
                return (old or self._table_entry(0x1000)) | 0x80 | 1
            return None
        # arm64: a block descriptor (bits 1:0 = 01) where no block exists.
        if depth not in dec._block_depths and depth != dec._pte_depth:
            return ((old or self._table_entry(0x1000)) & ~0x3) | 0x1
        return None

    def _huge_ok(self, old: int, depth: int) -> int:
        if hasattr(self.dec, "pte_pfn_mask"):
            return (old or self._table_entry(0)) | 0x81
        return ((old or self._table_entry(0)) & ~0x3) | 0x1

    def _swap_garbage(self, depth: int) -> int:
        rng = self.rng
        v = rng.getrandbits(64)
        if hasattr(self.dec, "pte_pfn_mask"):
            return v & ~(1 | 0x100 | 0x80)  # !PRESENT, !PROTNONE, !PSE
        return v & ~(1 | (1 << 11) | (1 << 58) | (1 << 59))  # !VALID, !present-invalid

    def _leaf_bad_bits(self, old: int) -> int:
        rng = self.rng
        if hasattr(self.dec, "pte_pfn_mask"):
            # Reserved bits above the physical address, PAT, protection keys.
            return (old | 1) | (rng.getrandbits(12) << 52)
        # 0b01 at the PTE level is reserved.
        return ((old or 0x403) & ~0x3) | 0x1

    def _mm_case(self, index: int, pid: int) -> Case:
        rng = self.rng
        mm = self.tasks[pid].mm.value_()
        kinds = ["mm_pgd", "mm_task_size", "mm_ma_root", "maple_node_bits", "maple_node_random",
                 "maple_node_loop", "maple_pivots", "vma_field", "vma_range"]
        kind = rng.choice(kinds)
        patches: List[Tuple[str, int, bytes]] = []
        nodes = self.nodes[pid]
        vmas = self.vmas[pid]
        lay = self.mm_layout
        if kind == "mm_pgd":
            val = rng.choice([
                0, rng.getrandbits(64), 0x8000000000000000 | rng.getrandbits(40), rng.getrandbits(47) & ~0xFFF,
                self.tasks[pid].mm.pgd.value_() + rng.choice([8, 0x800, 0x1000, -0x1000]),
                mm, phys_to_virt(self.prog, self._beyond_ram_pa()).value_(),
                phys_to_virt(self.prog, rng.choice(self.tables[pid]).phys).value_(),
            ]) & _U64
            patches.append(("virt", mm + lay["pgd"], _Q.pack(val)))
            desc = f"pid {pid} mm {mm:#x} ->pgd = {val:#x}"
        elif kind == "mm_task_size":
            val = rng.choice([0, 1, rng.getrandbits(64), _U64, self.user_end + 0x1000, 0x1234567]) & _U64
            patches.append(("virt", mm + lay["task_size"], _Q.pack(val)))
            desc = f"pid {pid} mm {mm:#x} ->task_size = {val:#x}"
        elif kind == "mm_ma_root":
            choices = [0, rng.getrandbits(64), (mm + lay["ma_root"]) | 2, mm | 2 | (1 << 3)]
            if nodes:
                choices.append(rng.choice(nodes)[0])
                choices.append((rng.choice(nodes)[1]) | 2 | (rng.randrange(16) << 3))
            val = rng.choice(choices) & _U64
            patches.append(("virt", mm + lay["ma_root"], _Q.pack(val)))
            desc = f"pid {pid} mm {mm:#x} ->mm_mt.ma_root = {val:#x}"
        elif kind.startswith("maple") and nodes:
            j = rng.randrange(len(nodes))
            enc, node, parent = nodes[j]
            if kind == "maple_node_bits":
                off = rng.randrange(self.node_size // 8) * 8
                cur = _Q.unpack(self.prog.read(node + off, 8))[0]
                val = cur ^ (1 << rng.randrange(64))
                patches.append(("virt", node + off, _Q.pack(val)))
                desc = f"pid {pid} maple node {node:#x} +{off:#x}: {cur:#x} -> {val:#x}"
            elif kind == "maple_node_random":
                data = bytes(rng.getrandbits(8) for _ in range(self.node_size))
                patches.append(("virt", node, data))
                desc = f"pid {pid} maple node {node:#x}: random bytes"
            elif kind == "maple_node_loop":
                # A slot pointing back at this node or its parent.
                target = nodes[parent][0] if parent is not None and rng.random() < 0.5 else enc
                typ = (enc >> 3) & 0xF
                nslots = 10 if typ == 3 else 16
                pivots = 9 if typ == 3 else 15
                slot = rng.randrange(nslots)
                off = 8 + 8 * pivots + 8 * slot  # parent, pivot[], slot[]
                patches.append(("virt", node + off, _Q.pack(target)))
                desc = f"pid {pid} maple node {node:#x} slot {slot} -> {target:#x} (loop)"
            else:
                typ = (enc >> 3) & 0xF
                pivots = 9 if typ == 3 else 15
                vals = [rng.getrandbits(rng.choice([8, 48, 64])) for _ in range(pivots)]
                patches.append(("virt", node + 8, struct.pack(f"<{pivots}Q", *vals)))
                desc = f"pid {pid} maple node {node:#x}: random pivots"
        elif kind.startswith("maple"):
            return self._table_case(index, pid)
        elif kind == "vma_field":
            addr, vs, ve = rng.choice(vmas)
            field = rng.choice(sorted(self.vma_fields))
            off, size = self.vma_fields[field]
            val = rng.choice([0, rng.getrandbits(size * 8), (1 << (size * 8)) - 1, 0xDEAD000])
            patches.append(("virt", addr + off, val.to_bytes(size, "little")))
            desc = f"pid {pid} vma {addr:#x} ({vs:#x}-{ve:#x}) ->{field} = {val:#x}"
        else:  # vma_range
            addr, vs, ve = rng.choice(vmas)
            so, _ = self.vma_fields["vm_start"]
            eo, _ = self.vma_fields["vm_end"]
            a, b = rng.choice([
                (ve, vs), (vs, vs), (vs | 0x123, ve), (1 << 60, ve), (vs, 1 << 63), (vs, _U64 & ~0xFFF),
                (0, 1 << 47), (vs - (1 << 30), ve + (1 << 30)),
            ])
            a &= _U64
            b &= _U64
            patches.append(("virt", addr + so, _Q.pack(a)))
            patches.append(("virt", addr + eo, _Q.pack(b)))
            desc = f"pid {pid} vma {addr:#x} ({vs:#x}-{ve:#x}) -> [{a:#x}, {b:#x})"
        return Case(index, kind, pid, desc, tuple(patches), None, procfs=True, views=True)

    def _range_case(self, index: int, pid: int) -> Case:
        rng, dec = self.rng, self.dec
        ulo, uhi = dec.user_range()
        klo, khi = dec.kernel_range()
        ps = self.ps
        canon_user_end = (1 << (dec.va_bits - 1)) if hasattr(dec, "pte_pfn_mask") else uhi
        bad = [
            (canon_user_end, canon_user_end + ps),
            (canon_user_end - ps, canon_user_end + ps),
            (1 << 63, (1 << 63) + ps),
            (uhi, uhi + ps),
            (klo - ps, klo),
            (0x1000, 0x1000),
            (0x2000, 0x1000),
            (0x1001, 0x2000),
            (-4096, 0),
            (0, (1 << 64) + 4096),
            (rng.getrandbits(64) & ~(ps - 1), rng.getrandbits(64) & ~(ps - 1)),
        ]
        a, b = rng.choice(bad)
        canonical = (0 <= a < canon_user_end and a < b <= canon_user_end) or (klo <= a < b <= khi)
        if not canonical or a % ps or b % ps:
            return Case(index, "noncanonical_range", pid, f"pid {pid} pt_range_walk(mm, {a:#x}, {b:#x})",
                        (), (a, b), procfs=False, value_error=True)
        return Case(index, "kernel_range", pid, f"pid {pid} pt_range_walk(mm, {a:#x}, {b:#x})", (), (a, b),
                    procfs=False)

    def make_case(self, index: int) -> Case:
        rng = random.Random(f"{self.seed}:{index}")
        self.rng = rng
        pid = rng.choice(self.pids)
        r = rng.random()
        if r < 0.025:
            return self._mm_case(index, pid)
        if r < 0.04:
            return self._range_case(index, pid)
        return self._table_case(index, pid)

    # Running.
    def run_case(self, case: Case, deadline: float = DEADLINE, reraise: bool = False) -> Result:
        from drgn_ptwalk.walk import pt_range_walk

        ov = self.overlay
        ov.reset()
        for space, addr, data in case.patches:
            if space == "phys":
                ov.patch(addr, data)
            else:
                ov.patch_virt(addr, data)
        task = self.tasks[case.pid]
        errors = 0
        t0 = time.monotonic()
        outcome, detail = "ok", ""
        stage = "walk"
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, deadline)
        try:
            try:
                mm = task.mm
                lo, hi = case.walk if case.walk is not None else (None, None)
                entries = None
                try:
                    entries = pt_range_walk(mm, lo, hi)
                    if case.value_error:
                        list(entries)
                        raise AssertionError(f"no ArgumentError for bad range [{lo:#x}, {hi:#x})")
                except PtWalkError as e:
                    # Documented: the VMA tree is corrupt; it must say where.
                    if not (isinstance(e.address, int) and e.level and e.reason):
                        raise AssertionError(f"PtWalkError without address/level: {e!r}") from e
                    errors += 1
                    entries = None
                except ArgumentError as e:
                    if not case.value_error:
                        raise
                    if "0x" not in str(e):
                        raise AssertionError(f"ArgumentError without an address: {e}") from e
                    entries = None
                if entries is not None:
                    errors += self._check_walk(case, entries, lo, hi)
                if case.procfs:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        errors += self._procfs(case, task, mm)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
        except _Deadline:
            outcome, detail = "hang", f"over {deadline:.1f} s in walk"
        except _Runaway as e:
            outcome, detail = "hang", f"runaway walk: {e}"
        except _Invariant as e:
            outcome, detail = "invariant", f"walk: {e}"
        except _Unreported as e:
            outcome, detail = "unreported", str(e)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: B902 - everything else is a crash
            if isinstance(e, _Stage):
                stage = e.args[0]
                e = e.__cause__  # type: ignore[assignment]
            if isinstance(e, _Deadline):
                outcome, detail = "hang", f"over {deadline:.1f} s in {stage}"
            else:
                if reraise:
                    raise e
                tb = traceback.extract_tb(e.__traceback__)
                where = next(
                    (f"{f.filename.rsplit('/', 2)[-2]}/{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}"
                     for f in reversed(tb) if "faultinject" not in f.filename),
                    "?",
                )
                msg = str(e).splitlines()[0] if str(e) else ""
                outcome, detail = "crash", f"{stage}: {type(e).__name__}: {msg} at {where}"
        finally:
            ov.reset()
        if outcome == "hang":
            self.hangs_by_kind[case.kind] += 1
        return Result(case, outcome, detail, errors, time.monotonic() - t0)

    def _procfs(self, case: Case, task: Object, mm: Object) -> int:
        from drgn_ptwalk.procfs import maps
        from drgn_ptwalk.procfs.pagemap import pagemap
        from drgn_ptwalk.procfs.smaps import format_smaps, format_smaps_rollup, smaps_gather

        n = 0
        for stage in ("maps", "smaps", "pagemap"):
            try:
                if stage == "maps":
                    maps(task)
                elif stage == "smaps":
                    r = smaps_gather(mm)
                    n += len(r.warnings)
                    format_smaps(self.prog, r)
                    format_smaps_rollup(self.prog, r)
                else:
                    for _, vs, ve in self.vmas[case.pid][:4]:
                        pagemap(task, vs, min(ve, vs + 512 * self.ps))
            except PtWalkError as e:
                if not (isinstance(e.address, int) and e.level and e.reason):
                    raise _Stage(stage) from e
                n += 1
            except BaseException as e:  # noqa: B902
                raise _Stage(stage) from e
        return n

    def _check_walk(self, case: Case, entries, lo: Optional[int], hi: Optional[int]) -> int:
        dec = self.dec
        highest = self.highest
        ERROR, FOLIO = PtType.ERROR, PtType.FOLIO
        pos = lo
        n = 0
        errs: List[Any] = []
        views = case.views
        for e in entries:
            n += 1
            if n > MAX_ENTRIES:
                raise _Runaway(f"more than {MAX_ENTRIES} entries")
            if pos is not None and e.start != pos:
                raise _Invariant(f"entry {e!r} does not start at {pos:#x} (gap or overlap)")
            if not e.start < e.end:
                raise _Invariant(f"empty or reversed entry {e!r}")
            pos = e.end
            t = e.type
            if t == ERROR:
                errs.append(e)
                if not _entry_level_ok(dec, e.level) or not e.reason:
                    raise _Invariant(f"ERROR entry without a level or a reason: {e!r}")
            elif t == FOLIO and (e.pfn is None or e.pfn > highest):
                raise _Invariant(f"FOLIO entry beyond the memmap (highest PFN {highest:#x}): {e!r}")
            elif not _entry_level_ok(dec, e.level):
                raise _Invariant(f"entry with a level this arch has not: {e!r}")
            if views and n <= 2000:
                repr(e)
                e.flags  # noqa: B018 (the property is computed: it must not raise)
                e.as_dict()
                e.raws  # noqa: B018 (the property is computed: it must not raise)
        if hi is not None and pos is not None and pos != hi and case.walk is not None and not case.value_error:
            raise _Invariant(f"walk ended at {pos:#x}, not {hi:#x}")
        for x in case.expect:
            lvl = x.level
            a, b = max(x.start, lo if lo is not None else 0), min(x.end, hi if hi is not None else x.end)
            covered = a
            for e in errs:
                if e.level == lvl and e.start <= covered < e.end:
                    covered = e.end
            if covered < b:
                got = ", ".join(repr(e) for e in errs[:3]) or "no ERROR entry"
                raise _Unreported(
                    f"expected ERROR at {lvl.name} over {a:#x}-{b:#x} ({x.why}); got {got}"
                )
        return len(errs)

    def run(self, n: int, log: Callable[[str], None] = lambda s: None, first: int = 0) -> Summary:
        s = Summary(self.name)
        t0 = time.monotonic()
        for i in range(first, first + n):
            case = self.make_case(i)
            # After 3 hangs of one kind, later cases of that kind get 1 s
            # (and still count as hangs if over it): a broken build then
            # fails in minutes, not hours.
            dl = DEADLINE if self.hangs_by_kind[case.kind] < 3 else 1.0
            r = self.run_case(case, dl)
            s.add(r)
            if r.outcome != "ok":
                log(f"#{i} {r.outcome} [{case.kind}] {case.desc}: {r.detail}")
        s.seconds = time.monotonic() - t0
        return s


class _Stage(Exception):
    """Which procfs view failed (the cause is the exception)."""


class _Invariant(Exception):
    pass


class _Unreported(Exception):
    pass


class _Runaway(Exception):
    pass


def open_dump(core: str, vmlinux: str, arch: Optional[str] = None) -> Program:
    """A fresh program on a dump (the overlay changes it: do not share it)."""
    return open_program(core, symbols=[vmlinux], architecture=arch)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/faultinject.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--core", required=True)
    p.add_argument("-s", "--symbols", required=True)
    p.add_argument("--architecture")
    p.add_argument("--pids", required=True, help="comma-separated PIDs to corrupt")
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--case", type=int, help="replay one case (traceback on crash)")
    args = p.parse_args(argv)
    prog = open_dump(args.core, args.symbols, args.architecture)
    fi = FaultInjector(prog, [int(x) for x in args.pids.split(",")], seed=args.seed, name=args.core)
    if args.case is not None:
        case = fi.make_case(args.case)
        print(case.desc)
        r = fi.run_case(case, reraise=True)
        print(r.outcome, r.detail, f"errors={r.errors} {r.seconds:.2f}s")
        return 0 if r.outcome == "ok" else 1
    s = fi.run(args.cases, log=lambda m: print(m, file=sys.stderr))
    print(s.report())
    return 0 if s.cases == s.counts["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
