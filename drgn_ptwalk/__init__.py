# SPDX-License-Identifier: LGPL-2.1-or-later
"""
drgn-ptwalk: walk a task's real page tables in a live kernel or crash dump.

The public API is :func:`pt_range_walk` and its result type :class:`PtEntry`; :mod:`drgn_ptwalk.page`
reads ``struct page``/folio state; :mod:`drgn_ptwalk.kpage` rebuilds /proc/kpageflags, kpagecount and
kpagecgroup; :func:`whomaps` finds who maps a physical page (:mod:`drgn_ptwalk.rmap`);
:mod:`drgn_ptwalk.procfs` rebuilds /proc/PID/{maps,smaps,smaps_rollup,numa_maps,pagemap} on the walker;
:func:`memtop` ranks processes by memory; every public exception and warning is in
:mod:`drgn_ptwalk.errors`.

The package exports the ``__all__`` of each module of :data:`API_MODULES`, as drgn's helper packages do.
A name is imported when first used (only its own module), so that loading the drgn plugin (which imports
this package) costs only registering its commands; static type checkers and IDEs read the same modules'
``__all__`` through the ``TYPE_CHECKING`` imports below (kept equal to :data:`API_MODULES` by
``tests/unit/test_exports.py``). Three modules are named like their main function (:mod:`~drgn_ptwalk.gcore`,
:mod:`~drgn_ptwalk.memmap`, :mod:`~drgn_ptwalk.filecache`): once such a module has been imported (say, by
its command) before the package's name was used, ``drgn_ptwalk.gcore`` is the module, as Python binds it;
``from drgn_ptwalk.gcore import gcore`` is the function either way.
"""

import ast
import importlib
import os
import re
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

API_MODULES: Tuple[str, ...] = (
    "drgn_ptwalk.errors",
    "drgn_ptwalk.entry",
    "drgn_ptwalk.tasks",
    "drgn_ptwalk.walk",
    "drgn_ptwalk.procfs",
    "drgn_ptwalk.procfs.memtop",
    "drgn_ptwalk.program",
    "drgn_ptwalk.arch",
    "drgn_ptwalk.swapinfo",
    "drgn_ptwalk.page",
    "drgn_ptwalk.kpage",
    "drgn_ptwalk.rmap",
    "drgn_ptwalk.memmap",
    "drgn_ptwalk.filecache",
    "drgn_ptwalk.usermem",
    "drgn_ptwalk.corenotes",
    "drgn_ptwalk.gcore",
    "drgn_ptwalk.report",
)
"""The modules whose ``__all__`` the package exports (a name in two of them is one object, re-exported: the
first one's is taken)."""


def module_all(module: str) -> Tuple[str, ...]:
    """
    The ``__all__`` of a module of this package, read from its source (its ``__all__ = (...)`` of string
    literals) without importing it; imported if the source does not say.

    :param module: the module's full name, ``drgn_ptwalk....``
    """
    path = os.path.join(os.path.dirname(__file__), *module.split(".")[1:])
    path = os.path.join(path, "__init__.py") if os.path.isdir(path) else path + ".py"
    try:
        with open(path, encoding="utf-8") as f:
            m = re.search(r"^__all__ = (\([^)]*\))", f.read(), re.M)
    except OSError:
        m = None
    if m is None:
        return tuple(importlib.import_module(module).__all__)
    return tuple(ast.literal_eval(m.group(1)))


_where: Optional[Dict[str, str]] = None


def _exports() -> Dict[str, str]:
    # exported name -> the API module it is taken from
    global _where
    if _where is None:
        where: Dict[str, str] = {}
        for module in API_MODULES:
            for name in module_all(module):
                where.setdefault(name, module)
        _where = where
    return _where


if not TYPE_CHECKING:  # type checkers see the names through the imports below, and no others

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            # Everything, for "from drgn_ptwalk import *": bound now, so that a submodule named like its
            # function (gcore, memmap, filecache), which importing it binds here, does not hide it.
            for n, module in _exports().items():
                globals()[n] = getattr(importlib.import_module(module), n)
            value = tuple(sorted(_exports()))
        else:
            module = _exports().get(name)
            if module is None:
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_exports()))


if TYPE_CHECKING:  # pragma: no cover
    from drgn_ptwalk.arch import *  # noqa: F403
    from drgn_ptwalk.corenotes import *  # noqa: F403
    from drgn_ptwalk.entry import *  # noqa: F403
    from drgn_ptwalk.errors import *  # noqa: F403
    from drgn_ptwalk.filecache import *  # noqa: F403
    from drgn_ptwalk.gcore import *  # noqa: F403
    from drgn_ptwalk.kpage import *  # noqa: F403
    from drgn_ptwalk.memmap import *  # noqa: F403
    from drgn_ptwalk.page import *  # noqa: F403
    from drgn_ptwalk.procfs import *  # noqa: F403
    from drgn_ptwalk.procfs.memtop import *  # noqa: F403
    from drgn_ptwalk.program import *  # noqa: F403
    from drgn_ptwalk.report import *  # noqa: F403
    from drgn_ptwalk.rmap import *  # noqa: F403
    from drgn_ptwalk.swapinfo import *  # noqa: F403
    from drgn_ptwalk.tasks import *  # noqa: F403
    from drgn_ptwalk.usermem import *  # noqa: F403
    from drgn_ptwalk.walk import *  # noqa: F403
