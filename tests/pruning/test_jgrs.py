"""JGRS obeys its rules (real fine-tuning, few epochs, a 40-neuron session), and beats GRS."""
import dataclasses
import json

import numpy as np
import pytest

from neurogrs.errors import ConfigError
from neurogrs.pruning.data import decision_metric
from neurogrs.pruning.grs import grs
from neurogrs.pruning.jgrs import jgrs
from neurogrs.pruning.score import RemovalScorer
from neurogrs.pruning.settings import PruneSettings
from neurogrs.pruning.surgery import full_masks, prunable_layers, zero_masked

from test_algorithms import check_common  # tests/pruning is on sys.path (rootdir import mode)


def room(step, spec, min_units):
    widths = dict(zip([i for i, _ in spec.weighted_layers()], step.structure))
    return sum(max(0, widths[l] - min_units) for l in prunable_layers(spec))


def check_jumps(result, spec, settings):
    """Phase 1 of the doubling rule: one retraining per jump, J x2 / //2, then phase 2."""
    steps = result.trajectory
    jumps = [s for s in steps if s.phase == 1]
    grs_steps = [s for s in steps if s.phase == 2]
    assert steps[1:] == jumps + grs_steps  # phase 1, then phase 2, nothing else
    jump = max(2, round(settings.jgrs_j0_fraction * room(steps[0], spec, settings.min_units)))
    before = steps[0]
    for step in jumps:
        assert step.retrains == 1 and len(step.scores) == 1  # ONE fine-tuning per jump
        assert len(step.tried) == min(jump, room(before, spec, settings.min_units))
        assert len(set(step.tried)) == len(step.tried)
        assert step.accepted == (step.candidate_metric > settings.tau_s * result.a0)
        removed = sum(a - b for a, b in zip(before.structure, step.structure))
        assert removed == (len(step.tried) if step.accepted else 0)
        cheap = before.metric - step.no_retrain_metric < settings.jgrs_delta
        jump = len(step.tried) * 2 if step.accepted and cheap else len(step.tried) // 2
        before = step
    # phase 2 starts exactly when J fell below 2 (or nothing is left to remove)
    if grs_steps:
        assert jump < 2
        assert all(s.retrains == len(s.tried) for s in grs_steps)  # GRS: a candidate per layer
    return jumps, grs_steps


def test_doubling_one_retraining_per_jump_and_fewer_than_grs(trained_nn1):
    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=2, tau_s=0.97)
    r = jgrs(spec, data, s, np.random.default_rng(1))
    check_common(r, spec, data, s)
    jumps, _ = check_jumps(r, spec, s)
    assert [len(j.tried) for j in jumps[:3]] == [5, 10, 20]  # J0 = round(0.1 x 50), doubling
    g = grs(spec, data, s, np.random.default_rng(1))  # the same problem, really run
    assert r.retrainings * 5 < g.retrainings
    assert r.sliced.count_params() <= g.sliced.count_params()
    assert r.metric > s.tau_s * r.a0


def test_halving_then_phase2_is_grs_with_the_same_a0(trained_nn1):
    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=2, tau_s=0.99, jgrs_delta=0.0)  # no jump is "cheap"
    r = jgrs(spec, data, s, np.random.default_rng(1))
    check_common(r, spec, data, s)
    jumps, grs_steps = check_jumps(r, spec, s)
    assert [len(j.tried) for j in jumps] == [5, 2] and all(j.accepted for j in jumps)
    assert grs_steps and all(g.no_retrain_metric is None for g in grs_steps)
    # GRS ends at its first failure, judged against the initial model's A0
    assert all(g.accepted for g in grs_steps[:-1])
    assert r.trajectory[-1].accepted or r.trajectory[-1].candidate_metric <= 0.99 * r.a0
    iters = [st.iteration for st in r.trajectory]
    assert iters == list(range(len(iters)))


