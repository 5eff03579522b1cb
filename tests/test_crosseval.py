"""Cross-session evaluation: `evaluate ARTIFACT SESSION...`, `train --eval-session S...`."""
import json

import numpy as np
import pytest

from neurogrs.artifact import load_artifact
from neurogrs.crosseval import cross_evaluate, format_cross_table, pool_rows
from neurogrs.errors import SessionError
from neurogrs.evaluate import classification_metrics
from neurogrs.formats import load_session, save_session
from neurogrs.session import Session, scoring_only
from neurogrs.simulate import simulate_session
from neurogrs.spec import forward


def _day(k: int, frames: int = 400):
    """Session k of one simulated mouse (same neurons, drifted)."""
    return simulate_session(n_neurons=24, n_frames=frames, seed=5, session_index=k)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from neurogrs.cli import main

    d = tmp_path_factory.mktemp("xs")
    paths = [save_session(_day(k, 400 + 100 * k), d / f"S{k + 1}.npz") for k in range(3)]
    out = d / "art"
    assert main(["train", str(paths[0]), "--model", "nn2", "--epochs", "2", "--quiet",
                 "--out", str(out), "--eval-session", str(paths[1]), str(paths[2])]) == 0
    return d, paths, out


def _single_class_file(path, n_neurons=24, label=0):
    x = np.abs(np.random.default_rng(0).normal(size=(120, n_neurons))).astype(np.float32)
    np.savez(path, traces=x, labels=np.full(120, label), fs=10.0)
    return path


def test_pooled_row_is_computed_from_the_summed_confusion_counts(trained):
    _, paths, out = trained
    spec = load_artifact(out).spec
    sessions = [(p.name, load_session(p)) for p in paths[1:]]
    result = cross_evaluate(spec, sessions)
    assert [r["session"] for r in result["sessions"]] == ["S2.npz", "S3.npz"]
    assert [r["frames"] for r in result["sessions"]] == [500, 600]
    # the pooled numbers equal those of all frames scored together
    y = np.concatenate([s.labels for _, s in sessions])
    pred = np.concatenate([forward(spec, s.traces).argmax(1) for _, s in sessions])
    whole = classification_metrics(y, pred, None, spec.n_outputs)
    pooled = result["pooled"]
    assert pooled["frames"] == 1100
    assert pooled["balanced_accuracy"] == pytest.approx(whole["balanced_accuracy"])
    assert pooled["accuracy"] == pytest.approx(whole["accuracy"])
    assert pooled["best_constant_accuracy"] == pytest.approx(np.bincount(y).max() / y.size)
    assert pooled["best_constant_balanced_accuracy"] == 0.5
    assert pooled["margin"] == pytest.approx(whole["balanced_accuracy"] - 0.5)
    # and not the mean of the per-session numbers (the sessions differ in balance)
    for r, (_, s) in zip(result["sessions"], sessions):
        p = forward(spec, s.traces).argmax(1)
        m = classification_metrics(s.labels, p, None, spec.n_outputs)
        assert r["balanced_accuracy"] == pytest.approx(m["balanced_accuracy"])
        assert r["best_constant_accuracy"] == pytest.approx(np.bincount(s.labels).max() / s.n_frames)
    assert "pooled" in format_cross_table(result)


def test_pool_rows_pads_confusions_of_different_sizes():
    rows = [{"confusion": [[3, 1], [0, 4]]}, {"confusion": [[2]]}]
    pooled = pool_rows(rows)
    assert pooled["confusion"] == [[5, 1], [0, 4]] and pooled["frames"] == 10


def test_a_single_class_session_loads_only_for_scoring_and_is_reported(trained, tmp_path):
    _, _, out = trained
    path = _single_class_file(tmp_path / "rest.npz")
    with pytest.raises(SessionError, match="single class"):
        load_session(path)  # training still refuses it
    with scoring_only():
        s = load_session(path)
    with pytest.raises(SessionError, match="single class"):
        Session(s.traces, s.labels)  # only inside the block
    row = cross_evaluate(load_artifact(out).spec, [("rest", s)])["sessions"][0]
    assert row["single_class"] is True and row["classes_present"] == 1
    assert row["balanced_accuracy"] == pytest.approx(row["accuracy"])  # recall of class 0
    assert row["best_constant_accuracy"] == 1.0 == row["best_constant_balanced_accuracy"]
    assert row["margin"] <= 0.0


