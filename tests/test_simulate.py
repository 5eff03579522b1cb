"""The session simulator: determinism, shapes, statistics that make it realistic, the suite."""
from __future__ import annotations

import numpy as np
import pytest

from neurogrs.errors import ConfigError
from neurogrs.formats import labels_from_speed, load_session
from neurogrs.simulate import (
    FINE,
    SUITE,
    SimulationSettings,
    simulate_behaviour,
    simulate_session,
    simulate_suite,
)


@pytest.fixture(scope="module")
def default_session():
    return simulate_session(seed=0)  # 273 neurons x 3000 frames, the paper's size


def _bytes(s):
    return (s.traces.tobytes(), s.labels.tobytes(), s.speed.tobytes(), s.positions.tobytes())


def test_same_seed_same_bytes_different_seed_different(default_session):
    again = simulate_session(seed=0)
    assert _bytes(again) == _bytes(default_session)
    assert again.digest() == default_session.digest()
    other = simulate_session(seed=1)
    for a, b in zip(_bytes(other), _bytes(default_session)):
        assert a != b


def test_no_global_seeding():
    state = np.random.get_state()[1].copy()
    simulate_session(n_neurons=10, n_frames=200, seed=5)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_shapes_and_dtypes(default_session):
    s = default_session
    assert s.traces.shape == (3000, 273) and s.traces.dtype == np.float32
    assert s.labels.shape == (3000,) and set(np.unique(s.labels)) == {0, 1}
    assert s.speed.shape == (3000,) and s.positions.shape == (273, 2)
    assert s.fs == 10.0
    assert s.meta["label_names"] == ["other", "fine_motion"]
    assert s.meta["speed_units"] == "cm/s"
    small = simulate_session(n_neurons=7, n_frames=240, seed=2, fs=20.0)
    assert small.traces.shape == (240, 7) and small.fs == 20.0


def test_traces_are_non_negative_events_about_half_zero(default_session):
    t = default_session.traces
    assert np.all(np.isfinite(t)) and t.min() == 0.0
    zero = float(np.mean(t == 0))
    assert abs(zero - 0.5) < 0.05, zero  # tolerance: +-0.05 around one half
    per_neuron = np.mean(t == 0, axis=0)
    assert per_neuron.min() > 0.2 and per_neuron.max() < 0.8  # neurons differ
    # calcium transients decay over several frames: strong lag-1 autocorrelation
    x = t.sum(axis=1) - t.sum(axis=1).mean()
    assert np.dot(x[1:], x[:-1]) / np.dot(x, x) > 0.5


@pytest.mark.parametrize("target", [0.13, 0.2, 0.3, 0.45])
@pytest.mark.parametrize("seed", [0, 7])
def test_label1_fraction_hits_the_target(target, seed):
    s = SimulationSettings(label1_fraction=target)
    states, speed = simulate_behaviour(s, np.random.default_rng(seed))
    frac = float(np.mean(states == FINE))
    assert abs(frac - target) <= s.label1_tolerance, frac
    assert 0.13 - s.label1_tolerance <= frac <= 0.45 + s.label1_tolerance


def test_labels_are_fine_motion_by_speed(default_session):
    s = default_session
    np.testing.assert_array_equal(labels_from_speed(s.speed, s.fs), s.labels)
    fine = s.speed[s.labels == 1]
    assert fine.min() > 0.2 and fine.max() < 2.0
    # behaviour comes in bouts of seconds (dwell times), not frame-by-frame flicker
    runs = np.diff(np.flatnonzero(np.r_[True, np.diff(s.labels) != 0, True]))
    assert runs.min() >= 10  # >= 1 s at 10 Hz
    assert 3.0 < runs.mean() / s.fs < 30.0
    # all three states occur
    assert all(v > 0.05 for v in s.meta["state_fractions"].values())


def _pair_ratio(pos, r, area=512.0 * 512.0):
    """Ripley's K(r) / (pi r^2): ~1 for a uniform pattern (a bit less with edges), > 1 clustered."""
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    n = len(pos)
    return ((d < r).sum() - n) / (n * (n - 1)) / (np.pi * r * r / area)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_positions_are_clustered_in_the_field_of_view(seed):
    pos = simulate_session(n_neurons=273, n_frames=100, seed=seed).positions
    assert pos.min() >= 0 and pos.max() <= 512
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 8.0  # somata do not overlap (min_distance_px)
    assert _pair_ratio(pos, 40.0) > 1.8  # many more close pairs than uniform
    uniform = np.random.default_rng(seed).uniform(0, 512, pos.shape)
    assert 0.8 < _pair_ratio(uniform, 40.0) < 1.2


