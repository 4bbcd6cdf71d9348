# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The error contract without a dump: bad input (drgn_ptwalk.commands.USER_ERRORS) is one line in every front
end, a bug of ours (any other exception: a plain ValueError, a FaultError no reader turned into a warning)
shows its traceback; a NULL mm is NoMmError wherever the kernel's read fails (ESRCH); every exception
class of the package is in drgn_ptwalk.errors; the names the plugin's fallback message lists are the
registry's.
"""

import argparse
import importlib
import inspect
import pkgutil

import drgn
import pytest
from drgn import FaultError, Object, Program

import drgn_ptwalk
from drgn_ptwalk import errors
from drgn_ptwalk.commands import USER_ERRORS, command, registry, run_script
from drgn_ptwalk.errors import ArgumentError, NoMmError


def _failing(exc: BaseException):
    def run(prog, args):
        raise exc

    return command("failing", "raises what the test gives", (), run, lambda res, args, out: None)


def _program() -> Program:
    return Program(drgn.Platform(drgn.Architecture.X86_64,
                                 drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN))


@pytest.mark.parametrize("exc,user", [
    (ArgumentError("bad range 0x1-0x0"), True),
    (NoMmError("PID 2 (kthreadd) is a kernel thread: no mm of its own"), True),
    (ValueError("an internal invariant broke"), False),
    (FaultError("could not read memory", 0xdead000), False),
    (KeyError("internal"), False),
])
def test_drgn_shell_command_error_or_traceback(exc, user, capsys):
    from drgn_ptwalk._compat import CommandError
    from drgn_ptwalk.plugin import run_command

    with pytest.raises(CommandError) as e:
        run_command(_failing(exc), _program(), argparse.Namespace())
    err = capsys.readouterr().err
    assert len(str(e.value).splitlines()) == 1
    if user:
        assert str(e.value) == str(exc) and err == ""
    else:
        assert str(e.value).startswith(f"internal error: {type(exc).__name__}: ")
        assert "Traceback (most recent call last)" in err and "in run" in err, err


@pytest.mark.parametrize("exc,status", [(ArgumentError("bad range"), 2), (ValueError("internal"), 1)])
def test_script_exit_status_and_traceback(exc, status, monkeypatch, capsys):
    import drgn_ptwalk.commands as commands

    monkeypatch.setattr(commands, "lookup", lambda name: _failing(exc))
    assert run_script(_program(), "failing", []) == status
    err = capsys.readouterr().err
    assert ("Traceback" in err) == (status == 1)
    assert err.splitlines()[-1].startswith("drgn-ptwalk: ")


def test_user_errors_are_ours():
    """No builtin catch-all among the user errors (OSError stays: an output file that cannot be written)."""
    assert ValueError not in USER_ERRORS and FaultError not in USER_ERRORS and Exception not in USER_ERRORS
    assert all(issubclass(e, OSError) or e.__module__ == "drgn_ptwalk.errors" for e in USER_ERRORS)


def _null_mm() -> Object:
    prog = _program()
    return Object(prog, prog.pointer_type(prog.struct_type("mm_struct", 0, ())), 0)


def test_null_mm_is_no_mm_error():
    from drgn_ptwalk.procfs import pagemap_mm, smaps_rollup_mm

    with pytest.raises(NoMmError, match="ESRCH"):
        smaps_rollup_mm(_null_mm())
    with pytest.raises(NoMmError, match="ESRCH"):
        pagemap_mm(_null_mm(), 0, 4096)


def test_every_exception_class_is_in_errors():
    """Every public exception class a module of the package defines is drgn_ptwalk.errors' (modules may
    re-export them)."""
    outside = []
    for info in pkgutil.walk_packages(drgn_ptwalk.__path__, "drgn_ptwalk."):
        if info.name in ("drgn_ptwalk.__main__",):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            # (a private class under a public alias, _compat's stand-in for drgn's CommandError, is not one)
            if (inspect.isclass(value) and issubclass(value, BaseException) and not value.__name__.startswith("_")
                    and value.__module__ == info.name and info.name != "drgn_ptwalk.errors"):
                outside.append(f"{info.name}.{name}")
    assert not outside, outside
    assert set(errors.__all__) == {n for n, v in vars(errors).items()
                                   if inspect.isclass(v) and issubclass(v, BaseException)}


def test_no_commands_message_names_every_command():
    """The plugin's message on a drgn without shell commands lists the registry's commands."""
    from drgn_ptwalk._compat import no_commands_message

    msg = no_commands_message()
    assert all(f"%{c.name}" in msg for c in registry())


def test_cli_and_plugin_docstrings_do_not_list_commands_by_hand():
    """They point to the registry instead of a list that falls behind it."""
    import drgn_ptwalk.cli
    import drgn_ptwalk.plugin

    for module in (drgn_ptwalk.cli, drgn_ptwalk.plugin):
        named = [c.name for c in registry() if f"%{c.name}`" in module.__doc__ or f"``{c.name}``" in module.__doc__]
        assert len(named) < 4 and "registry" in module.__doc__, (module.__name__, named)


def test_io_error_is_one_line(capsys, monkeypatch):
    import drgn_ptwalk.commands as commands

    monkeypatch.setattr(commands, "lookup", lambda name: _failing(FileNotFoundError(2, "No such file", "/x")))
    assert run_script(_program(), "failing", []) == 2
    assert capsys.readouterr().err.count("\n") == 1
