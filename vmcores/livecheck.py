# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the live tests judge, shared by ``tests/test_live.py`` (a guest over QMP) and the in-guest check
(``vmcores/guest/inguest/check.py``, on the guest's /proc/kcore, which ships this file): the report of a
differing /proc file, and the rule for a walk of ``workload churn`` (each page churn writes starts with
its own address, so a page a walk reports at an address must hold that address, or zero, or have been
unmapped since). Only drgn and drgn_ptwalk are imported, lazily: the guest has nothing else.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import List, Set, Tuple

# workload.c: churn's slot i is at CHURN_BASE + i * CHURN_STRIDE.
CHURN_BASE, CHURN_STRIDE, CHURN_SLOTS = 0x200000000000, 8 << 20, 64
CHURN_LO, CHURN_HI = CHURN_BASE, CHURN_BASE + CHURN_SLOTS * CHURN_STRIDE


def first_difference(want: str, got: str) -> str:
    """The first differing line, with the VMA line above it: enough to tell what changed from a CI log."""
    a, b = want.splitlines(), got.splitlines()
    head = ""
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "<end>"
        y = b[i] if i < len(b) else "<end>"
        if x != y:
            return f"under {head!r}: kernel {x!r}, ours {y!r}"
        if x[:1].isalnum() and "-" in x.split(" ")[0] and not x.endswith(" kB"):
            head = x
    return "same lines, other bytes"


def page_word(prog, pfn: int, page_size: int, k: int) -> int:
    """First word of page k of the folio at pfn (physical read)."""
    return int.from_bytes(prog.read((pfn + k) * page_size, 8, True), "little")


def still_misreported(mm, addr: int, pfn: int, prog, page_size: int, tries: int = 3) -> bool:
    """Whether the page table keeps mapping pfn at addr while the page holds neither addr's own mark
    nor zero: a misreport. As soon as the mapping is seen to differ, the earlier read was a snapshot of
    a changing mm (the page may since have been freed and reused, even for addr again: the allocator
    hands out the page freed last, hence a few tries)."""
    from drgn_ptwalk import PtType, pt_range_walk

    for _ in range(tries):
        now = [e for e in pt_range_walk(mm, addr, addr + page_size) if e.type == PtType.FOLIO]
        if not now or now[0].pfn + (addr - now[0].start) // page_size != pfn:
            return False
        if page_word(prog, pfn, page_size, 0) in (0, addr):
            return False
    return True


@dataclass
class ChurnTally:
    """What the walks of churn's slots saw; ``bad`` holds the misreports."""

    walks: int = 0
    types: Counter = field(default_factory=Counter)
    checked: int = 0
    raced: int = 0
    raced_examples: List[str] = field(default_factory=list)
    bad: List[str] = field(default_factory=list)
    shapes: Set[Tuple] = field(default_factory=set)

    def summary(self) -> str:
        return (f"{self.walks} walks, entries {dict(self.types)}, {self.checked} pages checked, {self.raced} "
                f"changed under the walk {self.raced_examples}, {len(self.shapes)} distinct states")


def judge_churn_walk(prog, mm, entries, page_size: int, tally: ChurnTally) -> None:
    """Judge one walk of churn's slots (``pt_range_walk(mm, CHURN_LO, CHURN_HI)``) into ``tally``."""
    from drgn_ptwalk import PtType

    tally.walks += 1
    walk = tally.walks
    prev_end = CHURN_LO
    for e in entries:
        tally.types[e.type.name] += 1
        if not (prev_end <= e.start < e.end <= CHURN_HI):
            tally.bad.append(f"walk {walk}: entry out of order or range: {e.type.name} {e.start:#x}-{e.end:#x}")
        prev_end = e.end
        if e.type == PtType.ERROR:
            # An error is allowed only as what it is: a table that could not be read consistently,
            # with its address and level.
            if not (e.reason and e.level is not None):
                tally.bad.append(f"walk {walk}: ERROR without reason/level: {e}")
            continue
        if e.type not in (PtType.NONE, PtType.FOLIO, PtType.SWAP, PtType.MIGRATION):
            tally.bad.append(f"walk {walk}: churn maps only anonymous memory, got {e.type.name} at {e.start:#x}")
        if e.type == PtType.FOLIO:
            n = (e.end - e.start) // page_size
            for k in sorted({0, n // 2, n - 1}):
                addr = e.start + k * page_size
                word = page_word(prog, e.pfn, page_size, k)
                tally.checked += 1
                if word in (0, addr):
                    continue
                tally.raced += 1
                if len(tally.raced_examples) < 3:
                    tally.raced_examples.append(f"{addr:#x}: PFN {e.pfn + k:#x} held {word:#x}")
                if still_misreported(mm, addr, e.pfn + k, prog, page_size):
                    tally.bad.append(f"walk {walk}: {addr:#x} -> PFN {e.pfn + k:#x} holds {word:#x}, "
                                     "still mapped there")
    tally.shapes.add(tuple((e.type, e.start, e.end, e.pfn) for e in entries))
