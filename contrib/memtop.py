"""Who ate the memory? One row per process (RSS, PSS, anon, file, shmem, swap, hugetlb), largest first.

    drgn -c VMCORE -s VMLINUX contrib/memtop.py [--sort rss|pss|swap] [--limit N]
"""

import argparse
import sys

from drgn_ptwalk import memtop, print_memtop

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--sort", default="rss", choices=("rss", "pss", "swap", "anon", "file", "shmem", "hugetlb"))
p.add_argument("--limit", type=int, default=20)
args = p.parse_args()
print_memtop(memtop(prog, sort=args.sort), sys.stdout, limit=args.limit)  # noqa: F821
