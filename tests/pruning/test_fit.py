"""The masked trainer: exactness against Keras, candidates, masks, seeds, bad input."""
import dataclasses
import warnings

import numpy as np
import pytest

from neurogrs.errors import ConfigError, ModelError
from neurogrs.evaluate import evaluate_spec
from neurogrs.simulate import simulate_session
from neurogrs.spec import Dropout, forward
from neurogrs.splits import SplitSettings, make_split
from neurogrs.zoo import init_spec

tf = pytest.importorskip("tensorflow")
from neurogrs.pruning import fit_graph as G  # noqa: E402
from neurogrs.pruning.fit import (  # noqa: E402
    FitSettings,
    candidate_slots,
    fit,
    fit_many,
    fit_with_history,
)
from neurogrs.pruning.surgery import full_masks, slice_masked, zero_masked  # noqa: E402

N = 40


@pytest.fixture(scope="module")
def data():
    s = simulate_session(n_neurons=N, n_frames=1200, seed=3)
    split = make_split(s.labels, SplitSettings(), np.random.default_rng(0))
    spec = init_spec("nn1", N, np.random.default_rng(1))
    x = spec.preprocessing.apply(s.traces[split.balanced])
    y = s.labels[split.balanced].astype(np.int32)
    return s, split, spec, x, y


