"""Help that helps, applied once to the whole parser tree after every area registered.

`finish_help(parser)` walks `neurogrs` and every (sub)command under it:
- every option's default is shown: "(default: X)" is appended to its help unless the help
  already states it ("(default ...", "default: ...") or there is none (None, SUPPRESS); flags
  (store_true/store_false) read "(default: off)";
- each command's help ends with one example from `neurogrs.cli_examples.EXAMPLES` (an
  "example(s):" block an area wrote at the end of its own epilog is replaced by it, so
  there is exactly one);
- the formatter keeps indented paragraphs (lists, examples) as written and wraps the others.

Done centrally so that the areas' `register` functions stay as they are.
"""
from __future__ import annotations

import argparse
import re
from typing import Iterator

from neurogrs.cli_examples import EXAMPLES

__all__ = ["finish_help", "walk", "command_path", "EXAMPLE_HEADER"]

EXAMPLE_HEADER = "example:"
# "(default 150)", "(default)", "default: every session", "default c"; not "the default;"
_STATES_DEFAULT = re.compile(r"\(default\b|\bdefault[: ]", re.IGNORECASE)
_EXAMPLE_BLOCK = re.compile(r"(?:^|\n)examples?:\n(?:[ \t].*(?:\n|$)|\n)*\s*\Z")


def walk(parser: argparse.ArgumentParser,
         path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(command path, parser) for `parser` and every subcommand below it, in help order."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases share a parser
                    seen.add(id(sub))
                    yield from walk(sub, path + (name,))


def command_path(path: tuple[str, ...]) -> str:
    """EXAMPLES key of a command path: ("bench", "inference") -> "bench inference"."""
    return " ".join(path)


def _default_text(action: argparse.Action) -> str | None:
    """What "(default: ...)" says for this option, or None to add nothing."""
    if action.help is argparse.SUPPRESS or action.default in (None, argparse.SUPPRESS):
        return None
    if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                           argparse._SubParsersAction)):
        return None
    if not action.option_strings and action.nargs not in ("?", "*"):
        return None  # a required positional has no default to show
    if action.help and _STATES_DEFAULT.search(action.help):
        return None
    if action.nargs == 0:  # store_true / store_false / store_const: a flag
        return "off"
    if isinstance(action.default, (list, tuple)) and not action.default:
        return "none"
    return "%(default)s"  # argparse expands it when the help is formatted


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        text = _default_text(action)
        if text is not None:
            action.help = f"{action.help} (default: {text})" if action.help else f"(default: {text})"


def _wrap_example(example: str, width: int = 88) -> str:
    """The example on lines of at most `width` characters where it can, continued with a
    backslash as a shell reads it; an option stays on the line of its value."""
    groups: list[str] = []
    for token in re.findall(r"'[^']*'|\"[^\"]*\"|\S+", example):
        if groups and not token.startswith("-"):
            groups[-1] += " " + token
        else:
            groups.append(token)
    lines, line = [], ""
    for group in groups:
        if line.strip() and len(line) + 1 + len(group) > width - 2:
            lines.append(line + " \\")
            line = "    " + group
        else:
            line = f"{line} {group}" if line else group
    lines.append(line)
    return "\n  ".join(lines)


def _with_example(epilog: str | None, example: str) -> str:
    body = _EXAMPLE_BLOCK.sub("", epilog or "").rstrip()
    block = EXAMPLE_HEADER + "".join(f"\n  {_wrap_example(line)}" for line in example.splitlines())
    return f"{body}\n\n{block}" if body else block


class _ParagraphMixin:
    """Descriptions and epilogs by paragraph (blank-line separated): a paragraph with an
    indented line (a list, an example) stays as written, and so does one whose lines fit
    when the command chose a Raw* formatter (its line breaks were meant); the others are
    wrapped to the terminal."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in re.split(r"\n\s*\n", text.strip("\n")):
            lines = para.splitlines()
            # as written: lists and examples; on a Raw* formatter, lines that already fit
            if any(line[:1].isspace() for line in lines) or (
                    isinstance(self, argparse.RawDescriptionHelpFormatter)
                    and all(len(indent + line) <= width for line in lines)):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(argparse.HelpFormatter._fill_text(self, para, width, indent))
        return "\n\n".join(out)


_FORMATTERS: dict[type, type] = {}


def _formatter(base: type) -> type:
    if issubclass(base, _ParagraphMixin):
        return base
    if base not in _FORMATTERS:
        _FORMATTERS[base] = type(f"Paragraph{base.__name__}", (_ParagraphMixin, base), {})
    return _FORMATTERS[base]


def finish_help(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Show defaults and append the example to `parser` and every subcommand (in place)."""
    for path, p in walk(parser):
        _show_defaults(p)
        example = EXAMPLES.get(command_path(path))
        if example is not None:
            p.epilog = _with_example(p.epilog, example)
        p.formatter_class = _formatter(p.formatter_class)
    return parser
