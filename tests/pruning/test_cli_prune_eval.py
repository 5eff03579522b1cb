"""`neurogrs prune --eval-session`: every artifact scored on other sessions, after selection."""
import json

import pytest

from neurogrs.artifact import load_artifact
from neurogrs.cli import main
from neurogrs.crosseval import cross_evaluate
from neurogrs.formats import load_session, save_session
from neurogrs.simulate import simulate_session

FAST = ["--models", "nn2", "--method", "rrs", "--tq", "--epochs", "10", "--retrain-epochs",
        "1", "--blocks", "4", "--tau-s", "0.99", "--quiet"]


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    d = tmp_path_factory.mktemp("days")
    return [save_session(simulate_session(n_neurons=40, n_frames=800 if k == 0 else 300 + 100 * k,
                                          seed=3, session_index=k), d / f"S{k + 1}.npz")
            for k in range(3)]


def test_prune_eval_session_reports_every_artifact_and_decides_nothing(tmp_path, days, capsys):
    out, plain = tmp_path / "with", tmp_path / "without"
    assert main(["prune", str(days[0]), "--out", str(out), *FAST,
                 "--eval-session", str(days[1]), str(days[2])]) == 0
    text = capsys.readouterr().out
    assert "cross-session balanced accuracy" in text and "selected" in text
    report = json.loads((out / "report.json").read_text())
    cross = report["cross_session"]
    assert cross["reported_only"] is True
    assert cross["sessions"] == [str(days[1]), str(days[2])]
    assert set(cross["candidates"]["nn2"]) == {"initial", "pruned", "tq"}
    others = [(str(p), load_session(p)) for p in days[1:]]
    for kind, sub in (("initial", "initial"), ("pruned", "rrs"), ("tq", "rrs-tq")):
        again = cross_evaluate(load_artifact(out / "nn2" / sub).spec, others)
        got = cross["candidates"]["nn2"][kind]
        assert got["pooled"]["confusion"] == again["pooled"]["confusion"]
        assert [r["frames"] for r in got["sessions"]] == [400, 500]
    sel = cross_evaluate(load_artifact(out / "selected").spec, others)
    assert cross["selected"]["pooled"]["balanced_accuracy"] == pytest.approx(
        sel["pooled"]["balanced_accuracy"])
    # the same run without the other sessions takes the same decisions
    assert main(["prune", str(days[0]), "--out", str(plain), *FAST]) == 0
    base = json.loads((plain / "report.json").read_text())
    assert "cross_session" not in base
    assert base["selection"]["chosen"] == report["selection"]["chosen"]
    def steps(r):  # the decisions, without wall time
        return [{k: v for k, v in step.items() if k != "elapsed_s"}
                for step in r["candidates"]["nn2"]["search"]["trajectory"]]

    assert steps(base) == steps(report)
    assert load_artifact(plain / "selected").hash == load_artifact(out / "selected").hash


def test_prune_eval_session_with_other_neurons_is_refused_before_training(tmp_path, days,
                                                                           capsys):
    other = save_session(simulate_session(n_neurons=30, n_frames=300, seed=1), tmp_path / "o.npz")
    assert main(["prune", str(days[0]), "--out", str(tmp_path / "o"), *FAST,
                 "--eval-session", str(other)]) == 2
    err = capsys.readouterr().err
    assert "30 neurons" in err and "40" in err
    assert not (tmp_path / "o").exists()


def test_prune_help_says_eval_sessions_decide_nothing(capsys):
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--eval-session" in text and "never used for any decision" in text
