"""Help that helps: every option's default shown, every command's help ends with one
example from neurogrs.cli_examples, and every example parses with the real parser."""
from __future__ import annotations

import argparse
import re
import shlex

import pytest

from neurogrs.cli import build_parser
from neurogrs.cli_examples import EXAMPLES
from neurogrs.cli_help import EXAMPLE_HEADER, _wrap_example, command_path, walk

PARSER = build_parser()
COMMANDS = {command_path(path): p for path, p in walk(PARSER)}


def _leaf(argv: list[str]) -> tuple[str, argparse.ArgumentParser]:
    """The command path `argv` reaches and that command's parser (subcommands followed)."""
    path, parser = [], PARSER
    for token in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or token not in subs[0].choices:
            break
        path.append(token)
        parser = subs[0].choices[token]
    return " ".join(path), parser


def test_every_command_has_an_example_and_every_example_a_command():
    missing = sorted(set(COMMANDS) - set(EXAMPLES))
    assert not missing, f"commands without an example in neurogrs/cli_examples.py: {missing}"
    unknown = sorted(set(EXAMPLES) - set(COMMANDS))
    assert not unknown, f"examples for commands that do not exist: {unknown}"


def _parse(line: str, capsys) -> list[str]:
    argv = shlex.split(line)
    assert argv[0] == "neurogrs"
    try:
        PARSER.parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"example {line!r} does not parse: {capsys.readouterr().err}")
    return argv[1:]


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_example_parses_with_the_real_parser_and_spells_options_in_full(key, capsys):
    *setup, example = EXAMPLES[key].splitlines()
    for line in setup:  # lines that prepare the example must be real commands too
        _parse(line, capsys)
    argv = _parse(example, capsys)
    reached, parser = _leaf(argv)
    assert reached.startswith(key), f"example of {key!r} runs {reached!r}"
    known = {s for a in parser._actions for s in a.option_strings}
    options = [t.split("=")[0] for t in argv if t.startswith("-")]
    unknown = [o for o in options if o not in known]  # argparse would accept abbreviations
    assert not unknown, f"example of {key!r} names {unknown}, not options of {reached!r}"


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_help_ends_with_its_one_example(key):
    text = COMMANDS[key].format_help().rstrip()
    assert text.count(f"\n{EXAMPLE_HEADER}\n") == 1
    assert "examples:" not in text  # an area's own example block was replaced, not kept
    tail = text.rsplit(f"\n{EXAMPLE_HEADER}\n", 1)[1]
    assert shlex.split(tail.replace("\\\n", " ")) == shlex.split(EXAMPLES[key].replace("\n", " "))


def _showable(action: argparse.Action) -> bool:
    return (action.option_strings and action.help is not argparse.SUPPRESS
            and action.default not in (None, argparse.SUPPRESS)
            and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)))


def test_every_option_with_a_default_states_it_once():
    checked = 0
    for name, parser in COMMANDS.items():
        for action in parser._actions:
            if not _showable(action):
                continue
            stated = action.help.replace("%(default)s", "X")
            mentions = re.findall(r"\(default\b|\bdefault[: ]", stated, re.I)
            assert len(mentions) == 1, (name, action.option_strings, action.help)
            checked += 1
    assert checked > 60


@pytest.mark.parametrize("argv, line", [
    (["bench", "service"], r"--duration DURATION\s+seconds per paced run \(default: 10.0\)"),
    (["serve"], r"frame endpoint \(SUB\) \(default: @tcp://127.0.0.1:5555\)"),
    (["replay"], r"--loop\s+start over at the end \(default: off\)"),
    (["replay"], r"the default; @ binds\)\s+\(default:\s+>tcp://127.0.0.1:5555\)"),
    (["replay"], r"--speed SPEED\s+1 \(real time\), N \(N x\), or max \(default: 1.0\)"),
    (["train"], r"training epochs \(default 150\)\n"),  # stated by the area: kept, not doubled
    (["bench", "service"], r"--engine \{numpy,numba,c\}\s+\(default: c\)"),
])
def test_defaults_in_help_text(argv, line, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv + ["--help"])
    assert re.search(line, capsys.readouterr().out)


def test_long_description_is_wrapped_and_listed_epilog_kept(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    text = build_parser()._subparsers._group_actions[0].choices["prune"].format_help()
    assert max(len(line) for line in text.split(f"\n{EXAMPLE_HEADER}\n")[0].splitlines()) <= 100
    assert "\n  acc (the --metric on D_V), accuracy," in text  # indented list as written


@pytest.mark.parametrize("example", [line for e in EXAMPLES.values() for line in e.splitlines()] + [
    "neurogrs x --a 'one two three' --b \"q r\" " + "--long-option value " * 8])
def test_wrapped_example_reads_back_as_the_same_command(example):
    wrapped = _wrap_example(example)
    assert shlex.split(wrapped.replace("\\\n", " ")) == shlex.split(example)
    for line in wrapped.splitlines():
        assert len(line) <= 88 or " " not in line.strip()
