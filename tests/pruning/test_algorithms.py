"""GRS, RRS and NWM obey their rules (real fine-tuning, few epochs, a 40-neuron session)."""
import numpy as np
import pytest

from neurogrs.pruning.data import decision_metric
from neurogrs.pruning.grs import grs, propose_grs
from neurogrs.pruning.nwm import nwm, propose_nwm
from neurogrs.pruning.rrs import rrs
from neurogrs.pruning.search import Search
from neurogrs.pruning.settings import PruneSettings
from neurogrs.pruning.surgery import prunable_layers

FAST = PruneSettings(retrain_epochs=2, tau_s=0.97)


def removable_before(step, spec, min_units):
    widths = dict(zip([i for i, _ in spec.weighted_layers()], step.structure))
    return [l for l in prunable_layers(spec) if widths[l] > min_units]


def check_common(result, spec, data, settings):
    s = result.trajectory
    assert s[0].iteration == 0 and s[0].metric == result.a0
    assert result.a0 == decision_metric(spec, data, settings.metric)
    # the accepted model's metric is what the trajectory says, full width and sliced alike
    assert result.metric == s[-1].metric if s[-1].accepted else result.metric == s[-2].metric
    assert decision_metric(result.spec, data, settings.metric) == pytest.approx(result.metric)
    assert decision_metric(result.sliced, data, settings.metric) == pytest.approx(result.metric)
    assert result.sliced.structure() == [int(m.sum()) for m in result.masks.values()] + [2]
    for step in s[1:]:
        if step.accepted:
            assert step.candidate_metric > settings.tau_s * result.a0
        else:
            assert step.candidate_metric <= settings.tau_s * result.a0
    assert result.retrainings == sum(step.retrains for step in s)
    assert all(w >= settings.min_units for w in result.sliced.structure()[:-1])
    assert not result.partial


@pytest.mark.parametrize("tau, ends", [(0.97, "minimum"), (0.995, "failure")])
def test_grs_rules(trained_nn1, tau, ends):
    spec, data = trained_nn1
    settings = PruneSettings(retrain_epochs=2, tau_s=tau)
    r = grs(spec, data, settings, np.random.default_rng(1))
    check_common(r, spec, data, settings)
    assert r.trajectory[-1].accepted == (ends == "minimum")  # both endings exercised
    steps = r.trajectory
    ties = 0
    for before, step in zip(steps, steps[1:]):
        # one candidate per layer above the minimum, lowest layer first, every iteration
        assert [l for l, _ in step.tried] == removable_before(before, spec, settings.min_units)
        assert step.retrains == len(step.tried) == len(step.scores)
        # the best wins; ties go to the lowest layer [reconstruction]
        best = max(step.scores)
        assert step.candidate_metric == best
        assert step.layer == min(l for (l, _), sc in zip(step.tried, step.scores) if sc == best)
        ties += step.scores.count(best) > 1
    assert ties > 0  # the tie rule was exercised (a 80-frame D_V ties often)
    # GRS stops at its first failure: only the last iteration may be a rejection
    assert all(step.accepted for step in steps[:-1])
    if not steps[-1].accepted:
        assert steps[-1].structure == steps[-2].structure
    else:  # or it ran out of units
        assert all(w == FAST.min_units for w in r.sliced.structure()[:-1])


def test_grs_min_width_and_every_layer_shrinks(trained_nn1):
    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=1, tau_s=0.01, min_units=3)  # accepts everything
    r = grs(spec, data, s, np.random.default_rng(2))
    assert r.sliced.structure() == [3, 3, 3, 2]
    assert len(r.trajectory) == 1 + (32 - 3) + (16 - 3) + (8 - 3)
    assert all(step.accepted for step in r.trajectory)


def test_grs_proposals_lowest_layer_first_for_ties(trained_nn1):
    spec, _ = trained_nn1
    search = Search(spec, FAST, np.random.default_rng(0))
    search.masks[prunable_layers(spec)[1]][:14] = False  # layer 2 at the minimum
    proposals = propose_grs(search)
    layers = [l for l, _ in proposals]
    assert layers == sorted(layers) and prunable_layers(spec)[1] not in layers
    for layer, unit in proposals:
        assert search.masks[layer][unit]


def test_rrs_one_candidate_per_iteration(trained_nn1):
    spec, data = trained_nn1
    r = rrs(spec, data, FAST, np.random.default_rng(3))
    check_common(r, spec, data, FAST)
    assert all(step.retrains == 1 for step in r.trajectory[1:])
    assert all(step.accepted for step in r.trajectory[:-1])


def test_nwm_removes_the_smallest_l1_active_unit(trained_nn1):
    spec, _ = trained_nn1
    search = Search(spec, FAST, np.random.default_rng(0))
    first = prunable_layers(spec)[0]
    norms = np.abs(spec.layers[first].kernel).sum(axis=0)
    order = np.argsort(norms)
    search.masks[first][order[0]] = False  # the smallest is already gone
    assert propose_nwm(search) == [(first, int(order[1]))]


