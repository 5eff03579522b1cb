"""Temporal zoo models: training on causal features, the fitted filter, causal scoring,
and pruning (surgery, GRS, JGRS scoring, TQ) through stateful specs."""
import numpy as np
import pytest

from neurogrs.artifact import load_artifact, save_artifact
from neurogrs.errors import ModelError
from neurogrs.evaluate import classification_metrics, evaluate_spec
from neurogrs.layers_temporal import ForwardFilter, LeakyTraces
from neurogrs.pruning.data import decision_metric, evaluate, prepare
from neurogrs.pruning.settings import PruneSettings
from neurogrs.pruning.surgery import prunable_layers, slice_masked, zero_masked
from neurogrs.spec import Dense, ModelSpec, forward
from neurogrs.temporal import (core_inputs, filter_streams, fit_filter, run_from_features,
                               stateful_ends)
from neurogrs.zoo import TRACE_TAUS, ZOO, init_spec


@pytest.fixture(scope="module")
def trained_temporal(small_session, small_split):
    """nn1_traces_filter on 40 neurons: core trained 15 epochs on causal traces, filter fitted."""
    from neurogrs.pruning.fit import FitSettings, fit

    spec = init_spec("nn1_traces_filter", small_session.n_neurons, np.random.default_rng(0))
    data = prepare(small_session, small_split, spec)
    spec = fit(spec, data.x_train, data.y_train, FitSettings(epochs=15), seed=0)
    filt = fit_filter(small_session.labels, small_split.train, 2, data.y_train)
    layers = spec.layers[:-1] + (filt,)
    return ModelSpec(spec.preprocessing, layers, spec.label_names, "nn1_traces_filter"), data


# ------------------------------------------------------------------ zoo
@pytest.mark.parametrize("name", ["nn1_traces", "nn2_filter", "nn1_traces_filter",
                                  "cnn2_traces", "cnn1_traces_filter"])
def test_temporal_zoo_specs(name):
    spec = init_spec(name, 30, np.random.default_rng(0))
    assert spec.stateful
    m = len(TRACE_TAUS)
    if "traces" in name:
        assert isinstance(spec.layers[0], LeakyTraces)
        in_shape, out_shape = spec.shapes()[:2]
        assert out_shape == (*in_shape[:-1], in_shape[-1] * (1 + m))  # CNN: extra channels
    assert isinstance(spec.layers[-1], ForwardFilter) == ("filter" in name)
    base = init_spec(name.split("_")[0], 30, np.random.default_rng(0))
    assert spec.structure() == base.structure()


def test_multiclass_widens_the_output_layer_not_the_filter():
    spec = init_spec("nn1_traces_filter", 20, np.random.default_rng(0), n_classes=3)
    assert spec.structure()[-1] == 3 and spec.layers[-1].prior.shape == (3,)
    assert "nn2_traces_filter" in ZOO and "cnn1_filter" in ZOO


# ------------------------------------------------------------------ time helpers
def test_fit_filter_counts_only_transitions_inside_the_training_part():
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 1, 0, 0])
    train = np.array([0, 1, 2, 3, 6, 7, 8])  # gap 3 -> 6: no transition counted there
    f = fit_filter(labels, train, 2, prior_labels=np.array([0, 1, 0, 1]))
    counts = np.ones((2, 2))
    for a, b in ((0, 0), (0, 1), (1, 1), (1, 1), (1, 0)):  # 0-1, 1-2, 2-3, 6-7, 7-8
        counts[a, b] += 1
    assert np.allclose(f.transition, counts / counts.sum(axis=1, keepdims=True))
    assert np.allclose(f.prior, [0.5, 0.5])


@pytest.mark.parametrize("labels, index, prior, match", [
    ([0, 1, 0, 1], [0, 1, 2, 9], [0, 1], r"training index must lie in \[0, 4\)"),
    ([0, 1, 2, 1], [0, 1, 2, 3], [0, 1], r"labels must lie in \[0, 2\), got 0..2"),
    ([0, 1, 0, 1], [0, 1, 2, 3], [0, 5], r"prior_labels must lie in \[0, 2\)"),
    ([0, 1, 0, 1], [2], [0, 1], "at least 2 frames"),
])
def test_fit_filter_bad_input_names_the_problem(labels, index, prior, match):
    with pytest.raises(ModelError, match=match):
        fit_filter(np.array(labels), np.array(index), 2, np.array(prior))


