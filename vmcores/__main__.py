# SPDX-License-Identifier: LGPL-2.1-or-later
"""python -m vmcores {build,list,live,kernels,demo,fix-elf}: reference vmcores of real Debian kernels under QEMU."""

import argparse
import json
import os
import signal
import sys
import time

from . import build as b
from .fetch import FetchError
from .qemu import GuestError


def _build_parallel(ids, args) -> int:
    """Build *ids* in up to ``args.jobs`` child processes, one architecture's kernels per child, in order.

    The package lists are brought up to date here first: children then only read them (two ``apt-get
    update`` at once would fight over apt's lock). Kernels of one architecture share packages (several
    entries boot the same kernel), so they are built one after the other in one child.
    """
    import subprocess

    from .fetch import Apt

    Apt().update()
    groups = {}
    for i in ids:
        groups.setdefault(b.entry(i)["arch"], []).append(i)
    queue = sorted(groups.values(), key=len, reverse=True)
    flags = (["--force"] if args.force else []) + (["--keep-going"] if args.keep_going else [])
    running, rc = [], 0
    while queue or running:
        while queue and len(running) < args.jobs:
            group = queue.pop(0)
            print(f"[vmcores] building {' '.join(group)} in a child process", file=sys.stderr, flush=True)
            running.append(subprocess.Popen([sys.executable, "-m", "vmcores", "build", *flags, *group],
                                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        time.sleep(1)
        for proc in [r for r in running if r.poll() is not None]:
            running.remove(proc)
            rc = rc or proc.returncode
    return 1 if rc else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vmcores", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    pb = sub.add_parser("build", help="build reference vmcores (default: the whole matrix, bench entries aside)")
    pb.add_argument("ids", nargs="*", help="kernel ids (see `kernels`); 'default' is the README's one; "
                    "bench entries are built only when named")
    pb.add_argument("--force", action="store_true", help="rebuild even if up to date")
    pb.add_argument("--keep-going", action="store_true", help="build the other kernels when one fails")
    pb.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="build in N processes at once, kernels of one architecture in one process (they share "
                         "kernel packages); a TCG guest keeps about one core busy")
    pl = sub.add_parser("list", help="list built dumps")
    pl.add_argument("--json", action="store_true")
    sub.add_parser("kernels", help="list the kernel matrix")
    pv = sub.add_parser("live", help="boot a guest and keep it running for drgn --qemu")
    pv.add_argument("id", nargs="?", default="default")
    pv.add_argument("--detach", action="store_true",
                    help="print the guest's JSON description and return, leaving QEMU running")
    pv.add_argument("--churn", action="store_true",
                    help="also run a process whose memory keeps changing (its PID is churn_pid)")
    pd = sub.add_parser("demo", help="build the default dump, print smaps of a workload process from it with "
                                      "drgn-ptwalk, and compare with the kernel's own")
    pd.add_argument("id", nargs="?", default="default")
    pd.add_argument("--scenario", default="cow_child", help="workload process (default: cow_child)")
    pd.add_argument("--kind", default="smaps", choices=("maps", "smaps", "smaps_rollup", "numa_maps"))
    pf = sub.add_parser("fix-elf", help="make a QEMU ELF dump of a machine without fw_cfg (pseries) readable "
                                       "by drgn: little-endian, with the kernel's VMCOREINFO note")
    pf.add_argument("core")
    pf.add_argument("addr", help="physical address of the note, hex (first field of /sys/kernel/vmcoreinfo)")
    pf.add_argument("size", help="its size, hex (second field)")
    args = p.parse_args(argv)

    try:
        if args.cmd == "kernels":
            for k in b.manifest():
                extra = f"  [{k.get('scenario', 'default')}, {k.get('memory_gib', 6)} GiB]" if k.get("bench") else ""
                print(f"{k['id']:22} {k['suite']:9} {k['arch']:6} {k['flavour']:12} {k['machine']:20} {k['cpu']}{extra}")
            return 0
        if args.cmd == "list":
            dumps = b.built()
            if args.json:
                print(json.dumps(dumps, indent=1))
            else:
                for d in dumps:
                    print(f"{d['name']:32} {d['release']:32} {d['core']}")
            return 0
        if args.cmd == "build":
            ids = [b.default_id() if i == "default" else i for i in args.ids] or b.matrix_ids()
            for i in ids:
                b.entry(i)  # fail on a typo before building anything
            if args.jobs > 1:
                return _build_parallel(ids, args)
            failed = []
            for i in ids:
                try:
                    b.build(i, force=args.force, log=lambda m: print(m, file=sys.stderr, flush=True))
                except (FetchError, GuestError) as e:
                    if not args.keep_going:
                        raise
                    print(f"[vmcores] {i}: FAILED: {e}", file=sys.stderr)
                    failed.append(i)
            return 1 if failed else 0
        if args.cmd == "demo":
            return _demo(args)
        if args.cmd == "fix-elf":
            from . import elfcore

            swapped = elfcore.to_little_endian(args.core)
            added = elfcore.add_vmcoreinfo(args.core, int(args.addr, 16), int(args.size, 16))
            print(f"{args.core}: {'rewritten little-endian' if swapped else 'byte order kept'}, "
                  f"{'VMCOREINFO note added' if added else 'had a VMCOREINFO note'}", file=sys.stderr)
            return 0
        if args.cmd == "live":
            kid = b.default_id() if args.id == "default" else args.id
            g = b.live(kid, log=lambda m: print(m, file=sys.stderr), churn=args.churn)
            desc = {"id": kid, "qmp": str(g.qmp_path), "qemu_pid": g.proc.pid,
                    "truth": str(g.workdir / "truth"), "vmlinux": str(g.kernel_dir / "vmlinux"),
                    "arch": b.DRGN_ARCH[b.entry(kid)["arch"]],
                    "pids": json.loads((g.workdir / "truth" / "pids.json").read_text()),
                    "churn_pid": g.churn_pid}  # type: ignore[attr-defined]
            print(json.dumps(desc), flush=True)
            if args.detach:
                return 0
            signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
            try:
                while g.proc.poll() is None:
                    time.sleep(1)
            finally:
                g.kill()
            return 0
    except KeyError as e:
        print(f"vmcores: {e.args[0]}", file=sys.stderr)
        return 2
    except (FetchError, GuestError) as e:
        print(f"vmcores: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"vmcores: {e}", file=sys.stderr)
        return 1
    return 0


def _demo(args) -> int:
    import difflib
    import subprocess

    kid = b.default_id() if args.id == "default" else args.id
    b.build(kid, log=lambda m: print(m, file=sys.stderr, flush=True))
    dumps = [d for d in b.built() if d["id"] == kid]
    d = dumps[-1]
    if args.scenario not in d["pids"]:
        print(f"vmcores: no workload process {args.scenario!r}; have {', '.join(d['pids'])}", file=sys.stderr)
        return 2
    pid = d["pids"][args.scenario]
    cmd = ["drgn-ptwalk", "-c", d["core"], "-s", d["vmlinux"], args.kind, str(pid)]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run([sys.executable, "-m", "drgn_ptwalk", *cmd[1:]], capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    if p.returncode != 0:
        return p.returncode
    truth_path = os.path.join(d["truth"], str(pid), args.kind)
    with open(truth_path) as f:
        truth = f.read()
    if p.stdout == truth:
        print(f"\n== identical to the kernel's own /proc/{pid}/{args.kind} ({d['release']}, {d['arch']}, "
              f"{d['dump']} dump; {truth_path})", file=sys.stderr)
        return 0
    print(f"\n!= differs from the kernel's own /proc/{pid}/{args.kind} ({truth_path}):", file=sys.stderr)
    sys.stderr.writelines(difflib.unified_diff(truth.splitlines(True), p.stdout.splitlines(True),
                                               "kernel", "drgn-ptwalk"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
