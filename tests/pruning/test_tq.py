import numpy as np
import pytest

from neurogrs.pruning.data import decision_metric
from neurogrs.pruning.settings import PruneSettings
from neurogrs.pruning.tq import distinct_values, stage_q, stage_t, tq
from neurogrs.spec import Dense, ModelSpec


def weights(spec):
    return [np.concatenate([l.kernel.ravel(), l.bias.ravel()]) for _, l in spec.weighted_layers()]


def with_zeros(spec, fraction=0.2, seed=1):
    rng = np.random.default_rng(seed)
    layers = list(spec.layers)
    for i, l in spec.weighted_layers():
        k = l.kernel.copy()
        k[rng.random(k.shape) < fraction] = 0.0
        layers[i] = Dense(k, l.bias, l.activation)
    return ModelSpec(spec.preprocessing, tuple(layers), spec.label_names, spec.name)


def test_the_fixture_model_has_signal(small_data):
    spec, data = small_data
    assert decision_metric(spec, data, "balanced_accuracy") > 0.6


@pytest.mark.parametrize("tau", [0.995, 0.95])
def test_stage_t_tolerance_and_stop_at_first_failure(small_data, tau):
    spec, data = small_data
    s = PruneSettings(tau_t=tau, theta=0.005, theta_step=0.005)
    r = stage_t(spec, data, s)
    assert r.metric_in == decision_metric(spec, data, s.metric)
    assert r.metric_t >= tau * r.metric_in
    assert r.metric_t == decision_metric(r.spec, data, s.metric)
    kept = [e["kept"] for e in r.trajectory]
    assert all(kept[:-1]) and not kept[-1]  # stops at the first failure
    for e in r.trajectory[:-1]:
        assert e["metric"] >= tau * r.metric_in
    assert r.trajectory[-1]["metric"] < tau * r.metric_in
    assert r.spec.nonzero_params() < spec.nonzero_params()


def test_stage_t_zeros_stay_zero_and_small_weights_go(small_data):
    spec, data = small_data
    start = with_zeros(spec)
    r = stage_t(start, data, PruneSettings(theta=0.002, theta_step=0.002, tau_t=0.9))
    for before, after in zip(weights(start), weights(r.spec)):
        assert np.all(after[before == 0] == 0)
        changed = before != after
        assert np.all(after[changed] == 0)  # Stage T only ever zeroes
        assert np.all(np.abs(before[changed]) < r.trajectory[-1]["theta"])


def test_stage_q_rounds_layers_and_respects_tolerance(small_data):
    spec, data = small_data
    s = PruneSettings(theta=0.005, theta_step=0.005, tau_q=0.99)
    t = stage_t(spec, data, s)
    q = stage_q(t, data, s)
    assert q.metric_q >= 0.99 * q.metric_t
    for (i, layer), w_t in zip(q.spec.weighted_layers(), weights(t.spec)):
        d = q.layer_decimals[i]
        w = np.concatenate([layer.kernel.ravel(), layer.bias.ravel()])
        assert np.all(w[w_t == 0] == 0)  # zeros stay zero through Q
        if d is not None:
            assert np.array_equal(w, np.round(w, d).astype(np.float32))
            assert q.decimals is None or d <= q.decimals + 1
    assert q.decimals is None or all(d is not None and d <= q.decimals + 1
                                     for d in q.layer_decimals.values())
    qs = [e for e in q.trajectory if e["stage"] == "Q"]
    assert [e["decimals"] for e in qs] == sorted([e["decimals"] for e in qs], reverse=True)
    assert all(e["kept"] for e in qs[:-1])
    assert distinct_values(q.spec) <= distinct_values(t.spec)


def test_stage_q_strict_tolerance_keeps_everything_it_rounds_exact(small_data):
    spec, data = small_data
    s = PruneSettings(tau_q=1.0, tau_t=1.0)
    q = tq(spec, data, s)
    assert q.metric_q >= q.metric_t >= q.metric_in
    assert q.spec.name == "mlp-tq"


def test_report_numbers(small_data):
    spec, data = small_data
    r = tq(spec, data, PruneSettings(theta=0.01, theta_step=0.01, tau_t=0.95))
    d = r.to_dict()
    zeros = spec.count_params() - r.spec.nonzero_params()
    assert d["effective_flops"] == r.spec.count_flops() - 2 * zeros
    assert d["nonzero_params"] == r.spec.nonzero_params()
    assert d["distinct_values"] == len(np.unique(np.concatenate(weights(r.spec))))
