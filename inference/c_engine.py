"""The C engine: generated C99, compiled once per model, called through ctypes.

The library is built into a cache directory keyed by model hash, generator version,
codegen options, compiler flags and compiler version:

    $NEUROGRS_CACHE/c/<key>/      (default cache: $XDG_CACHE_HOME/neurogrs or ~/.cache/neurogrs)
        decoder.h decoder.c main.c Makefile libdecoder.so

A build goes to a temporary sibling directory first and is renamed into place
(`_cache.build_once`), so concurrent builders never see a half-written library. After
loading, the engine asks the library for its model hash and refuses a library built for
another model.

The FFI is typed: `argtypes`/`restype` are declared once with
`np.ctypeslib.ndpointer(float32, C_CONTIGUOUS)`, and the status code of every call is
checked.
"""
from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import warnings
from pathlib import Path

import numpy as np

from neurogrs.codegen.compiler import (
    KERNEL_SETS,
    CompileSettings,
    compile_library,
    compile_pyext,
    compiler_version,
    find_compiler,
)
from neurogrs.codegen.generator import GENERATOR_ID, CodegenSettings, generate_pyext, write_sources
from neurogrs.errors import CompilerError, EngineError
from neurogrs.inference._cache import build_once, cache_root
from neurogrs.inference.base import Engine
from neurogrs.spec import ModelSpec

__all__ = ["CEngine", "CState", "cache_root", "build_cached"]

_F32 = np.ctypeslib.ndpointer(dtype=np.float32, flags="C_CONTIGUOUS")
_F64 = np.ctypeslib.ndpointer(dtype=np.float64, flags="C_CONTIGUOUS")


def _cache_key(model_hash: str, cg: CodegenSettings, co: CompileSettings, cc_version: str,
               stateful: bool = False) -> str:
    doc = {"model": model_hash, "generator": GENERATOR_ID, "codegen": cg.to_dict(),
           "flags": co.flags(), "cc": cc_version}
    if stateful:  # the state API (and its CPython binding) came after GENERATOR_ID 3
        doc["state_api"] = 1
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return f"{model_hash[:16]}-{digest[:16]}"


