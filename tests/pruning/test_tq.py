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


# ---------------------------------------------------------------- Stage T readings
def built_model():
    """Two dense layers whose Stage T behaviour is known by construction.

    x = [s, n]: s = ±U(0.5, 1) carries the label (s > 0), n is noise. Layer 0 passes s
    through weights ±0.5 (critical) and n through 0.0035 / 0.0065 (harmless to cut, at
    θ = 0.004 and 0.007). Layer 1 maps the two units to the logits with weights ±0.0035:
    argmax only needs their sign, but θ = 0.004 zeroes them all and the model answers
    class 0 for every frame (accuracy 0.5).
    """
    from neurogrs.spec import Preprocessing

    k0 = np.array([[0.5, -0.5], [0.0035, 0.0065]], np.float32)
    k1 = np.array([[-0.0035, 0.0035], [0.0035, -0.0035]], np.float32)
    layers = (Dense(k0, np.zeros(2, np.float32), "relu"),
              Dense(k1, np.zeros(2, np.float32), "softmax"))
    return ModelSpec(Preprocessing(2), layers, ("0", "1"), name="built")


def built_data(n=400, seed=0):
    from neurogrs.pruning.data import PruneData

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    s = np.where(y == 1, 1.0, -1.0) * rng.uniform(0.5, 1.0, n)
    x = np.c_[s, rng.normal(0, 1, n)].astype(np.float32)
    return PruneData(x, y.astype(np.int32), x, y.astype(np.int64), x, y.astype(np.int64),
                     majority_class=0, n_classes=2)


def kernels(spec):
    return [l.kernel for _, l in spec.weighted_layers()]


def test_the_built_model_is_right_and_fails_when_layer_1_is_cut():
    spec, data = built_model(), built_data()
    assert decision_metric(spec, data, "accuracy") == 1.0
    r = stage_t(spec, data, PruneSettings(metric="accuracy", stage_t="layerwise"))
    assert r.trajectory[-1] == {**r.trajectory[-1], "layer": 1, "theta": 0.004, "kept": False,
                                "metric": 0.5}


def test_layerwise_keeps_the_cuts_before_the_failing_layer_and_stops():
    spec, data = built_model(), built_data()
    r = stage_t(spec, data, PruneSettings(metric="accuracy", stage_t="layerwise"))
    k0, k1 = kernels(r.spec)
    assert k0.tolist() == [[0.5, -0.5], [0.0, np.float32(0.0065)]]  # 0.0035 cut at θ 0.004
    assert np.array_equal(k1, kernels(spec)[1])
    assert r.theta == 0.003 and r.layer_theta == {0: 0.004, 1: 0.003}
    assert [(e["theta"], e["layer"], e["kept"]) for e in r.trajectory] == \
        [(0.004, 0, True), (0.004, 1, False)]


def test_global_cuts_every_layer_at_once_and_reverts_them_together():
    spec, data = built_model(), built_data()
    r = stage_t(spec, data, PruneSettings(metric="accuracy", stage_t="global"))
    assert all(np.array_equal(a, b) for a, b in zip(kernels(r.spec), kernels(spec)))
    assert r.theta == 0.003 and r.metric_t == 1.0
    assert [(e["theta"], e["layers"], e["kept"]) for e in r.trajectory] == \
        [(0.004, [0, 1], False)]


def test_per_layer_a_failed_layer_keeps_its_theta_while_the_others_go_on():
    spec, data = built_model(), built_data()
    r = stage_t(spec, data, PruneSettings(metric="accuracy", stage_t="per_layer"))
    k0, k1 = kernels(r.spec)
    assert k0.tolist() == [[0.5, -0.5], [0.0, 0.0]]  # layer 0 went on past θ 0.004 ...
    assert np.array_equal(k1, kernels(spec)[1])  # ... layer 1 kept its weights
    assert r.layer_theta[1] == 0.003
    assert 0.499 <= r.layer_theta[0] <= 0.5  # layer 0 failed only when its ±0.5 went
    assert r.theta == 0.003  # the θ every layer was cut at
    assert not any(e["layer"] == 1 for e in r.trajectory if e["theta"] > 0.004)
    kept = [(e["theta"], e["layer"]) for e in r.trajectory if e["kept"]]
    assert kept == [(0.004, 0), (0.007, 0)]
    assert r.trajectory[-1]["layer"] == 0 and not r.trajectory[-1]["kept"]
    assert r.metric_t == 1.0


@pytest.mark.parametrize("reading", ["layerwise", "global", "per_layer"])
def test_every_reading_respects_the_floor_and_records_itself(small_data, reading):
    spec, data = small_data
    s = PruneSettings(theta=0.005, theta_step=0.005, stage_t=reading)
    r = tq(spec, data, s)
    assert r.metric_t >= s.tau_t * r.metric_in
    assert r.metric_t == decision_metric(stage_t(spec, data, s).spec, data, s.metric)
    d = r.to_dict()
    assert d["stage_t"] == reading and set(d["layer_theta"]) == {"0", "2"}
    for e in r.trajectory:
        if e["stage"] == "T":
            assert e["kept"] == (e["metric"] >= s.tau_t * r.metric_in)
