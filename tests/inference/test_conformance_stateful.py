"""The conformance suite for stateful (temporal-context) models: every engine against the
numpy reference `neurogrs.spec.forward` over sequences, on every model of
stateful_models (traces in front of a Dense network, traces as CNN channels, a forward
filter at the end, both, a TQ-sparse Dense after traces).

Tolerance: 1e-5 max absolute error on probabilities, as the stateless suite
(test_conformance.py). Sequences of 64 frames (random normal frames, then frames of the
real session for the 31-neuron models), with resets in the middle and two streams
interleaved frame by frame.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine_models import load_traces
from neurogrs.artifact import save_artifact
from neurogrs.errors import EngineError
from neurogrs.inference import load_engine
from neurogrs.spec import ModelState, forward
from stateful_models import stateful_models

TOL = 1e-5
TRACES = load_traces()
MODELS = stateful_models(TRACES)
N_FRAMES = 64

# engine variants: (name, options); the C engine through its CPython binding (default) and
# through ctypes, and on the sparse model once more with the zero-skipping code forced for
# every weighted layer and once with the portable kernels only
VARIANTS = {"numpy": ("numpy", {}), "numba": ("numba", {}), "c": ("c", {}),
            "c_ctypes": ("c", {"binding": "ctypes"}),
            "c_sparse": ("c", {"sparse": "sparse"}), "c_vector4": ("c", {"kernels": "vector4"})}


def sequence(spec, n=N_FRAMES, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, spec.n_inputs)).astype(np.float32)
    if spec.n_inputs == TRACES.shape[1]:  # a stretch of the real session, in time order
        start = int(rng.integers(0, TRACES.shape[0] - n // 2))
        x[n // 2:] = TRACES[start:start + n - n // 2]
    return x


CASES = [(m, v) for m in sorted(MODELS) for v in sorted(VARIANTS)
         if v not in ("c_sparse", "c_vector4") or "sparse" in m]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return {name: save_artifact(spec, tmp_path_factory.mktemp(name))
            for name, spec in MODELS.items()}


@pytest.fixture(scope="module", params=CASES, ids=[f"{v}-{m}" for m, v in CASES])
def case(request, artifacts):
    name, variant = request.param
    kind, options = VARIANTS[variant]
    eng = load_engine(artifacts[name], kind, **options)
    yield eng, (name, MODELS[name], artifacts[name])
    eng.close()


@pytest.fixture
def engine(case):
    return case[0]


@pytest.fixture
def model(case):
    return case[1]


def test_stateful_and_state_definition(engine, model):
    _, spec, _ = model
    assert engine.stateful and spec.stateful
    with pytest.raises(EngineError, match="stateful"):
        engine.predict(sequence(spec, 1)[0])  # no state: refused, never a silent default


def test_sequence_agrees_with_reference(engine, model):
    _, spec, _ = model
    x = sequence(spec)
    ref = forward(spec, x)
    state = engine.new_state()
    single = np.stack([engine.predict(f, state) for f in x])
    assert np.max(np.abs(single - ref)) <= TOL
    assert np.max(np.abs(engine.predict_batch(x) - ref)) <= TOL  # a batch is a fresh stream
    # the state matters: the same frame after another history gives another answer
    fresh = engine.predict(x[-1], engine.new_state())
    assert np.max(np.abs(fresh - single[-1])) > 1e-4


def test_batch_with_state_continues_the_stream(engine, model):
    _, spec, _ = model
    x = sequence(spec, seed=1)
    ref = forward(spec, x)
    state = engine.new_state()
    parts = [engine.predict_batch(x[:20], state), engine.predict(x[20], state)[None, :],
             engine.predict_batch(x[21:], state)]
    assert np.max(np.abs(np.concatenate(parts) - ref)) <= TOL


def test_reset_in_the_middle(engine, model):
    _, spec, _ = model
    x = sequence(spec, seed=2)
    state = engine.new_state()
    got = []
    for t, f in enumerate(x):
        if t in (25, 50):
            engine.reset_state(state)
        got.append(engine.predict(f, state))
    ref = np.concatenate([forward(spec, x[:25]), forward(spec, x[25:50]), forward(spec, x[50:])])
    assert np.max(np.abs(np.stack(got) - ref)) <= TOL


def test_two_interleaved_states(engine, model):
    _, spec, _ = model
    x, z = sequence(spec, seed=3), sequence(spec, seed=4)
    sa, sb = engine.new_state(), engine.new_state()
    ga, gb = [], []
    for fa, fb in zip(x, z):
        ga.append(engine.predict(fa, sa))
        gb.append(engine.predict(fb, sb))
    assert np.max(np.abs(np.stack(ga) - forward(spec, x))) <= TOL
    assert np.max(np.abs(np.stack(gb) - forward(spec, z))) <= TOL


def test_agrees_with_reference_state_from_the_middle(engine, model):
    """Against the reference run from an explicit ModelState, split into two calls."""
    _, spec, _ = model
    x = sequence(spec, seed=5)
    ref_state = ModelState(spec)
    ref = np.concatenate([forward(spec, x[:33], ref_state), forward(spec, x[33:], ref_state)])
    state = engine.new_state()
    got = np.stack([engine.predict(f, state) for f in x])
    assert np.max(np.abs(got - ref)) <= TOL


def test_empty_batch_and_input_not_mutated(engine, model):
    _, spec, _ = model
    assert engine.predict_batch(np.zeros((0, spec.n_inputs), np.float32)).shape == \
        (0, spec.n_outputs)
    x = sequence(spec, 8, seed=6)
    before = x.copy()
    state = engine.new_state()
    engine.predict(x[0], state)
    engine.predict_batch(x, state)
    np.testing.assert_array_equal(x, before)


def test_bad_state_and_frame_rejected(engine, model):
    _, spec, _ = model
    x = sequence(spec, 2)
    for bad in (None, object(), np.zeros(3, np.float32)):
        with pytest.raises(EngineError):
            engine.predict(x[0], bad)
    with pytest.raises(EngineError):
        engine.predict(np.zeros(spec.n_inputs + 1, np.float32), engine.new_state())
    with pytest.raises(EngineError):
        engine.predict(x[0].astype(np.float64), engine.new_state())


def test_sparse_model_takes_the_zero_skipping_path():
    """The TQ-sparse Dense after the traces gets zero-skipping C (split: SIMD kernels on
    x86, zero-skipping in the portable set, which the c_vector4 variant runs)."""
    from neurogrs.codegen import CodegenSettings, generate_sources

    _, plan = generate_sources(MODELS["traces3_nn1_273_sparse"])
    assert plan[1].kind == "Dense" and plan[1].mode in ("split", "sparse")
    _, plan = generate_sources(MODELS["traces3_nn1_273_sparse"],
                               options=CodegenSettings(sparse="sparse"))
    assert plan[1].mode == "sparse"


def test_c_binding_and_ctypes_paths_are_the_same_code(artifacts):
    """The CPython binding (predict_state) and ctypes run the same C: equal bit for bit."""
    fast = load_engine(artifacts["traces2_filter_nn1_31_session"], "c")
    slow = load_engine(artifacts["traces2_filter_nn1_31_session"], "c", binding="ctypes")
    assert (fast.binding, slow.binding) == ("cpython", "ctypes")
    x = sequence(MODELS["traces2_filter_nn1_31_session"], seed=7)
    sf, ss = fast.new_state(), slow.new_state()
    np.testing.assert_array_equal(np.stack([fast.predict(f, sf) for f in x]),
                                  np.stack([slow.predict(f, ss) for f in x]))
    with pytest.raises(EngineError):  # a state from another engine is refused
        fast.predict(x[0], ss)


def test_state_holds_the_reference_layout(engine, model):
    """After a sequence the engine's state holds what the reference's ModelState holds
    (primed flags, traces, beliefs; for C the struct members in layer order)."""
    _, spec, _ = model
    x = sequence(spec, 20, seed=8)
    ref_state = ModelState(spec)
    forward(spec, x, ref_state)
    state = engine.new_state()
    for f in x:
        engine.predict(f, state)
    ref = np.concatenate([ref_state.buffers[i] for i in sorted(ref_state.buffers)])
    got = (state.buf if engine.name == "c" else
           np.concatenate([state.buffers[i] for i in sorted(state.buffers)]))
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= TOL * max(1.0, float(np.max(np.abs(ref))))
