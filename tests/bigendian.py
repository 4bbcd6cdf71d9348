# SPDX-License-Identifier: LGPL-2.1-or-later
"""The physical side (kpage, memmap, whomaps, whoswaps, page_table_owners, page_kind) on big-endian kernels
(s390x): refused with UnsupportedKernelError, which the per-dump tests of that side check instead."""

import pytest

from drgn_ptwalk._byteorder import is_big_endian
from drgn_ptwalk.errors import UnsupportedKernelError


def physical_side_refused(prog, call, what: str) -> bool:
    """On a big-endian kernel, check that *call()* refuses with the one-line message naming *what*, and
    return True (the test has nothing else to compare); on a little-endian one return False."""
    if not is_big_endian(prog):
        return False
    with pytest.raises(UnsupportedKernelError, match=f"^{what} is not supported on a big-endian kernel "):
        call()
    return True
