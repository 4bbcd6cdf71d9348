# SPDX-License-Identifier: LGPL-2.1-or-later
"""The in-guest live check: drgn-ptwalk on ``/proc/kcore`` inside the guest, against the kernel's own files.

Run by ``vmcores/guest/inguest-init`` under the guest's python3, once per drgn (Debian's python3-drgn, then
the PyPI wheel first on PYTHONPATH); the host test (``tests/test_live_inguest.py``) reads the JSON it prints
between ``=====INGUEST-RESULT===== LABEL`` and ``=====INGUEST-RESULT-END=====`` (base64).

``check.py api``: one process, one program: every user process stopped (SIGSTOP), then per process and
file the kernel's file read by this process, ours computed, the kernel's read again: ours must equal it
whenever the two reads agree (this reader maps libc and the vDSO too, so only a read by this very
process at that moment is the truth for it; a changed pair is read again). Then ``workload churn``
walked while it changes its memory. ``check.py cli PID FILE``: the ``drgn-ptwalk -k`` CLI run in this
process (its console script's ``main``), then the kernel's file read by the same process. The churn
walks are judged by the rule of ``tests/test_live.py`` (``vmcores/livecheck.py``).
"""

import argparse
import base64
import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
import zlib
from typing import Any, Dict, List, Optional, Tuple

# vmcores/livecheck.py comes in src.tar with drgn_ptwalk (the rules tests/test_live.py judges by).
from vmcores.livecheck import CHURN_HI, CHURN_LO, ChurnTally, first_difference, judge_churn_walk

TEXT_FILES = ("maps", "smaps", "smaps_rollup", "numa_maps")
TRIES = 3  # reads of a pair that keeps changing under us before it counts as unstable
CHURN = "/run/ptwalk/capture"  # the reference workload binary (static): `capture churn`


def log(msg: str) -> None:
    print(f"[check] {msg}", file=sys.stderr, flush=True)


def emit(label: str, result: Dict[str, Any]) -> None:
    """The result on stdout between markers, compressed and base64 (the console is slow)."""
    data = base64.b64encode(zlib.compress(json.dumps(result).encode(), 9)).decode()
    sys.stderr.flush()
    out = [f"=====INGUEST-RESULT===== {label}"]
    out += [data[i:i + 76] for i in range(0, len(data), 76)]
    out.append("=====INGUEST-RESULT-END=====")
    print("\n".join(out), flush=True)


def kernel_file(pid: int, name: str) -> Optional[bytes]:
    """/proc/PID/NAME as the kernel gives it to this process; None where the read fails with ESRCH."""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except ProcessLookupError:
        return None


