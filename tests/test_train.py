"""Training: settings, splits, Keras parity of exported artifacts, candidates, the CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from neurogrs.artifact import load_artifact, save_artifact
from neurogrs.errors import ConfigError, ModelError, SessionError
from neurogrs.simulate import simulate_session
from neurogrs.spec import forward
from neurogrs.splits import SplitSettings, make_split, undersample
from neurogrs.pruning.train import TrainSettings, train


@pytest.fixture(scope="module")
def small():
    return simulate_session(n_neurons=40, n_frames=1200, seed=3)


# ---------------------------------------------------------------- settings
@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs"),
    ({"batch_size": -1}, "batch_size"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"seed": -2}, "seed"),
    ({"model": "resnet"}, "neither a zoo model"),
])
def test_train_config_names_the_bad_field(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainSettings(**kwargs)


def test_train_config_round_trips():
    c = TrainSettings(model="cnn2", epochs=7, split=SplitSettings("shuffled", 1))
    assert TrainSettings.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "random"}, "split mode"), ({"blocks": 0}, "blocks"), ({"ratios": (8, 1)}, "ratios"),
])
def test_split_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SplitSettings(**kwargs)


# ---------------------------------------------------------------- splits
def test_blocked_split_is_forward_in_time():
    labels = np.tile([0] * 30 + [1] * 20, 20)  # 1,000 frames
    s = make_split(labels, SplitSettings(), np.random.default_rng(0))
    assert s.train.max() < s.val.min() and s.val.max() < s.test.min()
    assert s.sizes()["train"] == 800 and s.sizes()["val"] == 100 and s.sizes()["test"] == 100


def test_blocked_split_over_blocks_keeps_time_order_within_each_block():
    labels = np.tile([0] * 30 + [1] * 20, 20)
    s = make_split(labels, SplitSettings(blocks=4), np.random.default_rng(0))
    for b in range(4):
        lo, hi = b * 250, (b + 1) * 250
        tr = s.train[(s.train >= lo) & (s.train < hi)]
        te = s.test[(s.test >= lo) & (s.test < hi)]
        assert tr.max() < te.min()
    assert len(np.intersect1d(s.train, s.test)) == 0


def test_shuffled_split_is_a_seeded_partition():
    labels = np.tile([0] * 30 + [1] * 20, 20)
    a = make_split(labels, SplitSettings("shuffled"), np.random.default_rng(5))
    b = make_split(labels, SplitSettings("shuffled"), np.random.default_rng(5))
    assert np.array_equal(a.test, b.test)
    allidx = np.sort(np.concatenate([a.train, a.val, a.test]))
    assert np.array_equal(allidx, np.arange(1000))
    assert a.test.max() - a.test.min() > 500  # spread over the session


def test_balanced_training_set_undersamples_label0():
    labels = np.array([0] * 700 + [1] * 300)
    d_t = undersample(labels, np.arange(1000), np.random.default_rng(0))
    assert np.sum(labels[d_t] == 1) == 300 and np.sum(labels[d_t] == 0) == 300


def test_single_class_training_part_is_a_clear_error():
    labels = np.array([0] * 900 + [1] * 100)  # blocked: train = first 800, all label 0
    with pytest.raises(SessionError, match="single class"):
        make_split(labels, SplitSettings(), np.random.default_rng(0))


# ------------------------------------------------- Keras parity of artifacts
@pytest.mark.parametrize("model", ["nn1", "nn2", "cnn1", "cnn2"])
def test_numpy_forward_of_artifact_equals_keras(model, small, tmp_path):
    keras = pytest.importorskip("keras")
    result = train(small, TrainSettings(model=model, epochs=2, seed=1), progress=False)
    path = save_artifact(result.spec, tmp_path / model, keras_save=result.keras_model.save)
    art = load_artifact(path)
    reloaded = keras.saving.load_model(art.keras_path, compile=False)
    frames = np.concatenate([
        small.traces[:256],
        np.random.default_rng(0).normal(0, 2, (256, 40)).astype(np.float32),
    ])
    ref = np.asarray(reloaded(art.spec.preprocessing.apply(frames), training=False))
    got = forward(art.spec, frames)
    err = float(np.abs(ref - got).max())
    assert err <= 1e-5, f"max abs error {err}"
    assert art.doc["summary"]["params"] == art.spec.count_params()
    assert set(art.doc["provenance"]) >= {"session_sha256", "train_config", "libraries"}


def test_training_is_deterministic_for_a_seed(small):
    a = train(small, TrainSettings(model="nn2", epochs=2, seed=4), progress=False)
    b = train(small, TrainSettings(model="nn2", epochs=2, seed=4), progress=False)
    x = small.traces[:50]
    np.testing.assert_allclose(forward(a.spec, x), forward(b.spec, x), atol=1e-6)


def test_standardize_is_stored_in_the_artifact(small, tmp_path):
    r = train(small, TrainSettings(model="nn2", epochs=1, standardize=True), progress=False)
    assert r.spec.preprocessing.mean is not None and r.spec.preprocessing.scale is not None
    art = load_artifact(save_artifact(r.spec, tmp_path / "a"))
    assert art.doc["preprocessing"]["normalize"]["formula"] == "(x - mean) * scale"


@pytest.mark.slow
def test_nn1_learns_a_simulated_session():
    s = simulate_session(n_neurons=273, n_frames=3000, seed=0)
    r = train(s, TrainSettings(model="nn1", epochs=60), progress=False)
    m = r.metrics["test"]
    assert m["beats_baseline"], m
    assert 0.75 <= m["balanced_accuracy"] <= 1.0


# ---------------------------------------------------------------- candidates
def _save_candidate(tmp_path, layers, n_in=40):
    keras = pytest.importorskip("keras")
    m = keras.Sequential([keras.Input((n_in,))] + layers)
    path = tmp_path / "cand.keras"
    m.save(path)
    return path


def test_user_candidate_trains_and_exports(small, tmp_path):
    keras = pytest.importorskip("keras")
    L = keras.layers
    path = _save_candidate(tmp_path, [L.Dense(12), L.ReLU(), L.Dropout(0.2), L.Dense(2), L.Softmax()])
    r = train(small, TrainSettings(model=str(path), epochs=2), progress=False)
    assert r.spec.structure() == [12, 2]
    assert r.spec.ends_in_softmax()


def test_unsupported_layers_are_all_named_at_once(small, tmp_path):
    keras = pytest.importorskip("keras")
    L = keras.layers
    path = _save_candidate(tmp_path, [L.Dense(8), L.BatchNormalization(), L.Dense(4, activation="tanh"),
                                      L.Dense(2, activation="softmax")])
    with pytest.raises(ModelError) as err:
        train(small, TrainSettings(model=str(path), epochs=1), progress=False)
    text = str(err.value)
    assert "BatchNormalization" in text and "'tanh'" in text


def test_candidate_with_wrong_input_size_is_refused(small, tmp_path):
    keras = pytest.importorskip("keras")
    path = _save_candidate(tmp_path, [keras.layers.Dense(2, activation="softmax")], n_in=41)
    with pytest.raises(ModelError, match=r"expects input \(41,\).*40 neurons"):
        train(small, TrainSettings(model=str(path), epochs=1), progress=False)


def test_eval_session_must_have_the_same_neurons(small):
    other = simulate_session(n_neurons=41, n_frames=300, seed=3)
    with pytest.raises(ConfigError, match="same neurons"):
        train(small, TrainSettings(model="nn2", epochs=1), progress=False, eval_session=other)


# ---------------------------------------------------------------- real data
def test_real_nelpy_session_loads_and_trains(nelpy_path):
    from neurogrs.formats import load_session

    s = load_session(nelpy_path)  # labels derived from speed: moving vs still
    assert s.n_neurons == 31 and s.n_frames == 19681
    r = train(s, TrainSettings(model="nn1", epochs=5, split=SplitSettings(blocks=5)), progress=False)
    m = r.metrics["test"]
    assert m["n"] > 1000
    assert m["balanced_accuracy"] > 0.6, m  # spikes of hippocampal units carry running state


# ---------------------------------------------------------------- CLI
def test_cli_train_info_evaluate(tmp_path, capsys):
    from neurogrs.cli import main
    from neurogrs.formats import save_session

    sess = save_session(simulate_session(n_neurons=30, n_frames=800, seed=1), tmp_path / "s.npz")
    out = tmp_path / "art"
    assert main(["train", str(sess), "--model", "nn2", "--out", str(out), "--epochs", "2",
                 "--quiet", "--eval-session", str(sess)]) == 0
    text = capsys.readouterr().out
    assert "params" in text and "FLOPs" in text and "baseline" in text and "other" in text
    assert main(["info", str(out)]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["evaluate", str(out), str(sess), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert 0.0 <= m["accuracy"] <= 1.0 and "baseline_accuracy" in m


def test_cli_bad_input_is_a_clear_error_with_nonzero_exit(tmp_path, capsys):
    from neurogrs.cli import main

    code = main(["train", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_session_rejects_gaps_in_label_classes_and_boolean_fs():
    from neurogrs.session import Session

    x = np.zeros((4, 3), np.float32)
    with pytest.raises(SessionError, match=r"class\(es\) \[1\] never occur"):
        Session(x, np.array([0, 2, 0, 2]))
    with pytest.raises(SessionError, match="fs must be a number"):
        Session(x, np.array([0, 1, 0, 1]), fs=True)


# ---------------------------------------------------------------- options that were ignored
def test_blocks_with_a_shuffled_split_is_refused():
    with pytest.raises(ConfigError, match=r"blocks.*blocked split"):
        SplitSettings("shuffled", 3)


def test_single_class_warning_does_not_suggest_blocks_already_given():
    labels = np.array(([0] * 40 + [1] * 40 + [0] * 20) * 4)  # val/test parts: label 0 only
    with pytest.warns(UserWarning, match="single class") as rec:
        make_split(labels, SplitSettings(blocks=4), np.random.default_rng(0))
    text = " ".join(str(w.message) for w in rec)
    assert "--blocks 4" in text and "try --blocks K" not in text
    with pytest.warns(UserWarning, match=r"try --blocks K"):
        make_split(np.array([0] * 40 + [1] * 40 + [0] * 20), SplitSettings(),
                   np.random.default_rng(0))


# ---------------------------------------------------------------- CLI: eval session, labels
def _csv_dir_with_two_sessions(tmp_path):
    from neurogrs.formats import load_session, save_csv_session

    d = tmp_path / "csv"
    for sid, seed in (("S1", 1), ("S2", 2)):
        save_csv_session(simulate_session(n_neurons=20, n_frames=300 + 100 * seed, seed=seed),
                         d, "M1", "D1", sid)
    return d, load_session(d, mouse="M1", day="D1", session="S2")


def test_cli_eval_session_names_a_session_of_a_csv_directory(tmp_path, capsys):
    from neurogrs.cli import main

    d, s2 = _csv_dir_with_two_sessions(tmp_path)
    out = tmp_path / "art"
    base = ["train", str(d), "--csv-id", "M1", "D1", "S1", "--model", "nn2", "--epochs", "1",
            "--quiet", "--out", str(out), "--eval-session", str(d)]
    # a directory of several sessions: the error names the flag that picks one
    assert main(base) == 2
    assert "--eval-csv-id MOUSE DAY SESSION" in capsys.readouterr().err
    assert main(base + ["--eval-csv-id", "M1", "D1", "S2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["eval_session"]
    assert shown["n"] == s2.n_frames == 500 and shown["session_sha256"] == s2.digest()
    assert shown["same_as_training"] is False
    # the cross-session result is saved in the artifact under the name printed
    assert load_artifact(out).doc["metrics"]["eval_session"] == shown
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "eval_session acc" in text and "test  acc" in text


def test_cli_eval_session_equal_to_the_training_session_warns_loudly(tmp_path, capsys):
    from neurogrs.cli import main

    d, _ = _csv_dir_with_two_sessions(tmp_path)
    ids = ["M1", "D1", "S1"]
    with pytest.warns(UserWarning, match="training session itself"):
        assert main(["train", str(d), "--csv-id", *ids, "--eval-session", str(d),
                     "--eval-csv-id", *ids, "--model", "nn2", "--epochs", "1", "--quiet",
                     "--out", str(tmp_path / "a")]) == 0
    assert "eval_session" in capsys.readouterr().out


def test_cli_evaluate_labels_the_session_as_train_did(tmp_path, capsys):
    from neurogrs.cli import main
    from neurogrs.formats import SpeedLabelRule, load_session, save_session

    sess = simulate_session(n_neurons=20, n_frames=400, seed=2)
    path = save_session(sess, tmp_path / "s.npz")
    moving = load_session(path, label_rule=SpeedLabelRule(2.0, None)).labels
    assert not np.array_equal(moving, sess.labels)
    out = tmp_path / "art"
    assert main(["train", str(path), "--label-from-speed", "2", "--model", "nn2", "--epochs",
                 "1", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert load_artifact(out).doc["provenance"]["session_options"]["label_from_speed"] == [2.0]
    assert main(["evaluate", str(out), str(path), "--json"]) == 0
    got = capsys.readouterr()
    truth_counts = np.asarray(json.loads(got.out)["confusion"]).sum(axis=1)
    np.testing.assert_array_equal(truth_counts, np.bincount(moving))
    assert "--label-from-speed 2" in got.err
    with pytest.warns(UserWarning, match="differ from those train used"):
        assert main(["evaluate", str(out), str(path), "--label-column", "2", "--json"]) == 0


def test_cli_train_prints_no_tensorflow_start_up_noise(tmp_path):
    from neurogrs.formats import save_session

    sess = save_session(simulate_session(n_neurons=20, n_frames=300, seed=1), tmp_path / "s.npz")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "ABSL", "GLOG"))}
    run = subprocess.run([sys.executable, "-m", "neurogrs", "train", str(sess), "--model", "nn2",
                          "--epochs", "1", "--quiet", "--out", str(tmp_path / "a")],
                         capture_output=True, text=True, timeout=240, env=env)
    assert run.returncode == 0, run.stderr
    noise = [line for line in run.stderr.splitlines()
             if "oneDNN" in line or "absl" in line or "cpu_feature_guard" in line]
    assert noise == [], run.stderr
    assert "test  acc" in run.stdout


def test_only_tensorflows_start_up_noise_is_dropped():
    from neurogrs.pruning.tf_quiet import is_start_up_noise

    assert is_start_up_noise("WARNING: All log messages before absl::InitializeLog() is "
                             "called are written to STDERR")
    assert is_start_up_noise("I0000 00:00:1796211996.008044    9668 port.cc:153] oneDNN custom "
                             "operations are on. You may see slightly different numerical ...")
    for kept in ("E0000 cuda_dnn.cc:8] Unable to register cuDNN factory",
                 "Traceback (most recent call last):", "ImportError: libfoo.so: not found"):
        assert not is_start_up_noise(kept)
