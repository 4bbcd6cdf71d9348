# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The notes of an ELF core, as the kernel's own coredump writes them (fs/binfmt_elf.c ``fill_note_info()``,
``write_note_info()``, with ``CORE_DUMP_USE_REGSET``, which x86_64, arm64, ppc64, s390x and LoongArch all
use):
``NT_PRSTATUS`` per thread with the user registers saved at kernel entry (``task_pt_regs()``), the
floating-point/vector notes of each thread, ``NT_PRPSINFO``, ``NT_SIGINFO`` (when there is one),
``NT_AUXV`` and ``NT_FILE``, in the kernel's order: the first thread's ``NT_PRSTATUS``, the process-wide
notes, the first thread's other notes, then each other thread's ``NT_PRSTATUS`` and other notes.

Each architecture has one function making a thread's register notes (:data:`THREAD_NOTES`, keyed by
drgn's :class:`drgn.Architecture` name). Every structure is packed in the dumped kernel's byte order
(big-endian on s390x) with the layout of the kernel's types (``struct elf_prstatus`` and friends); the
unit tests compare the sizes with the vmlinux's own types.

What differs from a coredump the kernel writes, by the nature of a dump:

* no signal killed the process: ``pr_cursig`` and ``pr_info.si_signo`` are 0, and ``NT_SIGINFO`` is
  written only for a ptrace-stopped thread (``task->last_siginfo``), from the first thread that has one;
* process IDs are the init PID namespace's numbers (what the dump's ``ps`` shows), not the task's own
  namespace's as ``task_pid_vnr()`` in the dumping task gives; UID and GID are the init user
  namespace's (``kuid.val``);
* the registers and FP state are those saved in memory: a thread that was running on a CPU at the crash
  has its user registers at kernel entry only if it had entered the kernel (its FP/vector state may
  be live in the CPU and is then stale in memory);
* per architecture, only the notes listed in its function are written (the kernel adds others:
  ``NT_ARM_SVE``/``NT_ARM_PAC_*``, ``NT_PPC_VMX``/``NT_PPC_VSX``, ``NT_S390_*``, ...).
"""

import struct
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from drgn import FaultError, Object, Program, offsetof, sizeof

from drgn_ptwalk._byteorder import struct_order
from drgn_ptwalk._compat import thread_size

__all__ = (
    "CoreNote",
    "THREAD_NOTES",
    "auxv_note",
    "core_notes",
    "encode_notes",
    "file_note",
    "prpsinfo_note",
    "prstatus_note",
    "siginfo_note",
    "task_pt_regs",
    "thread_notes",
)

# include/uapi/linux/elf.h (stable since the notes were introduced).
NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_PRPSINFO = 3
NT_AUXV = 6
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45
NT_X86_XSTATE = 0x202
NT_ARM_TLS = 0x401
NT_ARM_SYSTEM_CALL = 0x404

# include/uapi/linux/auxvec.h
AT_NULL = 0
# include/linux/elfcore.h: ELF_PRARGSZ
ELF_PRARGSZ = 80


class CoreNote(NamedTuple):
    """One ELF note: its name (``b"CORE"``, ``b"LINUX"``), type (``NT_*``) and descriptor bytes."""

    name: bytes
    type: int
    desc: bytes


class ThreadRegs(NamedTuple):
    """What an architecture's function gives for one thread: ``pr_reg`` (``elf_gregset_t``) and the
    thread's other notes (FP/vector state), in the order of the kernel's regset view."""

    gregs: bytes
    notes: List[CoreNote]


def _arch(prog: Program) -> str:
    platform = prog.platform
    return platform.arch.name if platform is not None else "UNKNOWN"


def _word(prog: Program) -> str:
    return struct_order(prog) + "Q"


def _read_words(prog: Program, address: int, n: int) -> Tuple[int, ...]:
    return struct.unpack(f"{struct_order(prog)}{n}Q", prog.read(address, 8 * n))


def _has_member(obj: Object, name: str) -> bool:
    try:
        obj.member_(name)
    except LookupError:
        return False
    return True


# ---------------------------------------------------------------------------
# task_pt_regs()


def task_pt_regs(task: Object) -> Object:
    """
    ``task_pt_regs(task)``: the user registers saved at the task's last kernel entry.

    * x86_64 (arch/x86/include/asm/processor.h): ``(struct pt_regs *)(task_stack_page(task) + THREAD_SIZE
      - TOP_OF_KERNEL_STACK_PADDING) - 1``; the padding is 0, or 16 with ``CONFIG_X86_FRED`` (65c9cc9e2c14
      "x86/fred: Reserve space for the FRED stack frame", v6.9), detected by FRED's C entry point
      ``fred_entry_from_user``;
    * arm64 (arch/arm64/include/asm/processor.h): ``(struct pt_regs *)(THREAD_SIZE + task_stack_page(p))
      - 1``;
    * ppc64: ``task->thread.regs``;
    * s390x (arch/s390/include/asm/processor.h): ``(struct pt_regs *)(task_stack_page(tsk) + THREAD_SIZE)
      - 1`` (the system-call entry stores the registers there: ``STACK_INIT_OFFSET`` is ``THREAD_SIZE -
      STACK_FRAME_OVERHEAD - sizeof(struct pt_regs)`` and the frame overhead is below them).

    :param task: ``struct task_struct *``
    :return: ``struct pt_regs *``
    """
    prog = task.prog_
    arch = _arch(prog)
    if arch == "PPC64":
        return task.thread.regs.read_()
    stack = task.stack.value_()
    top = stack + thread_size(prog)
    if arch == "X86_64" and "fred_entry_from_user" in prog:
        top -= 16
    return Object(prog, "struct pt_regs *", top - sizeof(prog.type("struct pt_regs")))


# ---------------------------------------------------------------------------
# x86_64


def _x86_fpu(task: Object) -> Object:
    """The task's ``struct fpu *``: ``&task->thread.fpu``, or from v6.16 ("x86/fpu: Make task_struct::thread
    constant size" moved it behind the task) ``x86_task_fpu(task)`` = ``(void *)task + sizeof(*task)``."""
    prog = task.prog_
    if _has_member(task.thread, "fpu"):
        return task.thread.fpu.address_of_()
    return Object(prog, "struct fpu *", task.value_() + sizeof(prog.type("struct task_struct")))


