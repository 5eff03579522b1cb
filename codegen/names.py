"""Literals and names that reach generated C: validated or escaped, never trusted.

Templates own structure; these helpers own every literal and identifier:

- `c_identifier(prefix)` accepts only a plain C identifier that is not a reserved word
  (so a prefix cannot inject code), and says why when it refuses;
- `c_string(text)` / `c_comment(text)` turn data (a model name, a label) into a string
  literal or comment text that the compiler reads as data only;
- `c_float(x)` prints a float32 with 9 significant digits, enough to round-trip exactly.
"""
from __future__ import annotations

import re

import numpy as np

from neurogrs.errors import ConfigError

__all__ = ["C_RESERVED", "c_identifier", "c_string", "c_comment", "c_float"]

# C99 keywords, C11/C23 keywords, and names the generated code itself uses at file scope.
C_RESERVED = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto
    if inline int long register restrict return short signed sizeof static struct switch
    typedef union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof
    _Atomic _Generic _Noreturn _Static_assert _Thread_local alignas alignof bool constexpr
    false nullptr static_assert thread_local true typeof typeof_unqual
    main errno assert NULL stdin stdout stderr
    """.split()
)

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_MAX_PREFIX = 40


def c_identifier(name: str, what: str = "prefix") -> str:
    """`name` if it is a safe C identifier prefix, else ConfigError saying what is allowed."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ConfigError(
            f"{what} {name!r} is not a C identifier: use a letter followed by letters, "
            f"digits or '_'"
        )
    if len(name) > _MAX_PREFIX:
        raise ConfigError(f"{what} {name!r} is longer than {_MAX_PREFIX} characters")
    if name in C_RESERVED or name.lower() in C_RESERVED:
        raise ConfigError(f"{what} {name!r} is a reserved word in C")
    if "__" in name:
        raise ConfigError(f"{what} {name!r} contains '__', which C reserves")
    return name


_SAFE_STRING_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.,:;-+=/()[]")


def c_string(text: str) -> str:
    """A C string literal (with quotes) holding `text` as UTF-8 bytes.

    Everything outside a small safe set is written as a 3-digit octal escape, so quotes,
    backslashes, trigraphs ("??/") and newlines can never end the literal.
    """
    out = []
    for byte in str(text).encode("utf-8"):
        ch = chr(byte)
        out.append(ch if ch in _SAFE_STRING_CHARS else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str, limit: int = 200) -> str:
    """`text` made safe inside a /* */ comment: printable ASCII, no comment terminator."""
    s = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))[:limit]
    while "*/" in s or "/*" in s or "??" in s:
        s = s.replace("*/", "* /").replace("/*", "/ *").replace("??", "?-?")
    return s


def c_float(x: float) -> str:
    """A float32 literal that round-trips exactly: 9 significant digits and an `f`."""
    v = float(np.float32(x))
    if not np.isfinite(v):
        raise ConfigError(f"cannot write non-finite weight {v!r} into C")
    s = f"{v:.9g}"
    if "." not in s and "e" not in s:
        s += ".0"
    return s + "f"
