# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The small look-ups every module makes of a kernel, in one place: whether a type has a member, an
enumerator's value, a variable if it exists, a value computed once per program (``prog.cache``), the
VMCOREINFO note and its numbers; and :class:`KernelFacts`, the per-program facts the readers share
(architecture decoder, kernel generation, ``struct page`` layout, byte order, VMCOREINFO), made once and
handed down instead of each layer asking ``prog.cache`` again.

Nothing here is exported from :mod:`drgn_ptwalk`: it is the package's own plumbing.
"""

from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, TypeVar, overload

from drgn import Object, Program

if TYPE_CHECKING:
    from drgn_ptwalk.arch import ArchDecoder
    from drgn_ptwalk.generations import Generation
    from drgn_ptwalk.page import PageLayout

__all__ = (
    "KernelFacts",
    "cached",
    "const",
    "has_member",
    "kernel_facts",
    "page_size",
    "symbol_name",
    "var",
    "vmcoreinfo",
    "vmcoreinfo_length",
    "vmcoreinfo_number",
)

T = TypeVar("T")


def cached(prog: Program, key: str, compute: Callable[..., T], *args: Any) -> T:
    """``prog.cache[key]``, computed by ``compute(*args)`` the first time (facts of a dump that never
    change)."""
    try:
        return prog.cache[key]
    except KeyError:
        value = prog.cache[key] = compute(*args)
        return value


def has_member(prog: Program, type_name: str, member: str) -> bool:
    """Whether the type *type_name* exists and has *member* (``False`` if the debug info has no such type)."""
    try:
        return prog.type(type_name).has_member(member)
    except LookupError:
        return False


@overload
def const(prog: Program, name: str) -> Optional[int]: ...
@overload
def const(prog: Program, name: str, default: int) -> int: ...
@overload
def const(prog: Program, name: str, default: Optional[int]) -> Optional[int]: ...
def const(prog: Program, name: str, default: Optional[int] = None) -> Optional[int]:
    """The value of the constant (enumerator) *name*, *default* if the debug info has none. Looked up once
    per program (enumerators never change; some are asked for every VMA)."""
    try:
        v = prog.cache["ptwalk_consts"][name]
    except KeyError:
        v = _const(prog, name)
    return default if v is None else v


def _const(prog: Program, name: str) -> Optional[int]:
    try:
        v: Optional[int] = prog.constant(name).value_()
    except LookupError:
        v = None
    prog.cache.setdefault("ptwalk_consts", {})[name] = v
    return v


def var(prog: Program, name: str) -> Optional[Object]:
    """The object (variable, function or constant) *name*, ``None`` if the debug info has none."""
    try:
        return prog[name]
    except KeyError:
        return None


def symbol_name(prog: Program, addr: int) -> Optional[str]:
    """The name of the symbol at *addr* (a function pointer's target), ``None`` for NULL or no symbol."""
    if not addr:
        return None
    # Cached by address: a callback (vm_operations_struct::get_policy of every shmem VMA) is looked up once,
    # not once per VMA (Program.symbol() by address costs milliseconds on a distribution vmlinux).
    names: Dict[int, Optional[str]] = cached(prog, "ptwalk_sym_names", dict)
    try:
        return names[addr]
    except KeyError:
        pass
    try:
        name: Optional[str] = prog.symbol(addr).name
    except LookupError:
        name = None
    names[addr] = name
    return name


def page_size(prog: Program) -> int:
    """The base page size (the architecture decoder's: ``PAGE_SIZE``)."""
    return kernel_facts(prog).page_size


def vmcoreinfo(prog: Program) -> Dict[str, str]:
    """
    The kernel's VMCOREINFO note parsed into ``{key: value}`` (``NUMBER(x)``, ``SYMBOL(x)``, ``LENGTH(x)``,
    ``PAGESIZE`` ...), read once per program. Empty if the program has none (not a Linux kernel).
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


def _number(value: Optional[str]) -> Optional[int]:
    # NUMBER() and LENGTH() are printed with %ld (decimal, maybe negative), SYMBOL() and KERNELOFFSET as
    # bare hex; a 0x prefix is read as hex too.
    if value is None:
        return None
    for base in (10, 16):
        try:
            return int(value, base)
        except ValueError:
            pass
    return None


def vmcoreinfo_number(prog: Program, name: str) -> Optional[int]:
    """
    ``NUMBER(name)`` of VMCOREINFO, or the bare key *name* (``PAGESIZE``), as an integer; ``None`` if
    absent. The constants older drgn does not give as ``prog[name]`` (``SECTION_SIZE_BITS``: drgn 0.0.31
    has no such object) and the paging facts (``pgtable_l5_enabled``, ``TCR_EL1_T1SZ``).
    """
    info = vmcoreinfo(prog)
    return _number(info.get(f"NUMBER({name})", info.get(name)))


def vmcoreinfo_length(prog: Program, name: str) -> Optional[int]:
    """``LENGTH(name)`` of VMCOREINFO, ``None`` if absent."""
    return _number(vmcoreinfo(prog).get(f"LENGTH({name})"))


class KernelFacts:
    """
    What the readers of one program need of its kernel, each found on first use and then kept: made once
    per program (:func:`kernel_facts`) and handed down, so a walk or a /proc file does not look each fact
    up again at every layer.
    """

    def __init__(self, prog: Program) -> None:
        self.prog = prog

    @cached_property
    def decoder(self) -> "ArchDecoder":
        """The architecture's page-table decoder (:func:`~drgn_ptwalk.arch.get_decoder`).

        :raises NotImplementedError: on an architecture without one
        """
        from drgn_ptwalk.arch import get_decoder

        return get_decoder(self.prog)

    @cached_property
    def generation(self) -> "Generation":
        """The kernel generation (:func:`~drgn_ptwalk.generations.generation`)."""
        from drgn_ptwalk.generations import generation

        return generation(self.prog)

    @cached_property
    def layout(self) -> "PageLayout":
        """The ``struct page`` layout (:func:`~drgn_ptwalk.page.page_layout`)."""
        from drgn_ptwalk.page import page_layout

        return page_layout(self.prog)

    @cached_property
    def byte_order(self) -> str:
        """``"little"`` or ``"big"``: the byte order of the kernel's data."""
        from drgn_ptwalk._byteorder import byte_order

        return byte_order(self.prog)

    @property
    def big_endian(self) -> bool:
        """The kernel's data is big-endian (s390x)."""
        return self.byte_order == "big"

    @cached_property
    def vmcoreinfo(self) -> Dict[str, str]:
        """The VMCOREINFO note (:func:`vmcoreinfo`)."""
        return vmcoreinfo(self.prog)

    @cached_property
    def highest_memmap_pfn(self) -> int:
        """``highest_memmap_pfn`` (:func:`~drgn_ptwalk.page.highest_memmap_pfn`)."""
        from drgn_ptwalk.page import highest_memmap_pfn

        return highest_memmap_pfn(self.prog)

    @cached_property
    def page_size(self) -> int:
        """The base page size (the decoder's: ``PAGE_SIZE``)."""
        return self.decoder.page_size

    @cached_property
    def page_shift(self) -> int:
        """``PAGE_SHIFT``."""
        return self.prog["PAGE_SHIFT"].value_()

    def number(self, name: str) -> Optional[int]:
        """:func:`vmcoreinfo_number` of *name*."""
        return _number(self.vmcoreinfo.get(f"NUMBER({name})", self.vmcoreinfo.get(name)))


def kernel_facts(prog: Program) -> KernelFacts:
    """The :class:`KernelFacts` of *prog* (made on the first call, then the same object)."""
    try:  # (not cached(): asked for on every layer's way in, one frame fewer)
        return prog.cache["ptwalk_kernel_facts"]
    except KeyError:
        facts = prog.cache["ptwalk_kernel_facts"] = KernelFacts(prog)
        return facts
