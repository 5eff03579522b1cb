"""Build-once cache entries shared by the C and numba engines, and where the cache lives.

An entry is a directory `root/<key>/` that holds a marker file (libdecoder.so, the
generated module) once complete. It is built in a temporary sibling directory
`root/.<key>.XXXX/` and renamed into place in one step, so a reader never sees a
half-written entry. When two processes build the same entry at once, the first rename
wins; the other's rename fails because the target exists and is not empty, and it uses
the winner's entry. The temporary directory is removed whatever happens.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from neurogrs.errors import EngineError

__all__ = ["cache_root", "build_once"]


def cache_root() -> Path:
    """$NEUROGRS_CACHE, else $XDG_CACHE_HOME/neurogrs, else ~/.cache/neurogrs."""
    env = os.environ.get("NEUROGRS_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "neurogrs"


def build_once(final: Path, marker: str, build: Callable[[Path], object], what: str) -> Path:
    """`final`, built by `build(tmp)` into a temporary sibling first unless
    `final / marker` is already a file.

    EngineError (naming `what`, e.g. "C engine") when the cache directory cannot be
    created; whatever `build` raises propagates; an OSError from the rename propagates
    unless another process has completed the same entry meanwhile."""
    if (final / marker).is_file():
        return final
    root = final.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    except OSError as exc:
        raise EngineError(f"cannot create the {what} cache in {root}: {exc} "
                          "(set NEUROGRS_CACHE to a writable directory)") from exc
    try:
        build(tmp)
        try:
            tmp.rename(final)
        except OSError:
            if not (final / marker).is_file():  # lost a race only if the winner's entry exists
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