def _x86_64_gregs(task: Object) -> bytes:
    """``genregs_get()``: ``struct user_regs_struct`` (27 words)."""
    prog = task.prog_
    regs = task_pt_regs(task)
    t = prog.type("struct pt_regs")
    base = regs.value_()
    w = _read_words(prog, base, sizeof(t) // 8)

    def r(name: str) -> int:
        return w[offsetof(t, name) // 8]

    names = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di",
             "orig_ax", "ip")
    vals = [r(n) for n in names]
    th = task.thread
    vals += [r("cs") & 0xFFFF, r("flags"), r("sp"), r("ss") & 0xFFFF,
             th.fsbase.value_(), th.gsbase.value_(),
             th.ds.value_(), th.es.value_(), th.fsindex.value_(), th.gsindex.value_()]
    return struct.pack("<27Q", *vals)


# arch/x86/include/asm/cpufeatures.h: X86_FEATURE_XSAVE = 4*32+26, X86_FEATURE_FXSR = 0*32+24 (stable).
_X86_FEATURE_XSAVE = 4 * 32 + 26
_XFEATURE_MASK_FP = 1
_XFEATURE_MASK_SSE = 2
_XFEATURE_MASK_YMM = 4
_XFEATURE_PKRU = 9
_XCOMP_BV_COMPACTED = 1 << 63
# arch/x86/kernel/fpu/xstate.c: XSTATE_ALIGN64 flag bit of xstate_flags[].
_XSTATE_ALIGN64 = 1 << 1


def _x86_cpu_has(prog: Program, bit: int) -> bool:
    caps = prog["boot_cpu_data"].x86_capability
    return bool(caps[bit // 32].value_() >> (bit % 32) & 1)


def _x86_xsave_area(prog: Program, fpu: Object) -> Tuple[int, bytes]:
    fpstate = fpu.fpstate.read_()
    regs = fpstate.regs.xsave
    size = fpstate.size.value_()
    return regs.address_of_().value_(), prog.read(regs.address_of_().value_(), min(size, 4096 * 4))


def _x86_legacy(prog: Program, xsave: bytes, init: bytes, features: int) -> bytearray:
    """The 512-byte FXSAVE area of ``__copy_xstate_to_uabi_buf()``: each part from the task's buffer
    if its feature is set in ``xfeatures``, else from ``init_fpstate``."""
    out = bytearray(512)
    fp = xsave if features & _XFEATURE_MASK_FP else init
    out[0:24] = fp[0:24]                       # cwd .. fdp, up to mxcsr
    mx = xsave if features & (_XFEATURE_MASK_SSE | _XFEATURE_MASK_YMM) else init
    out[24:32] = mx[24:32]                     # mxcsr, mxcsr_mask
    out[32:160] = fp[32:160]                   # st_space
    sse = xsave if features & _XFEATURE_MASK_SSE else init
    out[160:416] = sse[160:416]                # xmm_space
    return out


def _x86_64_fp_notes(task: Object) -> List[CoreNote]:
    """
    ``NT_PRFPREG`` (``xfpregs_get()``: the FXSAVE area) and ``NT_X86_XSTATE`` (``xstateregs_get()``: the
    XSAVE buffer in the standard, non-compacted layout ``copy_xstate_to_uabi_buf()`` writes, converted
    from the kernel's compacted XSAVES layout with ``xcomp_bv`` and the kernel's own ``xstate_offsets``,
    ``xstate_sizes`` and ``xstate_flags``; PKRU from ``thread.pkru``).
    """
    prog = task.prog_
    fpu = _x86_fpu(task)
    fpstate = fpu.fpstate.read_()
    xs_addr = fpstate.regs.xsave.address_of_().value_()
    if not _x86_cpu_has(prog, _X86_FEATURE_XSAVE):
        return [CoreNote(b"CORE", NT_PRFPREG, prog.read(xs_addr, 512))]
    max_size = prog["fpu_user_cfg"].max_size.value_()
    kernel_size = fpstate.size.value_()
    xsave = prog.read(xs_addr, max(kernel_size, 576))
    init_state = prog["init_fpstate"].regs.xsave
    init = prog.read(init_state.address_of_().value_(), 512)
    xfeatures, xcomp_bv = struct.unpack_from("<QQ", xsave, 512)
    legacy_fx = _x86_legacy(prog, xsave, init, xfeatures & (_XFEATURE_MASK_FP | _XFEATURE_MASK_SSE))
    notes = [CoreNote(b"CORE", NT_PRFPREG, bytes(legacy_fx))]

    user_mask = fpstate.user_xfeatures.value_()
    header_features = xfeatures & user_mask
    buf = bytearray(max_size)
    buf[0:512] = _x86_legacy(prog, xsave, init, header_features)
    buf[416:464] = b"\0" * 48                   # padding
    try:
        sw = prog.read(prog["xstate_fx_sw_bytes"].address_of_().value_(), 48)
    except LookupError:
        sw = struct.pack("<Q", prog["fpu_user_cfg"].max_features.value_()) + bytes(40)
    buf[464:512] = sw
    buf[512:520] = struct.pack("<Q", header_features)   # header: xfeatures, xcomp_bv = 0, reserved
    offsets = [v.value_() for v in prog["xstate_offsets"]]
    sizes = [v.value_() for v in prog["xstate_sizes"]]
    flags = [v.value_() for v in prog["xstate_flags"]]
    compacted = bool(xcomp_bv & _XCOMP_BV_COMPACTED)
    pkru = task.thread.pkru.value_() if _has_member(task.thread, "pkru") else 0
    for i in range(2, len(offsets)):
        if not header_features >> i & 1:
            continue
        if i == _XFEATURE_PKRU:
            buf[offsets[i]:offsets[i] + 8] = struct.pack("<II", pkru, 0)
            continue
        if compacted:
            src = 576
            for j in range(2, len(offsets)):
                if not xcomp_bv >> j & 1:
                    continue
                if flags[j] & _XSTATE_ALIGN64:
                    src = (src + 63) & ~63
                if j == i:
                    break
                src += sizes[j]
        else:
            src = offsets[i]
        buf[offsets[i]:offsets[i] + sizes[i]] = xsave[src:src + sizes[i]]
    notes.append(CoreNote(b"LINUX", NT_X86_XSTATE, bytes(buf)))
    return notes


def x86_64_thread_regs(task: Object) -> ThreadRegs:
    """x86_64: ``user_regs_struct`` (``fs_base``/``gs_base`` from ``thread.fsbase``/``gsbase``, the
    selectors ``fs``/``gs``/``ds``/``es`` from ``thread.fsindex``/``gsindex``/``ds``/``es``, as
    ``getreg()`` reads them for a task that is not current), ``NT_PRFPREG``, ``NT_X86_XSTATE``."""
    return ThreadRegs(_x86_64_gregs(task), _x86_64_fp_notes(task))


# ---------------------------------------------------------------------------
# arm64

# arch/arm64/include/asm/fpsimd.h: struct user_fpsimd_state is 32 128-bit V registers, fpsr, fpcr.
_ARM64_FPSIMD_SIZE = 528


def aarch64_thread_regs(task: Object) -> ThreadRegs:
    """
    arm64: ``user_pt_regs`` (``regs[31]``, ``sp``, ``pc``, ``pstate``) from ``task_pt_regs()``;
    ``NT_PRFPREG`` (``__fpr_get()``: ``thread.uw.fpsimd_state``, with the V registers taken from the low
    128 bits of the Z registers in ``thread.sve_state`` when ``thread.fp_type`` is ``FP_STATE_SVE``, as
    ``sve_sync_to_fpsimd()`` does); ``NT_ARM_TLS`` (``tls_get()``: ``tp_value``, then ``tpidr2_el0``
    where the kernel has it); ``NT_ARM_SYSTEM_CALL`` (``system_call_get()``: ``pt_regs::syscallno``).
    """
    prog = task.prog_
    regs = task_pt_regs(task)
    gregs = prog.read(regs.value_(), 34 * 8)
    th = task.thread
    fp = bytearray(prog.read(th.uw.fpsimd_state.address_of_().value_(), _ARM64_FPSIMD_SIZE))
    if _has_member(th, "fp_type") and th.fp_type.value_() == prog["FP_STATE_SVE"].value_():
        # "arm64/fpsimd: Track the saved FPSIMD state type separately to TIF_SVE" (baa8515281b3, v6.2)
        # added fp_type. The SVE save area holds Z0-Z31 of vq * 16 bytes each first
        # (SVE_SIG_ZREG_OFFSET - SVE_SIG_REGS_OFFSET), the low 128 bits of Zn being Vn.
        vl = th.vl[0].value_()
        state = th.sve_state.value_()
        if vl and state:
            vq = vl // 16
            z = prog.read(state, 32 * vq * 16)
            for n in range(32):
                fp[n * 16:n * 16 + 16] = z[n * vq * 16:n * vq * 16 + 16]
    notes = [CoreNote(b"CORE", NT_PRFPREG, bytes(fp))]
    order = struct_order(prog)
    tls = struct.pack(order + "Q", th.uw.tp_value.value_())
    if _has_member(th, "tpidr2_el0"):
        tls += struct.pack(order + "Q", th.tpidr2_el0.value_())
    notes.append(CoreNote(b"LINUX", NT_ARM_TLS, tls))
    syscallno = regs.syscallno.value_()
    notes.append(CoreNote(b"LINUX", NT_ARM_SYSTEM_CALL, struct.pack(order + "i", syscallno)))
    return ThreadRegs(gregs, notes)


# ---------------------------------------------------------------------------
# ppc64

_PPC64_ELF_NGREG = 48


def ppc64_thread_regs(task: Object) -> ThreadRegs:
    """
    ppc64: ``gpr_get()``: ``struct user_pt_regs`` from ``thread.regs`` (44 words: ``gpr[32]``, ``nip``,
    ``msr``, ``orig_gpr3``, ``ctr``, ``link``, ``xer``, ``ccr``, ``softe``, ``trap``, ``dar``, ``dsisr``,
    ``result``), ``msr`` as ``get_user_msr()`` (``regs->msr | thread.fpexc_mode``), ``softe`` 1, zeros to
    ``ELF_NGREG`` (48); ``NT_PRFPREG`` (``fpr_get()``: ``fpr[32]`` then ``fpscr`` from ``thread.fp_state``;
    with VSX each FPR is doubleword ``TS_FPROFFSET`` of its 2-doubleword slot: 1 on little-endian, 0 on
    big-endian).
    """
    prog = task.prog_
    order = struct_order(prog)
    regs = task_pt_regs(task)
    if not regs.value_():
        raise FaultError("the thread has no saved user registers (thread.regs is NULL)", 0)
    t = prog.type("struct pt_regs")
    n = sizeof(prog.type("struct user_pt_regs")) // 8
    w = list(struct.unpack(f"{order}{n}Q", prog.read(regs.value_(), n * 8)))
    th = task.thread
    fpexc = th.fpexc_mode.value_() if _has_member(th, "fpexc_mode") else 0
    w[offsetof(t, "msr") // 8] |= fpexc
    w[offsetof(t, "softe") // 8] = 1
    gregs = struct.pack(f"{order}{_PPC64_ELF_NGREG}Q", *(w + [0] * (_PPC64_ELF_NGREG - n)))
    fps = th.fp_state
    fpr_t = fps.fpr.type_
    width = sizeof(fpr_t.type) // 8  # TS_FPRWIDTH
    raw = struct.unpack(f"{order}{32 * width}Q", prog.read(fps.fpr.address_of_().value_(), 32 * width * 8))
    off = (1 if order == "<" else 0) if width == 2 else 0
    fpr = [raw[i * width + off] for i in range(32)]
    fpr.append(fps.fpscr.value_())
    return ThreadRegs(gregs, [CoreNote(b"CORE", NT_PRFPREG, struct.pack(f"{order}33Q", *fpr))])


# ---------------------------------------------------------------------------
# s390x

# arch/s390/include/asm/ptrace.h (v6.1..v7.2): the PSW mask bits a user may see and those always set.
_PSW_MASK_USER = 0x0000FF0180000000
_PSW_MASK_RI = 0x0000008000000000
_PSW_USER_BITS = 0x0705000000000000  # DAT | IO | EXT | MCHECK | PSTATE, key 0, primary space


def s390x_thread_regs(task: Object) -> ThreadRegs:
    """
    s390x: ``s390_regs_get()``: ``s390_regs`` = the PSW (mask cleaned as ``__peek_user()``: ``mask &
    (PSW_MASK_USER | PSW_MASK_RI) | PSW_USER_BITS``; address), ``gprs[16]`` from ``task_pt_regs()``, the
    access registers ``thread.acrs[16]``, ``orig_gpr2``; ``NT_PRFPREG`` (``s390_fpregs_get()``: ``fpc``, a
    pad word, ``fprs[16]``: with the vector facility each FPR is the high doubleword of its vector
    register, ``convert_vx_to_fp()``).
    """
    prog = task.prog_
    order = struct_order(prog)
    regs = task_pt_regs(task)
    t = prog.type("struct pt_regs")
    base = regs.value_()
    mask, addr = struct.unpack(order + "QQ", prog.read(base + offsetof(t, "psw"), 16))
    mask = (mask & (_PSW_MASK_USER | _PSW_MASK_RI)) | _PSW_USER_BITS
    gprs = prog.read(base + offsetof(t, "gprs"), 128)
    th = task.thread
    acrs = prog.read(th.acrs.address_of_().value_(), 64)
    orig = prog.read(base + offsetof(t, "orig_gpr2"), 8)
    gregs = struct.pack(order + "QQ", mask, addr) + gprs + acrs + orig
    # "s390/fpu: ..." (v6.8) renamed thread.fpu to thread.ufpu and made struct fpu always hold vxrs.
    fpu = th.ufpu if _has_member(th, "ufpu") else th.fpu
    fpc = fpu.fpc.value_()
    if _has_member(fpu, "vxrs") and (not _has_member(fpu, "regs") or _s390_has_vx(prog)):
        vx = prog.read(fpu.vxrs.address_of_().value_(), 16 * 16)
        fprs = b"".join(vx[i * 16:i * 16 + 8] for i in range(16))
    else:
        fprs = prog.read(fpu.fprs.address_of_().value_(), 16 * 8)
    return ThreadRegs(gregs, [CoreNote(b"CORE", NT_PRFPREG, struct.pack(order + "II", fpc, 0) + fprs)])


def _s390_has_vx(prog: Program) -> bool:
    """``MACHINE_HAS_VX`` on kernels whose ``struct fpu`` still points to its save area (before v6.8):
    ``S390_lowcore.machine_flags & MACHINE_FLAG_VX`` (bit 14 in arch/s390/include/asm/setup.h)."""
    try:
        lc = prog["lowcore_ptr"][0]
        return bool(lc.machine_flags.value_() >> 14 & 1)
    except (LookupError, AttributeError, FaultError):
        return True


# ---------------------------------------------------------------------------
# LoongArch


def loongarch64_thread_regs(task: Object) -> ThreadRegs:
    """
    LoongArch (arch/loongarch/kernel/ptrace.c, v7.2): ``gpr_get()``: ``regs[32]``, ``orig_a0``,
    ``csr_era``, ``csr_badvaddr`` from ``task_pt_regs()`` (``task_stack_page() + THREAD_SIZE -
    sizeof(struct pt_regs)``), the rest of the 45-word ``elf_gregset_t`` (``struct user_pt_regs``'s
    ``reserved[10]``) zero; ``NT_PRFPREG`` (``fpr_get()``: the low doubleword of each of the 32
    ``thread.fpu.fpr`` registers, ``get_fpr64(..., 0)``, then ``fcc`` and the 4-byte ``fcsr``: 268 bytes,
    what ``fpr_get()`` writes and the kernel's coredump keeps, not the regset's 34 words). The kernel
    writes its CPUCFG, LSX, LASX, LBT and hardware break/watch regsets too.
    """
    prog = task.prog_
    order = struct_order(prog)
    regs = task_pt_regs(task)
    t = prog.type("struct pt_regs")
    base = regs.value_()
    w = _read_words(prog, base, offsetof(t, "csr_crmd") // 8)  # regs[32], orig_a0, csr_era, csr_badvaddr
    gregs = struct.pack(f"{order}45Q", *w, *([0] * (45 - len(w))))
    fpu = task.thread.fpu
    fpr = fpu.fpr.address_of_().value_()
    width = sizeof(fpu.fpr.type_.type)  # union fpureg: 256 bits with LASX
    raw = prog.read(fpr, 32 * width)
    lows = b"".join(raw[i * width:i * width + 8] for i in range(32))
    fp = lows + struct.pack(order + "QI", fpu.fcc.value_(), fpu.fcsr.value_())
    return ThreadRegs(gregs, [CoreNote(b"CORE", NT_PRFPREG, fp)])


THREAD_NOTES: Dict[str, Callable[[Object], ThreadRegs]] = {
    "X86_64": x86_64_thread_regs,
    "AARCH64": aarch64_thread_regs,
    "PPC64": ppc64_thread_regs,
    "S390X": s390x_thread_regs,
    "LOONGARCH64": loongarch64_thread_regs,
}
"""The register notes of a thread, per architecture (drgn's :class:`drgn.Architecture` names)."""


def thread_notes(task: Object) -> ThreadRegs:
    """
    ``pr_reg`` and the other register notes of one thread of *task*'s architecture.

    :param task: ``struct task_struct *``
    :return: ``pr_reg`` (``elf_gregset_t``'s bytes) and the architecture's other register notes
    :raises NotImplementedError: for an architecture not in :data:`THREAD_NOTES`
    """
    arch = _arch(task.prog_)
    fn = THREAD_NOTES.get(arch)
    if fn is None:
        raise NotImplementedError(f"gcore: no register notes for architecture {arch}")
    return fn(task)


# ---------------------------------------------------------------------------
# Process-wide notes


def _pid_type_nr(task: Object, type_name: str) -> int:
    """``pid_nr()`` of the task's process group or session, in the init namespace."""
    prog = task.prog_
    pt = prog[type_name].value_()
    sig = task.signal
    if _has_member(sig, "pids"):
        pid = sig.pids[pt].read_()
    else:
        pid = task.group_leader.pids[pt].pid.read_()
    if not pid.value_():
        return 0
    return pid.numbers[0].nr.value_()


def _ns_to_timeval(ns: int) -> Tuple[int, int]:
    return ns // 1_000_000_000, ns % 1_000_000_000 // 1000


def _thread_group_times(task: Object) -> Tuple[int, int]:
    """``thread_group_cputime()``: the signal's totals of dead threads plus each live thread's."""
    from drgn_ptwalk.tasks import thread_group

    sig = task.signal
    utime, stime = sig.utime.value_(), sig.stime.value_()
    for t in thread_group(task):
        utime += t.utime.value_()
        stime += t.stime.value_()
    return utime, stime


def prstatus_note(task: Object, gregs: bytes, fpvalid: bool, signr: int = 0) -> CoreNote:
    """
    ``NT_PRSTATUS`` (``fill_prstatus()``): ``struct elf_prstatus`` = ``pr_info``, ``pr_cursig``,
    ``pr_sigpend``/``pr_sighold`` (first word of ``pending.signal``/``blocked``), ``pr_pid``/``ppid``/
    ``pgrp``/``sid``, ``pr_utime``/``stime`` (the group's totals for the leader), ``pr_cutime``/``cstime``,
    ``pr_reg`` (*gregs*), ``pr_fpvalid``.

    :param task: ``struct task_struct *`` of the thread
    :param gregs: its general registers, laid out as the architecture's ``elf_gregset_t``
    :param fpvalid: whether an FP register note follows
    :param signr: the signal that "caused" the dump (``pr_cursig``; 0: none)
    :return: the note
    """
    prog = task.prog_
    o = struct_order(prog)
    if task.value_() == task.group_leader.value_():
        utime, stime = _thread_group_times(task)
    else:
        utime, stime = task.utime.value_(), task.stime.value_()
    sig = task.signal
    head = struct.pack(
        o + "iiih2xQQiiii8q",
        signr, 0, 0, signr,
        task.pending.signal.sig[0].value_(), task.blocked.sig[0].value_(),
        task.pid.value_(), task.real_parent.pid.value_(),
        _pid_type_nr(task, "PIDTYPE_PGID"), _pid_type_nr(task, "PIDTYPE_SID"),
        *_ns_to_timeval(utime), *_ns_to_timeval(stime),
        *_ns_to_timeval(sig.cutime.value_()), *_ns_to_timeval(sig.cstime.value_()),
    )
    body = head + gregs + struct.pack(o + "i", 1 if fpvalid else 0)
    body += bytes(-len(body) % 8)
    return CoreNote(b"CORE", NT_PRSTATUS, body)


def _task_state(task: Object) -> int:
    try:
        return task.__state.value_()
    except AttributeError:  # before v5.14 "sched: Change task_struct::state"
        return task.state.value_()


def prpsinfo_note(leader: Object, psargs: bytes) -> CoreNote:
    """
    ``NT_PRPSINFO`` (``fill_psinfo()`` of the thread group leader): ``struct elf_prpsinfo`` = state (index
    of the lowest set bit of ``__state`` plus one), its letter from ``"RSDTZW"``, zombie, nice, ``flags``,
    uid, gid, pids, ``comm``, and *psargs*: the first ``ELF_PRARGSZ - 1`` bytes of the argument area
    (``mm->arg_start`` to ``arg_end``) with NULs made spaces.

    :param leader: ``struct task_struct *`` of the thread group leader
    :param psargs: the argument area's bytes, as read
    :return: the note
    """
    prog = leader.prog_
    o = struct_order(prog)
    args = bytes(psargs[:ELF_PRARGSZ - 1]).replace(b"\0", b" ")
    state = _task_state(leader)
    i = (state & -state).bit_length() if state else 0
    sname = b"RSDTZW"[i] if i <= 5 else ord(".")
    cred = leader.real_cred
    body = struct.pack(
        o + "bBbb4xQIIiiii16s80s",
        i, sname, 1 if sname == ord("Z") else 0, leader.static_prio.value_() - 120,
        leader.flags.value_(),
        cred.uid.val.value_(), cred.gid.val.value_(),
        leader.pid.value_(), leader.real_parent.pid.value_(),
        _pid_type_nr(leader, "PIDTYPE_PGID"), _pid_type_nr(leader, "PIDTYPE_SID"),
        leader.comm.string_()[:15], args,
    )
    return CoreNote(b"CORE", NT_PRPSINFO, body)


def auxv_note(mm: Object) -> CoreNote:
    """
    ``NT_AUXV`` (``fill_auxv_note()``): ``mm->saved_auxv`` up to and including the ``AT_NULL`` pair.

    :param mm: ``struct mm_struct *``
    :return: the note
    """
    prog = mm.prog_
    o = struct_order(prog)
    raw = prog.read(mm.saved_auxv.address_of_().value_(), sizeof(mm.saved_auxv))
    words = struct.unpack(f"{o}{len(raw) // 8}Q", raw)
    i = 0
    while i + 2 <= len(words):
        i += 2
        if words[i - 2] == AT_NULL:
            break
    return CoreNote(b"CORE", NT_AUXV, raw[:i * 8])


def file_note(prog: Program, files: Sequence[Tuple[int, int, int, bytes]], page_size: int) -> CoreNote:
    """
    ``NT_FILE`` (``fill_files_note()``): count, page size, then ``start, end, pgoff`` (in pages) of each
    file-backed VMA, then their paths, each NUL-terminated.

    :param files: ``(start, end, pgoff, path)`` of each file-backed VMA, in address order
    :param page_size: the kernel's page size (the unit of ``pgoff``)
    :return: the note
    """
    o = struct_order(prog)
    head = struct.pack(f"{o}{2 + 3 * len(files)}Q", len(files), page_size,
                       *[v for s, e, p, _ in files for v in (s, e, p)])
    return CoreNote(b"CORE", NT_FILE, head + b"".join(name + b"\0" for *_, name in files))


def siginfo_note(task: Object) -> Optional[CoreNote]:
    """
    ``NT_SIGINFO``: the 128-byte ``siginfo_t`` of the thread's ``last_siginfo`` (a thread stopped under
    ptrace in a signal-delivery or ptrace stop), or ``None``: a dump has no coredump signal, and a
    thread that is not ptrace-stopped has no siginfo the kernel keeps for it.

    :param task: ``struct task_struct *`` of the thread
    :return: the note, or ``None``
    """
    prog = task.prog_
    try:
        si = task.last_siginfo.read_()
    except AttributeError:
        return None
    if not si.value_():
        return None
    n = sizeof(si.type_.type)
    raw = prog.read(si.value_(), n)
    return CoreNote(b"CORE", NT_SIGINFO, raw + bytes(128 - n))


def core_notes(threads: Sequence[Object], mm: Object, psargs: bytes,
               files: Sequence[Tuple[int, int, int, bytes]], page_size: int,
               errors: Optional[List[str]] = None) -> List[CoreNote]:
    """
    Every note of the core in ``write_note_info()``'s order: the first thread's ``NT_PRSTATUS``, then
    ``NT_PRPSINFO`` (of the thread group leader), ``NT_SIGINFO`` (if any thread has one), ``NT_AUXV``,
    ``NT_FILE``, the first thread's other notes; then each other thread's ``NT_PRSTATUS`` and other notes.

    A thread whose registers cannot be read (:class:`drgn.FaultError`: its stack is not in the dump) gets
    an ``NT_PRSTATUS`` with zero registers, and a line in *errors*.

    :param threads: ``struct task_struct *`` of each thread, the first the one the core is "dumped by"
    :param mm: their ``struct mm_struct *``
    :param psargs: the process's arguments for ``NT_PRPSINFO`` (see :func:`prpsinfo_note`)
    :param files: ``(start, end, pgoff, path)`` of each file-backed VMA, for ``NT_FILE``
    :param page_size: the kernel's page size
    :param errors: list collecting what could not be read
    :return: the notes, in order
    """
    notes: List[CoreNote] = []
    siginfo = None
    for t in threads:
        siginfo = siginfo_note(t)
        if siginfo is not None:
            break
    leader = threads[0].group_leader.read_()
    for k, t in enumerate(threads):
        try:
            regs = thread_notes(t)
        except FaultError as e:
            if errors is not None:
                errors.append(f"thread {t.pid.value_()}: registers not readable ({e}); written as zeros")
            regs = ThreadRegs(bytes(_gregs_size(t.prog_)), [])
        fpvalid = any(n.type == NT_PRFPREG for n in regs.notes)
        notes.append(prstatus_note(t, regs.gregs, fpvalid))
        if k == 0:
            notes.append(prpsinfo_note(leader, psargs))
            if siginfo is not None:
                notes.append(siginfo)
            notes.append(auxv_note(mm))
            if files:
                notes.append(file_note(mm.prog_, files, page_size))
        notes.extend(regs.notes)
    return notes


def _gregs_size(prog: Program) -> int:
    return {"X86_64": 27 * 8, "AARCH64": 34 * 8, "PPC64": 48 * 8, "S390X": 216,
            "LOONGARCH64": 45 * 8}.get(_arch(prog), 0)


def encode_notes(prog: Program, notes: Iterable[CoreNote]) -> bytes:
    """
    The bytes of the ``PT_NOTE`` segment: each note's ``namesz``, ``descsz``, ``type``, then its name
    (with its NUL) and descriptor, each padded to 4 bytes, in the kernel's byte order.

    :param notes: the notes, in order
    :return: the segment's bytes
    """
    o = struct_order(prog)
    out = []
    for n in notes:
        name = n.name + b"\0"
        out.append(struct.pack(o + "III", len(name), len(n.desc), n.type))
        out.append(name + bytes(-len(name) % 4))
        out.append(n.desc + bytes(-len(n.desc) % 4))
    return b"".join(out)