def test_a_subpopulation_is_tuned_to_fine_motion(default_session):
    s = default_session
    types = s.meta["cell_types"]
    assert types["untuned"] == 273 - round(0.35 * 273)
    # per-neuron difference of mean activity between classes, in units of its sd
    t = s.traces
    d = (t[s.labels == 1].mean(0) - t[s.labels == 0].mean(0)) / (t.std(0) + 1e-9)
    assert np.sum(d > 0.3) >= 10      # some neurons clearly prefer fine motion
    assert np.sum(np.abs(d) < 0.1) >= 100  # many do not care


def test_decodable_but_not_trivially():
    """A closed-form linear read-out (ridge), blocked 8:2 split: well above chance, below 1."""
    accs = []
    for seed in (0, 1):
        s = simulate_session(seed=seed)
        x = np.c_[s.traces, np.ones(s.n_frames)].astype(np.float64)
        y = s.labels * 2.0 - 1.0
        cut = int(0.8 * s.n_frames)
        w1 = s.labels[:cut].mean()
        sw = np.where(s.labels[:cut] == 1, 0.5 / w1, 0.5 / (1 - w1))  # balance classes
        a = x[:cut].T @ (x[:cut] * sw[:, None]) + 10.0 * np.eye(x.shape[1])
        w = np.linalg.solve(a, x[:cut].T @ (y[:cut] * sw))
        pred = (x[cut:] @ w > 0).astype(int)
        accs.append(float(np.mean(pred == s.labels[cut:])))
    assert all(0.7 < a < 0.99 for a in accs), accs


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(n_neurons=0), "n_neurons = 0"),
        (dict(n_neurons=True), "n_neurons = True"),
        (dict(n_neurons=2.5), "n_neurons = 2.5"),
        (dict(n_frames=10), "n_frames = 10"),
        (dict(fs=0.0), r"fs = 0.0: must be in \(0, 1000\]"),
        (dict(label1_fraction=0.95), r"label1_fraction = 0.95: must be in \[0.05, 0.8\]"),
        (dict(tuned_fraction=-0.1), "tuned_fraction = -0.1"),
        (dict(decay_s=(1.0, 0.5)), r"decay_s\[1\] = 0.5"),
        (dict(decay_s=1.0), "decay_s = 1.0"),
        (dict(zero_fraction=1.0), "zero_fraction = 1.0"),
        (dict(n_frames=50, fs=10.0), "need at least 10 s"),
    ],
)
def test_settings_validate_naming_field_value_range(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        SimulationSettings(**kwargs)


def test_settings_object_and_explicit_arguments():
    st = SimulationSettings(n_neurons=12, n_frames=200)
    assert simulate_session(settings=st).traces.shape == (200, 12)
    assert simulate_session(n_neurons=9, settings=st).traces.shape == (200, 9)
    assert simulate_session(n_neurons=9, n_frames=150, tuned_fraction=0.0).meta[
        "cell_types"]["untuned"] == 9


def test_settings_round_trip_dict_and_reject_unknown():
    s = SimulationSettings(n_neurons=12, decay_s=(0.6, 0.9))
    assert SimulationSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="unknown simulation setting.*bogus"):
        SimulationSettings.from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match="seed = -1"):
        simulate_session(seed=-1)


