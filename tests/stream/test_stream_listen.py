"""Online scoring in `neurogrs listen`: accuracy, balanced accuracy, latency percentiles."""
from __future__ import annotations

import numpy as np
import pytest

from neurogrs.stream import protocol as P
from neurogrs.stream.listen import Tally, format_prediction


def _pred(seq, label, t_src=0):
    return P.Prediction("s", seq, t_src, 0, 0, label, (0.5, 0.5), "h", False)


def test_accuracy_uses_seq_mod_T_and_balanced_accuracy():
    labels = np.array([0, 0, 0, 1])  # T = 4
    t = Tally(labels=labels)
    # seqs 0..7 wrap around the recording; predict 0 always except seq 3 -> 1
    for seq in range(8):
        t.add(_pred(seq, 1 if seq == 3 else 0), received_ns=1_000_000)
    s = t.summary()
    # truth 0,0,0,1,0,0,0,1; predictions right except seq 7 (truth 1, predicted 0)
    assert s["accuracy"] == pytest.approx(7 / 8)
    assert s["balanced_accuracy"] == pytest.approx((6 / 6 + 1 / 2) / 2)
    assert s["baseline_accuracy"] == pytest.approx(6 / 8)  # always answering class 0
    assert s["beats_baseline"] is True
    assert s["latency_s"]["p50"] == pytest.approx(1e-3)


def test_errors_and_end_counted():
    t = Tally()
    t.add(P.ErrorReport("s", 1, "stale", ""), 0)
    t.add(P.ErrorReport("s", 2, "stale", ""), 0)
    t.add(P.EndOfStream("s", 3, 0, 3), 0)
    s = t.summary()
    assert s["errors"] == {"stale": 2} and s["end_of_stream"] == [{"session": "s", "frames_sent": 3}]
    assert s["predictions"] == 0 and s["latency_s"]["p50"] is None and "accuracy" not in s


def test_format_prediction():
    line = format_prediction(_pred(4, 1, t_src=0), 2_500_000, as_json=False)
    assert "seq=4" in line and "latency=2.500 ms" in line


def test_skipped_frames_are_accounted():
    t = Tally()
    t.add(_pred(0, 0), 0)
    t.add(_pred(3, 0)._replace(skipped=2), 0)  # seq 1 and 2 conflated by the service
    t.add(P.ErrorReport("s", 4, "stale", ""), 0)
    t.add(P.EndOfStream("s", 5, 0, 5), 0)
    s = t.summary()
    assert s["skipped"] == 2 and s["unaccounted"] == 0


def test_baseline_is_the_best_constant_on_the_scored_frames():
    # the recording's majority is 0, but the frames scored (seq 5..9) are mostly 1
    labels = np.array([0] * 6 + [1] * 4)
    t = Tally(labels=labels)
    for seq, label in zip(range(5, 10), (1, 1, 1, 0, 0)):
        t.add(_pred(seq, label), 0)
    s = t.summary()
    assert s["accuracy"] == pytest.approx(0.4)
    assert s["baseline_accuracy"] == pytest.approx(0.8) and s["baseline_class"] == 1
    assert s["beats_baseline"] is False


def test_online_scores_are_evaluate_classification_metrics():
    from neurogrs.evaluate import classification_metrics

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 50)
    t = Tally(labels=labels)
    seqs = np.arange(120)
    preds = rng.integers(0, 2, 120)
    for seq, label in zip(seqs, preds):
        t.add(_pred(int(seq), int(label)), 0)
    want = classification_metrics(labels[seqs % 50], preds, None, 2)
    got = t.summary()
    assert {k: got[k] for k in want if k != "n"} == {k: v for k, v in want.items() if k != "n"}
    assert got["predictions"] == 120


# ------------------------------------------------ listen scores the labels train used
def _speed_session(tmp_path):
    """Stored labels (fine motion) differ from labels 'moving = speed > 2 cm/s'."""
    from neurogrs.formats import save_session
    from neurogrs.simulate import simulate_session

    sess = simulate_session(n_neurons=20, n_frames=400, seed=2)
    return sess, save_session(sess, tmp_path / "rec.npz")


def _artifact_trained_with(tmp_path, train_argv):
    """An artifact whose provenance records the session options of `train_argv`."""
    import dataclasses

    from neurogrs.artifact import save_artifact
    from neurogrs.cli import build_parser
    from neurogrs.cli_session import label_options_from_args
    from neurogrs.zoo import init_spec

    args = build_parser().parse_args(["train", "x.npz", "--out", "o", *train_argv])
    spec = init_spec("nn2", 20, np.random.default_rng(0))
    spec = dataclasses.replace(spec, provenance={"session_options": label_options_from_args(args)})
    return save_artifact(spec, tmp_path / "art")


def _listen_args(*argv):
    from neurogrs.cli import build_parser

    return build_parser().parse_args(["listen", *map(str, argv)])


def test_listen_scores_the_labels_train_used(tmp_path, capsys):
    from neurogrs.formats import SpeedLabelRule, load_session
    from neurogrs.stream.cli import scoring_labels

    sess, path = _speed_session(tmp_path)
    moving = load_session(path, label_rule=SpeedLabelRule(2.0, None)).labels
    assert not np.array_equal(moving, sess.labels)
    art = _artifact_trained_with(tmp_path, ["--label-from-speed", "2"])
    # the artifact's recorded options apply by default
    np.testing.assert_array_equal(scoring_labels(_listen_args("--session", path, "--artifact", art)),
                                  moving)
    assert "--label-from-speed 2" in capsys.readouterr().err
    # the same session options as train, without the artifact
    np.testing.assert_array_equal(
        scoring_labels(_listen_args("--session", path, "--label-from-speed", "2")), moving)
    # options that differ from the recorded ones: used, with a warning
    with pytest.warns(UserWarning, match="differ from those train used"):
        got = scoring_labels(_listen_args("--session", path, "--artifact", art,
                                          "--label-from-speed", "0.2", "2"))
    np.testing.assert_array_equal(got, sess.labels)


