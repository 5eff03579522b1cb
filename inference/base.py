"""The engine interface every inference engine implements.

An engine is built from a verified artifact, validates each frame (length, dtype,
finiteness is the caller's business), applies the artifact's preprocessing, and returns
class probabilities. Engines never import TensorFlow.
"""
from __future__ import annotations

import abc

import numpy as np

from neurogrs.errors import EngineError
from neurogrs.spec import ModelSpec

__all__ = ["Engine"]


class Engine(abc.ABC):
    """predict(frame [N] float32) -> probs [C] float32; predict_batch([B, N]) -> [B, C]."""

    name: str = "abstract"

    def __init__(self, spec: ModelSpec, model_hash: str) -> None:
        self.spec = spec
        self.model_hash = model_hash
        self.n_inputs = spec.n_inputs
        self.n_outputs = spec.n_outputs
        self.stateful = spec.stateful

    # -- state (temporal-context models; docs/temporal.md) --
    def new_state(self):
        """A fresh per-stream state for a stateful model (each engine its own type)."""
        raise EngineError(f"the {self.name} engine does not run stateful models yet")

    def reset_state(self, state) -> None:
        """Back to fresh: the next frame starts a new stream (restart, end-of-stream)."""
        state.reset()

    def check_state(self, state, single: bool):
        """predict() of a stateful model needs a state; predict_batch() without one runs
        the batch as a sequence from a fresh state. A stateless model ignores it."""
        if not self.stateful:
            return None
        if state is None and single:
            raise EngineError("this model is stateful (temporal context): pass a state "
                              "from engine.new_state() to predict(), one per stream")
        return state

    # -- input checks shared by all engines (no engine reads past a buffer) --
    def check_frame(self, frame: np.ndarray) -> np.ndarray:
        if not isinstance(frame, np.ndarray):
            raise EngineError(f"frame must be a numpy array, got {type(frame).__name__}")
        if frame.dtype != np.float32:
            raise EngineError(f"frame must be float32, got {frame.dtype}")
        if frame.ndim != 1 or frame.shape[0] != self.n_inputs:
            raise EngineError(f"frame must have shape ({self.n_inputs},), got {frame.shape}")
        return np.ascontiguousarray(frame)

    def check_batch(self, frames: np.ndarray) -> np.ndarray:
        if not isinstance(frames, np.ndarray):
            raise EngineError(f"frames must be a numpy array, got {type(frames).__name__}")
        if frames.dtype != np.float32:
            raise EngineError(f"frames must be float32, got {frames.dtype}")
        if frames.ndim != 2 or frames.shape[1] != self.n_inputs:
            raise EngineError(f"frames must have shape (B, {self.n_inputs}), got {frames.shape}")
        return np.ascontiguousarray(frames)

    @abc.abstractmethod
    def predict(self, frame: np.ndarray, state=None) -> np.ndarray: ...

    @abc.abstractmethod
    def predict_batch(self, frames: np.ndarray, state=None) -> np.ndarray: ...

    def close(self) -> None:
        """Release native resources (default: nothing)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model_hash[:12]}, N={self.n_inputs})"