def test_suite_writes_nine_sessions_sharing_neurons_per_mouse(tmp_path):
    paths = simulate_suite(tmp_path)
    assert len(paths) == 9 and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{m}_S{k}.npz" for m in ("M1", "M2", "M3") for k in (1, 2, 3))
    sessions = {p.stem: load_session(p) for p in paths}
    for mouse, n, _seed, targets in SUITE:
        group = [sessions[f"{mouse}_S{k}"] for k in (1, 2, 3)]
        assert [s.n_neurons for s in group] == [n, n, n]
        assert all(s.n_frames == 3000 for s in group)
        # same neurons: identical positions; different recordings: different traces
        for s in group[1:]:
            np.testing.assert_array_equal(s.positions, group[0].positions)
            assert not np.array_equal(s.traces, group[0].traces)
            assert s.meta["cell_types"] == group[0].meta["cell_types"]
        for s, target in zip(group, targets):
            frac = float(s.labels.mean())
            assert 0.13 <= frac <= 0.45 and abs(frac - target) <= 0.04, (mouse, frac)
            assert s.meta["mouse"] == mouse
    assert sorted({s.n_neurons for s in sessions.values()}) == [114, 140, 273]
    # fixed seeds: the suite is reproducible
    again = simulate_session(n_neurons=140, seed=SUITE[1][2], label1_fraction=SUITE[1][3][1],
                             session_index=1)
    np.testing.assert_array_equal(again.traces, sessions["M2_S2"].traces)


def test_drift_changes_activity_but_keeps_tuning_related(default_session):
    day2 = simulate_session(seed=0, session_index=1)
    a, b = default_session, day2
    rate_a = (a.traces > 0).mean(0)
    rate_b = (b.traces > 0).mean(0)
    ma, mb = a.traces.mean(0), b.traces.mean(0)
    assert not np.allclose(ma, mb)  # drift
    assert np.corrcoef(ma, mb)[0, 1] > 0.3  # the same neurons
    assert rate_a.shape == rate_b.shape


def test_cli_simulate_writes_a_loadable_session(tmp_path, capsys):
    from neurogrs.cli import main

    out = tmp_path / "s.npz"
    assert main(["simulate", str(out), "--neurons", "20", "--frames", "400", "--seed", "3",
                 "--label1-fraction", "0.2"]) == 0
    s = load_session(out)
    assert s.traces.shape == (400, 20)
    ref = simulate_session(n_neurons=20, n_frames=400, seed=3, label1_fraction=0.2)
    np.testing.assert_array_equal(s.traces, ref.traces)
    assert main(["simulate", str(out), "--suite", str(tmp_path / "d")]) == 2
    assert main(["simulate"]) == 2
    assert main(["simulate", str(out), "--label1-fraction", "0.99"]) == 2
    assert "label1_fraction = 0.99" in capsys.readouterr().err


def _ridge_balanced_accuracy(s) -> float:
    """The closed-form ridge read-out above, first 70 % -> last 30 %, balanced accuracy."""
    x = np.c_[s.traces, np.ones(s.n_frames)].astype(np.float64)
    y = s.labels * 2.0 - 1.0
    cut = int(0.7 * s.n_frames)
    w1 = s.labels[:cut].mean()
    sw = np.where(s.labels[:cut] == 1, 0.5 / w1, 0.5 / (1 - w1))
    a = x[:cut].T @ (x[:cut] * sw[:, None]) + 10.0 * np.eye(x.shape[1])
    w = np.linalg.solve(a, x[:cut].T @ (y[:cut] * sw))
    pred = (x[cut:] @ w > 0).astype(int)
    truth = s.labels[cut:]
    return float(np.mean([np.mean(pred[truth == c] == c) for c in (0, 1)]))


def test_hard_difficulty_is_harder_to_decode_but_above_chance():
    """The suite's three mice: the hard setting loses >= 0.07 of balanced accuracy on
    average against the standard one, each mouse loses some, and it stays above chance."""
    accs = {}
    for name in ("standard", "hard"):
        settings = SimulationSettings.for_difficulty(name)
        accs[name] = [_ridge_balanced_accuracy(simulate_session(n_neurons=n, seed=seed,
                                                                settings=settings))
                      for _, n, seed, _ in SUITE]
    std, hard = np.array(accs["standard"]), np.array(accs["hard"])
    assert std.mean() - hard.mean() >= 0.07, accs
    assert np.all(hard < std), accs
    assert np.all(hard > 0.58), accs


def test_difficulty_names_are_checked():
    assert SimulationSettings.for_difficulty("standard") == SimulationSettings()
    assert SimulationSettings.for_difficulty("hard", n_neurons=50).n_neurons == 50
    with pytest.raises(ConfigError, match="difficulty must be one of.*'medium'"):
        SimulationSettings.for_difficulty("medium")