def build_cached(
    spec: ModelSpec,
    model_hash: str,
    codegen: CodegenSettings | None = None,
    compile_options: CompileSettings | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Path of a compiled libdecoder.so for this model and these options (built if needed)."""
    cg = codegen or CodegenSettings()
    co = compile_options or CompileSettings()
    cc = find_compiler(co.cc)
    key = _cache_key(model_hash, cg, co, compiler_version(cc), spec.stateful)
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "c"

    def build(tmp: Path) -> None:
        write_sources(spec, tmp, model_hash, cg)
        compile_library(tmp, co)
        module = _module_name(key)
        (tmp / "pyext.c").write_text(generate_pyext(spec, module, cg))
        try:
            compile_pyext(tmp, module, co)
        except CompilerError as exc:  # optional: the engine falls back to ctypes
            (tmp / "pyext.error").write_text(str(exc) + "\n")

    return build_once(root / key, "libdecoder.so", build, "C engine") / "libdecoder.so"


def _module_name(key: str) -> str:
    return "ngrs_" + key.replace("-", "_")


def _load_pyext(lib: Path):
    """The CPython binding built next to lib, or None (with a warning saying why)."""
    module = _module_name(lib.parent.name)
    found = sorted(lib.parent.glob(module + "*.so")) + sorted(lib.parent.glob(module + "*.pyd"))
    if not found:
        err = lib.parent / "pyext.error"
        why = err.read_text().strip() if err.is_file() else "not built"
        warnings.warn(f"C engine: fast single-frame binding unavailable ({why}); "
                      "using ctypes, which adds several microseconds per frame", stacklevel=3)
        return None
    loader = importlib.machinery.ExtensionFileLoader(module, str(found[0]))
    mspec = importlib.util.spec_from_file_location(module, found[0], loader=loader)
    if mspec is None:
        return None
    mod = importlib.util.module_from_spec(mspec)
    try:
        loader.exec_module(mod)
    except ImportError as exc:
        warnings.warn(f"C engine: cannot load {found[0]}: {exc}; using ctypes", stacklevel=3)
        return None
    return mod


class CState:
    """The state of one stream for a stateful C model: a buffer of the size the library
    reports (`<prefix>_state_size()`), holding a `<prefix>_state` struct that only the
    library reads or writes. `reset()` calls `<prefix>_state_reset`."""

    __slots__ = ("buf", "_reset", "_owner")

    def __init__(self, nbytes: int, reset, owner: int) -> None:
        self.buf = np.zeros(-(-nbytes // 4), np.float32)  # the struct holds floats only
        self._reset = reset
        self._owner = owner
        self.reset()

    def reset(self) -> None:
        status = self._reset(self.buf)
        if status:
            raise EngineError(f"C state reset failed with status {status}")


class CEngine(Engine):
    """Generated C. Options: prefix, sparse ('auto'|'dense'|'sparse'), march_native,
    cache_dir, cc, binding ('auto'|'ctypes'), kernels ('auto'|'avx2'|'vector4'|'plain':
    the widest kernel set the library may use; e.g. 'avx2' keeps AVX-512 out on CPUs where
    it lowers the clock).

    A stateful model (temporal context) has no `<prefix>_predict`: `new_state()` returns a
    `CState` per stream, predict(frame, state) calls `<prefix>_predict_state` (through the
    binding's predict_state, else ctypes), predict_batch(frames, state) continues the
    stream, predict_batch(frames) runs the frames as one fresh stream.

    predict() goes through a small generated CPython binding when it could be built
    (`binding="auto"`), else through ctypes; predict_batch() and bench_in_c() always use
    ctypes, whose per-call cost is spread over the batch. `kernels` names the kernel set
    the library runs on this CPU ("avx512f", "avx2+fma", "vector4" or "plain").
    """

    name = "c"

    def __init__(
        self,
        spec: ModelSpec,
        model_hash: str,
        prefix: str = "decoder",
        sparse: str = "auto",
        march_native: bool = False,
        cache_dir: str | os.PathLike | None = None,
        cc: str | None = None,
        binding: str = "auto",
        kernels: str = "auto",
    ) -> None:
        super().__init__(spec, model_hash)
        if binding not in ("auto", "ctypes"):
            raise EngineError(f"binding={binding!r}: choose 'auto' or 'ctypes'")
        if kernels not in KERNEL_SETS:
            raise EngineError(f"kernels={kernels!r}: choose one of {tuple(KERNEL_SETS)}")
        self.codegen_options = CodegenSettings(prefix=prefix, sparse=sparse)
        self.compile_options = CompileSettings(march_native=march_native, cc=cc,
                                              extra_flags=KERNEL_SETS[kernels])
        self.library_path = build_cached(spec, model_hash, self.codegen_options,
                                         self.compile_options, cache_dir)
        try:
            self._lib = ctypes.CDLL(str(self.library_path))
        except OSError as exc:
            raise CompilerError(f"cannot load {self.library_path}: {exc}") from exc
        lib = self._lib
        try:
            if self.stateful:
                self._bind_state_api(lib, prefix)
            else:
                self._predict = getattr(lib, f"{prefix}_predict")
            self._batch = getattr(lib, f"{prefix}_predict_batch")
            self._bench = getattr(lib, f"{prefix}_bench")
            status_string = getattr(lib, f"{prefix}_status_string")
            lib_hash = getattr(lib, f"{prefix}_model_hash")
        except AttributeError as exc:
            raise EngineError(f"{self.library_path} lacks the {prefix}_* API: {exc}") from exc
        if not self.stateful:
            self._predict.argtypes = [_F32, _F32]
            self._predict.restype = ctypes.c_int
        self._batch.argtypes = [_F32, _F32, ctypes.c_int]
        self._batch.restype = ctypes.c_int
        self._bench.argtypes = [_F32, ctypes.c_int, _F64]
        self._bench.restype = ctypes.c_int
        status_string.argtypes = [ctypes.c_int]
        status_string.restype = ctypes.c_char_p
        lib_hash.argtypes = []
        lib_hash.restype = ctypes.c_char_p
        self._status_string = status_string
        pyext = _load_pyext(self.library_path) if binding == "auto" else None
        self._fast = pyext.predict if pyext is not None and not self.stateful else None
        self._fast_state = pyext.predict_state if pyext is not None and self.stateful else None
        self.binding = "cpython" if pyext is not None else "ctypes"
        kernels = getattr(lib, f"{prefix}_kernels", None)  # generator >= 2
        if kernels is not None:
            kernels.argtypes = []
            kernels.restype = ctypes.c_char_p
            self.kernels = kernels().decode("ascii", "replace")
        else:
            self.kernels = "unknown"
        got = lib_hash().decode("ascii", "replace")
        if got != model_hash:
            raise EngineError(f"{self.library_path} was built for model {got[:16]}..., "
                              f"not {model_hash[:16]}...: delete it and retry")
        # warm up: page in the weights
        self.predict(np.zeros(self.n_inputs, np.float32),
                     self.new_state() if self.stateful else None)

    # -- state (stateful models): <prefix>_state structs in CState buffers --
    def _bind_state_api(self, lib, prefix: str) -> None:
        size = getattr(lib, f"{prefix}_state_size")
        size.argtypes, size.restype = [], ctypes.c_int
        self.state_bytes = int(size())
        self._state_reset = getattr(lib, f"{prefix}_state_reset")
        self._state_reset.argtypes, self._state_reset.restype = [_F32], ctypes.c_int
        self._predict_state = getattr(lib, f"{prefix}_predict_state")
        self._predict_state.argtypes = [_F32, _F32, _F32]
        self._predict_state.restype = ctypes.c_int
        self._batch_state = getattr(lib, f"{prefix}_predict_batch_state")
        self._batch_state.argtypes = [_F32, _F32, _F32, ctypes.c_int]
        self._batch_state.restype = ctypes.c_int

    def new_state(self) -> CState:
        if not self.stateful:
            return super().new_state()
        return CState(self.state_bytes, self._state_reset, id(self))

    def _state_buffer(self, state) -> np.ndarray:
        if not isinstance(state, CState) or state._owner != id(self) \
                or state.buf.nbytes != self.state_bytes:
            raise EngineError(f"state must come from this C engine's new_state(), got "
                              f"{type(state).__name__}")
        return state.buf

    def _predict_stateful(self, frame: np.ndarray, state) -> np.ndarray:
        fast = self._fast_state
        if fast is not None and type(state) is CState and state._owner == id(self):
            try:
                out = fast(frame, state.buf)  # None unless frame and state are clean
            except RuntimeError as exc:
                raise EngineError(str(exc)) from exc
            if out is not None:
                return out
        buf = self._state_buffer(self.check_state(state, single=True))
        out = np.empty(self.n_outputs, np.float32)
        self._check(self._predict_state(buf, self.check_frame(frame), out), "predict_state")
        return out

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            msg = self._status_string(status).decode("ascii", "replace")
            raise EngineError(f"C {what} failed with status {status}: {msg}")

    def predict(self, frame: np.ndarray, state: CState | None = None) -> np.ndarray:
        if self.stateful:
            return self._predict_stateful(frame, state)
        fast = self._fast
        if fast is not None:
            try:
                out = fast(frame)  # None unless frame is a clean float32 [N] array
            except RuntimeError as exc:
                raise EngineError(str(exc)) from exc
            if out is not None:
                return out
            return self._predict_ctypes(self.check_frame(frame))
        return self._predict_ctypes(self.check_frame(frame))

    def _predict_ctypes(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(self.n_outputs, np.float32)
        status = self._predict(x, out)
        if status:
            self._check(status, "predict")
        return out

    def predict_batch(self, frames: np.ndarray, state: CState | None = None) -> np.ndarray:
        x = self.check_batch(frames)
        if x.shape[0] > np.iinfo(np.int32).max:
            raise EngineError(f"batch of {x.shape[0]} frames is too large for one call")
        out = np.empty((x.shape[0], self.n_outputs), np.float32)
        if self.stateful and state is not None:  # without one: a fresh stream, in C
            buf = self._state_buffer(state)
            self._check(self._batch_state(buf, x, out, x.shape[0]), "predict_batch_state")
            return out
        self._check(self._batch(x, out, x.shape[0]), "predict_batch")
        return out

    def bench_in_c(self, frames: np.ndarray) -> np.ndarray:
        """Nanoseconds each frame took inside C (the loop runs in C, one frame per call)."""
        x = self.check_batch(frames)
        ns = np.empty(x.shape[0], np.float64)
        self._check(self._bench(x, x.shape[0], ns), "bench")
        return ns

    def close(self) -> None:
        self._lib = None
        self._fast = self._fast_state = None
