"""`neurogrs prune` end to end on tiny sessions: artifacts, report, selection, bad input, Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from neurogrs.artifact import load_artifact
from neurogrs.cli import build_parser, main
from neurogrs.formats import save_session
from neurogrs.inference import load_engine
from neurogrs.session import Session
from neurogrs.simulate import simulate_session

FAST = ["--epochs", "15", "--retrain-epochs", "2", "--blocks", "4", "--quiet"]
# the shuffled split has no time order: --blocks with it is refused (tested in tests/test_train.py)
FAST_SHUFFLED = [a for a in FAST if a not in ("--blocks", "4")]


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prune") / "s.npz"
    save_session(simulate_session(n_neurons=40, n_frames=800, seed=3), path)
    return path


def test_help_shows_defaults_and_ends_with_an_example(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prune", "--help"])
    raw = capsys.readouterr().out
    text = " ".join(raw.split())  # argparse wraps lines
    for flag, default in (("--tau-s", "0.985"), ("--tau-t", "0.995"), ("--tau-q", "0.99"),
                          ("--retrain-epochs", "50"), ("--epochs", "150"), ("--metric",
                          "balanced_accuracy"), ("--method", "grs"), ("--split", "blocked"),
                          ("--min-units", "2"), ("--decimals", "4"), ("--models", "nn1")):
        assert flag in text and f"default {default}" in text, flag
    assert raw.rstrip().splitlines()[-4].strip() == "example:"


def test_end_to_end_grs_tq(tmp_path, session_file, capsys):
    out = tmp_path / "out"
    code = main(["prune", str(session_file), "--models", "nn1,nn2", "--method", "grs", "--tq",
                 "--out", str(out), "--select", "acc>=0.9*orig", "--minimize", "flops+params",
                 *FAST])
    assert code == 0
    assert "selected:" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is False and report["settings"]["retrain_epochs"] == 2
    session = Session(**{k: v for k, v in np.load(session_file).items()
                         if k in ("traces", "labels")})
    hashes = {}
    for name in ("nn1", "nn2"):
        cand = report["candidates"][name]
        assert cand["search"]["trajectory"][0]["structure"] == cand["initial"]["structure"]
        for kind, sub in (("initial", "initial"), ("pruned", "grs"), ("tq", "grs-tq")):
            art = load_artifact(out / name / sub)
            hashes[art.hash] = f"{name}/{sub}"
            assert art.spec.structure() == cand[kind]["structure"]
            assert art.spec.nonzero_params() == cand[kind]["nonzero_params"]
            assert art.doc["provenance"]["prune_settings"]["tau_s"] == 0.985
            probs = load_engine(art, "numpy").predict_batch(session.traces[:50])
            assert probs.shape == (50, 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
        tq = load_artifact(out / name / "grs-tq").spec
        assert cand["tq"]["decimals"] is None or all(
            np.array_equal(l.kernel, np.round(l.kernel, cand["tq"]["decimals"] + 1))
            for _, l in tq.weighted_layers())
        assert cand["reductions"]["tq"]["nonzero_params_pct"] >= cand["reductions"]["pruned"]["params_pct"]
    sel = load_artifact(out / "selected")
    assert report["selection"]["chosen"] == sel.spec.name
    assert hashes[sel.hash].endswith("grs-tq")
    assert {p.name for p in (out / "plots").iterdir()} == {"nn1_grs.png", "nn2_grs.png",
                                                           "candidates.png"}


def test_stage_t_reading_flag_reaches_stage_t_report_and_provenance(tmp_path, session_file):
    out = tmp_path / "out"
    code = main(["prune", str(session_file), "--models", "nn2", "--method", "rrs", "--tq",
                 "--stage-t", "per_layer", "--tau-s", "0.999", "--out", str(out), *FAST])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    cand = report["candidates"]["nn2"]
    assert report["settings"]["stage_t"] == "per_layer"
    assert cand["tq"]["stage_t"] == cand["tq_details"]["stage_t"] == "per_layer"
    assert set(cand["tq_details"]["layer_theta"]) == {"0", "2"}  # nn2's two weighted layers
    prov = load_artifact(out / "nn2" / "rrs-tq").doc["provenance"]
    assert prov["stage_t"] == prov["prune_settings"]["stage_t"] == "per_layer"


def test_bad_selection_refused_before_training(tmp_path, session_file, capsys):
    code = main(["prune", str(session_file), "--out", str(tmp_path / "o"),
                 "--select", "acc.__class__ > 1", *FAST])
    assert code == 2
    assert "'acc.__class__' is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_no_candidate_meets_the_constraints(tmp_path, session_file, capsys):
    out = tmp_path / "o"
    code = main(["prune", str(session_file), "--models", "nn2", "--out", str(out),
                 "--select", "params<=10", "--tau-s", "0.999", *FAST])
    assert code == 2
    err = capsys.readouterr().err
    assert "no candidate meets the constraints params<=10; the closest is nn2-grs" in err
    report = json.loads((out / "report.json").read_text())  # the work is kept
    assert "error" in report["selection"] and not (out / "selected").exists()


def test_session_too_small(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = save_session(Session(rng.random((60, 8)).astype(np.float32), np.arange(60) % 2),
                        tmp_path / "tiny.npz")
    code = main(["prune", str(path), "--out", str(tmp_path / "o"), "--split", "shuffled",
                 *FAST_SHUFFLED])
    assert code == 2
    assert "too small for the split" in capsys.readouterr().err


def test_model_at_chance_warns(tmp_path):
    labels = (np.arange(400) // 40) % 2
    path = save_session(Session(np.zeros((400, 6), np.float32), labels), tmp_path / "z.npz")
    with pytest.warns(UserWarning, match="at chance on D_V.*pruning it is meaningless"):
        code = main(["prune", str(path), "--models", "nn2", "--out", str(tmp_path / "o"),
                     "--epochs", "2", "--retrain-epochs", "1", "--blocks", "4", "--quiet",
                     "--min-units", "30"])
    assert code == 0


def test_keras_candidate_with_unsupported_layer(tmp_path, session_file, capsys):
    from neurogrs.pruning.tf_quiet import import_tensorflow

    import_tensorflow()
    import keras as k
    model = k.Sequential([k.Input((40,)), k.layers.Dense(8, activation="relu"),
                          k.layers.BatchNormalization(), k.layers.Dense(2, activation="softmax")])
    path = tmp_path / "bn.keras"
    model.save(path)
    code = main(["prune", str(session_file), "--models", str(path), "--out",
                 str(tmp_path / "o"), *FAST])
    assert code == 2
    err = capsys.readouterr().err
    assert "BatchNormalization" in err and "unsupported layer type" in err


def test_ctrl_c_writes_best_so_far_and_partial_report(tmp_path, session_file):
    """A real SIGINT to a running `neurogrs prune`: exit 130, partial report, artifacts."""
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "neurogrs", "prune", str(session_file), "--models", "nn1",
           "--out", str(out), "--epochs", "15", "--retrain-epochs", "2", "--blocks", "4",
           "--tau-s", "0.01", "--min-units", "1"]  # accepts everything: many iterations
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # a shell without job control starts background jobs with SIGINT ignored, and the child
    # would inherit that: give it the default disposition so Python installs its handler
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        seen = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if "iteration 2 " in line:
                seen.append(line)
                proc.send_signal(signal.SIGINT)
                break
        assert seen, "no pruning iteration seen"
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is True
    search = report["candidates"]["nn1"]["search"]
    assert search["partial"] is True and len(search["trajectory"]) >= 3
    pruned = load_artifact(out / "nn1" / "grs")
    assert pruned.spec.structure() == search["trajectory"][-1]["structure"]
    assert sum(pruned.spec.structure()[:-1]) < 56
    assert load_artifact(out / "selected").hash == pruned.hash
    assert "PARTIAL" in stdout


def test_config_file_then_flags(tmp_path):
    from neurogrs.pruning.cli import settings_from_args

    cfg = tmp_path / "p.toml"
    cfg.write_text('tau_s = 0.97\nretrain_epochs = 20\nmetric = "accuracy"\nsplit = "shuffled"\n')
    args = build_parser().parse_args(["prune", "s.npz", "--out", "o", "--config", str(cfg),
                                      "--retrain-epochs", "3", "--epochs", "7"])
    s = settings_from_args(args)
    assert (s.tau_s, s.retrain_epochs, s.initial_epochs, s.metric, s.split) == \
        (0.97, 3, 7, "accuracy", "shuffled")
    assert s.tau_t == 0.995  # neither file nor flag: the paper default


def test_bad_flag_value_is_a_clear_error(tmp_path, capsys):
    code = main(["prune", "s.npz", "--out", str(tmp_path / "o"), "--tau-s", "1.5"])
    assert code == 2
    assert "tau_s must be a number in (0.0, 1.0], got 1.5" in capsys.readouterr().err


def test_same_seed_same_session_same_run(tmp_path, session_file):
    def run(out):
        assert main(["prune", str(session_file), "--models", "nn2", "--method", "rrs", "--tq",
                     "--out", str(out), "--seed", "5", "--metric", "accuracy",
                     "--split", "shuffled", *FAST_SHUFFLED]) == 0  # the paper's setting
        report = json.loads((out / "report.json").read_text())
        assert report["settings"]["split"] == "shuffled"
        cand = report["candidates"]["nn2"]
        assert cand["pruned"]["val"]["metric"] == cand["pruned"]["val"]["accuracy"]
        assert cand["search"]["a0"] == cand["initial"]["val"]["accuracy"]
        steps = [(s["structure"], s["metric"], s["layer"], s["unit"])
                 for s in cand["search"]["trajectory"]]
        return steps, cand["tq"], load_artifact(out / "selected").hash

    assert run(tmp_path / "a") == run(tmp_path / "b")


@pytest.mark.parametrize("models, words", [
    ("nn1,nn9", "model 'nn9' is neither a zoo model"),
    ("nn1,missing.keras", "missing.keras: no such file"),
    ("nn1,nn1", "--models must name distinct models"),
])
def test_bad_models_refused_before_training(tmp_path, session_file, capsys, models, words):
    code = main(["prune", str(session_file), "--models", models, "--out", str(tmp_path / "o"),
                 *FAST])
    assert code == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing trained, nothing written
