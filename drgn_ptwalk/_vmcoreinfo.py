# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Access to the kernel's VMCOREINFO note as a dictionary.

The note is what crash tools are promised by the kernel (``NUMBER(x)=``,
``SYMBOL(x)=``, ``OFFSET(a.b)=`` ...), so it is the first place to look for
run-time facts such as the paging mode.
"""

from typing import Dict, Optional

from drgn import Program

__all__ = ("vmcoreinfo", "vmcoreinfo_number")


def vmcoreinfo(prog: Program) -> Dict[str, str]:
    """
    Return the VMCOREINFO note of *prog* parsed into ``{key: value}``.

    An empty dictionary if the program has none (e.g. not a Linux kernel).
    """
    try:
        return prog.cache["ptwalk_vmcoreinfo"]
    except KeyError:
        pass
    info: Dict[str, str] = {}
    try:
        raw = prog["VMCOREINFO"].string_().decode(errors="replace")
    except (KeyError, LookupError, ValueError):
        raw = ""
    for line in raw.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            info[key] = value
    prog.cache["ptwalk_vmcoreinfo"] = info
    return info


def vmcoreinfo_number(prog: Program, name: str) -> Optional[int]:
    """
    Return ``NUMBER(name)`` (or the bare key *name*, e.g. ``PAGESIZE``) from
    VMCOREINFO as an integer, or ``None`` if absent.
    """
    info = vmcoreinfo(prog)
    value = info.get(f"NUMBER({name})", info.get(name))
    if value is None:
        return None
    # NUMBER() is printed with %ld; SYMBOL()/KERNELOFFSET are bare hex.
    for base in (10, 16):
        try:
            return int(value, base)
        except ValueError:
            pass
    return None
