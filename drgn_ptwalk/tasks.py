# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Finding the task a user means: by PID, by ``struct task_struct`` address, or by unique name
(:func:`find_target`), and its address space (:func:`task_mm`); a missing task or a kernel thread is a
typed error (:mod:`drgn_ptwalk.errors`).
"""

from typing import Iterator, List

from drgn import FaultError, Object, Program
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.pid import find_task, for_each_task

from drgn_ptwalk.errors import NoMmError, TaskNotFoundError

__all__ = ("TaskNotFoundError", "NoMmError", "find_target", "get_task_mm", "no_mm_reason", "task_mm", "thread_group")

# include/linux/sched.h: PF_KTHREAD has had this value since v2.6.x, through v7.x.
PF_KTHREAD = 0x00200000


def thread_group(task: Object) -> Iterator[Object]:
    """
    Every thread of *task*'s thread group, *task* included, in the kernel's ``for_each_thread()`` order:
    the ``signal->thread_head`` list (v3.14 on, 0c740d0afc3b "introduce for_each_thread() to replace the
    buggy while_each_thread()"). drgn's ``for_each_task_in_group()`` walks the same list but is not in
    drgn 0.0.31, the oldest drgn supported.

    :param task: ``struct task_struct *``
    :return: ``struct task_struct *`` of each thread
    """
    return list_for_each_entry("struct task_struct", task.signal.thread_head.address_of_(), "thread_node")


def _comm(task: Object) -> str:
    return task.comm.string_().decode(errors="replace")


def find_target(prog: Program, spec: "str | int | Object") -> Object:
    """
    Find a task from a PID, a ``struct task_struct`` address (``0x...``) or a unique name (``comm``).

    :param spec: ``struct task_struct *``, PID, or a string naming one of the above
    :return: ``struct task_struct *``
    :raises TaskNotFoundError: if nothing or more than one task matches
    """
    if isinstance(spec, Object):
        return spec
    if isinstance(spec, int):
        task = find_task(prog, spec)
        if not task:
            raise TaskNotFoundError(f"no task with PID {spec}")
        return task
    text = str(spec).strip()
    if text.isdigit():
        return find_target(prog, int(text))
    if text.lower().startswith("0x"):
        try:
            addr = int(text, 16)
        except ValueError:
            raise TaskNotFoundError(f"bad task address {text!r}") from None
        task = Object(prog, "struct task_struct *", addr)
        try:
            task.pid.value_()
        except FaultError:
            raise TaskNotFoundError(f"no task_struct readable at {addr:#x}") from None
        return task
    matches: List[Object] = [t for t in for_each_task(prog) if _comm(t) == text[:15]]
    if not matches:
        raise TaskNotFoundError(f"no task named {text!r}")
    if len(matches) > 1:
        pids = ", ".join(str(t.pid.value_()) for t in matches[:10])
        raise TaskNotFoundError(f"{len(matches)} tasks are named {text!r} (PIDs {pids}); give a PID")
    return matches[0]


def get_task_mm(task: Object) -> Object:
    """
    ``get_task_mm()``: the ``struct mm_struct *`` the /proc files of *task*
    show, or NULL: NULL for a kernel thread even while it uses a borrowed
    user mm (``kthread_use_mm()``, e.g. a v6.1 ``vhost-<pid>`` worker) and
    for a task that has exited (a zombie).

    :param task: ``struct task_struct *``
    :return: ``struct mm_struct *``, possibly NULL
    """
    mm = task.mm.read_()
    if mm.value_() and task.flags.value_() & PF_KTHREAD:
        return Object(task.prog_, mm.type_, 0)
    return mm


def no_mm_reason(task: Object) -> str:
    """
    Why *task* has no mm of its own, in words (for messages).

    :param task: ``struct task_struct *`` without an mm of its own
    :return: one line naming the task
    """
    if task.flags.value_() & PF_KTHREAD:
        borrowed = " (using a borrowed user mm)" if task.mm.value_() else ""
        return f"PID {task.pid.value_()} ({_comm(task)}) is a kernel thread{borrowed}: no mm of its own"
    return f"PID {task.pid.value_()} ({_comm(task)}) has no mm (an exited or exiting task)"


def task_mm(task: Object) -> Object:
    """
    The ``struct mm_struct *`` of a task (:func:`get_task_mm`).

    :param task: ``struct task_struct *``
    :return: ``struct mm_struct *``, not NULL
    :raises NoMmError: for a kernel thread (also one using a borrowed mm) or
        an exited task
    """
    mm = get_task_mm(task)
    if not mm:
        raise NoMmError(no_mm_reason(task))
    return mm
