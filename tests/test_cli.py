"""The command line: every subcommand has its own --help; `neurogrs` stays light."""
import subprocess
import sys

import pytest

from neurogrs.cli import build_parser


def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


def test_top_level_help_lists_the_core_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for cmd in ("train", "evaluate", "info", "bench"):
        assert cmd in text


@pytest.mark.parametrize("cmd", _subcommands())
def test_each_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: neurogrs " + cmd in capsys.readouterr().out


def test_help_does_not_import_tensorflow():
    code = ("import sys; from neurogrs.cli import build_parser; build_parser(); "
            "print([m for m in ('tensorflow', 'keras') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "neurogrs", "--version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "neurogrs" in out.stdout
