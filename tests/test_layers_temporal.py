"""Stateful layers (temporal context): the numpy reference every engine must match.

Expected values are computed here independently, in float64 scalar loops straight from
the definitions in neurogrs/layers_temporal.py; tolerance 1e-6 (float32 arithmetic).
"""
import numpy as np
import pytest

from neurogrs.artifact import load_artifact, save_artifact
from neurogrs.errors import EngineError, ModelError
from neurogrs.inference import load_engine
from neurogrs.layers_temporal import (ForwardFilter, LeakyTraces, decays_from_taus,
                                      fit_forward_filter)
from neurogrs.spec import Activation, Dense, ModelSpec, ModelState, Preprocessing, forward

RNG = np.random.default_rng(7)


def _traces_expected(x: np.ndarray, decays: np.ndarray) -> np.ndarray:
    T, L = x.shape
    m = len(decays)
    out = np.zeros((T, L * (1 + m)))
    s = np.zeros((L, m))
    for t in range(T):
        for e in range(L):
            for j in range(m):
                a = float(decays[j])
                s[e, j] = x[t, e] if t == 0 else a * s[e, j] + (1 - a) * x[t, e]
            out[t, e * (1 + m)] = x[t, e]
            out[t, e * (1 + m) + 1: e * (1 + m) + 1 + m] = s[e]
    return out


def _filter_expected(p: np.ndarray, trans: np.ndarray, prior: np.ndarray) -> np.ndarray:
    out = np.zeros_like(p, dtype=np.float64)
    b = None
    for t in range(p.shape[0]):
        if b is None:
            b = p[t].astype(np.float64)
        else:
            q = [sum(b[cp] * trans[cp, c] for cp in range(len(b))) for c in range(len(b))]
            u = np.array([p[t, c] * q[c] / prior[c] for c in range(len(b))])
            b = u / u.sum()
        out[t] = b
    return out


def test_leaky_traces_follow_the_definition():
    layer = LeakyTraces(decays_from_taus([2.0, 10.0]))
    x = RNG.normal(size=(25, 6)).astype(np.float32)
    np.testing.assert_allclose(layer.apply(x), _traces_expected(x, layer.decays), atol=1e-6)
    assert layer.out_shape((6,), "t") == (18,)
    assert layer.out_shape((4, 4, 1), "t") == (4, 4, 3)


def test_leaky_traces_on_an_image_are_channels_last():
    layer = LeakyTraces(decays_from_taus([3.0]))
    x = RNG.normal(size=(5, 2, 2, 1)).astype(np.float32)
    y = layer.apply(x)
    assert y.shape == (5, 2, 2, 2)
    flat = _traces_expected(x.reshape(5, 4), layer.decays).reshape(5, 2, 2, 2)
    np.testing.assert_allclose(y, flat, atol=1e-6)
    np.testing.assert_array_equal(y[..., 0], x[..., 0])


def test_forward_filter_follows_the_definition():
    flt = ForwardFilter(np.array([[0.9, 0.1], [0.2, 0.8]], np.float32),
                        np.array([0.7, 0.3], np.float32))
    p = RNG.dirichlet([1, 1], size=30).astype(np.float32)
    expected = _filter_expected(p, flt.transition.astype(np.float64), flt.prior.astype(np.float64))
    np.testing.assert_allclose(flt.apply(p), expected, atol=1e-6)


def test_forward_filter_smooths_an_isolated_flip():
    # sticky transitions: one frame of weak evidence against a long run must not flip it
    flt = ForwardFilter(np.array([[0.98, 0.02], [0.02, 0.98]], np.float32),
                        np.array([0.5, 0.5], np.float32))
    p = np.tile(np.array([[0.9, 0.1]], np.float32), (20, 1))
    p[10] = [0.3, 0.7]
    out = flt.apply(p)
    assert out[10].argmax() == 0 and p[10].argmax() == 1


