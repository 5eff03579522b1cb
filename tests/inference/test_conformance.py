"""One conformance suite every engine passes, on every model of engine_models.

Tolerance: 1e-5 max absolute error on probabilities, against the numpy reference
(`neurogrs.spec.forward`) and against Keras (`to_keras(spec)(x, training=False)` on a
batch). Frames: random normal frames and frames of the real session (31 neurons).
"""
from __future__ import annotations

import numpy as np
import pytest

from engine_models import all_models, load_traces
from neurogrs.artifact import save_artifact
from neurogrs.errors import EngineError
from neurogrs.inference import ENGINES, load_engine
from neurogrs.spec import forward

TOL = 1e-5
TRACES = load_traces()
MODELS = all_models(TRACES)


def frames_for(spec, n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, spec.n_inputs)).astype(np.float32)
    if spec.n_inputs == TRACES.shape[1]:  # real session frames
        idx = rng.choice(TRACES.shape[0], n, replace=False)
        x = np.concatenate([x, TRACES[idx]])
    x[0] = 0.0  # an all-zero frame (zero-skipping paths)
    return x


# The rest of the zoo grid runs under the slow mark (CI runs it; ~1 min more).
SLOW = {"nn1_10", "nn2_273", "cnn2_273", "cnn2_20", "cnn1_273_pruned", "cnn1_273_sparse"}


@pytest.fixture(scope="module", params=[
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
    for name in sorted(MODELS)
])
def model(request, tmp_path_factory):
    spec = MODELS[request.param]
    path = save_artifact(spec, tmp_path_factory.mktemp(request.param))
    return request.param, spec, path, frames_for(spec)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request, model):
    _, spec, path, _ = model
    eng = load_engine(path, request.param)
    yield eng
    eng.close()


_KERAS_CACHE: dict[str, np.ndarray] = {}


def keras_outputs(name, spec, frames):
    if name not in _KERAS_CACHE:
        adapter = pytest.importorskip("neurogrs.pruning.keras_adapter")
        model = adapter.to_keras(spec)
        x = spec.preprocessing.apply(frames)
        _KERAS_CACHE[name] = np.asarray(model(x, training=False), dtype=np.float32)
    return _KERAS_CACHE[name]


def test_output_shape_and_dtype(engine, model):
    _, spec, _, frames = model
    y = engine.predict(frames[1])
    assert y.shape == (spec.n_outputs,) and y.dtype == np.float32
    yb = engine.predict_batch(frames)
    assert yb.shape == (len(frames), spec.n_outputs) and yb.dtype == np.float32
    assert engine.n_inputs == spec.n_inputs and engine.n_outputs == spec.n_outputs
    assert engine.model_hash == spec.content_hash()


def test_agrees_with_reference(engine, model):
    _, spec, _, frames = model
    ref = forward(spec, frames)
    single = np.stack([engine.predict(f) for f in frames])
    batch = engine.predict_batch(frames)
    assert np.max(np.abs(single - ref)) <= TOL
    assert np.max(np.abs(batch - ref)) <= TOL


def test_agrees_with_keras(engine, model):
    name, spec, _, frames = model
    ref = keras_outputs(name, spec, frames)
    got = engine.predict_batch(frames)
    err = float(np.max(np.abs(got - ref)))
    assert err <= TOL, f"{engine.name} vs Keras on {name}: max abs error {err:.2e}"


def test_deterministic(engine, model):
    _, _, _, frames = model
    a = engine.predict(frames[2])
    b = engine.predict(frames[2])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(engine.predict_batch(frames[:5]), engine.predict_batch(frames[:5]))


def test_input_not_mutated(engine, model):
    _, _, _, frames = model
    before = frames.copy()
    engine.predict(frames[3])
    engine.predict_batch(frames)
    np.testing.assert_array_equal(frames, before)


def test_batch_of_one_equals_row_of_batch(engine, model):
    """Exact for the compiled engines (same code per row); numpy's BLAS may block a batch
    differently from a single row, so it gets 1e-6."""
    _, _, _, frames = model
    atol = 1e-6 if engine.name == "numpy" else 0.0
    batch = engine.predict_batch(frames[:7])
    for i in range(7):
        np.testing.assert_allclose(engine.predict_batch(frames[i:i + 1])[0], batch[i],
                                   rtol=0, atol=atol)
        np.testing.assert_allclose(engine.predict(frames[i]), batch[i], rtol=0, atol=atol)


def test_non_contiguous_frame_is_accepted(engine, model):
    _, _, _, frames = model
    strided = np.repeat(frames[4][:, None], 2, axis=1)[:, 0]
    assert not strided.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(engine.predict(strided), engine.predict(frames[4].copy()))


def _bad_frames(n):
    return {
        "too_short": np.zeros(n - 1, np.float32),
        "too_long": np.zeros(n + 1, np.float32),
        "float64": np.zeros(n, np.float64),
        "int32": np.zeros(n, np.int32),
        "two_d": np.zeros((1, n), np.float32),
        "scalar": np.float32(1.0),
        "list": [0.0] * n,
        "none": None,
    }


@pytest.mark.parametrize("kind", sorted(_bad_frames(3)))
def test_bad_frame_rejected(engine, model, kind):
    _, spec, _, _ = model
    bad = _bad_frames(spec.n_inputs)[kind]
    with pytest.raises(EngineError):
        engine.predict(bad)


@pytest.mark.parametrize("kind", ["wrong_width", "one_d", "float64", "list"])
def test_bad_batch_rejected(engine, model, kind):
    _, spec, _, _ = model
    n = spec.n_inputs
    bad = {"wrong_width": np.zeros((2, n + 1), np.float32), "one_d": np.zeros(n, np.float32),
           "float64": np.zeros((2, n)), "list": [[0.0] * n]}[kind]
    with pytest.raises(EngineError):
        engine.predict_batch(bad)


def test_empty_batch(engine, model):
    _, spec, _, _ = model
    out = engine.predict_batch(np.zeros((0, spec.n_inputs), np.float32))
    assert out.shape == (0, spec.n_outputs)
