"""The numpy reference engine: the spec's forward pass, one frame at a time."""
from __future__ import annotations

import numpy as np

from neurogrs.errors import EngineError
from neurogrs.inference.base import Engine
from neurogrs.spec import ModelState, forward

__all__ = ["NumpyEngine"]


class NumpyEngine(Engine):
    name = "numpy"

    def new_state(self) -> ModelState:
        return ModelState(self.spec)

    def check_state(self, state, single: bool):
        state = super().check_state(state, single)
        if state is None:
            return None
        sizes = {i: b.shape for i, b in self.new_state().buffers.items()}
        if not isinstance(state, ModelState) or \
                {i: b.shape for i, b in state.buffers.items()} != sizes:
            raise EngineError(f"state must be a ModelState from this engine's new_state() "
                              f"(state vectors {sizes}), got {type(state).__name__}")
        return state

    def predict(self, frame: np.ndarray, state: ModelState | None = None) -> np.ndarray:
        x = self.check_frame(frame)
        return forward(self.spec, x[None, :], self.check_state(state, single=True))[0]

    def predict_batch(self, frames: np.ndarray, state: ModelState | None = None) -> np.ndarray:
        x = self.check_batch(frames)
        if x.shape[0] == 0:  # forward() cannot reshape an empty CNN batch
            return np.empty((0, self.n_outputs), np.float32)
        return forward(self.spec, x, self.check_state(state, single=False))
