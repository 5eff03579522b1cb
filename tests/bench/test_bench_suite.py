"""`neurogrs bench pruning --suite`: the driver on a tiny real run, resume, the table math."""
import json
import math
from dataclasses import replace

import pytest

from neurogrs.bench import suite as S
from neurogrs.bench.suite_tables import markdown, stats, summarize, targets
from neurogrs.errors import ConfigError
from neurogrs.pruning import methods
from neurogrs.pruning.settings import PruneSettings

# tiny: 600-frame sessions, nn1 trained 3 epochs, 1 retraining epoch per candidate;
# RRS/NWM stop early at tau_s 0.999 (one compiled program: one candidate per iteration)
TINY = PruneSettings(initial_epochs=3, retrain_epochs=1, tau_s=0.999)


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    """A real suite: 1 session, nn1, RRS and an alias of it registered with one line."""
    mp = pytest.MonkeyPatch()
    mp.setitem(methods.REGISTRY, "rrs_alias", "neurogrs.pruning.rrs:rrs")
    out = tmp_path_factory.mktemp("suite")
    settings = S.SuiteSettings(models=("nn1",), methods=("rrs", "rrs_alias"),
                               splits=("shuffled",), sessions=("M3_S2",), frames=600,
                               prune=TINY)
    tables = S.run_suite(settings, out)
    yield settings, out, tables
    mp.undo()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_suite_writes_tables_computed_from_the_job_records(tiny_suite):
    settings, out, tables = tiny_suite
    records = _lines(out / "jobs.jsonl")
    assert [r["key"] for r in records] == ["nn1/shuffled/M3_S2/t0/rrs",
                                           "nn1/shuffled/M3_S2/t0/rrs_alias"]
    assert all(r["status"] == "ok" and r["metric"] == "accuracy" for r in records)
    on_disk = json.loads((out / "tables.json").read_text())
    assert on_disk["schema"] == "neurogrs.prune-suite-tables/1"
    assert on_disk["jobs_ok"] == 2 and on_disk["jobs_failed"] == 0
    assert [(r["split"], r["model"], r["method"], r["jobs"]) for r in on_disk["rows"]] == [
        ("shuffled", "nn1", "rrs", 1), ("shuffled", "nn1", "rrs_alias", 1)]
    md = (out / "tables.md").read_text()
    for rec, row in zip(records, on_disk["rows"]):
        # every number comes from the job's own prune report
        report = json.loads((out / "jobs" / rec["key"] / "report.json").read_text())
        cand = report["candidates"]["nn1"]
        assert rec["pruned"]["params"] == cand["pruned"]["params"]
        assert rec["retrainings"] == cand["search"]["retrainings"]
        pct = 100.0 * rec["pruned"]["params"] / rec["initial"]["params"]
        loss = 100.0 * (rec["initial"]["test_metric"] - rec["pruned"]["test_metric"])
        nonzero = 100.0 * rec["tq"]["nonzero_params"] / rec["initial"]["params"]
        assert row["params_pct"] == pytest.approx({"mean": pct, "min": pct, "max": pct})
        assert row["test_loss_pp"]["mean"] == pytest.approx(loss)
        assert row["tq_nonzero_pct"]["mean"] == pytest.approx(nonzero)
        assert row["retrainings"]["mean"] == rec["retrainings"]
        assert f"| {pct:.1f} [{pct:.1f}, {pct:.1f}] |" in md
    assert "## Shuffled split, accuracy" in md and "Blocked split" not in md
    assert (out / "tables.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tables["rows"] == on_disk["rows"]


def test_resume_runs_only_missing_and_failed_jobs(tiny_suite, tmp_path):
    settings, out, _ = tiny_suite
    work = tmp_path / "suite"
    work.mkdir()
    (work / "suite.json").write_text((out / "suite.json").read_text())
    (work / "sessions").symlink_to(out / "sessions")
    first, second = _lines(out / "jobs.jsonl")
    failed = {**{k: second[k] for k in ("key", "model", "split", "session", "trial", "method")},
              "status": "error", "error": "RuntimeError: boom"}
    # a killed suite: one finished job, one failed job, and half a line
    (work / "jobs.jsonl").write_text(json.dumps(first) + "\n" + json.dumps(failed) + "\n"
                                     + json.dumps(second)[:40])
    with pytest.raises(ConfigError, match="--resume"):
        S.run_suite(settings, work)
    with pytest.raises(ConfigError, match="retrain_epochs"):
        S.run_suite(replace(settings, prune=replace(TINY, retrain_epochs=2)), work, resume=True)
    ran = []

    def runner(job, s, sessions, o):
        ran.append(job.key)
        return S._run_job(job, s, sessions, o)

    tables = S.run_suite(settings, work, resume=True, runner=runner)
    assert ran == [second["key"]]
    latest = {r["key"]: r for r in S.read_records(work / "jobs.jsonl")}
    assert latest[second["key"]]["status"] == "ok"
    assert tables["jobs_ok"] == 2 and tables["jobs_failed"] == 0
    ran.clear()
    S.run_suite(settings, work, resume=True, runner=runner)
    assert ran == []


def _rec(split, model, method, ini_params, params, ini_test, test, tq_nonzero, seconds=1.0,
         retrain=10, session="M1_S1"):
    metric = "accuracy" if split == "shuffled" else "balanced_accuracy"
    v = {"structure": [], "flops": 2 * params, "nonzero_params": params, "val_metric": 0.9}
    return {"key": f"{model}/{split}/{session}/t0/{method}", "model": model, "split": split,
            "session": session, "trial": 0, "method": method, "status": "ok", "metric": metric,
            "initial": {**v, "params": ini_params, "flops": 2 * ini_params, "test_metric": ini_test},
            "pruned": {**v, "params": params, "test_metric": test},
            "tq": {**v, "params": params, "nonzero_params": tq_nonzero, "test_metric": test},
            "retrainings": retrain, "search_seconds": seconds}


def test_table_math_on_synthetic_jobs():
    records = [
        _rec("shuffled", "nn1", "grs", 1000, 100, 0.98, 0.97, 40, 2.0, 30, "M1_S1"),
        _rec("shuffled", "nn1", "grs", 2000, 600, 0.90, 0.91, 100, 4.0, 50, "M2_S1"),
        _rec("shuffled", "nn1", "rrs", 1000, 500, 0.98, 0.98, 200),
        {"key": "nn1/shuffled/M3_S1/t0/nwm", "status": "error", "error": "x"},
        _rec("blocked", "cnn1", "nwm", 1000, 900, 0.8, 0.7, 800),
    ]
    rows = summarize(records)
    assert [(r["split"], r["model"], r["method"], r["jobs"]) for r in rows] == [
        ("shuffled", "nn1", "grs", 2), ("shuffled", "nn1", "rrs", 1),
        ("blocked", "cnn1", "nwm", 1)]
    grs = rows[0]
    assert grs["params_pct"] == pytest.approx({"mean": 20.0, "min": 10.0, "max": 30.0})
    assert grs["flops_pct"] == pytest.approx({"mean": 20.0, "min": 10.0, "max": 30.0})
    assert grs["test_loss_pp"] == pytest.approx({"mean": 0.0, "min": -1.0, "max": 1.0})
    assert grs["tq_nonzero_pct"] == pytest.approx({"mean": 4.5, "min": 4.0, "max": 5.0})
    assert grs["search_seconds"]["mean"] == 3.0 and grs["retrainings"]["mean"] == 40
    assert grs["sessions"] == ["M1_S1", "M2_S1"]
    assert rows[2]["test_loss_pp"]["mean"] == pytest.approx(10.0)
    t = {x["target"]: x["met"] for x in targets(rows, "shuffled")}
    assert t["GRS on nn1 keeps <= 40% params at <= 1.5 pp test loss (means)"] is True
    assert t["GRS+TQ on nn1: non-zero params <= 6% (mean)"] is True
    assert t["GRS keeps fewer params than RRS on nn1 (means)"] is True  # 20% < 50%
    assert t["GRS keeps fewer params than NWM on nn1 (means)"] is None  # failed: no row
    assert t["GRS keeps fewer params than RRS on cnn1 (means)"] is None
    worse = summarize(records[:2] + [_rec("shuffled", "nn1", "rrs", 1000, 150, 0.98, 0.98, 9)])
    assert {x["target"]: x["met"] for x in targets(worse)}[
        "GRS keeps fewer params than RRS on nn1 (means)"] is False
    md = markdown({"rows": rows, "jobs_ok": 4, "jobs_failed": 1,
                   "targets": {s: targets(rows, s) for s in ("shuffled", "blocked")}})
    assert "| nn1 | GRS | 2 | 0.00 [-1.00, 1.00] | 20.0 [10.0, 30.0] |" in md
    assert stats([]) is None and math.isclose(stats([1, 2, 6])["mean"], 3.0)


def test_read_records_keeps_the_last_record_of_a_key(tmp_path):
    path = tmp_path / "jobs.jsonl"
    S.append_record(path, {"key": "a", "status": "error"})
    S.append_record(path, {"key": "b", "status": "ok"})
    S.append_record(path, {"key": "a", "status": "ok"})
    with open(path, "a") as fh:
        fh.write('{"key": "c", "sta')  # cut by a kill
    assert {r["key"]: r["status"] for r in S.read_records(path)} == {"a": "ok", "b": "ok"}


def test_settings_refuse_bad_values_naming_them():
    with pytest.raises(ConfigError, match="methods"):
        S.SuiteSettings(methods=("grs", "jgrs_missing"))
    with pytest.raises(ConfigError, match="sessions"):
        S.SuiteSettings(sessions=("M9_S1",))
    with pytest.raises(ConfigError, match="trials"):
        S.SuiteSettings(trials=0)
    s = S.SuiteSettings(models=("nn1",), trials=2, prune=TINY)
    assert S.SuiteSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    jobs = S.plan_jobs(s)
    assert len(jobs) == 2 * 9 * 2 * 3 and jobs[0].key == "nn1/shuffled/M1_S1/t0/grs"
    assert jobs[0].settings(TINY).metric == "accuracy"
    assert jobs[-1].settings(TINY).split == "blocked" and jobs[-1].settings(TINY).seed == 1


def test_cli_tables_only_reads_the_records_and_the_recorded_settings(tmp_path, capsys):
    from neurogrs.cli import main

    s = S.SuiteSettings(models=("nn1",), sessions=("M1_S1", "M2_S1"), prune=TINY)
    (tmp_path / "suite.json").write_text(json.dumps({"schema": S.SUITE_SCHEMA, **s.to_dict()}))
    for rec in (_rec("shuffled", "nn1", "grs", 1000, 300, 0.98, 0.975, 50),
                _rec("shuffled", "nn1", "nwm", 1000, 700, 0.98, 0.97, 500)):
        S.append_record(tmp_path / "jobs.jsonl", rec)
    assert main(["bench", "pruning", "--tables-only", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "GRS keeps fewer params than NWM on nn1 (means): 30.0% vs 70.0% -> met" in out
    tables = json.loads((tmp_path / "tables.json").read_text())
    assert tables["settings"]["prune"]["retrain_epochs"] == 1  # from suite.json, not defaults
    assert tables["rows"][0]["test_loss_pp"]["mean"] == pytest.approx(0.5)


def test_grs_vs_jgrs_pairs_the_same_jobs():
    from neurogrs.bench.suite_tables import jgrs_vs_grs

    records = [  # two sessions with both methods, one GRS job without its JGRS pair
        _rec("shuffled", "nn1", "grs", 1000, 100, 0.98, 0.97, 40, 20.0, 90, "M1_S1"),
        _rec("shuffled", "nn1", "jgrs", 1000, 50, 0.98, 0.96, 40, 2.0, 6, "M1_S1"),
        _rec("shuffled", "nn1", "grs", 1000, 200, 0.98, 0.98, 40, 10.0, 30, "M2_S1"),
        _rec("shuffled", "nn1", "jgrs", 1000, 200, 0.98, 0.98, 40, 3.0, 4, "M2_S1"),
        _rec("shuffled", "nn1", "grs", 1000, 900, 0.98, 0.98, 40, 500.0, 500, "M3_S1"),
        _rec("shuffled", "nn1", "rrs", 1000, 900, 0.98, 0.98, 40, 5.0, 5, "M1_S1"),
    ]
    [v] = jgrs_vs_grs(records)
    assert (v["split"], v["model"], v["pairs"]) == ("shuffled", "nn1", 2)
    assert v["wall_speedup"] == pytest.approx(30.0 / 5.0)
    assert v["retraining_speedup"] == pytest.approx(120 / 10)
    assert v["params_pct_diff"] == pytest.approx(((5.0 - 10.0) + 0.0) / 2)
    assert v["params_ratio_geomean"] == pytest.approx(math.sqrt(0.5))
    assert v["test_loss_pp_diff"] == pytest.approx((1.0 + 0.0) / 2)
    rows = summarize(records)
    md = markdown({"rows": rows, "jobs_ok": 6, "jobs_failed": 0, "jgrs_vs_grs": [v],
                   "targets": {s: targets(rows, s) for s in ("shuffled", "blocked")}})
    assert "| shuffled | nn1 | 2 | 6.0x | 12.0x | -2.5 | 0.71 | +0.50 |" in md


def test_difficulty_is_recorded_and_resume_refuses_another(tmp_path):
    s = S.SuiteSettings(models=("nn1",), difficulty="hard", prune=TINY)
    assert S.SuiteSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="difficulty must be one of.*'easy'"):
        S.SuiteSettings(difficulty="easy")
    S._check_resume(tmp_path, s, resume=False)
    with pytest.raises(ConfigError, match="difficulty='hard', now 'standard'"):
        S._check_resume(tmp_path, replace(s, difficulty="standard"), resume=True)


def test_hard_suite_sessions_differ_from_standard_ones(tmp_path):
    from neurogrs.formats import load_session

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    std = S.suite_sessions(tmp_path / "a", 600, "standard")
    hard = S.suite_sessions(tmp_path / "b", 600, "hard")
    a, b = load_session(std / "M3_S1.npz"), load_session(hard / "M3_S1.npz")
    assert a.traces.shape == b.traces.shape and not (a.traces == b.traces).all()


def test_cli_quick_default_and_its_overrides(tmp_path, capsys):
    from neurogrs.cli import main

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main(["bench", "pruning", "--tables-only", "--out", str(tmp_path / "a")]) == 0
    s = json.loads((tmp_path / "a" / "tables.json").read_text())["settings"]
    assert s["models"] == ["nn1", "nn2", "cnn1", "cnn2"]
    assert s["methods"] == ["grs", "jgrs", "rrs", "nwm"]
    assert s["splits"] == ["shuffled"] and s["sessions"] == list(S.QUICK_SESSIONS)
    assert (s["prune"]["retrain_epochs"], s["prune"]["initial_epochs"]) == (5, 50)
    assert s["difficulty"] == "standard" and s["trials"] == 1
    cfg = tmp_path / "c.toml"
    cfg.write_text("tau_s = 0.97\ninitial_epochs = 20\n")
    assert main(["bench", "pruning", "--tables-only", "--out", str(tmp_path / "b"),
                 "--sessions", "all", "--config", str(cfg), "--retrain-epochs", "50",
                 "--difficulty", "hard"]) == 0
    s = json.loads((tmp_path / "b" / "tables.json").read_text())["settings"]
    assert s["sessions"] == [] and s["difficulty"] == "hard"  # [] = all nine
    assert (s["prune"]["retrain_epochs"], s["prune"]["initial_epochs"]) == (50, 20)
    assert s["prune"]["tau_s"] == 0.97


def test_tq_readings_rebuild_the_jobs_data_and_match_its_own_stage_t(tiny_suite):
    from neurogrs.bench.tq_readings import readings_for_job

    settings, out, _ = tiny_suite
    rec = _lines(out / "jobs.jsonl")[0]
    prune = rec_settings = S.Job(rec["model"], rec["split"], rec["session"], rec["trial"],
                                 rec["method"]).settings(settings.prune)
    got = readings_for_job(rec, out / "sessions", prune, ("layerwise", "global", "per_layer"))
    assert list(got) == ["layerwise", "global", "per_layer"]
    own = got[rec_settings.stage_t]  # the job ran the default reading: the same numbers
    for key in ("nonzero_params", "distinct_values", "test_metric", "val_metric", "theta",
                "decimals"):
        assert own[key] == rec["tq"][key], key
    for v in got.values():
        assert v["val_metric"] >= 0.995 * 0.99 * rec["pruned"]["val_metric"] - 1e-12
    with pytest.raises(ConfigError, match="not the job's data"):
        readings_for_job(rec, out / "sessions", replace(prune, seed=prune.seed + 1),
                         ("layerwise",))


def test_readings_table_and_distinct_values_target():
    from neurogrs.bench.suite_tables import summarize_readings, terminal

    a = _rec("shuffled", "nn1", "grs", 1000, 100, 0.98, 0.97, 40)
    b = _rec("shuffled", "nn1", "grs", 2000, 600, 0.90, 0.91, 120, session="M2_S1")
    for r, dv in ((a, 10), (b, 60)):
        r["tq"]["distinct_values"] = dv
        r["tq_readings"] = {
            "layerwise": {**r["tq"], "val_metric": 0.9, "test_metric": r["tq"]["test_metric"]},
            "per_layer": {**r["tq"], "nonzero_params": r["tq"]["nonzero_params"] // 2,
                          "distinct_values": dv, "val_metric": 0.89,
                          "test_metric": r["tq"]["test_metric"] - 0.01}}
    rows = summarize([a, b])
    assert rows[0]["tq_distinct_pct"] == pytest.approx({"mean": 2.0, "min": 1.0, "max": 3.0})
    t = {x["target"]: (x["measured"], x["met"]) for x in targets(rows)}
    assert t["GRS+TQ on nn1: distinct weight values <= 6% of the initial params (mean; what "
             "the paper's Params_U counts)"] == ("2.0%", True)
    readings = summarize_readings([a, b])
    assert [(r["reading"], r["jobs"]) for r in readings] == [("layerwise", 2), ("per_layer", 2)]
    assert readings[1]["nonzero_pct"] == pytest.approx({"mean": 2.5, "min": 2.0, "max": 3.0})
    assert readings[1]["val_loss_pp"] == pytest.approx({"mean": 1.0, "min": 1.0, "max": 1.0})
    assert readings[1]["test_loss_pp"] == pytest.approx({"mean": 1.0, "min": 0.0, "max": 2.0})
    tables = {"rows": rows, "readings": readings, "jobs_ok": 2, "jobs_failed": 0,
              "targets": {s: targets(rows, s) for s in ("shuffled", "blocked")}}
    md = markdown(tables)
    assert "| nn1 | GRS | per_layer | 2 | 2.5 [2.0, 3.0] | 2.0 [1.0, 3.0] | 1.00 [1.00, 1.00] |" \
        in md
    assert "Stage T readings, same structured models (shuffled)" in terminal(tables)
    assert summarize_readings([_rec("shuffled", "nn1", "grs", 10, 5, 0.9, 0.9, 2)]) == []


def test_cli_tq_readings_and_stage_t_reach_the_suite_settings(tmp_path, capsys):
    from neurogrs.cli import main

    code = main(["bench", "pruning", "--suite", "--out", str(tmp_path / "s"),
                 "--tq-readings", "layerwise,bogus"])
    assert code == 2
    err = capsys.readouterr().err
    assert "tq_readings must be distinct names among ('layerwise', 'global', 'per_layer')" in err
    assert "bogus" in err and not (tmp_path / "s" / "jobs.jsonl").exists()
    s = S.SuiteSettings(tq_readings=["global", "per_layer"],
                        prune=replace(TINY, stage_t="global"))
    assert s.tq_readings == ("global", "per_layer")
    assert S.SuiteSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    out = tmp_path / "t"
    out.mkdir()
    assert main(["bench", "pruning", "--tables-only", "--out", str(out), "--stage-t",
                 "per_layer"]) == 0  # no suite.json: the flags' settings
    tables = json.loads((out / "tables.json").read_text())
    assert tables["settings"]["prune"]["stage_t"] == "per_layer"


def test_ctrl_c_inside_a_reading_stops_the_readings(tiny_suite, monkeypatch):
    from neurogrs.bench.tq_readings import readings_for_job
    from neurogrs.pruning import tq as tq_module

    settings, out, _ = tiny_suite
    rec = _lines(out / "jobs.jsonl")[0]
    prune = S.Job(rec["model"], rec["split"], rec["session"], rec["trial"],
                  rec["method"]).settings(settings.prune)

    real, calls = tq_module.decision_metric, []

    def interrupted(*args, **kwargs):  # Ctrl-C arriving inside Stage T's sweeps
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tq_module, "decision_metric", interrupted)
    with pytest.raises(KeyboardInterrupt):  # before the fix: a truncated reading, recorded
        readings_for_job(rec, out / "sessions", prune, ("layerwise",))
