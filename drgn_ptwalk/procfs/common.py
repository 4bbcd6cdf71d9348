# SPDX-License-Identifier: LGPL-2.1-or-later
"""Things every procfs module needs: the warning category."""

import warnings

__all__ = ("ProcfsWarning", "warn")


class ProcfsWarning(UserWarning):
    """Something the dump cannot tell (e.g. a page left out of a filtered dump)."""


def warn(msg: str, sink=None) -> None:
    """Report *msg* with :func:`warnings.warn` and append it to *sink* (a list) if given."""
    if sink is not None:
        sink.append(msg)
    warnings.warn(msg, ProcfsWarning, stacklevel=3)