@pytest.fixture(scope="module")
def cnn():
    s = simulate_session(n_neurons=N, n_frames=600, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = init_spec("cnn2", N, np.random.default_rng(2), s.positions)
    return spec, spec.preprocessing.apply(s.traces[:300]), s.labels[:300].astype(np.int32)


def _masks(spec, off: dict[int, list[int]]):
    m = full_masks(spec)
    for layer, units in off.items():
        m[layer][units] = False
    return m


def _arrays(spec):
    return [a for _, l in spec.weighted_layers() for a in (l.kernel, l.bias)]


def _max_diff(a, b):
    return max(float(np.abs(p - q).max()) for p, q in zip(_arrays(a), _arrays(b)))


# ------------------------------------------------------------ exactness vs Keras
def test_masked_fit_equals_keras_fit_of_the_sliced_model_step_for_step(data):
    """Dropout off, same start, same batch order: Keras' Adam, loss and short last batch."""
    keras = pytest.importorskip("keras")
    from neurogrs.pruning.keras_adapter import to_keras

    _, _, spec, x, y = data
    masks = _masks(spec, {0: [3, 7], 1: [0], 2: [5]})
    settings = FitSettings(epochs=3, batch_size=32, dropout_scale=0.0)
    assert len(y) % 32 != 0  # the last batch of every epoch is short
    ours = slice_masked(fit(spec, x, y, settings, seed=5, masks=masks), masks)

    small = slice_masked(spec, masks)
    small = dataclasses.replace(small, layers=tuple(
        Dropout(0.0) if isinstance(l, Dropout) else l for l in small.layers))
    model = to_keras(small)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(5)  # fit's batch order: one permutation per epoch
    for _ in range(settings.epochs):
        perm = rng.permutation(len(y))
        model.fit(x[perm], y[perm], batch_size=32, epochs=1, shuffle=False, verbose=0)
    ref = [w for layer in model.layers for w in layer.get_weights()]
    err = max(float(np.abs(a - b).max()) for a, b in zip(_arrays(ours), ref))
    assert err <= 2e-5, err
    assert _max_diff(ours, small) > 1e-2  # and training moved the weights


# ------------------------------------------------------------ candidates and masks
def test_fit_many_candidate_equals_fit_with_its_masks(data):
    _, _, spec, x, y = data
    settings = FitSettings(epochs=4)
    cands = [_masks(spec, {0: [1]}), _masks(spec, {1: [2, 3]}), _masks(spec, {2: [0]})][:2]
    many = fit_many(spec, cands, x, y, settings, seed=9)  # 2 candidates, padded to 3 slots
    assert len(many) == 2
    for m, got in zip(cands, many):
        assert _max_diff(got, fit(spec, x, y, settings, seed=9, masks=m)) <= 1e-5


def test_candidate_counts_up_to_one_per_layer_share_one_compiled_program(data):
    _, _, spec, x, y = data
    x, y = x[:100], y[:100]  # a data size no other test uses: a fresh signature
    settings = FitSettings(epochs=1)
    fn = G.compiled(G.arch_of(spec, [0, 1, 2]), False)
    before = fn.experimental_get_tracing_count()
    for count in (2, 3, 2):
        cands = [_masks(spec, {i: [i]}) for i in range(count)]
        assert len(fit_many(spec, cands, x, y, settings, seed=0)) == count
    assert fn.experimental_get_tracing_count() == before + 1
    assert candidate_slots(spec, 1) == 1 and candidate_slots(spec, 5) == 8


def test_cnn_candidates_keep_masked_filters_at_zero_and_equal_fit(cnn):
    spec, x, y = cnn
    settings = FitSettings(epochs=2)
    cands = [_masks(spec, {0: [4, 5]}), _masks(spec, {2: [1]}), _masks(spec, {5: [0, 31]})]
    many = fit_many(spec, cands, x, y, settings, seed=1)
    for m, got in zip(cands, many):
        assert _max_diff(got, fit(spec, x, y, settings, seed=1, masks=m)) <= 1e-5
        assert _max_diff(got, spec) > 1e-3
        assert _max_diff(got, zero_masked(got, m)) == 0.0
    frames = np.random.default_rng(9).normal(0, 1, (50, N)).astype(np.float32)
    np.testing.assert_allclose(forward(many[0], frames), forward(slice_masked(many[0], cands[0]), frames),
                               atol=1e-6)


def _with_arrays(spec, arrays):
    layers = list(spec.layers)
    for pos, (i, layer) in enumerate(spec.weighted_layers()):
        layers[i] = dataclasses.replace(layer, kernel=arrays[2 * pos], bias=arrays[2 * pos + 1])
    return dataclasses.replace(spec, layers=tuple(layers))


def test_masked_units_weights_never_change_inside_the_trainer(data):
    """Masked unit -> exactly zero gradient -> Adam leaves its weights as they were.

    Run the graph itself (fit zeroes masked weights before and after): start from weights
    that are all non-zero, masked units' included, and train with dropout on.
    """
    _, _, spec, x, y = data
    masks = _masks(spec, {0: [0, 9], 1: [4], 2: [7]})
    ones = _with_arrays(spec, [np.ones_like(a) for a in _arrays(spec)])
    dead = [a == 0 for a in _arrays(zero_masked(ones, masks))]  # the masked units' slots
    assert sum(d.any() for d in dead) == len(dead) - 1  # all but the output bias
    rng = np.random.default_rng(0)
    start = [(a + rng.normal(0, 0.5, a.shape)).astype(np.float32)[None] for a in _arrays(spec)]
    zeros = [np.zeros_like(w) for w in start]
    layers = sorted(masks)
    n = len(y) // 32 * 32
    batches = G.Batches(np.arange(n, dtype=np.int32).reshape(-1, 32),
                        np.ones((n // 32, 32), np.float32))
    out, *_ = G.train_graph(G.arch_of(spec, layers), False, start, zeros, zeros,
                            [masks[i][None].astype(np.float32) for i in layers], x, y, batches,
                            np.array([0.5], np.float32), 1e-3, 0, 0)
    for before, after, d in zip(start, out, dead):
        np.testing.assert_array_equal(after[0][d], before[0][d])
        assert np.abs(after[0] - before[0])[~d].max() > 1e-4  # the rest trained


# ------------------------------------------------------------ seeds and chunks
def test_same_seed_same_weights_other_seed_other_weights(data):
    _, _, spec, x, y = data
    settings = FitSettings(epochs=2)
    a = fit(spec, x, y, settings, seed=3)
    b = fit(spec, x, y, settings, seed=3)
    c = fit(spec, x, y, settings, seed=4)
    assert all(np.array_equal(p, q) for p, q in zip(_arrays(a), _arrays(b)))
    assert _max_diff(a, c) > 1e-4
    assert _max_diff(a, spec) > 1e-3


def test_progress_chunks_give_the_same_model_and_report_every_chunk(data):
    _, _, spec, x, y = data
    settings = FitSettings(epochs=30)
    calls = []
    a, hist = fit_with_history(spec, x, y, settings, seed=2,
                               progress=lambda done, loss: calls.append((done, loss)))
    b = fit(spec, x, y, settings, seed=2)
    assert [c[0] for c in calls] == list(range(2, 31, 2))
    assert all(np.isfinite(c[1]) for c in calls) and calls[-1][1] == pytest.approx(hist.loss[-1])
    assert len(hist.loss) == 30 and hist.loss[-1] < hist.loss[0]
    assert _max_diff(a, b) <= 1e-6


def test_dropout_scale_multiplies_every_rate(data):
    _, _, spec, x, y = data
    no_dropout = dataclasses.replace(spec, layers=tuple(
        Dropout(0.0) if isinstance(l, Dropout) else l for l in spec.layers))
    a = fit(spec, x, y, FitSettings(epochs=2, dropout_scale=0.0), seed=1)
    b = fit(no_dropout, x, y, FitSettings(epochs=2), seed=1)
    c = fit(spec, x, y, FitSettings(epochs=2), seed=1)
    assert _max_diff(a, b) == 0.0 and _max_diff(a, c) > 1e-4


# ------------------------------------------------------------ masked vs naive Keras
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_masked_retraining_matches_naive_keras_retraining_in_accuracy(data):
    """Same candidates, data, epochs: validation accuracies agree on average (tolerance 0.03)."""
    from neurogrs.bench.pruning import grs_candidates, naive_keras_fit

    s, split, spec, x, y = data
    majority = int(np.bincount(s.labels[split.train]).argmax())
    trained = fit(spec, x, y, FitSettings(epochs=40), seed=0)
    settings = FitSettings(epochs=10)
    fast, naive = [], []
    for seed in (1, 2):
        cands = grs_candidates(trained, full_masks(trained), np.random.default_rng(seed))
        for c in fit_many(trained, cands, x, y, settings, seed=seed):
            fast.append(evaluate_spec(c, s, split.val, majority)["accuracy"])
        for m in cands:
            ref = naive_keras_fit(slice_masked(trained, m), x, y, settings, seed=seed)
            naive.append(evaluate_spec(ref, s, split.val, majority)["accuracy"])
    assert min(fast) > 0.7 and min(naive) > 0.7, (fast, naive)  # both learn
    assert abs(np.mean(fast) - np.mean(naive)) <= 0.03, (fast, naive)


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
    ({"learning_rate": 2.0}, "learning_rate"), ({"dropout_scale": 1.5}, "dropout_scale"),
    ({"epochs": 2.5}, "epochs"),
])
def test_fit_settings_name_the_bad_field(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FitSettings(**kwargs)


def test_fit_settings_round_trip():
    s = FitSettings(epochs=7, batch_size=16, learning_rate=0.01, dropout_scale=0.95 ** 3)
    assert FitSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="unknown"):
        FitSettings.from_dict({"epoch": 3})


@pytest.mark.parametrize("change, match", [
    (lambda x, y: (x[:, :-1], y), r"x must have shape \[B, 40\]"),
    (lambda x, y: (x, y + 2), r"labels in \[0, 1\]"),
    (lambda x, y: (x, y.astype(np.float32)), "integer labels"),
    (lambda x, y: (x, y[:-1]), "samples"),
    (lambda x, y: (x[:0], y[:0]), "no training samples"),
])
def test_bad_data_is_a_clear_error(data, change, match):
    _, _, spec, x, y = data
    x2, y2 = change(x, y)
    with pytest.raises(ConfigError, match=match):
        fit(spec, x2, y2, FitSettings(epochs=1), seed=0)


def test_bad_candidates_are_clear_errors(data):
    _, _, spec, x, y = data
    with pytest.raises(ConfigError, match="empty"):
        fit_many(spec, [], x, y, FitSettings(epochs=1), seed=0)
    bad = {0: np.ones(31, bool)}
    with pytest.raises(ModelError, match=r"candidate 1: [\s\S]*bool\[32\]"):
        fit_many(spec, [full_masks(spec), bad], x, y, FitSettings(epochs=1), seed=0)
    with pytest.raises(ConfigError, match="seed"):
        fit(spec, x, y, FitSettings(epochs=1), seed=-1)
