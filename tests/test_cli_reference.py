"""docs/cli.md is generated from the parser; it must be what the generator writes today."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from neurogrs.cli_help import command_path, walk
from neurogrs.cli import build_parser
from neurogrs.cli_reference import render

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli.md"


def test_docs_cli_md_is_not_stale():
    assert DOC.read_text() == render(), (
        "docs/cli.md is stale: regenerate it with `make docs` "
        "(python -m neurogrs.cli_reference > docs/cli.md)")


def test_reference_ignores_the_terminal_and_the_checkout(monkeypatch):
    monkeypatch.setenv("COLUMNS", "37")
    text = render()
    assert text == DOC.read_text()
    assert str(ROOT) not in text and str(Path.home()) not in text


def test_every_command_has_a_section():
    text = render()
    for path, _ in walk(build_parser()):
        assert f"## `{command_path(('neurogrs',) + path)}`\n" in text


def test_module_entry_point_writes_the_same_text(tmp_path):
    out = subprocess.run([sys.executable, "-m", "neurogrs.cli_reference"], cwd=tmp_path,
                         capture_output=True, text=True, check=True, env={"COLUMNS": "200",
                         "PATH": "/usr/bin:/bin"})
    assert out.stdout == DOC.read_text()
