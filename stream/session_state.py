"""Per-session engine state for a stateful model (temporal context; docs/service.md).

A stateful decoder (LeakyTraces, ForwardFilter: neurogrs/layers_temporal.py) must see
every frame of its stream, in seq order, from a fresh state at the start of the stream.
The service keeps one engine state per session here:

* created on the session's first frame (from `engine.new_state()`);
* advanced by every frame the service accepts, in seq order: the frames it answers, and
  also the frames it does not answer because they came late (stale) or were superseded
  under the `latest` policy (conflated): the service calls `predict` for them all the
  same and publishes nothing;
* reset on a source restart (a new run id: the frame that starts the new run carries
  `restarted`), dropped at the session's end-of-stream and when the session expires or
  is forgotten by the session table (the next frame starts afresh).

Frames refused as invalid (bad shape, NaN, duplicate or decreasing seq, over the session
cap) never reach it; a frame lost on the way (a seq gap) cannot be fed: the state goes on
from the frames that arrived. For a stateless model `SessionStates.of(engine)` is None and
the service calls `engine.predict(frame)` as before.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["SessionStates"]


class SessionStates:
    """session name -> engine state, for one stateful engine."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._states: dict[str, Any] = {}

    @classmethod
    def of(cls, engine: Any) -> "SessionStates | None":
        """A table for a stateful engine, None for a stateless one."""
        return cls(engine) if getattr(engine, "stateful", False) else None

    def __len__(self) -> int:
        return len(self._states)

    def predict(self, session: str, data: np.ndarray, restarted: bool = False) -> np.ndarray:
        """The next frame of `session`: advances its state, returns the probabilities.
        `restarted`: the frame starts a new run of the source (state reset first)."""
        state = self._states.get(session)
        if state is None:
            state = self._states[session] = self.engine.new_state()
        elif restarted:
            self.engine.reset_state(state)
        return self.engine.predict(data, state)

    def drop(self, session: str) -> None:
        """The stream ended or the session expired: its next frame starts a fresh state."""
        self._states.pop(session, None)

    def keep_only(self, live: Callable[[str], bool]) -> int:
        """Drop the states of sessions no longer live (forgotten by the session table);
        returns how many were dropped."""
        gone = [s for s in self._states if not live(s)]
        for s in gone:
            del self._states[s]
        return len(gone)
