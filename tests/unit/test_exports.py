# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The package's exports: built from each API module's ``__all__`` (drgn_ptwalk.API_MODULES), seen the same
way by type checkers (the TYPE_CHECKING imports of drgn_ptwalk/__init__.py), every public name of the
README's "Python API" section among them, and every export documented (``:param:`` for each parameter,
``:return:`` where it returns something).
"""

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest

import drgn_ptwalk

ROOT = Path(__file__).resolve().parents[2]

# Names of the README's API section written like ours that are not the package's: what the kernel or an
# entry's methods are called.
NOT_PACKAGE_NAMES = {
    "cachestat": "the kernel's system call",
    "page": "a PtEntry method",
    "folio": "a PtEntry method",
}


def _api_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Python API\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _defined_names() -> Set[str]:
    """Every public module-level function and class of the API modules."""
    names: Set[str] = set()
    for module in drgn_ptwalk.API_MODULES:
        names.update(n for n, v in vars(importlib.import_module(module)).items()
                     if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
                     and v.__module__.startswith("drgn_ptwalk"))
    return names


def readme_api_names() -> List[str]:
    """
    The public names the README's API section gives: the names its example imports from the package, and
    in its text each ``name(...)``, each class-like ``CamelCase`` and each name the package defines;
    dotted ``drgn_ptwalk.module.name`` ones as they are.
    """
    sec = _api_section()
    names: Set[str] = set()
    for line in re.findall(r"^from drgn_ptwalk import (.+)$", sec, re.M):
        names.update(n.strip() for n in line.split(","))
    prose = re.sub(r"```.*?```", "", sec, flags=re.S)
    defined = _defined_names()
    for span in re.findall(r"`([^`]+)`", prose):
        m = re.match(r"^([A-Za-z_][\w.]*)(\()?", span)
        if not m:
            continue
        name, call = m.group(1), m.group(2)
        if name.startswith("drgn_ptwalk."):
            names.add(name)
        elif "." in name:
            continue  # an attribute of a documented name (memmap.RULES): judged with the module below
        elif call or re.match(r"^[A-Z][a-z]+[A-Z]\w*$|^[A-Z][a-z]+Error$", name) or name in defined:
            names.add(name)
    return sorted(names - set(NOT_PACKAGE_NAMES))


def _resolve(name: str) -> Any:
    if name.startswith("drgn_ptwalk."):
        module, _, attr = name.rpartition(".")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError:
            return importlib.import_module(name)
    return getattr(drgn_ptwalk, name)


def _doc_problems(name: str, obj: Any) -> List[str]:
    doc = inspect.getdoc(obj) or ""
    if not doc.strip():
        return [f"{name}: no docstring"]
    if not inspect.isfunction(obj):
        return []
    out = []
    sig = inspect.signature(obj)
    for p in sig.parameters.values():
        # drgn's helpers leave the program undocumented: every helper takes one.
        if p.name in ("self", "cls", "prog") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if not re.search(rf":param {p.name}:", doc):
            out.append(f"{name}: no ':param {p.name}:'")
    ret = sig.return_annotation
    returns = ret is not inspect.Signature.empty and ret is not None and ret != "None"
    if returns and not inspect.isgeneratorfunction(obj) and not re.search(r":returns?:", doc):
        out.append(f"{name}: no ':return:'")
    return out


def test_type_checkers_see_the_api_modules():
    """The TYPE_CHECKING star imports of __init__.py are the modules of API_MODULES, each once."""
    tree = ast.parse((ROOT / "drgn_ptwalk" / "__init__.py").read_text())
    star = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            star += [n.module for n in node.body if isinstance(n, ast.ImportFrom) and n.names[0].name == "*"]
    assert sorted(star) == sorted(drgn_ptwalk.API_MODULES)
    assert len(set(star)) == len(star)


@pytest.mark.parametrize("module", drgn_ptwalk.API_MODULES)
def test_module_all_is_read_as_imported(module):
    """The package reads each API module's __all__ from its source: the same names as importing it; each
    name is there."""
    m = importlib.import_module(module)
    assert drgn_ptwalk.module_all(module) == tuple(m.__all__)
    missing = [n for n in m.__all__ if not hasattr(m, n)]
    assert not missing, f"{module}.__all__ names what it has not: {missing}"


def test_package_exports_are_the_modules_all():
    """A fresh interpreter: importing the package imports no API module (the drgn plugin only the cheap
    errors and entry); __all__ is
    the union of the API modules' __all__; each name is its module's object (a name two modules export is
    one object); star-import gives the functions, not same-named submodules."""
    code = r"""
import importlib, json, sys
import drgn_ptwalk
early = sorted(m for m in drgn_ptwalk.API_MODULES if m in sys.modules)
import drgn_ptwalk.plugin
plugin = sorted(m for m in drgn_ptwalk.API_MODULES if m in sys.modules)
from drgn_ptwalk import gcore  # the function, whatever the plugin imported
first = type(gcore).__name__
ns = {}
exec("from drgn_ptwalk import *", ns)
out = {"early": early, "plugin": plugin, "first": first, "all": list(drgn_ptwalk.__all__), "bad": [], "types": {}}
union = {}
for mod in drgn_ptwalk.API_MODULES:
    m = importlib.import_module(mod)
    for n in m.__all__:
        if n in union and getattr(m, n) is not union[n]:
            out["bad"].append(f"{n}: {mod}'s is not the same object as another API module's")
        union.setdefault(n, getattr(m, n))
for n, v in union.items():
    if ns.get(n) is not v or getattr(drgn_ptwalk, n) is not v:
        out["bad"].append(f"{n}: the package's is not its module's")
out["union"] = sorted(union)
print(json.dumps(out))
"""
    import json

    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    r = json.loads(p.stdout)
    assert r["early"] == [], f"importing the package imported {r['early']}"
    # The commands' modules need the exceptions and the entry types (no kernel look-up) to declare
    # themselves; the rest is imported when a command runs.
    assert set(r["plugin"]) <= {"drgn_ptwalk.errors", "drgn_ptwalk.entry"}, r["plugin"]
    assert r["first"] == "function"
    assert r["all"] == r["union"]
    assert r["bad"] == []


def test_readme_api_names_are_exported_and_documented():
    names = readme_api_names()
    assert len(names) > 40, names  # the section's names were found
    exported = set(drgn_ptwalk.__all__)
    not_exported = [n for n in names if "." not in n and n not in exported]
    assert not not_exported, f"the README's API section names what the package does not export: {not_exported}"
    problems: Dict[str, List[str]] = {}
    for n in names:
        try:
            obj = _resolve(n)
        except (AttributeError, ImportError) as e:
            problems[n] = [f"{n}: cannot be imported ({e})"]
            continue
        p = _doc_problems(n, obj)
        if p:
            problems[n] = p
    assert not problems, "\n".join(x for v in problems.values() for x in v)


def test_every_export_is_documented():
    """Every name the package exports, README'd or not: a docstring, ``:param:`` for each parameter and
    ``:return:`` where it returns something."""
    problems = [p for n in drgn_ptwalk.__all__ for p in _doc_problems(n, getattr(drgn_ptwalk, n))]
    assert not problems, "\n".join(problems)
