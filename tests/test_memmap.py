# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn_ptwalk.memmap: the rows add up to every PFN /proc/kpageflags covers, and the rows whose kernel
counter counts exactly the same pages (free buddy pages, the hugetlb pool, page tables, shmem in its page
cache) equal it; every
other difference has its rule (memmap.RULES)."""

from drgn_ptwalk.memmap import RULES, memmap

EXACT = ("free", "hugetlb", "page_tables", "shmem")


def test_memmap_adds_up(vmcore):
    res = memmap(vmcore.prog())
    assert sum(r.pages for r in res.rows) == res.total
    assert sum(n for _, n in res.census) == res.total
    rows = {r.name: r for r in res.rows}
    assert set(rows) == set(RULES)
    for name in EXACT:
        assert rows[name].counter == rows[name].pages, (name, rows[name])
