# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn_ptwalk._compat: each branch taken for the drgn that lacks a feature, checked against the drgn running
the tests (CI runs the suite with the oldest supported drgn and with the newest, so both sides run for real).
No dump needed: types are built with drgn's own type constructors."""

import logging
import subprocess
import sys

import drgn
import pytest
from drgn import Program, Qualifiers, TypeKind

from drgn_ptwalk import _compat


def _typedefs():
    flags = drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN
    prog = Program(drgn.Platform(drgn.Architecture.X86_64, flags))
    i = prog.int_type("long long", 8, True)
    loff = prog.typedef_type("__kernel_loff_t", i)
    loff_t = prog.typedef_type("loff_t", loff)
    const_loff = prog.typedef_type("cloff_t", loff_t, qualifiers=Qualifiers.CONST)
    volatile_inner = prog.typedef_type("vol_t", prog.int_type("int", 4, True, qualifiers=Qualifiers.VOLATILE))
    via_volatile = prog.typedef_type("vvol_t", volatile_inner, qualifiers=Qualifiers.CONST)
    ptr = prog.typedef_type("loffp_t", prog.pointer_type(loff_t))
    enum = prog.enum_type("vsyscall_mode", prog.int_type("unsigned int", 4, False),
                          (drgn.TypeEnumerator("EMULATE", 0), drgn.TypeEnumerator("NONE", 2)))
    return prog, i, loff, loff_t, const_loff, via_volatile, ptr, enum


def _same(a, b):
    # drgn's Type == is identity; its repr spells the whole type (name, size, qualifiers, what it points to).
    return repr(a) == repr(b)


def test_unaliased_fallback():
    prog, i, loff, loff_t, const_loff, via_volatile, ptr, enum = _typedefs()
    f = _compat._unaliased_fallback
    assert f(i) is i and f(enum) is enum
    assert f(loff) is i and f(loff_t) is i
    assert _same(f(const_loff), i.qualified(Qualifiers.CONST))
    u = f(via_volatile)
    assert u.kind == TypeKind.INT and u.name == "int" and u.qualifiers == Qualifiers.CONST | Qualifiers.VOLATILE
    # Only top-level typedefs go: the pointer keeps pointing at loff_t.
    assert f(ptr).kind == TypeKind.POINTER and f(ptr).type is loff_t
    # What the package asks of it: the enumerators behind a typedef'd enum.
    assert [e.name for e in f(prog.typedef_type("mode_t", enum)).enumerators] == ["EMULATE", "NONE"]


def test_unaliased_matches_drgn():
    """Where drgn has Type.unaliased (0.0.33), the shim is drgn's and the fallback agrees with it."""
    types = _typedefs()[1:]
    if hasattr(drgn.Type, "unaliased"):
        assert _compat.type_unaliased is drgn.Type.unaliased
        for t in types:
            assert _same(_compat._unaliased_fallback(t), t.unaliased()), t
    else:
        assert _compat.type_unaliased is _compat._unaliased_fallback


def test_commands_detection():
    try:
        import drgn.commands.linux  # noqa: F401
        have = True
    except ImportError:
        have = False
    assert _compat.HAVE_COMMANDS is have
    import drgn_ptwalk.plugin as plugin

    if have:
        from drgn.commands import CommandError

        assert _compat.CommandError is CommandError
    else:
        # The stand-ins register nothing and the plugin gets the hook that says so.
        assert _compat.argument("task", help="x") is None
        fn = lambda: None  # noqa: E731
        assert _compat.linux_kernel_command(name="maps", arguments=())(fn) is fn
    assert plugin.drgn_prog_set is _compat.plugin_prog_set


def test_plugin_imports_cleanly():
    """drgn imports the plugin on every start (entry point drgn.plugins, drgn 0.0.31): never a traceback."""
    p = subprocess.run([sys.executable, "-c", "import drgn_ptwalk.plugin"], capture_output=True, text=True)
    assert p.returncode == 0 and not p.stderr, p.stderr


def test_no_commands_warning(monkeypatch, caplog):
    """Without drgn.commands the hook warns once per kernel program opened in drgn's CLI, never in library use
    or for user space; with drgn.commands it never warns."""
    msg = _compat.no_commands_message()
    assert "%maps" in msg and "%memtop" in msg and "drgn.commands" in msg and "drgn-ptwalk" in msg
    assert drgn.__version__ in msg

    class FakeProg:
        def __init__(self, flags):
            self.flags = flags

        platform = None  # not arm64: no swapper_pg_dir probe

    kernel = FakeProg(drgn.ProgramFlags.IS_LINUX_KERNEL)
    for have in (True, False):
        monkeypatch.setattr(_compat, "HAVE_COMMANDS", have)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="drgn"):
            monkeypatch.delitem(sys.modules, "drgn.cli", raising=False)
            _compat.plugin_prog_set(kernel)
            assert caplog.records == []
            monkeypatch.setitem(sys.modules, "drgn.cli", object())
            _compat.plugin_prog_set(FakeProg(drgn.ProgramFlags(0)))
            assert caplog.records == []
            _compat.plugin_prog_set(kernel)
            said = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
            assert said == ([] if have else [("drgn", logging.WARNING, msg)])


def test_qemu_detection():
    have = hasattr(drgn.Program, "set_qemu_qmp")
    assert _compat.HAVE_QEMU_QMP is have
    if have:
        assert _compat.qemu_unsupported() is None
    else:
        why = _compat.qemu_unsupported()
        assert "--qemu" in why and "drgn 0.2.0" in why and drgn.__version__ in why


def test_open_program_without_qmp(monkeypatch, tmp_path):
    """open_program(qemu=...) on a drgn without QMP (simulated on any drgn: the check comes before drgn is
    asked anything): one ProgramError line that says which drgn has it."""
    from drgn_ptwalk.program import ProgramError, open_program

    monkeypatch.setattr(_compat, "HAVE_QEMU_QMP", False)
    with pytest.raises(ProgramError) as e:
        open_program(qemu=str(tmp_path / "no-such.sock"))
    assert str(e.value) == _compat.qemu_unsupported() and "drgn 0.2.0" in str(e.value)
