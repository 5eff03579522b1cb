"""The commands in the docs exist as written: every `neurogrs ...` line of a shell block in
README.md and docs/*.md parses with the real parser (parse only, nothing runs). The
quickstart and the README are checked strictly: each of their command lines must be one we
can check (neurogrs, make targets, the examples' own parsers), so they cannot drift."""
from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from neurogrs.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
STRICT = [ROOT / "README.md", ROOT / "docs" / "quickstart.md"]
DOCS = sorted({*STRICT, *(ROOT / "docs").glob("*.md")} - {ROOT / "docs" / "cli.md"})
# commands a newcomer types that are not ours to check (shell set-up, system packages)
ALLOWED = {"cd", "source", ".", "pip", "apt-get", "sudo", "git", "time"}


def shell_commands(markdown: str) -> list[str]:
    """Command lines of the ```sh / ```bash / ```console blocks: continuations joined,
    comments and `$ ` prompts dropped."""
    out = []
    for block in re.findall(r"```(?:sh|bash|shell|console)\n(.*?)```", markdown, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            words = shlex.split(line, comments=True)
            if words:
                out.append(" ".join(shlex.quote(w) for w in words))
    return out


def _strip(words: list[str]) -> list[str]:
    """Drop `time` and VAR=value prefixes."""
    while words and (words[0] == "time" or re.match(r"^[A-Z_][A-Z0-9_]*=", words[0])):
        words = words[1:]
    return words


def _parse_neurogrs(argv: list[str], capsys) -> None:
    parser = build_parser()
    leaf = parser
    for word in argv:  # follow subcommands to the command's own parser
        subs = [a for a in leaf._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        leaf = subs[0].choices[word]
    known = {s for a in leaf._actions for s in a.option_strings}
    abbreviated = [w.split("=")[0] for w in argv
                   if w.startswith("--") and w.split("=")[0] not in known]
    assert not abbreviated, f"`neurogrs {shlex.join(argv)}`: not options in full: {abbreviated}"
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version exit 0
        if exc.code != 0:
            pytest.fail(f"`neurogrs {shlex.join(argv)}` does not parse: "
                        f"{capsys.readouterr().err}")


def _make_targets(makefile: Path) -> set[str]:
    text = makefile.read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+):", text, re.M))


def _check_make(argv: list[str]) -> None:
    directory = ROOT
    if argv[:1] == ["-C"]:
        directory, argv = ROOT / argv[1], argv[2:]
    assert (directory / "Makefile").is_file(), f"no Makefile in {directory}"
    for target in argv or ["all"]:
        if "=" not in target:
            assert target in _make_targets(directory / "Makefile"), f"make {target}: no such target"


def _check_python_example(argv: list[str], capsys) -> None:
    script = ROOT / argv[0]
    assert script.is_file(), f"{argv[0]} does not exist"
    spec = importlib.util.spec_from_file_location(f"example_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # examples only define things at import
    try:
        module.build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        if exc.code != 0:
            pytest.fail(f"`python {shlex.join(argv)}` does not parse: "
                        f"{capsys.readouterr().err}")


def _check_c_example(argv: list[str]) -> None:
    source = (ROOT / argv[0]).with_suffix(".c")
    assert source.is_file(), f"{argv[0]}: no {source.name} beside it"
    spec = re.search(r'getopt\(argc, argv, "([^"]+)"\)', source.read_text()).group(1)
    takes_value = {m[0] for m in re.findall(r"(\w):", spec)}
    words = iter(argv[1:])
    for w in words:
        assert re.fullmatch(r"-\w", w) and w[1] in spec, f"{argv[0]}: unknown option {w}"
        if w[1] in takes_value:
            assert next(words, None) is not None, f"{argv[0]}: {w} needs a value"


def check(line: str, strict: bool, capsys) -> bool:
    """Check one command line; False if it is not a kind we check (strict docs fail then)."""
    words = _strip(shlex.split(line))
    if not words or (not strict and ("'[-" in line or " [-" in line)):
        return True  # a usage synopsis ("[--session FILE]"), not a command
    head, rest = words[0], words[1:]
    if head == "neurogrs":
        _parse_neurogrs(rest, capsys)
    elif strict and head == "make":
        _check_make(rest)
    elif strict and re.fullmatch(r"(\S*/)?python3?", head) and rest[:1] and rest[0].startswith("docs/examples/"):
        _check_python_example(rest, capsys)
    elif strict and head.startswith("docs/examples/"):
        _check_c_example(words)
    else:
        return not strict or head in ALLOWED
    return True


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_commands_in_docs_exist(doc, capsys):
    strict = doc in STRICT
    lines = shell_commands(doc.read_text())
    unknown = [line for line in lines if not check(line, strict, capsys)]
    assert not unknown, f"{doc.name}: commands the test cannot check: {unknown}"


def test_quickstart_walks_the_whole_product():
    lines = shell_commands((ROOT / "docs" / "quickstart.md").read_text())
    commands = {" ".join(_strip(shlex.split(line))[:2]) for line in lines}
    for step in ["make demo", "neurogrs simulate", "neurogrs train", "neurogrs prune",
                 "neurogrs codegen", "neurogrs serve", "neurogrs replay", "neurogrs listen",
                 "neurogrs dashboard", "python docs/examples/closed_loop.py", "make -C"]:
        assert step in commands, f"the quickstart no longer shows {step!r}"


@pytest.mark.parametrize("line, ok", [
    ("neurogrs train s.npz --out a", True),
    ("neurogrs train s.npz --out a --no-such-option", False),
    ("neurogrs no-such-command", False),
])
def test_the_checker_catches_drift(line, ok, capsys):
    if ok:
        assert check(line, True, capsys)
    else:
        with pytest.raises((pytest.fail.Exception, AssertionError)):
            check(line, True, capsys)


def test_strict_docs_refuse_commands_they_cannot_check(capsys):
    assert not check("frobnicate --all", True, capsys)
    with pytest.raises(AssertionError):
        check("make no-such-target", True, capsys)
    with pytest.raises(AssertionError):
        check("docs/examples/c_client/closed_loop -z 1", True, capsys)