def test_rejections_halve_j_then_phase2(trained_nn1):
    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=2, tau_s=1.0)  # nothing can beat A0 strictly
    r = jgrs(spec, data, s, np.random.default_rng(1))
    jumps, grs_steps = check_jumps(r, spec, s)
    assert [(len(j.tried), j.accepted) for j in jumps] == [(5, False), (2, False)]
    assert len(grs_steps) == 1 and not grs_steps[0].accepted
    assert r.sliced.structure() == spec.structure()
    assert r.retrainings == 2 + 3


def test_min_width_and_no_phase2(trained_nn1):
    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=1, tau_s=0.01, min_units=3)  # accepts everything
    r = jgrs(spec, data, s, np.random.default_rng(2))
    assert r.sliced.structure() == [3, 3, 3, 2]
    assert all(step.phase == 1 for step in r.trajectory[1:])
    s2 = PruneSettings(retrain_epochs=2, tau_s=0.99, jgrs_delta=0.0, jgrs_phase2=False)
    r2 = jgrs(spec, data, s2, np.random.default_rng(1))
    assert [st.phase for st in r2.trajectory[1:]] == [1, 1]


def test_reproducible(trained_nn1):
    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=2, tau_s=0.99, jgrs_delta=0.0)
    a = jgrs(spec, data, s, np.random.default_rng(5))
    b = jgrs(spec, data, s, np.random.default_rng(5))
    strip = [dataclasses.replace(st, elapsed_s=0) for st in a.trajectory]
    assert strip == [dataclasses.replace(st, elapsed_s=0) for st in b.trajectory]
    for (_, la), (_, lb) in zip(a.sliced.weighted_layers(), b.sliced.weighted_layers()):
        np.testing.assert_array_equal(la.kernel, lb.kernel)


def test_dropout_decays_with_units_removed(trained_nn1):
    spec, data = trained_nn1
    seen = []

    @dataclasses.dataclass(frozen=True)
    class Recording(PruneSettings):
        def fit_settings(self, iteration):
            seen.append(iteration)
            return super().fit_settings(iteration)

    s = Recording(retrain_epochs=1, tau_s=0.99, jgrs_delta=0.0)
    r = jgrs(spec, data, s, np.random.default_rng(1))
    removed = [sum(a - b for a, b in zip(r.trajectory[0].structure, st.structure))
               for st in r.trajectory]
    # a jump's candidate has (units removed so far + J) units off; a GRS candidate one more
    expected = [removed[i] + (len(st.tried) if st.phase == 1 else 1)
                for i, st in enumerate(r.trajectory[1:])]
    assert seen == expected and seen[:2] == [5, 7]


