"""The house's boundary: only pruning/ and the benchmark room import TensorFlow or its peers.

Read from the source (AST), not from a run: an import inside a function that no test
happens to call counts too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("tensorflow", "keras", "tf2onnx", "onnxruntime", "ai_edge_litert")
# folders whose modules may import them: the Keras gate and training, the benchmark room
ALLOWED = (ROOT / "pruning", ROOT / "neurogrs" / "bench")
CHECKED = ("neurogrs", "stream", "inference", "codegen", "replay", "pruning")


def forbidden_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a forbidden top-level package in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append((node.lineno, name))
    return found


def _modules() -> list[Path]:
    out = []
    for folder in CHECKED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if not any(path.is_relative_to(a) for a in ALLOWED):
                out.append(path)
    return out


def test_only_pruning_and_the_bench_room_import_tensorflow_or_peers():
    offenders = [f"{p.relative_to(ROOT)}:{line} imports {mod}"
                 for p in _modules() for line, mod in forbidden_imports(p.read_text())]
    assert not offenders, "\n".join(offenders)


def test_the_scan_covers_the_product():
    names = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert {"neurogrs/cli.py", "stream/service.py", "inference/c_engine.py",
            "replay/player.py"} <= names
    assert not any(n.startswith(("pruning/", "neurogrs/bench/")) for n in names)


@pytest.mark.parametrize("src, bad", [
    ("import tensorflow as tf", True),
    ("def f():\n    from keras import layers", True),
    ("import onnxruntime.capi", True),
    ("from ai_edge_litert.interpreter import Interpreter", True),
    ("import tf2onnx", True),
    ("from .keras_like import x", False),
    ("import kerasish", False),
    ("import numpy as np", False),
])
def test_the_scanner_sees_every_form_of_import(src, bad):
    assert bool(forbidden_imports(src)) == bad