def test_listen_with_an_artifact_trained_on_stored_labels_keeps_them(tmp_path, recwarn):
    from neurogrs.stream.cli import scoring_labels

    sess, path = _speed_session(tmp_path)
    art = _artifact_trained_with(tmp_path, [])
    np.testing.assert_array_equal(
        scoring_labels(_listen_args("--session", path, "--artifact", art)), sess.labels)
    assert not recwarn.list


def test_listen_warns_when_the_service_runs_another_model(start_service, tmp_path, capsys):
    from neurogrs.cli import main

    running = start_service()
    other = _artifact_trained_with(tmp_path, [])  # not the model the service runs
    with pytest.warns(UserWarning, match="the service runs model"):
        assert main(["listen", "--predictions", ">" + running.endpoints["predictions"],
                     "--artifact", str(other), "--timeout", "1", "--quiet"]) == 0
    assert '"predictions": 0' in capsys.readouterr().out


# ------------------------------------------------ bounded memory (issue 9, item 7)
def _feed_lognormal(t, n, seed=0, batch=10_000):
    rng = np.random.default_rng(seed)
    lat_ns = []
    for start in range(0, n, batch):
        lat = (rng.lognormal(np.log(2e-3), 0.8, batch) * 1e9).astype(np.int64)
        for k, v in enumerate(lat):
            t.add(_pred(start + k, k % 2, t_src=0), int(v))
        lat_ns.append(lat)
    return np.concatenate(lat_ns)


def test_tally_memory_does_not_grow_with_predictions():
    import tracemalloc

    t = Tally(labels=np.array([0, 1, 1, 0]))
    tracemalloc.start()
    try:
        _feed_lognormal(t, 20_000, seed=1)
        after_20k = tracemalloc.get_traced_memory()[0]
        _feed_lognormal(t, 200_000, seed=2)
        after_220k = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # a list of every latency grew by ~7 MB here; the tally's state is fixed-size
    assert after_220k - after_20k < 64 * 1024, after_220k - after_20k
    assert t.count == 220_000 and t.summary()["predictions"] == 220_000


def test_streaming_percentiles_within_the_stated_relative_error():
    from neurogrs.stream.listen import LATENCY_RELATIVE_ACCURACY, PERCENTILES

    t = Tally()
    lat_ns = _feed_lognormal(t, 200_000, seed=3)
    got = t.summary()["latency_s"]
    exact = np.quantile(lat_ns / 1e9, [p / 100 for p in PERCENTILES], method="lower")
    for p, want in zip(PERCENTILES, exact):
        assert got[f"p{p:g}"] == pytest.approx(want, rel=LATENCY_RELATIVE_ACCURACY), p
    assert got["max"] == pytest.approx(lat_ns.max() / 1e9, rel=1e-12)


def test_ends_kept_in_totals_only_the_latest_listed():
    t = Tally()
    for k in range(1000):  # a month of session churn
        t.add(P.EndOfStream(f"s{k}", 2, 0, 2), 0)
    s = t.summary()
    assert s["end_of_stream_total"] == 1000 and len(s["end_of_stream"]) <= 100
    assert s["end_of_stream"][-1] == {"session": "s999", "frames_sent": 2}
    assert s["unaccounted"] == 2000  # from every end, not only the listed ones


def _pred_of_run(session, seq, run=None):
    return P.Prediction(session, seq, 0, 0, 0, 0, (1.0,), "m", False, 0, run)


def test_tally_memory_does_not_grow_with_sessions_that_never_end():
    # a month of churn: sessions that vanish without end-of-stream (one a second); the main
    # session runs throughout, ends, and is accounted exactly
    import tracemalloc

    t = Tally()
    main = 0

    def churn(first, n):
        nonlocal main
        for k in range(first, first + n):
            t.add(_pred_of_run(f"gone{k}", 0, run=1), 0)
            if k % 100 == 0:
                t.add(_pred_of_run("main", main), 0)
                main += 1

    tracemalloc.start()
    try:
        churn(0, 20_000)
        after_20k = tracemalloc.get_traced_memory()[0]
        churn(20_000, 60_000)
        after_80k = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # every vanished session kept (before): ~10 MB more here
    assert after_80k - after_20k < 256 * 1024, after_80k - after_20k
    t.add(P.EndOfStream("main", main, 0, main), 0)
    s = t.summary()
    assert s["unaccounted"] == 0 and s["predictions"] == 80_000 + main


def test_a_report_on_error_underscore_is_accounted_against_the_ends():
    # a frame whose session the service could not read is reported on error._; the source's
    # end-of-stream counts it among its frames
    t = Tally()
    t.add(_pred_of_run("s", 0), 0)
    t.add(P.ErrorReport(P.UNKNOWN_SESSION, None, "malformed", ""), 0)
    t.add(P.EndOfStream("s", 2, 0, 2), 0)
    assert t.summary()["unaccounted"] == 0
