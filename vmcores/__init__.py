# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Reference vmcores: Debian kernels booted under QEMU with a workload that creates every kind of mapping,
the kernel's own /proc output captured in the guest as the truth, then the guest dumped
(``python -m vmcores``; see the README's "Reference vmcores").
"""
