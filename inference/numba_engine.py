"""The numba engine: a model-specific Python module, compiled by numba and cached on disk.

For each model the engine writes a small Python module (`numba_source.generate_module`:
one function per layer, sizes as literals) plus the model's weights into a cache
directory keyed by model hash and generator version:

    $NEUROGRS_CACHE/numba/<key>/      (default cache: ~/.cache/neurogrs, see _cache.cache_root)
        model_<key>.py  weights.npz  __pycache__/ (numba's compiled code)

built in a temporary sibling directory and renamed into place (`_cache.build_once`).
Module-level weight arrays are frozen into the compiled code as constants, so the kernel
takes only the frame; LLVM's SLP vectoriser is switched on only while our module compiles
(`_slp_vectorize`).

Every function has an explicit signature (C-contiguous float32 arrays), so importing the
module compiles everything (or loads it from numba's cache, `cache=True`) and a live frame
never waits for a compile; the first build of a model takes seconds (cnn1 ~20 s on this
VM), later processes load the machine code from disk. `predict` hands the frame straight
to the dispatcher, which accepts only a C-contiguous writable float32 1-D array, and the
kernel checks the length before reading; anything else goes through `check_frame`.

A stateful model (temporal context) takes a `ModelState`: its float32 vectors, one per
stateful layer in layer order, are extra kernel arguments updated in place (lengths
checked by the kernel before anything is read; numba_temporal.py has the layers).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

from neurogrs.errors import EngineError
from neurogrs.inference._cache import build_once, cache_root
from neurogrs.inference.base import Engine
from neurogrs.inference.numba_source import NUMBA_GENERATOR_VERSION, generate_module
from neurogrs.spec import ModelSpec, ModelState

__all__ = ["NumbaEngine", "NUMBA_GENERATOR_VERSION", "generate_module"]


def _build(spec: ModelSpec, model_hash: str, cache_dir: Path | None) -> Path:
    """Directory holding the generated module for this model (written if needed)."""
    key_doc = f"{model_hash}|{NUMBA_GENERATOR_VERSION}|py{sys.version_info[:2]}"
    key = f"{model_hash[:16]}_{hashlib.sha256(key_doc.encode()).hexdigest()[:12]}"
    root = cache_dir if cache_dir is not None else cache_root() / "numba"

    def build(tmp: Path) -> None:
        source, arrays = generate_module(spec, model_hash)
        np.savez(tmp / "weights.npz", **arrays)
        (tmp / f"model_{key}.py").write_text(source)

    return build_once(root / key, f"model_{key}.py", build, "numba engine")


@contextlib.contextmanager
def _slp_vectorize():
    """Compile with LLVM's SLP vectoriser on (numba leaves it off by default): it packs the
    kernels' scalar accumulators into vectors (cnn1's second conv: 37 -> 3 us).

    numba reads the switch from its config each time it optimises a module, so it is set
    only around our own compilation, under numba's global compiler lock (re-entrant), so
    no other compilation in the process sees it."""
    from numba.core import config
    from numba.core.compiler_lock import global_compiler_lock

    with global_compiler_lock:
        old = config.SLP_VECTORIZE
        config.SLP_VECTORIZE = 1
        try:
            yield
        finally:
            config.SLP_VECTORIZE = old


def _import(directory: Path):
    key = directory.name
    path = directory / f"model_{key}.py"
    name = f"neurogrs_numba_model_{key}"
    if name in sys.modules:  # numba's cache needs the module importable by name
        return sys.modules[name]
    mspec = importlib.util.spec_from_file_location(name, path)
    if mspec is None or mspec.loader is None:
        raise EngineError(f"cannot import generated module {path}")
    module = importlib.util.module_from_spec(mspec)
    sys.modules[name] = module
    try:
        with _slp_vectorize():  # every function has a signature: import compiles them all
            mspec.loader.exec_module(module)
    except Exception as exc:  # translate: a broken cache entry must not look like a bug
        del sys.modules[name]
        raise EngineError(f"generated module {path} failed to load: {exc!r} "
                          f"(delete {directory} and retry)") from exc
    return module


class NumbaEngine(Engine):
    """Numba-compiled forward pass; compiled (or loaded from cache) in the constructor."""

    name = "numba"

    def __init__(self, spec: ModelSpec, model_hash: str,
                 cache_dir: str | os.PathLike | None = None) -> None:
        super().__init__(spec, model_hash)
        self.module_dir = _build(spec, model_hash, Path(cache_dir) if cache_dir else None)
        module = _import(self.module_dir)
        self._one = module.predict_one
        self._many = module.predict_many
        # a stateful model's kernels take the state vectors, in layer order, after the frame
        self._state_layers = tuple(sorted(ModelState(spec).buffers)) if self.stateful else ()
        # compile (or load from the on-disk cache) now, never on the first live frame
        warm = np.zeros(self.n_inputs, np.float32)
        self.predict(warm, self.new_state() if self.stateful else None)
        self.predict_batch(warm[None, :])

    # -- state: a ModelState (the numpy engine's), whose vectors the kernels update --
    def new_state(self) -> ModelState:
        if not self.stateful:
            return super().new_state()
        return ModelState(self.spec)

    def _state_args(self, state) -> tuple:
        if not isinstance(state, ModelState) or tuple(sorted(state.buffers)) != self._state_layers:
            raise EngineError(f"state must be a ModelState from this engine's new_state() "
                              f"(stateful layers {list(self._state_layers)}), got "
                              f"{type(state).__name__}")
        return tuple(state.buffers[i] for i in self._state_layers)

    def _predict_stateful(self, frame: np.ndarray, state) -> np.ndarray:
        args = self._state_args(self.check_state(state, single=True))
        if type(frame) is np.ndarray and not frame.flags.writeable:
            frame = frame.copy()  # see predict(): cheaper than a failed dispatch
        try:
            return self._one(frame, *args)
        except (TypeError, ValueError):
            x = _writable(self.check_frame(frame))
            try:
                return self._one(x, *args)
            except (TypeError, ValueError) as exc:  # a state vector of the wrong size/type
                raise EngineError(f"state does not fit this model: {exc}") from exc

    def predict(self, frame: np.ndarray, state: ModelState | None = None) -> np.ndarray:
        if self.stateful:
            return self._predict_stateful(frame, state)
        # Hot path: numba's dispatcher accepts only a C-contiguous, writable float32 1-D
        # array (TypeError otherwise) and the kernel checks the length before reading
        # anything (ValueError); anything else takes the checked path, which explains.
        if type(frame) is np.ndarray and not frame.flags.writeable:
            # a received buffer is read-only: numba has no read-only signature here, and the
            # failed dispatch + fallback would cost ~50 us; a copy costs well under 1 us
            frame = frame.copy()
        try:
            return self._one(frame)
        except (TypeError, ValueError):
            return self._one(_writable(self.check_frame(frame)))

    def predict_batch(self, frames: np.ndarray, state: ModelState | None = None) -> np.ndarray:
        x = _writable(self.check_batch(frames))
        if not self.stateful:
            return self._many(x)
        args = self._state_args(state if state is not None else self.new_state())
        try:
            return self._many(x, *args)
        except (TypeError, ValueError) as exc:
            raise EngineError(f"state does not fit this model: {exc}") from exc


def _writable(x: np.ndarray) -> np.ndarray:
    """x itself when numba's signatures accept it, else a C-contiguous writable copy."""
    return x if x.flags.writeable and x.flags.c_contiguous else np.array(x, order="C")
