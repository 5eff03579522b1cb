"""The build-once cache helper both compiled engines use: temporary sibling, atomic
rename, a concurrent builder that wins the race, cleanup after a failed build, and where
the cache lives."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from neurogrs.errors import EngineError
from neurogrs.inference._cache import build_once, cache_root


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def _writer(text: str, calls: list[Path]):
    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "lib.so").write_text(text)
    return build


def test_builds_in_a_temporary_sibling_then_renames(tmp_path):
    calls: list[Path] = []
    final = tmp_path / "cache" / "key"
    assert build_once(final, "lib.so", _writer("one", calls), "test") == final
    assert (final / "lib.so").read_text() == "one"
    assert len(calls) == 1 and calls[0].parent == final.parent
    assert calls[0].name.startswith(".key.") and not calls[0].exists()
    assert _leftovers(final.parent) == []


def test_existing_entry_is_not_rebuilt(tmp_path):
    calls: list[Path] = []
    final = tmp_path / "key"
    build_once(final, "lib.so", _writer("one", calls), "test")
    assert build_once(final, "lib.so", _writer("two", calls), "test") == final
    assert len(calls) == 1 and (final / "lib.so").read_text() == "one"


def test_concurrent_winner_is_used(tmp_path):
    """Another process completes the entry while we build: our rename fails, we use
    theirs, and our temporary directory is gone."""
    final = tmp_path / "key"

    def build(tmp: Path) -> None:
        (tmp / "lib.so").write_text("loser")
        final.mkdir()
        (final / "lib.so").write_text("winner")

    assert build_once(final, "lib.so", build, "test") == final
    assert (final / "lib.so").read_text() == "winner"
    assert _leftovers(tmp_path) == []


def test_two_threads_build_the_same_entry(tmp_path):
    """Both build at the same time (a barrier holds each until the other has built):
    one rename wins, both get the complete entry, no temporary directory is left."""
    final = tmp_path / "key"
    barrier = threading.Barrier(2, timeout=30)
    results: list[Path] = []
    errors: list[BaseException] = []

    def build(tmp: Path) -> None:
        (tmp / "lib.so").write_text(tmp.name)
        barrier.wait()

    def run() -> None:
        try:
            results.append(build_once(final, "lib.so", build, "test"))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == [] and results == [final, final]
    assert (final / "lib.so").read_text().startswith(".key.")
    assert _leftovers(tmp_path) == []


def test_failed_build_removes_the_temporary_directory(tmp_path):
    final = tmp_path / "key"

    def build(tmp: Path) -> None:
        (tmp / "half.c").write_text("int x")
        raise RuntimeError("compiler exploded")

    with pytest.raises(RuntimeError, match="compiler exploded"):
        build_once(final, "lib.so", build, "test")
    assert not final.exists()
    assert _leftovers(tmp_path) == []


def test_rename_failure_without_a_winner_is_raised(tmp_path):
    """The target exists but is not a complete entry (no marker): that is an error, not
    a lost race."""
    final = tmp_path / "key"

    def build(tmp: Path) -> None:
        (tmp / "lib.so").write_text("ours")
        final.mkdir()
        (final / "junk").write_text("not an entry")

    with pytest.raises(OSError):
        build_once(final, "lib.so", build, "test")
    assert not (final / "lib.so").exists()
    assert _leftovers(tmp_path) == []


def test_unwritable_cache_names_the_engine_and_the_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    with pytest.raises(EngineError, match=r"cannot create the numba engine cache .*NEUROGRS_CACHE"):
        build_once(blocker / "numba" / "key", "lib.so", _writer("x", []), "numba engine")


def test_cache_root_precedence(tmp_path, monkeypatch):
    from neurogrs.inference import c_engine

    monkeypatch.setenv("NEUROGRS_CACHE", str(tmp_path / "n"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "n"
    monkeypatch.delenv("NEUROGRS_CACHE")
    assert cache_root() == tmp_path / "x" / "neurogrs"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "neurogrs"
    assert c_engine.cache_root is cache_root  # still importable from the C engine
