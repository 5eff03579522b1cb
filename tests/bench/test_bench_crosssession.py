"""`neurogrs bench crosssession`: a quick real run (one mouse, 1 epoch), the tables' numbers."""
import json

import numpy as np
import pytest

from neurogrs.bench.crosssession import CrossSessionSettings, default_real_session
from neurogrs.bench.crosssession_tables import summary_rows
from neurogrs.errors import ConfigError
from neurogrs.formats import save_session
from neurogrs.simulate import simulate_session, suite_session
from neurogrs.zoo import ZOO


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """nn1 and nn1_alias (a zoo entry added by name only) on M3, 600 frames, 1 epoch;
    a small simulated file stands in for the real session (forward split over 2 chunks)."""
    from neurogrs.cli import main

    mp = pytest.MonkeyPatch()
    mp.setitem(ZOO, "nn1_alias", ZOO["nn1"])
    d = tmp_path_factory.mktemp("xs")
    real = save_session(simulate_session(n_neurons=31, n_frames=600, seed=7), d / "real.npz")
    out = d / "out"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["bench", "crosssession", "--models", "nn1,nn1_alias,missing.keras", "--mice", "M3",
                     "--frames", "600", "--epochs", "1", "--real-session", str(real),
                     "--real-blocks", "2", "--out", str(out)])
    yield code, buf.getvalue(), out, real
    mp.undo()


def test_quick_run_writes_json_and_markdown_with_the_table(quick):
    code, text, out, _ = quick
    assert code == 0
    result = json.loads((out / "crosssession.json").read_text())
    assert result["schema"] == "neurogrs.bench-crosssession/1"
    assert list(result["models"]) == ["nn1", "nn1_alias", "missing.keras"]
    md = (out / "crosssession.md").read_text()
    for name in result["models"]:
        assert f"## {name}" in md and f"\n{name}\n" in text
    # a candidate that cannot train is named with its error; the others ran
    assert "M3_S1" in result["models"]["missing.keras"]["error"]
    assert "FAILED: M3_S1" in text and "| missing.keras | failed |" in md
    assert "summary" in text and "vs nn1" in text and "vs nn1" in md
    nn1 = result["models"]["nn1"]
    pooled = f"{nn1['pooled']['balanced_accuracy']:.3f}"
    assert f"| nn1 | {nn1['pooled_within']['balanced_accuracy']:.3f} | {pooled} |" in md


def test_rows_are_the_decoded_sessions_and_pooled_from_their_counts(quick):
    _, _, out, _ = quick
    result = json.loads((out / "crosssession.json").read_text())
    s2, s3 = (suite_session("M3", k, 600) for k in (1, 2))
    for rec in (result["models"][m] for m in ("nn1", "nn1_alias")):
        m = rec["mice"]["M3"]
        rows = m["cross"]["sessions"]
        assert [r["session"] for r in rows] == ["M3_S2", "M3_S3"]
        for r, s in zip(rows, (s2, s3)):
            assert r["frames"] == 600 and r["session_sha256"] == s.digest()
            assert r["best_constant_accuracy"] == pytest.approx(
                np.bincount(s.labels).max() / s.n_frames)
        summed = np.asarray(rows[0]["confusion"]) + np.asarray(rows[1]["confusion"])
        assert m["cross"]["pooled"]["confusion"] == summed.tolist()
        assert rec["pooled"]["confusion"] == summed.tolist()  # one mouse: the same counts
        assert m["within"]["frames"] == 60  # S1's blocked test part (10% of 600)


def test_a_zoo_name_added_later_slots_in(quick):
    _, _, out, _ = quick
    result = json.loads((out / "crosssession.json").read_text())
    nn1, alias = result["models"]["nn1"], result["models"]["nn1_alias"]
    # same blueprint, same seed: the same decoder, the same numbers
    assert alias["pooled"]["confusion"] == nn1["pooled"]["confusion"]
    assert alias["real"]["test"]["confusion"] == nn1["real"]["test"]["confusion"]
    rows = {r[0]: r for r in summary_rows(result)}
    assert rows["nn1"][5] == rows["nn1_alias"][5] == "+0.000"


def test_summary_difference_to_nn1_and_missing_parts():
    def rec(sim, real=None):
        row = {"balanced_accuracy": sim, "best_constant_balanced_accuracy": 0.5,
               "margin": sim - 0.5}
        r = {"pooled": row, "pooled_within": row, "train_seconds": 1.0}
        if real is not None:
            r["real"] = {"test": {"balanced_accuracy": real, "best_constant_accuracy": 0.8,
                                  "margin": real - 0.5}, "train_seconds": 2.0}
        return r

    result = {"models": {"nn1": rec(0.70, 0.60), "nn1_traces": rec(0.78), "cnn1": rec(0.65, 0.64)}}
    rows = {r[0]: r for r in summary_rows(result)}
    assert rows["nn1_traces"][5] == "+0.080" and rows["nn1_traces"][9] == "n/a"
    assert rows["cnn1"][5] == "-0.050" and rows["cnn1"][9] == "+0.040"
    assert rows["cnn1"][10] == "3.0"
    del result["models"]["nn1"]
    assert {r[5] for r in summary_rows(result)} == {"n/a"}


def test_real_session_is_split_forward_in_time_and_its_test_part_reported(quick):
    _, _, out, real = quick
    result = json.loads((out / "crosssession.json").read_text())
    assert result["real"]["path"] == str(real) and result["real"]["blocks"] == 2
    r = result["models"]["nn1"]["real"]
    # 2 chunks of 300 frames, each 240 / 30 / 30
    assert r["split"]["train"] == 480 and r["split"]["val"] == 60 and r["test"]["frames"] == 60


def test_settings_refuse_unknown_models_and_mice_and_round_trip():
    with pytest.raises(ConfigError, match="nn9"):
        CrossSessionSettings(models=("nn9",))
    with pytest.raises(ConfigError, match=r"mice must be distinct names among \['M1', 'M2', 'M3'\]"):
        CrossSessionSettings(mice=("M4",))
    with pytest.raises(ConfigError, match=r"real_blocks must be an integer in \[1, 1000\]"):
        CrossSessionSettings(real_blocks=0)
    s = CrossSessionSettings(models=("nn1", "cnn2"), mice=("M2",), epochs=3)
    assert CrossSessionSettings.from_dict(s.to_dict()) == s


def test_default_real_session_is_the_shared_nelpy_file(nelpy_path):
    assert default_real_session().resolve() == nelpy_path.resolve()
