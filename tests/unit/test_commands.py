# SPDX-License-Identifier: LGPL-2.1-or-later
"""The command registry (drgn_ptwalk.commands): the CLI, the drgn shell commands and contrib/ accept the
same arguments for every command, because all three are built from one declaration; and PtEntry equality
is on what an entry says."""

import argparse
import ast
import contextlib
import io
import runpy
import sys
from pathlib import Path

import pytest

from drgn_ptwalk._compat import HAVE_COMMANDS
from drgn_ptwalk.cli import build_parser
from drgn_ptwalk.commands import make_parser, registry

ROOT = Path(__file__).resolve().parents[2]
NAMES = [c.name for c in registry()]


def _signature(parser: argparse.ArgumentParser):
    """What a parser accepts: each argument's option strings (or positional name), and how it parses."""
    out = []
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        out.append((tuple(a.option_strings), a.dest, a.nargs, tuple(a.choices or ()), a.type, a.default,
                    type(a).__name__, a.required))
    return sorted(out, key=repr)


def _cli_parsers():
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _drgn_parsers():
    import drgn_ptwalk.plugin  # noqa: F401 (registers the commands)

    if not HAVE_COMMANDS:  # drgn < 0.0.33: no shell commands (test_cli.test_drgn_commands: what it says)
        return {}
    from drgn.commands import DEFAULT_COMMAND_NAMESPACE

    cmds = DEFAULT_COMMAND_NAMESPACE._commands
    return {name: cmds[name]._parser for name in NAMES}


def test_every_front_end_has_every_command():
    # The CLI also takes each command's aliases (drgn-ptwalk read = memread); the shell and contrib/ do not.
    aliases = [a for c in registry() for a in c.aliases]
    cli = _cli_parsers()
    assert sorted(cli) == sorted(NAMES + aliases)
    assert all(cli[a] is cli[c.name] for c in registry() for a in c.aliases)
    assert sorted(_drgn_parsers()) == (sorted(NAMES) if HAVE_COMMANDS else [])
    assert sorted(p.stem for p in (ROOT / "contrib").glob("*.py")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_same_arguments_everywhere(name):
    cmd = next(c for c in registry() if c.name == name)
    want = _signature(make_parser(cmd))
    assert _signature(_cli_parsers()[name]) == want, "CLI"
    if HAVE_COMMANDS:
        assert _signature(_drgn_parsers()[name]) == want, "drgn shell command"
    # contrib/NAME.py runs exactly that command's parser: it calls run_script(prog, NAME) and nothing else.
    script = ROOT / "contrib" / f"{name}.py"
    calls = [n for n in ast.walk(ast.parse(script.read_text())) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "run_script"]
    assert len(calls) == 1 and ast.literal_eval(calls[0].args[1]) == name, script
    assert "argparse" not in script.read_text()
    out = io.StringIO()
    argv = sys.argv
    sys.argv = [str(script), "--help"]
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as e:
            runpy.run_path(str(script), init_globals={"prog": None}, run_name="__main__")
    finally:
        sys.argv = argv
    assert e.value.code == 0
    assert out.getvalue() == make_parser(cmd, prog=f"{name}.py").format_help()


def test_entries_equal_on_what_they_say():
    from drgn_ptwalk.arch.aarch64 import AArch64Decoder
    from drgn_ptwalk.arch.x86_64 import X86_64Decoder
    from drgn_ptwalk.entry import PtEntry, PtLevel, PtType

    a = PtEntry(PtType.FOLIO, PtLevel.PTE, 0x1000, 0x2000, raw=0x1234067, pfn=0x1234, decoder=X86_64Decoder(),
                values=(0x1234067,), slot=0)
    b = a._replace(decoder=X86_64Decoder(), values=(0, 0x1234067), slot=1)
    assert a == b and not a != b and hash(a) == hash(b) and repr(a) == repr(b)
    assert a != a._replace(pfn=0x1235) and a != a._replace(raw=0x1234065)
    assert a._replace(decoder=AArch64Decoder()) == a  # what it says, not how it was read
    assert len({a, b}) == 1
