"""neurogrs.inference: one engine interface, several engines (numpy, numba, c).

    engine = load_engine("artifact_dir", "numba")
    probs = engine.predict(frame)            # frame: float32 [N]
    probs = engine.predict_batch(frames)     # frames: float32 [B, N]

No TensorFlow import anywhere in this package.
"""
from __future__ import annotations

import os

from neurogrs.artifact import Artifact, load_artifact
from neurogrs.errors import EngineError
from neurogrs.inference.base import Engine

__all__ = ["Engine", "ENGINES", "load_engine"]

ENGINES = ("numpy", "numba", "c")


def load_engine(artifact: "str | os.PathLike | Artifact", engine: str = "numpy", **options) -> Engine:
    """Build engine `engine` for an artifact (a directory or an already loaded Artifact)."""
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    if engine == "numpy":
        from neurogrs.inference.numpy_engine import NumpyEngine

        return NumpyEngine(art.spec, art.hash, **options)
    if engine == "numba":
        from neurogrs.inference.numba_engine import NumbaEngine

        return NumbaEngine(art.spec, art.hash, **options)
    if engine == "c":
        from neurogrs.inference.c_engine import CEngine

        return CEngine(art.spec, art.hash, **options)
    raise EngineError(f"unknown engine {engine!r}: choose one of {ENGINES}")
