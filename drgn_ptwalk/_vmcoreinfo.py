# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Access to the kernel's VMCOREINFO note (``NUMBER(x)=``, ``SYMBOL(x)=``, ``OFFSET(a.b)=`` ...: what crash
tools are promised by the kernel, so the first place to look for run-time facts such as the paging mode).
The architecture decoders import it from here; the parsing is :mod:`drgn_ptwalk._kernel`'s.
"""

from drgn_ptwalk._kernel import vmcoreinfo, vmcoreinfo_number

__all__ = ("vmcoreinfo", "vmcoreinfo_number")