def test_tolerance_variant_fine_tunes_before_accepting(trained_nn1):
    spec, data = trained_nn1
    s = PruneSettings(retrain_epochs=2, tau_s=0.97, jgrs_rule="tolerance")
    r = jgrs(spec, data, s, np.random.default_rng(1))
    check_common(r, spec, data, s)
    jumps = [st for st in r.trajectory if st.phase == 1]
    assert jumps and all(j.retrains == 1 for j in jumps)
    floor = s.tau_s * r.a0
    cap = None
    for before, j in zip(r.trajectory, r.trajectory[1:]):
        if j.phase != 1:
            assert cap is not None and cap < 2  # phase 2 only after a short rejected jump
            break
        # a jump ends on its first no-retrain metric below the floor, at the minimum, or
        # at the cap a rejection set (half the rejected jump)
        assert (j.no_retrain_metric < floor or room(before, spec, 2) == len(j.tried)
                or (cap is not None and len(j.tried) == cap))
        assert cap is None or len(j.tried) <= cap
        assert j.accepted == (j.candidate_metric > floor)
        cap = None if j.accepted else len(j.tried) // 2
    strict = jgrs(spec, data, dataclasses.replace(s, tau_s=1.0), np.random.default_rng(1))
    first, second = strict.trajectory[1:3]
    assert not first.accepted and first.phase == 1  # rejected: retried on half of it
    if len(first.tried) // 2 >= 2:
        assert second.phase == 1 and second.tried == first.tried[:len(first.tried) // 2]
    else:
        assert second.phase == 2
    s_max = dataclasses.replace(s, jgrs_max_jump=3, tau_s=0.5)
    r2 = jgrs(spec, data, s_max, np.random.default_rng(1))
    assert all(len(j.tried) <= 3 for j in r2.trajectory[1:])
    assert r2.sliced.structure() == [2, 2, 2, 2]


@pytest.mark.parametrize("model", ["nn1", "cnn2"])
def test_scorer_equals_decision_metric_of_each_candidate(small_session, small_split, model):
    from neurogrs.pruning.data import prepare
    from neurogrs.pruning.fit import FitSettings, fit
    from neurogrs.zoo import init_spec

    spec = init_spec(model, small_session.n_neurons, np.random.default_rng(0),
                     positions=small_session.positions)
    data = prepare(small_session, small_split, spec)
    spec = fit(spec, data.x_train, data.y_train, FitSettings(epochs=2), seed=0)
    masks = full_masks(spec)
    first = prunable_layers(spec)[0]
    masks[first][::3] = False  # some units already removed
    spec = zero_masked(spec, masks)
    cands = [(l, int(u)) for l in prunable_layers(spec) for u in np.flatnonzero(masks[l])]
    for metric in ("balanced_accuracy", "accuracy"):
        scorer = RemovalScorer.for_spec(spec, data, metric)
        got = scorer.score(spec, masks, cands)
        want = []
        for layer, unit in cands:
            m = {k: v.copy() for k, v in masks.items()}
            m[layer][unit] = False
            want.append(decision_metric(zero_masked(spec, m), data, metric))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        assert len(set(np.round(got, 9))) > 1  # the candidates really differ


def test_settings_validate_and_round_trip(tmp_path):
    s = PruneSettings(jgrs_rule="tolerance", jgrs_delta=0.02, jgrs_j0=7, jgrs_phase2=False)
    assert PruneSettings.from_dict(s.to_dict()) == s
    cfg = tmp_path / "j.toml"
    cfg.write_text('jgrs_rule = "tolerance"\njgrs_factor = 3\njgrs_phase2 = false\n')
    t = PruneSettings.from_file(cfg, jgrs_factor=4)
    assert (t.jgrs_rule, t.jgrs_factor, t.jgrs_phase2) == ("tolerance", 4, False)
    for field, value, words in (("jgrs_rule", "jump", "jgrs_rule must be one of"),
                                ("jgrs_factor", 1, "jgrs_factor must be an integer in [2"),
                                ("jgrs_delta", -0.1, "jgrs_delta"),
                                ("jgrs_j0_fraction", 0.0, "jgrs_j0_fraction"),
                                ("jgrs_phase2", 1, "jgrs_phase2 must be true or false"),
                                ("jgrs_score", "l1", "jgrs_score must be one of")):
        with pytest.raises(ConfigError) as exc:
            PruneSettings(**{field: value})
        assert words in str(exc.value) and repr(value) in str(exc.value)


def test_cli_method_jgrs(tmp_path, small_session, capsys):
    from neurogrs.cli import main
    from neurogrs.formats import save_session

    path = save_session(small_session, tmp_path / "s.npz")
    out = tmp_path / "out"
    code = main(["prune", str(path), "--method", "jgrs", "--out", str(out), "--epochs", "15",
                 "--retrain-epochs", "2", "--quiet", "--jgrs-j0", "4", "--jgrs-rule",
                 "doubling", "--jgrs-delta", "0.5", "--jgrs-no-phase2", "--tau-s", "0.9"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "jgrs"
    assert (report["settings"]["jgrs_j0"], report["settings"]["jgrs_phase2"]) == (4, False)
    steps = report["candidates"]["nn1"]["search"]["trajectory"]
    assert len(steps[1]["tried"]) == 4 and steps[1]["phase"] == 1
    assert (out / "nn1" / "jgrs").is_dir()
