# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Things every procfs module needs: the warning category and the per-VMA
error contract.

Corrupt or unreadable input (see :mod:`drgn_ptwalk.procfs`):

* the VMA tree itself (a bad maple node, a loop, a VMA not where the tree
  files it): :class:`~drgn_ptwalk.vmatree.VmaTreeError` propagates, with the
  address of the bad node or VMA and its level; there is no file to print;
* a field of one VMA (``vm_file``, ``vm_flags``, its inode, path, hstate,
  ...) that cannot be read or makes no sense: :class:`VmaFieldError`, which
  the file generators catch per VMA and turn into a :class:`ProcfsWarning`
  naming the VMA, its range and what could not be read; that VMA is left
  out (its line, its smaps record, its rollup share), the others are
  printed;
* a ``struct page`` that cannot be read (filtered dump, a PFN beyond the
  memmap): a :class:`ProcfsWarning`, the counts that needed it are missing.
"""

import contextlib
import warnings
from typing import Iterator, List, Optional

from drgn import FaultError, Object

from drgn_ptwalk.errors import ProcfsWarning, VmaFieldError

__all__ = ("ProcfsWarning", "VMA_ERRORS", "VmaFieldError", "reading", "warn", "warn_vma")


VMA_ERRORS = (FaultError, VmaFieldError)
"""What the per-VMA steps of the file generators catch (and warn about)."""


def warn(msg: str, sink: Optional[List[str]] = None) -> None:
    """Report *msg* with :func:`warnings.warn` and append it to *sink* (a list) if given."""
    if sink is not None:
        sink.append(msg)
    warnings.warn(msg, ProcfsWarning, stacklevel=3)


def _vma_where(vma: Object) -> str:
    try:
        return f"VMA at {vma.value_():#x} ({vma.vm_start.value_():#x}-{vma.vm_end.value_():#x})"
    except FaultError:
        return f"VMA at {vma.value_():#x}"


@contextlib.contextmanager
def reading(vma: Object, what: str) -> Iterator[None]:
    """Turn a :class:`drgn.FaultError` in the block into a :class:`VmaFieldError` about *what*."""
    try:
        yield
    except FaultError as e:
        raise VmaFieldError(vma.value_(), "VMA", f"cannot read {what}: {e}") from None


def warn_vma(vma: Object, err: Exception, what: str, sink: Optional[List[str]] = None) -> None:
    """Warn that *vma* is left out of *what* because of *err* (one of :data:`VMA_ERRORS`)."""
    reason = err.reason if isinstance(err, VmaFieldError) else f"cannot read it: {err}"
    warn(f"{_vma_where(vma)}: {reason}; left out of {what}", sink)