def kernel_pagemap(pid: int, ranges: List[Tuple[int, int]], page_size: int) -> Dict[int, bytes]:
    """The kernel's pagemap entries of each range (start -> bytes), read as the truth capture does."""
    out = {}
    fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    try:
        for start, end in ranges:
            n = (end - start) // page_size * 8
            out[start] = os.pread(fd, n, start // page_size * 8)
    finally:
        os.close(fd)
    return out


def user_pids() -> List[int]:
    """Every process with an executable (kernel threads and zombies have none) but this one."""
    me = os.getpid()
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != me:
            try:
                os.readlink(f"/proc/{d}/exe")
            except OSError:
                continue
            pids.append(int(d))
    return sorted(pids)


def stop_all(pids: List[int], timeout: float = 60.0) -> List[int]:
    """SIGSTOP each process but PID 1 (our parent, blocked in wait until we exit), then wait until each
    of its threads is stopped; returns the processes stopped."""
    stopped = []
    for pid in pids:
        if pid == 1:
            continue
        try:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [t for pid in stopped for t in _threads(pid) if _state(pid, t) not in ("T", "t", "Z", "X")]
        if not running:
            return stopped
        time.sleep(0.2)
    raise RuntimeError(f"threads still running after SIGSTOP: {running[:10]}")


def _threads(pid: int) -> List[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []


def _state(pid: int, tid: str) -> str:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1]
    except (FileNotFoundError, IndexError):
        return "X"


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return "?"


def _ours_text(fn, task) -> Tuple[Optional[bytes], str]:
    """Our file as bytes (None where we raise ProcessLookupError, the kernel's ESRCH), or an error."""
    try:
        return fn(task).encode("utf-8", "surrogateescape"), ""
    except ProcessLookupError:
        return None, ""
    except Exception as e:  # reported, and a failure: every file of a live process must come out
        return None, f"{type(e).__name__}: {e}"


def check_text(prog, pid: int, name: str) -> Dict[str, Any]:
    """One file of one process: the kernel's read, ours, the kernel's again; equal when the reads agree."""
    from drgn_ptwalk import procfs
    from drgn_ptwalk.tasks import find_target

    fn = getattr(procfs, name)
    res: Dict[str, Any] = {"ok": False, "tries": 0}
    for attempt in range(1, TRIES + 1):
        res["tries"] = attempt
        before = kernel_file(pid, name)
        t0 = time.perf_counter()
        ours, err = _ours_text(fn, find_target(prog, pid))
        res["seconds"] = round(time.perf_counter() - t0, 4)
        after = kernel_file(pid, name)
        if err:
            res["detail"] = err
            return res
        if before != after:
            res["detail"] = "the kernel's file changed between two reads around ours"
            continue
        res["ok"] = ours == before
        res["bytes"] = len(before or b"")
        if not res["ok"]:
            res["detail"] = ("ours raised ProcessLookupError, the kernel's read did not" if ours is None else
                             "the kernel's read failed with ESRCH, ours did not" if before is None else
                             first_difference(before.decode(errors="replace"), ours.decode(errors="replace")))
        return res
    return res


def check_pagemap(prog, pid: int, page_size: int) -> Dict[str, Any]:
    """pagemap of every VMA: the kernel's entries (read around ours) against ``pagemap_records``."""
    from drgn_ptwalk.procfs.pagemap import pagemap_records
    from drgn_ptwalk.tasks import find_target, get_task_mm

    res: Dict[str, Any] = {"ok": False, "tries": 0}
    for attempt in range(1, TRIES + 1):
        res["tries"] = attempt
        maps = kernel_file(pid, "maps") or b""
        ranges = [tuple(int(x, 16) for x in line.split(b" ", 1)[0].split(b"-")) for line in maps.splitlines()]
        before = kernel_pagemap(pid, ranges, page_size)
        t0 = time.perf_counter()
        try:
            mm = get_task_mm(find_target(prog, pid))
            ours = {r.start: (r.end, r.entries.tobytes()) for r in pagemap_records(mm)} if mm else {}
        except Exception as e:
            res["detail"] = f"{type(e).__name__}: {e}"
            return res
        res["seconds"] = round(time.perf_counter() - t0, 4)
        after = kernel_pagemap(pid, ranges, page_size)
        if before != after or (kernel_file(pid, "maps") or b"") != maps:
            res["detail"] = "the kernel's pagemap changed between two reads around ours"
            continue
        res["entries"] = sum(len(v) // 8 for v in before.values())
        diffs = []
        if sorted(ours) != [s for s, _ in ranges]:
            diffs.append(f"VMAs: kernel {len(ranges)}, ours {len(ours)}")
        for start, end in ranges:
            want, got = before[start], ours.get(start, (0, b""))[1]
            if want != got:
                at = next((i for i in range(0, len(want), 8) if want[i:i + 8] != got[i:i + 8]), 0)
                diffs.append(f"{start:#x}-{end:#x} first at {start + at // 8 * page_size:#x}: kernel "
                             f"{int.from_bytes(want[at:at + 8], 'little'):#x}, ours "
                             f"{int.from_bytes(got[at:at + 8], 'little'):#x}")
        res["ok"] = not diffs
        if diffs:
            res["detail"] = "; ".join(diffs[:3])
        return res
    return res


def churn_walks(prog, seconds: float) -> Dict[str, Any]:
    """Start ``workload churn``, walk its slots for *seconds* (and its smaps each time), then kill it."""
    from drgn_ptwalk import procfs, pt_range_walk
    from drgn_ptwalk.tasks import find_target

    page_size = prog["PAGE_SIZE"].value_()
    p = subprocess.Popen([CHURN, "churn"], stdin=subprocess.DEVNULL)
    tally = ChurnTally()
    walk_max = 0.0
    try:
        time.sleep(2)  # its first slots mapped
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or tally.walks < 3:
            task = find_target(prog, p.pid)
            t0 = time.perf_counter()
            entries = list(pt_range_walk(task.mm, CHURN_LO, CHURN_HI))
            walk_max = max(walk_max, time.perf_counter() - t0)
            # Judged with churn stopped right after the walk: the pages hold what they held then, so
            # few mappings change before their re-check (which, under churn at full speed on the other
            # vCPU, took a minute a walk and excused every page remapped meanwhile).
            stop_all([p.pid])
            judge_churn_walk(prog, task.mm, entries, page_size, tally)
            os.kill(p.pid, signal.SIGCONT)
            text = procfs.smaps(task)
            if not text.count("\nRss:") == text.count("\nSize:") > 0:
                tally.bad.append("smaps of churn is not well-formed")
    except Exception as e:
        tally.bad.append(f"{type(e).__name__}: {e}")
    finally:
        p.kill()
        p.wait()
    return {"pid": p.pid, "walks": tally.walks, "types": dict(tally.types), "checked": tally.checked,
            "raced": tally.raced, "bad": tally.bad, "states": len(tally.shapes), "summary": tally.summary(),
            "walk_seconds_max": round(walk_max, 3)}


def run_api(args) -> Dict[str, Any]:
    import drgn

    from drgn_ptwalk.program import open_program

    res: Dict[str, Any] = {"drgn": drgn.__version__, "drgn_file": drgn.__file__, "python": sys.version.split()[0]}
    pids = user_pids()
    res["stopped"] = stop_all(pids)
    t0 = time.perf_counter()
    prog = open_program(symbols=[args.vmlinux] if args.vmlinux else [])
    res["open_seconds"] = round(time.perf_counter() - t0, 2)
    log(f"drgn {drgn.__version__} ({drgn.__file__}): program open in {res['open_seconds']} s; "
        f"{len(pids)} processes")
    page_size = prog["PAGE_SIZE"].value_()
    procs: Dict[str, Any] = {}
    for pid in pids:
        files = {name: check_text(prog, pid, name) for name in TEXT_FILES}
        files["pagemap"] = check_pagemap(prog, pid, page_size)
        procs[str(pid)] = {"comm": _comm(pid), "files": files}
        bad = [n for n, r in files.items() if not r["ok"]]
        log(f"{pid} {_comm(pid)}: {'ok' if not bad else 'DIFFERS ' + ' '.join(bad)} "
            f"({sum(r.get('seconds', 0) for r in files.values()):.2f} s)")
    res["processes"] = procs
    t0 = time.perf_counter()
    res["churn"] = churn_walks(prog, args.churn_seconds)
    res["churn"]["seconds"] = round(time.perf_counter() - t0, 1)
    # what running it costs the machine in memory: the debug info dominates
    res["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    log(f"churn: {res['churn']['walks']} walks, {res['churn']['checked']} pages checked, "
        f"{len(res['churn']['bad'])} misreports")
    return res


def run_cli(args) -> Dict[str, Any]:
    """``drgn-ptwalk -k FILE PID`` in this process, then the kernel's file read by this process."""
    t0 = time.perf_counter()
    from drgn_ptwalk.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["-k", args.file, str(args.pid)])
    seconds = round(time.perf_counter() - t0, 2)
    want = kernel_file(args.pid, args.file)
    again = kernel_file(args.pid, args.file)
    ours = out.getvalue().encode("utf-8", "surrogateescape")
    res = {"pid": args.pid, "comm": _comm(args.pid), "file": args.file, "rc": rc, "seconds": seconds,
           "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
           "stderr": err.getvalue()[-2000:], "stable": want == again, "ok": rc == 0 and ours == want}
    if rc == 0 and want is not None and ours != want:
        res["detail"] = first_difference(want.decode(errors="replace"), ours.decode(errors="replace"))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", required=True)
    sub = ap.add_subparsers(dest="what", required=True)
    api = sub.add_parser("api")
    api.add_argument("--vmlinux", default="")
    api.add_argument("--churn-seconds", type=float, default=30.0)
    cli = sub.add_parser("cli")
    cli.add_argument("pid", type=int)
    cli.add_argument("file", choices=TEXT_FILES)
    args = ap.parse_args()
    try:
        res = run_api(args) if args.what == "api" else run_cli(args)
    except Exception as e:
        import traceback

        traceback.print_exc()
        res = {"error": f"{type(e).__name__}: {e}"}
    emit(f"{args.label}-{args.what}" + (f"-{args.pid}-{args.file}" if args.what == "cli" else ""), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