def test_fit_forward_filter_counts_transitions_with_add_one():
    y = np.array([0, 0, 0, 1, 1, 0])
    flt = fit_forward_filter(y, 2)
    # transitions 0->0 x2, 0->1 x1, 1->1 x1, 1->0 x1; +1 each
    np.testing.assert_allclose(flt.transition, [[3 / 5, 2 / 5], [2 / 4, 2 / 4]], atol=1e-7)
    np.testing.assert_allclose(flt.prior, [5 / 8, 3 / 8], atol=1e-7)


@pytest.mark.parametrize("bad", [[0.0], [1.0], [-0.5], []])
def test_bad_decays_are_refused(bad):
    with pytest.raises(ModelError, match="decays"):
        LeakyTraces(np.array(bad, np.float32))


def test_bad_filter_parameters_are_refused():
    with pytest.raises(ModelError, match="rows"):
        ForwardFilter(np.array([[0.5, 0.6], [0.5, 0.5]], np.float32), np.array([.5, .5], np.float32))
    with pytest.raises(ModelError, match="prior"):
        ForwardFilter(np.array([[0.5, 0.5], [0.5, 0.5]], np.float32), np.array([.9, .5], np.float32))
    with pytest.raises(ModelError, match="time constants"):
        decays_from_taus([0.0])


def _temporal_spec(n: int = 8) -> ModelSpec:
    rng = np.random.default_rng(3)
    traces = LeakyTraces(decays_from_taus([2.0, 8.0]))
    return ModelSpec(
        Preprocessing(n, mean=rng.normal(size=n).astype(np.float32)),
        [traces,
         Dense(rng.normal(size=(n * 3, 5)).astype(np.float32), np.zeros(5, np.float32), "relu"),
         Dense(rng.normal(size=(5, 2)).astype(np.float32), np.zeros(2, np.float32)),
         Activation("softmax"),
         fit_forward_filter(np.array([0, 0, 1, 1, 1, 0, 0, 0]), 2)],
        name="temporal")


def test_state_carries_across_calls_like_one_sequence():
    spec = _temporal_spec()
    x = RNG.normal(size=(40, 8)).astype(np.float32)
    whole = forward(spec, x)
    state = ModelState(spec)
    parts = np.concatenate([forward(spec, x[:13], state), forward(spec, x[13:14], state),
                            forward(spec, x[14:], state)])
    np.testing.assert_allclose(parts, whole, atol=1e-6)
    state.reset()
    np.testing.assert_allclose(forward(spec, x[:5], state), whole[:5], atol=1e-6)
    assert spec.stateful and spec.count_params() == 8 * 3 * 5 + 5 + 12 + 6


def test_artifact_carries_the_state_definition(tmp_path):
    spec = _temporal_spec()
    out = save_artifact(spec, tmp_path / "m")
    art = load_artifact(out)
    assert art.spec.content_hash() == spec.content_hash()
    kinds = [(d["type"], d.get("state_floats")) for d in art.doc["layers"]]
    assert kinds[0] == ("leaky_traces", 1 + 8 * 2) and kinds[-1] == ("forward_filter", 3)
    x = RNG.normal(size=(20, 8)).astype(np.float32)
    np.testing.assert_array_equal(forward(art.spec, x), forward(spec, x))


def test_numpy_engine_needs_a_state_per_stream(tmp_path):
    out = save_artifact(_temporal_spec(), tmp_path / "m")
    eng = load_engine(out, "numpy")
    x = RNG.normal(size=(12, 8)).astype(np.float32)
    with pytest.raises(EngineError, match="stateful"):
        eng.predict(x[0])
    a, b = eng.new_state(), eng.new_state()
    seq = np.stack([eng.predict(f, a) for f in x])
    np.testing.assert_allclose(seq, eng.predict_batch(x), atol=1e-6)
    eng.predict(x[5], b)  # another stream does not disturb the first
    eng.reset_state(a)
    np.testing.assert_allclose(eng.predict(x[0], a), seq[0], atol=1e-6)
