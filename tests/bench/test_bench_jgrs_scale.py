"""`python -m neurogrs.bench.jgrs_scale` on a tiny real run: side by side, compiles counted."""
import json

from neurogrs.bench import jgrs_scale
from neurogrs.pruning.settings import PruneSettings

TINY = PruneSettings(initial_epochs=3, retrain_epochs=2, tau_s=0.97, split="shuffled",
                     metric="accuracy")


def test_warm_searches_compile_nothing_and_cold_ones_pay_their_own():
    warm = jgrs_scale.run_seed(40, 12, 5, TINY, frames=600)
    assert [r["method"] for r in warm["runs"]] == ["jgrs", "grs"]
    assert warm["warm_up_seconds"] > 0
    assert [r["compiles"] for r in warm["runs"]] == [0, 0]
    cold = jgrs_scale.run_seed(40, 12, 5, TINY, frames=600, cold=True)
    # each: the one-slot program (jumps; GRS's last iterations with one layer left) and
    # the one-per-layer program (GRS iterations), nothing per iteration
    jgrs, grs = cold["runs"]
    assert 1 <= jgrs["compiles"] <= 2 and 1 <= grs["compiles"] <= 2
    # the compile cache does not change results
    assert [r["structure"] for r in cold["runs"]] == [r["structure"] for r in warm["runs"]]


def test_cli_writes_runs_and_ratios(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("initial_epochs = 3\nretrain_epochs = 2\ntau_s = 0.97\n")
    out = tmp_path / "r.json"
    assert jgrs_scale.main(["--neurons", "40", "--frames", "600", "--first-width", "12",
                            "--seeds", "1", "--config", str(cfg), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [s["seed"] for s in result["seeds"]] == [1]
    summary = result["summary"]
    total = {m: sum(r["retrainings"] for s in result["seeds"] for r in s["runs"]
                    if r["method"] == m) for m in ("grs", "jgrs")}
    assert summary["retrainings_grs_over_jgrs"] == total["grs"] / total["jgrs"]