def test_stateful_scoring_needs_data_prepared_for_it(trained_temporal, small_data):
    from neurogrs.errors import SessionError
    from neurogrs.pruning.score import RemovalScorer

    spec, _ = trained_temporal
    _, framewise_data = small_data
    with pytest.raises(SessionError, match="prepared for a frame-wise model"):
        decision_metric(spec, framewise_data, "balanced_accuracy")
    with pytest.raises(SessionError, match="prepared for a frame-wise model"):
        RemovalScorer.for_spec(spec, framewise_data, "balanced_accuracy")


def test_filter_streams_equals_the_layer_per_stream():
    rng = np.random.default_rng(1)
    f = fit_filter(rng.integers(0, 3, 200), np.arange(200), 3, rng.integers(0, 3, 50))
    p = rng.dirichlet(np.ones(3), size=(4, 60)).astype(np.float32)
    p[1, 5] = [1, 0, 0]  # a zero product path: the step's fallback (b = p)
    p[1, 6] = [0, 1, 0]
    got = filter_streams(f, p)
    for k in range(4):
        assert np.allclose(got[k], f.apply(p[k]), atol=1e-6)


def test_core_inputs_then_core_equals_forward(small_session):
    spec = init_spec("nn1_traces_filter", small_session.n_neurons, np.random.default_rng(2),
                     random_bias=True)
    frames = small_session.traces[:300]
    assert np.allclose(run_from_features(spec, core_inputs(spec, frames)), forward(spec, frames),
                       atol=1e-6)
    assert stateful_ends(spec) == (1, len(spec.layers) - 1)


def test_stateful_layer_inside_the_core_is_refused():
    from neurogrs.pruning.fit import FitSettings, fit

    spec = init_spec("nn2", 10, np.random.default_rng(0))
    k = init_spec("nn2_filter", 10, np.random.default_rng(0)).layers[-1]
    bad = ModelSpec(spec.preprocessing,
                    (spec.layers[0], LeakyTraces(np.array([0.5], np.float32)),
                     Dense(np.ones((64, 2), np.float32), np.zeros(2, np.float32), "softmax"), k),
                    spec.label_names)
    with pytest.raises(ModelError, match="layer 1 .*LeakyTraces.* between weighted layers"):
        fit(bad, np.zeros((4, 10), np.float32), np.array([0, 1, 0, 1]), FitSettings(epochs=1),
            seed=0)


# ------------------------------------------------------------------ causal scoring
def test_evaluate_spec_scores_a_stateful_model_over_the_whole_session(trained_temporal,
                                                                    small_session):
    """Before: the scored frames alone ran from a fresh state (the past was cut off)."""
    spec, _ = trained_temporal
    idx = np.arange(500, 700)
    want = forward(spec, small_session.traces)[idx].argmax(axis=1)
    cut = forward(spec, small_session.traces[idx]).argmax(axis=1)  # without the past
    y = small_session.labels[idx]
    assert classification_metrics(y, cut, 0, 2) != classification_metrics(y, want, 0, 2)
    got = evaluate_spec(spec, small_session, idx, 0)
    assert got == classification_metrics(y, want, 0, 2)


def test_prune_data_scores_causally(trained_temporal, small_session, small_split):
    spec, data = trained_temporal
    probs = forward(spec, small_session.traces)
    for part, idx in (("val", small_split.val), ("test", small_split.test)):
        want = classification_metrics(small_session.labels[idx], probs[idx].argmax(axis=1),
                                      data.majority_class, 2)
        assert evaluate(spec, data)[part] == want
    assert np.array_equal(data.x_train, core_inputs(spec, small_session.traces)[small_split.balanced])


# ------------------------------------------------------------------ pruning
def test_surgery_through_a_temporal_spec(trained_temporal, small_session):
    spec, _ = trained_temporal
    a, b, c = prunable_layers(spec)  # the hidden Dense layers (after traces and dropout)
    masks = {a: np.arange(32) % 3 != 0, b: np.arange(16) % 2 == 0, c: np.arange(8) < 5}
    sliced, zeroed = slice_masked(spec, masks), zero_masked(spec, masks)
    assert sliced.structure() == [21, 8, 5, 2]
    assert isinstance(sliced.layers[0], LeakyTraces) and isinstance(sliced.layers[-1], ForwardFilter)
    assert np.array_equal(sliced.layers[-1].transition, spec.layers[-1].transition)
    frames = small_session.traces
    assert np.allclose(forward(sliced, frames), forward(zeroed, frames), atol=1e-5)