def test_nwm_natural_order_and_failure_moves_on(trained_nn1):
    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=2, tau_s=0.99)
    r = nwm(spec, data, s, np.random.default_rng(4))
    check_common(r, spec, data, s)
    steps = r.trajectory[1:]
    first = prunable_layers(spec)[0]
    norms = np.abs(spec.layers[first].kernel).sum(axis=0)
    assert (steps[0].layer, steps[0].unit) == (first, int(np.argmin(norms)))
    layers = [step.layer for step in steps]
    assert layers == sorted(layers)  # input side first, never back
    for step, nxt in zip(steps, steps[1:]):
        if not step.accepted:
            assert nxt.layer > step.layer  # a failure moves on, it does not stop NWM
    assert steps[-1].layer == prunable_layers(spec)[-1] or \
        all(w == s.min_units for w in r.sliced.structure()[-2:-1])


def test_same_seed_same_result(trained_nn1):
    spec, data = trained_nn1
    a = grs(spec, data, FAST, np.random.default_rng(7))
    b = grs(spec, data, FAST, np.random.default_rng(7))
    assert a.sliced.structure() == b.sliced.structure()
    assert [s.metric for s in a.trajectory] == [s.metric for s in b.trajectory]
    assert [(s.layer, s.unit) for s in a.trajectory] == [(s.layer, s.unit) for s in b.trajectory]
    assert a.sliced.content_hash() == b.sliced.content_hash()


def test_ctrl_c_returns_last_accepted_model_marked_partial(trained_nn1):
    spec, data = trained_nn1
    seen = []

    def progress(step):
        seen.append(step)
        if step.iteration == 3:
            raise KeyboardInterrupt

    s = PruneSettings(retrain_epochs=1, tau_s=0.01)
    r = grs(spec, data, s, np.random.default_rng(0), progress=progress)
    assert r.partial and len(r.trajectory) == 4 and len(seen) == 3
    assert r.sliced.structure() == r.trajectory[-1].structure
    assert sum(r.sliced.structure()[:-1]) == 56 - 3


def test_grs_on_a_cnn_slices_to_the_same_function(small_session, small_split):
    from neurogrs.pruning.data import prepare
    from neurogrs.pruning.fit import FitSettings, fit
    from neurogrs.spec import forward
    from neurogrs.zoo import init_spec

    spec = init_spec("cnn2", small_session.n_neurons, np.random.default_rng(0),
                     positions=small_session.positions)
    data = prepare(small_session, small_split, spec)
    spec = fit(spec, data.x_train, data.y_train, FitSettings(epochs=3), seed=0)
    s = PruneSettings(retrain_epochs=1, tau_s=0.01, min_units=30)  # 32-16-32 -> 30-16-30
    r = grs(spec, data, s, np.random.default_rng(0))
    assert r.sliced.structure() == [30, 16, 30, 2]
    assert len(r.trajectory) == 1 + 4  # four removals, all accepted
    assert 4 < r.retrainings < 8  # 2 candidates while both layers are above 30, then 1
    frames = data.val_frames[:40]
    np.testing.assert_allclose(forward(r.sliced, frames), forward(r.spec, frames), atol=1e-5)


@pytest.mark.parametrize("method", [grs, rrs, nwm])
def test_max_iterations_bounds_the_search(trained_nn1, method):
    # tau_s 0.01 accepts everything: without the bound the search would run to the minimum
    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=1, tau_s=0.01, max_iterations=3)
    r = method(spec, data, s, np.random.default_rng(0))
    assert len(r.trajectory) == 4 and not r.partial  # iteration 0 + 3
    assert r.sliced.structure() == r.trajectory[-1].structure
    assert sum(r.sliced.structure()[:-1]) == 56 - 3


def test_max_iterations_validated_and_round_trips():
    from neurogrs.errors import ConfigError

    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="max_iterations"):
            PruneSettings(max_iterations=bad)
    s = PruneSettings(max_iterations=7)
    assert PruneSettings.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("rule", ["doubling", "tolerance"])
def test_max_iterations_bounds_jgrs_in_both_phases(trained_nn1, rule):
    from neurogrs.pruning.jgrs import jgrs

    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=1, tau_s=0.01, max_iterations=2, jgrs_rule=rule)
    r = jgrs(spec, data, s, np.random.default_rng(0))
    assert len(r.trajectory) <= 3 and not r.partial  # iteration 0 + at most 2
    if rule == "doubling":  # jumps of 2, 4, ...: the bound is what stops it
        assert len(r.trajectory) == 3
    assert r.sliced.structure() == r.trajectory[-1].structure
