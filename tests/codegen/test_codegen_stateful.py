"""Generated C for stateful models (temporal context): strict compilation in every kernel
set, the harness decodes its input as one stream, the state API (size, init/reset, NULL
checks), no mutable static data, two threads with two states. Reference: numpy forward()
of the sequence, tolerance 1e-5 (as the stateless codegen tests)."""
from __future__ import annotations

import ctypes
import re
import threading
import warnings

import numpy as np
import pytest

from neurogrs.codegen import CodegenSettings, CompileSettings, compile_harness, compile_library
from neurogrs.codegen import generate_sources, write_sources
from neurogrs.layers_temporal import ForwardFilter, LeakyTraces, decays_from_taus
from neurogrs.spec import Conv2D, ModelSpec, forward
from neurogrs.zoo import init_spec

from test_codegen import KERNEL_SETS, _cpu_flags, run_harness

F32 = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")


def cnn_traces_filter(n: int = 20) -> ModelSpec:
    """cnn1 reading the frame and 2 traces as 3 channels, a forward filter at the end."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no neuron positions: index order (intended here)
        base = init_spec("cnn1", n, np.random.default_rng(4), random_bias=True)
    conv = base.layers[0]
    kernel = np.random.default_rng(5).normal(0, 0.4, (*conv.kernel.shape[:2], 3, 32))
    filt = ForwardFilter(np.array([[0.9, 0.1], [0.2, 0.8]], np.float32),
                         np.array([0.5, 0.5], np.float32))
    return ModelSpec(base.preprocessing,
                     (LeakyTraces(decays_from_taus([2.0, 9.0])),
                      Conv2D(kernel, conv.bias, conv.strides, conv.activation),
                      *base.layers[1:], filt), base.label_names, name="cnn_temporal")


def load(lib_path, spec):
    lib = ctypes.CDLL(str(lib_path))
    lib.decoder_state_size.restype = ctypes.c_int
    lib.decoder_state_init.argtypes = [F32]
    lib.decoder_state_reset.argtypes = [F32]
    lib.decoder_predict_state.argtypes = [F32, F32, F32]
    lib.decoder_predict_batch.argtypes = [F32, F32, ctypes.c_int]
    lib.decoder_predict_batch_state.argtypes = [F32, F32, F32, ctypes.c_int]
    return lib


def new_state(lib):
    s = np.full(lib.decoder_state_size() // 4, np.nan, np.float32)
    assert lib.decoder_state_init(s) == 0
    return s


@pytest.mark.parametrize("kset", sorted(KERNEL_SETS))
def test_strict_compile_every_kernel_set_and_harness_is_one_stream(kset, tmp_path):
    if kset == "avx2" and not {"avx2", "fma"} <= _cpu_flags():
        pytest.skip("this CPU has no AVX2+FMA")
    spec = cnn_traces_filter()
    write_sources(spec, tmp_path)
    opts = CompileSettings(werror=True, extra_flags=KERNEL_SETS[kset])
    lib = load(compile_library(tmp_path, opts), spec)
    x = np.random.default_rng(1).normal(size=(60, spec.n_inputs)).astype(np.float32)
    ref = forward(spec, x)
    out = np.empty((60, spec.n_outputs), np.float32)
    assert lib.decoder_predict_batch(x, out, 60) == 0
    assert np.max(np.abs(out - ref)) <= 1e-5
    s = new_state(lib)
    assert lib.decoder_predict_batch_state(s, x[:30], out[:30], 30) == 0
    for t in range(30, 60):
        assert lib.decoder_predict_state(s, x[t], out[t]) == 0
    assert np.max(np.abs(out - ref)) <= 1e-5
    exe = compile_harness(tmp_path, opts)
    assert np.max(np.abs(run_harness(exe, x, tmp_path=tmp_path) - ref)) <= 1e-5


def test_state_api_size_reset_and_null_checks(tmp_path):
    spec = cnn_traces_filter()
    files, _ = generate_sources(spec)
    g = spec.preprocessing.grid
    n_state = 4 * ((1 + g * g * 2) + (1 + 2))  # flag + grid x 2 traces; flag + 2 beliefs
    assert f"#define DECODER_STATE_BYTES {n_state}" in files["decoder.h"]
    assert "int decoder_predict(const float" not in files["decoder.h"]  # needs a state
    write_sources(spec, tmp_path)
    lib = load(compile_library(tmp_path, CompileSettings(werror=True)), spec)
    assert lib.decoder_state_size() == n_state
    s = new_state(lib)
    assert not s.any()  # init: every primed flag 0
    x = np.random.default_rng(2).normal(size=(5, spec.n_inputs)).astype(np.float32)
    first, out = np.empty(2, np.float32), np.empty(2, np.float32)
    lib.decoder_predict_state(s, x[0], first)
    for f in x[1:]:
        lib.decoder_predict_state(s, f, out)
    assert lib.decoder_state_reset(s) == 0 and not s.any()
    lib.decoder_predict_state(s, x[0], out)
    np.testing.assert_array_equal(out, first)
    null = ctypes.c_void_p()
    raw = ctypes.CDLL(str(tmp_path / "libdecoder.so"))
    assert raw.decoder_state_init(null) == 1 and raw.decoder_predict_state(null, null, null) == 1


def test_no_mutable_static_data_and_two_threads_two_states(tmp_path):
    spec = cnn_traces_filter()
    files, _ = generate_sources(spec)
    statics = [ln for ln in files["decoder.c"].splitlines()
               if re.match(r"\s*static\s", ln) and not re.match(r"\s*static\s+(const\b|.*\()", ln)]
    assert statics == []  # only const data and functions: the state is the caller's
    write_sources(spec, tmp_path)
    lib = load(compile_library(tmp_path, CompileSettings(werror=True)), spec)
    rng = np.random.default_rng(3)
    streams = [rng.normal(size=(400, spec.n_inputs)).astype(np.float32) for _ in range(2)]
    outs = [np.empty((400, spec.n_outputs), np.float32) for _ in range(2)]

    def run(k):  # ctypes releases the GIL: the two streams really run at once
        s = new_state(lib)
        for t in range(400):
            lib.decoder_predict_state(s, streams[k][t], outs[k][t])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for k in range(2):
        assert np.max(np.abs(outs[k] - forward(spec, streams[k]))) <= 1e-5


def test_sparse_dense_after_traces_is_zero_skipping(tmp_path):
    """TQ: the first Dense after the traces, mostly zeros, gets the sparse code and agrees."""
    base = init_spec("nn1", 3 * 40, np.random.default_rng(6), random_bias=True)
    k = base.layers[0].kernel.copy()
    k[np.abs(k) < np.quantile(np.abs(k), 0.96)] = 0.0
    from neurogrs.spec import Dense, Preprocessing

    spec = ModelSpec(Preprocessing(40), (LeakyTraces(decays_from_taus([3.0, 12.0])),
                                         Dense(k, base.layers[0].bias, "relu"),
                                         *base.layers[1:]), base.label_names)
    for sparse in ("auto", "sparse"):
        d = tmp_path / sparse
        _, plan = write_sources(spec, d, options=CodegenSettings(sparse=sparse))
        assert plan[1].mode in ("split", "sparse")
        for kset in ("auto", "vector4"):
            lib = load(compile_library(d, CompileSettings(
                werror=True, extra_flags=KERNEL_SETS[kset])), spec)
            x = np.random.default_rng(7).normal(size=(50, 40)).astype(np.float32)
            out = np.empty((50, 2), np.float32)
            assert lib.decoder_predict_batch(x, out, 50) == 0
            assert np.max(np.abs(out - forward(spec, x))) <= 1e-5