def test_jgrs_scores_equal_decision_metric_for_a_temporal_spec(trained_temporal):
    from neurogrs.pruning.score import RemovalScorer
    from neurogrs.pruning.surgery import full_masks

    spec, data = trained_temporal
    masks = full_masks(spec)
    scorer = RemovalScorer.for_spec(spec, data, "balanced_accuracy")
    a, b, c = prunable_layers(spec)
    cands = [(a, 0), (a, 7), (b, 3), (c, 1), (c, 6)]
    scores = scorer.score(spec, masks, cands)
    for (layer, unit), s in zip(cands, scores):
        m = {k: v.copy() for k, v in masks.items()}
        m[layer][unit] = False
        assert s == pytest.approx(decision_metric(zero_masked(spec, m), data, "balanced_accuracy"))
    assert scorer.metric_of(spec, masks) == pytest.approx(
        decision_metric(spec, data, "balanced_accuracy"))


def test_grs_and_tq_on_a_tiny_temporal_model(trained_temporal, small_session, tmp_path):
    from neurogrs.pruning.grs import grs
    from neurogrs.pruning.tq import tq

    spec, data = trained_temporal
    s = PruneSettings(retrain_epochs=1, tau_s=0.01, min_units=4, max_iterations=6)
    r = grs(spec, data, s, np.random.default_rng(1))
    pruned = r.sliced
    assert pruned.stateful and pruned.count_params() < spec.count_params()
    assert isinstance(pruned.layers[0], LeakyTraces) and isinstance(pruned.layers[-1], ForwardFilter)
    assert np.array_equal(pruned.layers[0].decays, spec.layers[0].decays)
    frames = small_session.traces
    assert np.allclose(forward(pruned, frames), forward(zero_masked(r.spec, r.masks), frames),
                       atol=1e-5)
    assert r.metric == pytest.approx(decision_metric(pruned, data, "balanced_accuracy"))
    save_artifact(pruned, tmp_path / "p")
    back = load_artifact(tmp_path / "p").spec
    assert np.array_equal(forward(back, frames[:200]), forward(pruned, frames[:200]))
    final = tq(pruned, data, s).spec
    assert final.stateful and final.structure() == pruned.structure()


# ------------------------------------------------------------------ CLI
def test_cli_train_and_evaluate_a_temporal_model(tmp_path, capsys):
    """`neurogrs train --model nn1_traces_filter`: the artifact holds the whole stateful
    spec (traces at TRACE_TAUS, the filter fitted from the training part's labels) and its
    recorded metrics are the causal ones."""
    import json

    from neurogrs.cli import main
    from neurogrs.formats import save_session
    from neurogrs.layers_temporal import decays_from_taus
    from neurogrs.simulate import simulate_session
    from neurogrs.splits import SplitSettings, make_split

    session = simulate_session(n_neurons=30, n_frames=800, seed=1)
    path = save_session(session, tmp_path / "s.npz")
    out = tmp_path / "art"
    assert main(["train", str(path), "--model", "nn1_traces_filter", "--out", str(out),
                 "--epochs", "3", "--blocks", "2", "--quiet"]) == 0
    art = load_artifact(out)
    spec = art.spec
    assert not (out / "model.keras").exists()
    assert np.array_equal(spec.layers[0].decays, decays_from_taus(TRACE_TAUS))
    split = make_split(session.labels, SplitSettings(blocks=2), np.random.default_rng(0))
    want = fit_filter(session.labels, split.train, 2, session.labels[split.balanced])
    assert np.array_equal(spec.layers[-1].transition, want.transition)
    assert np.array_equal(spec.layers[-1].prior, want.prior)
    majority = int(np.bincount(session.labels[split.train]).argmax())
    assert art.doc["metrics"]["test"] == evaluate_spec(spec, session, split.test, majority)
    capsys.readouterr()
    assert main(["evaluate", str(out), str(path), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["confusion"] == evaluate_spec(spec, session, None, None)["confusion"]


@pytest.mark.parametrize("name", ["nn1_filter", "nn2_traces"])
def test_to_keras_refuses_stateful_specs(name):
    """Before: the ForwardFilter was silently dropped (another function), traces gave a
    cryptic weight-shape error."""
    from neurogrs.pruning.keras_adapter import to_keras

    spec = init_spec(name, 12, np.random.default_rng(0))
    with pytest.raises(ModelError, match=r"stateful layers have no Keras equivalent.*layer \d+ "
                                         r"\((ForwardFilter|LeakyTraces)\)"):
        to_keras(spec)
