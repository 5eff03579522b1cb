"""What every settings dataclass shares: a dict round trip that refuses what it does not know.

Settings classes are frozen dataclasses named `...Settings` that validate in
`__post_init__` (the error names the field, the value and the valid range) and inherit
`SettingsDict` for `to_dict()` / `from_dict()`:

- `to_dict()` gives plain JSON/TOML-able values (tuples become lists, nested settings dicts);
- `from_dict(d)` refuses unknown keys (naming them and the known ones), turns lists back into
  tuples where the field's default is a tuple, and rebuilds nested settings, so
  `cls.from_dict(s.to_dict()) == s` for every settings object.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from neurogrs.errors import ConfigError

__all__ = ["SettingsDict", "read_toml"]

T = TypeVar("T", bound="SettingsDict")


def _plain(value: Any) -> Any:
    if isinstance(value, SettingsDict):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class SettingsDict:
    """Mixin for settings dataclasses: `to_dict` and a strict `from_dict`."""

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[T], d: dict) -> T:
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.__name__} takes a table/dict, got {type(d).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            what = re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__.removesuffix("Settings")).lower()
            raise ConfigError(f"unknown {what} setting(s) {unknown} (known: {', '.join(fields)})")
        kwargs = {}
        for name, value in d.items():
            f = fields[name]
            default = (f.default if f.default is not dataclasses.MISSING
                       else f.default_factory() if f.default_factory is not dataclasses.MISSING
                       else None)
            if isinstance(default, SettingsDict) and isinstance(value, dict):
                value = type(default).from_dict(value)
            elif isinstance(default, tuple) and isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            kwargs[name] = value
        return cls(**kwargs)


def read_toml(path: "str | Path", what: str) -> dict:
    """A TOML settings file as a dict; ConfigError (starting with `what`, e.g. "--config
    FILE") when it cannot be read or is not TOML."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text())
    except OSError as exc:
        raise ConfigError(f"{what}: cannot be read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what}: not valid TOML: {exc}") from exc