def test_cli_evaluate_several_sessions_rows_pooled_and_single_class(trained, tmp_path, capsys):
    from neurogrs.cli import main

    _, paths, out = trained
    rest = _single_class_file(tmp_path / "rest.npz", label=1)  # only class 1: a gap at 0
    assert main(["evaluate", str(out), str(paths[1]), str(paths[2]), str(rest), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [r["frames"] for r in got["sessions"]] == [500, 600, 120]
    assert got["sessions"][2]["single_class"] is True
    assert got["pooled"]["frames"] == 1220
    confusion = np.asarray(got["pooled"]["confusion"])
    assert confusion.sum() == 1220 and confusion[1].sum() == sum(
        np.asarray(r["confusion"])[1].sum() for r in got["sessions"])
    assert main(["evaluate", str(out), str(paths[1]), str(rest)]) == 0
    text = capsys.readouterr().out
    assert "pooled" in text and "(single class)" in text and "const bal" in text


def test_cli_evaluate_one_session_keeps_its_output_and_adds_the_constant(trained, capsys):
    from neurogrs.cli import main

    _, paths, out = trained
    assert main(["evaluate", str(out), str(paths[1]), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 500 and "baseline_accuracy" in m and "confusion" in m
    assert m["best_constant_balanced_accuracy"] == 0.5
    assert m["margin"] == pytest.approx(m["balanced_accuracy"] - 0.5)
    assert main(["evaluate", str(out), str(paths[1])]) == 0
    text = capsys.readouterr().out
    assert text.startswith("all   acc") and "best constant: acc" in text


def test_cli_evaluate_errors_name_the_neuron_counts_and_the_missing_file(trained, tmp_path,
                                                                          capsys):
    from neurogrs.cli import main

    _, paths, out = trained
    other = save_session(simulate_session(n_neurons=30, n_frames=300, seed=1), tmp_path / "o.npz")
    assert main(["evaluate", str(out), str(paths[1]), str(other)]) == 2
    err = capsys.readouterr().err
    assert "o.npz" in err and "decodes 24 neurons" in err and "has 30" in err
    assert main(["evaluate", str(out), str(paths[1]), str(tmp_path / "gone.npz")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "gone.npz" in err


def test_cli_train_eval_sessions_are_saved_per_session_and_pooled(trained, capsys):
    from neurogrs.cli import main

    _, paths, out = trained
    metrics = load_artifact(out).doc["metrics"]
    cross = metrics["cross_session"]
    assert "eval_session" not in metrics  # several sessions: the table only
    assert [r["session"] for r in cross["sessions"]] == [str(paths[1]), str(paths[2])]
    assert [r["frames"] for r in cross["sessions"]] == [500, 600]
    assert cross["pooled"]["frames"] == 1100
    assert all(r["same_as_training"] is False and "train_majority_accuracy" in r
               for r in cross["sessions"])
    # the same numbers as evaluate gives afterwards
    assert main(["evaluate", str(out), str(paths[1]), str(paths[2]), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["pooled"]["balanced_accuracy"] == pytest.approx(
        cross["pooled"]["balanced_accuracy"])
    assert main(["info", str(out)]) == 0
    assert "cross-session" in capsys.readouterr().out


def test_cli_train_help_says_eval_sessions_decide_nothing(capsys):
    from neurogrs.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "never used for any decision" in text


def test_cli_eval_csv_id_needs_a_single_eval_session(trained, tmp_path, capsys):
    from neurogrs.cli import main

    _, paths, _ = trained
    assert main(["train", str(paths[0]), "--model", "nn2", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "a"), "--eval-session", str(paths[1]), str(paths[2]),
                 "--eval-csv-id", "M1", "D1", "S2"]) == 2
    assert "one --eval-session" in capsys.readouterr().err


def test_cli_train_refuses_eval_sessions_of_other_neurons_before_training(trained, tmp_path,
                                                                          capsys):
    from neurogrs.cli import main

    _, paths, _ = trained
    other = save_session(simulate_session(n_neurons=30, n_frames=300, seed=1), tmp_path / "o.npz")
    out = tmp_path / "a"
    assert main(["train", str(paths[0]), "--model", "nn2", "--epochs", "1", "--quiet",
                 "--out", str(out), "--eval-session", str(paths[1]), str(other)]) == 2
    err = capsys.readouterr().err
    assert "o.npz has 30 neurons" in err and "training session 24" in err
    assert not out.exists()


def test_labels_from_speed_with_one_class_load_only_for_scoring(tmp_path):
    path = tmp_path / "still.npz"
    x = np.abs(np.random.default_rng(1).normal(size=(80, 24))).astype(np.float32)
    np.savez(path, traces=x, speed=np.full(80, 0.05, np.float32), fs=10.0)  # never moving
    with pytest.raises(SessionError, match="hold a single class"):
        load_session(path)
    with scoring_only():
        s = load_session(path)
    assert s.n_frames == 80 and set(s.labels.tolist()) == {0}
