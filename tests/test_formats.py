"""Session validation and session file formats: every bad input names its problem."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurogrs.errors import ConfigError, FormatError, SessionError
from neurogrs.formats import (
    FINE_MOTION_RULE,
    NELPY_RULE,
    SpeedLabelRule,
    gaussian_smooth,
    labels_from_speed,
    load_csv_session,
    load_session,
    save_csv_session,
    save_session,
)
from neurogrs.session import Session


def _session(T=60, N=5, seed=0, positions=True, speed=True):
    rng = np.random.default_rng(seed)
    traces = np.maximum(rng.normal(0, 1, (T, N)), 0).astype(np.float32)
    labels = (np.arange(T) // max(1, T // 6)) % 2
    return Session(
        traces=traces, labels=labels, fs=10.0,
        speed=rng.uniform(0, 5, T).astype(np.float32) if speed else None,
        positions=rng.uniform(0, 512, (N, 2)).astype(np.float32) if positions else None,
        meta={"source": "test", "label_names": ["other", "fine_motion"]},
    )


# ----------------------------------------------------------------- Session validation
GOOD_T = np.zeros((20, 3), np.float32)
GOOD_L = np.arange(20) % 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(traces=np.zeros(20, np.float32)), r"traces must have 2 dimension"),
        (dict(traces=np.zeros((20, 3, 1), np.float32)), r"traces must have 2 dimension"),
        (dict(labels=np.arange(19) % 2), r"labels has 19 frames but traces has 20"),
        (dict(labels=(np.arange(40) % 2).reshape(20, 2)), r"labels must be 1-D"),
        (dict(traces=np.where(np.eye(20, 3) > 0, np.nan, 0).astype(np.float32)), r"NaN/Inf"),
        (dict(traces=np.full((20, 3), np.inf, np.float32)), r"traces contains 60 NaN/Inf"),
        (dict(traces=np.zeros((0, 3), np.float32), labels=np.zeros(0, int)), r"T = 0"),
        (dict(traces=np.zeros((20, 0), np.float32)), r"N = 0"),
        (dict(labels=np.ones(20, int)), r"single class"),
        (dict(labels=np.full(20, 0.5)), r"whole numbers"),
        (dict(labels=-(np.arange(20) % 2)), r">= 0"),
        (dict(positions=np.zeros((4, 2))), r"positions has 4 neurons but traces has 3"),
        (dict(positions=np.zeros((3, 3))), r"positions must be \[N, 2\]"),
        (dict(positions=np.full((3, 2), np.nan)), r"positions contains"),
        (dict(fs=0.0), r"fs must be > 0"),
        (dict(fs=-10.0), r"fs must be > 0"),
        (dict(fs=float("nan")), r"fs must be > 0"),
        (dict(speed=np.zeros(19)), r"speed has 19 frames"),
        (dict(speed=np.full(20, np.nan)), r"speed contains"),
        (dict(traces=np.array([["a"] * 3] * 20)), r"traces must be numeric"),
        (dict(meta={"x": object()}), r"JSON-serialisable"),
    ],
)
def test_session_validation_names_the_problem(kwargs, match):
    args = dict(traces=GOOD_T, labels=GOOD_L, fs=10.0)
    args.update(kwargs)
    with pytest.raises(SessionError, match=match):
        Session(**args)


def test_a_valid_session_is_read_only_float32():
    s = _session()
    assert s.traces.dtype == np.float32 and s.labels.dtype == np.int64
    with pytest.raises(ValueError):
        s.traces[0, 0] = 1.0


# ----------------------------------------------------------------- native npz
def test_npz_round_trip(tmp_path):
    s = _session()
    p = save_session(s, tmp_path / "s.npz")
    r = load_session(p)
    np.testing.assert_array_equal(r.traces, s.traces)
    np.testing.assert_array_equal(r.labels, s.labels)
    np.testing.assert_array_equal(r.speed, s.speed)
    np.testing.assert_array_equal(r.positions, s.positions)
    assert r.fs == s.fs and r.digest() == s.digest()
    assert r.meta["label_names"] == ["other", "fine_motion"]


def test_npz_round_trip_without_optional_arrays(tmp_path):
    s = _session(positions=False, speed=False)
    r = load_session(save_session(s, tmp_path / "s.npz"))
    assert r.positions is None and r.speed is None
    assert r.digest() == s.digest()


def test_npz_with_object_arrays_is_refused(tmp_path):
    p = tmp_path / "evil.npz"
    np.savez(p, traces=np.array([object(), 1], dtype=object), labels=GOOD_L, fs=10.0)
    with pytest.raises(FormatError, match="pickled.*refused"):
        load_session(p)


@pytest.mark.parametrize("missing", ["traces", "fs"])
def test_npz_missing_key_names_key_and_keys_present(tmp_path, missing):
    arrays = dict(traces=GOOD_T, labels=GOOD_L, fs=np.float64(10.0))
    del arrays[missing]
    p = tmp_path / "s.npz"
    np.savez(p, **arrays)
    with pytest.raises(FormatError, match=rf"missing key '{missing}'; keys present: "):
        load_session(p)


def test_npz_without_labels_and_speed(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, traces=GOOD_T, fs=10.0)
    with pytest.raises(FormatError, match=r"no 'labels' and no 'speed'.*keys present: fs, traces"):
        load_session(p)


def test_npz_bad_meta_json(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, traces=GOOD_T, labels=GOOD_L, fs=10.0, meta=np.asarray("{not json"))
    with pytest.raises(FormatError, match=r"'meta' is not valid JSON"):
        load_session(p)


def test_npz_meta_must_be_an_object(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, traces=GOOD_T, labels=GOOD_L, fs=10.0, meta=np.asarray("[1, 2]"))
    with pytest.raises(FormatError, match=r"JSON object"):
        load_session(p)


def test_npz_fs_must_be_a_number(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, traces=GOOD_T, labels=GOOD_L, fs=np.asarray("ten"))
    with pytest.raises(FormatError, match=r"'fs' must be a numeric scalar"):
        load_session(p)


def test_npz_invalid_content_is_a_session_error(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, traces=GOOD_T, labels=np.ones(20, int), fs=10.0)
    with pytest.raises(SessionError, match="single class"):
        load_session(p)


def test_not_a_zip_file(tmp_path):
    p = tmp_path / "s.npz"
    p.write_bytes(b"hello, not a zip archive")
    with pytest.raises(FormatError, match="not a readable .npz"):
        load_session(p)


def test_missing_file_and_unknown_suffix_and_nwb(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        load_session(tmp_path / "nope.npz")
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(FormatError, match="unknown session format .h5"):
        load_session(tmp_path / "x.h5")
    (tmp_path / "x.nwb").write_bytes(b"")
    with pytest.raises(FormatError, match=r"neurogrs\[nwb\]"):
        load_session(tmp_path / "x.nwb")


# ----------------------------------------------------------------- speed-derived labels
def test_labels_from_speed_band_and_threshold():
    speed = np.array([0.0, 0.1, 0.2, 0.5, 1.9, 2.0, 5.0])
    np.testing.assert_array_equal(labels_from_speed(speed, 10.0), [0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(labels_from_speed(speed, 10.0, low=1.0, high=None),
                                  [0, 0, 0, 0, 1, 1, 1])


def test_labels_from_speed_smoothing_removes_a_one_frame_spike():
    speed = np.zeros(101)
    speed[50] = 1.0
    assert labels_from_speed(speed, 10.0, 0.2, 2.0)[50] == 1
    assert labels_from_speed(speed, 10.0, 0.2, 2.0, smooth_s=0.5).sum() == 0


def test_gaussian_smooth_preserves_constants_and_mass():
    np.testing.assert_allclose(gaussian_smooth(np.full(50, 3.0), 2.5), 3.0, rtol=1e-12)
    x = np.zeros(200)
    x[100] = 1.0
    y = gaussian_smooth(x, 3.0)
    assert abs(y.sum() - 1.0) < 1e-9 and y.argmax() == 100
    assert gaussian_smooth(np.ones(1), 5.0).tolist() == [1.0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(low=-1.0), r"low = -1.0"),
        (dict(low=1.0, high=0.5), r"high = 0.5: must be > low"),
        (dict(smooth_s=-1.0), r"smooth_s = -1.0"),
        (dict(units="furlongs/fortnight"), r"speed units 'furlongs/fortnight'"),
        (dict(low=float("nan")), r"low = nan"),
    ],
)
def test_speed_rule_validates(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SpeedLabelRule(**kwargs)


def test_speed_rule_unit_conversion():
    r = FINE_MOTION_RULE.converted_to("mm/s")
    assert (r.low, r.high) == pytest.approx((2.0, 20.0)) and r.units == "mm/s"
    with pytest.raises(FormatError, match="px/s"):
        FINE_MOTION_RULE.converted_to("pixels/s")
    assert SpeedLabelRule.from_dict(NELPY_RULE.to_dict()) == NELPY_RULE


def test_speed_only_npz_gets_fine_motion_labels(tmp_path):
    speed = np.r_[np.full(10, 0.05), np.full(10, 1.0), np.full(10, 5.0)]
    p = tmp_path / "s.npz"
    np.savez(p, traces=np.ones((30, 2), np.float32), speed=speed, fs=10.0,
             speed_units=np.asarray("cm/s"))
    s = load_session(p)
    np.testing.assert_array_equal(s.labels, np.r_[np.zeros(10), np.ones(10), np.zeros(10)])
    assert s.meta["label_names"] == ["other", "fine_motion"]
    assert "0.2 < speed < 2 cm/s" in s.meta["label_rule"]
    # in m/s: the same rule converted (0.002 < v < 0.02 m/s)
    np.savez(p, traces=np.ones((30, 2), np.float32), speed=speed / 100, fs=10.0,
             speed_units=np.asarray("m/s"))
    np.testing.assert_array_equal(load_session(p).labels, s.labels)


def test_speed_only_npz_single_class_is_refused(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, traces=np.ones((30, 2), np.float32), speed=np.full(30, 50.0), fs=10.0)
    with pytest.raises(SessionError, match=r"single class.*--label-from-speed"):
        load_session(p)


def test_speed_in_pixels_needs_pixel_thresholds(tmp_path):
    p = tmp_path / "s.npz"
    np.savez(p, traces=np.ones((30, 2), np.float32), speed=np.arange(30.0), fs=10.0,
             speed_units=np.asarray("px/s"))
    with pytest.raises(FormatError, match=r"speed is in px/s.*--speed-units px/s"):
        load_session(p)
    s = load_session(p, label_rule=SpeedLabelRule(10.0, None, "px/s"))
    assert s.labels.sum() == 19


def test_label_rule_overrides_stored_labels(tmp_path):
    s = _session()
    p = save_session(s, tmp_path / "s.npz")
    r = load_session(p, label_rule=SpeedLabelRule(2.5, None, "cm/s"))
    np.testing.assert_array_equal(r.labels, (s.speed > 2.5).astype(int))
    assert r.meta["label_names"] == ["still", "moving"]


def test_nelpy_session_loads_with_moving_vs_still_labels(nelpy_path):
    s = load_session(nelpy_path)
    assert (s.n_frames, s.n_neurons, s.fs) == (19681, 31, 10.0)
    assert s.positions is None and s.speed is not None
    assert s.meta["label_names"] == ["still", "moving"]
    assert s.meta["speed_units"] == "px/s"
    assert s.meta["source"].startswith("nelpy/example-data")
    assert "speed > 10 px/s" in s.meta["label_rule"]
    frac = float(s.labels.mean())
    assert 0.20 < frac < 0.28, frac  # README: moving > 10 px/s in ~24% of bins
    np.testing.assert_array_equal(s.labels, (s.speed > 10.0).astype(int))
    # labels come in runs (bouts of running), not single frames
    runs = np.diff(np.flatnonzero(np.r_[True, np.diff(s.labels) != 0, True]))
    assert runs.mean() > 10


# ----------------------------------------------------------------- CSV layout
def test_csv_round_trip(tmp_path):
    s = _session(T=40, N=6)
    t, b, c = save_csv_session(s, tmp_path, "M7", "D2", "S3")
    assert (t.name, b.name, c.name) == ("TRACES_M7_D2_S3.csv", "BEHAVIOR_M7_D2_S3.csv",
                                        "CELLXY_M7.csv")
    assert len(t.read_text().splitlines()) == 6  # N rows x T columns
    assert len(b.read_text().splitlines()[0].split(",")) == 5
    for r in (load_session(t), load_session(tmp_path, mouse="M7", day="D2", session="S3"),
              load_session(tmp_path)):
        np.testing.assert_array_equal(r.traces, s.traces)
        np.testing.assert_array_equal(r.labels, s.labels)
        np.testing.assert_array_equal(r.positions, s.positions)
        assert r.meta["mouse"] == "M7" and r.meta["day"] == "D2" and r.meta["session"] == "S3"


def test_csv_label_column_is_configurable(tmp_path):
    s = _session(T=40, N=3)
    t, _, _ = save_csv_session(s, tmp_path, label_column=4)
    np.testing.assert_array_equal(load_csv_session(t, label_column=4).labels, s.labels)
    with pytest.raises(SessionError, match="single class"):  # column 2 is all zeros
        load_csv_session(t)
    with pytest.raises(FormatError, match=r"label column 7 requested.*has 5 column"):
        load_csv_session(t, label_column=7)
    with pytest.raises(ConfigError, match="label_column"):
        load_csv_session(t, label_column=-1)


def test_csv_refuses_a_speed_rule(tmp_path):
    t, _, _ = save_csv_session(_session(T=40, N=3), tmp_path)
    with pytest.raises(ConfigError, match="CSV layout has no speed"):
        load_session(t, label_rule=FINE_MOTION_RULE)


def test_csv_without_cellxy_warns_and_has_no_positions(tmp_path):
    t, _, _ = save_csv_session(_session(T=40, N=3, positions=False), tmp_path)
    with pytest.warns(UserWarning, match="CELLXY_M1.csv not found"):
        s = load_csv_session(t)
    assert s.positions is None


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def csv_dir(tmp_path):
    save_csv_session(_session(T=8, N=3), tmp_path, "M1", "D1", "S1")
    return tmp_path


def test_csv_missing_behaviour_names_the_file(csv_dir):
    (csv_dir / "BEHAVIOR_M1_D1_S1.csv").unlink()
    with pytest.raises(FormatError, match=r"behaviour file not found: looked for .*BEHAVIOR_M1_D1_S1.csv"):
        load_session(csv_dir / "TRACES_M1_D1_S1.csv")


def test_csv_missing_traces_names_the_file(tmp_path):
    with pytest.raises(FormatError, match=r"traces file not found: looked for .*TRACES_M2_D1_S1.csv"):
        load_csv_session(tmp_path, mouse="M2", day="D1", session="S1")


def test_csv_directory_needs_a_choice(csv_dir):
    save_csv_session(_session(T=8, N=3), csv_dir, "M1", "D1", "S2")
    with pytest.raises(FormatError, match=r"cannot pick one session.*TRACES_M1_D1_S1.csv"):
        load_session(csv_dir)
    assert load_session(csv_dir, session="S2").meta["session"] == "S2"


def test_csv_bad_traces_file_name(tmp_path):
    p = _write(tmp_path / "data.csv", "1,2\n")
    with pytest.raises(FormatError, match=r"TRACES_<mouse>_<day>_<session>.csv"):
        load_session(p)


def test_csv_ragged_rows(csv_dir):
    _write(csv_dir / "TRACES_M1_D1_S1.csv", "1,2,3,4,5,6,7,8\n1,2,3\n1,2,3,4,5,6,7,8\n")
    with pytest.raises(FormatError, match=r"ragged rows: row 2 has 3 columns, earlier rows have 8"):
        load_session(csv_dir / "TRACES_M1_D1_S1.csv")


def test_csv_non_numeric_cell_names_row_and_column(csv_dir):
    _write(csv_dir / "TRACES_M1_D1_S1.csv", "1,2,3,4,5,6,7,8\n1,2,x,4,5,6,7,8\n1,2,3,4,5,6,7,8\n")
    with pytest.raises(FormatError, match=r"non-numeric cell 'x' at row 2, column 3"):
        load_session(csv_dir / "TRACES_M1_D1_S1.csv")


def test_csv_header_row_is_non_numeric(csv_dir):
    p = csv_dir / "BEHAVIOR_M1_D1_S1.csv"
    _write(p, "a,b,c,d,e\n" + p.read_text())
    with pytest.raises(FormatError, match=r"BEHAVIOR_M1_D1_S1.csv: non-numeric cell 'a' at row 1, column 1"):
        load_session(csv_dir / "TRACES_M1_D1_S1.csv")


def test_csv_non_binary_behaviour(csv_dir):
    p = csv_dir / "BEHAVIOR_M1_D1_S1.csv"
    rows = p.read_text().splitlines()
    rows[3] = "0,0,2,0,0"
    _write(p, "\n".join(rows) + "\n")
    with pytest.raises(FormatError, match=r"must be binary.*found 2 at row 4, column 3"):
        load_session(csv_dir / "TRACES_M1_D1_S1.csv")


def test_csv_frame_count_mismatch(csv_dir):
    p = csv_dir / "BEHAVIOR_M1_D1_S1.csv"
    _write(p, "\n".join(p.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(FormatError, match=r"frame count mismatch: .* 8 columns .* 7 rows"):
        load_session(csv_dir / "TRACES_M1_D1_S1.csv")


def test_csv_neuron_count_mismatch_with_cellxy(csv_dir):
    _write(csv_dir / "CELLXY_M1.csv", "1,2\n3,4\n")
    with pytest.raises(FormatError, match=r"neuron count mismatch: .* 3 rows .* CELLXY_M1.csv has 2"):
        load_session(csv_dir / "TRACES_M1_D1_S1.csv")


def test_csv_cellxy_column_count(csv_dir):
    _write(csv_dir / "CELLXY_M1.csv", "1,2,3\n3,4,5\n5,6,7\n")
    with pytest.raises(FormatError, match=r"CELLXY_M1.csv: expected 2 columns"):
        load_session(csv_dir / "TRACES_M1_D1_S1.csv")


def test_csv_empty_file(csv_dir):
    _write(csv_dir / "TRACES_M1_D1_S1.csv", "")
    with pytest.raises(FormatError, match=r"TRACES file is empty"):
        load_session(csv_dir / "TRACES_M1_D1_S1.csv")


def test_csv_writer_refuses_multiclass_and_bad_ids(tmp_path):
    s = Session(traces=np.zeros((6, 2)), labels=[0, 1, 2, 0, 1, 2])
    with pytest.raises(SessionError, match="binary labels only"):
        save_csv_session(s, tmp_path)
    with pytest.raises(ConfigError, match="mouse"):
        save_csv_session(_session(), tmp_path, mouse="M_1")


# ----------------------------------------------------------------- CLI
def test_cli_inspect_and_session_options(tmp_path, capsys, nelpy_path):
    from neurogrs.cli import main

    p = save_session(_session(), tmp_path / "s.npz")
    assert main(["inspect", str(p), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 60 and info["neurons"] == 5 and info["positions"] is True
    assert main(["inspect", str(nelpy_path)]) == 0
    out = capsys.readouterr().out
    assert "still: 14943" in out and "positions no" in out
    assert main(["inspect", str(nelpy_path), "--label-from-speed", "1", "--speed-units", "px/s",
                 "--smooth-s", "0.3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label_rule"].startswith("1 if speed > 1 px/s")
    # cm/s thresholds on a px/s session: a clear error, exit code 2
    assert main(["inspect", str(nelpy_path), "--label-from-speed", "0.2", "2"]) == 2
    assert "--speed-units px/s" in capsys.readouterr().err
    assert main(["inspect", str(p), "--smooth-s", "1"]) == 2
    assert "need --label-from-speed" in capsys.readouterr().err


def test_csv_directory_error_names_the_flag(csv_dir):
    save_csv_session(_session(T=8, N=3), csv_dir, "M1", "D1", "S2")
    with pytest.raises(FormatError, match=r"--csv-id MOUSE DAY SESSION"):
        load_session(csv_dir)


def test_csv_directory_without_traces_files_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(FormatError) as err:
        load_session(tmp_path)
    text = str(err.value)
    assert "no TRACES_<mouse>_<day>_<session>.csv file" in text
    assert "0 match" not in text and "give mouse" not in text


def test_csv_id_disagreeing_with_an_explicit_traces_file_is_refused(csv_dir):
    t = csv_dir / "TRACES_M1_D1_S1.csv"
    with pytest.raises(ConfigError, match=r"--csv-id M1 D1 S9.*TRACES_M1_D1_S1.csv"):
        load_session(t, mouse="M1", day="D1", session="S9")
    assert load_session(t, mouse="M1", day="D1", session="S1").meta["session"] == "S1"


def test_csv_id_with_an_npz_file_is_refused(tmp_path):
    p = save_session(_session(), tmp_path / "s.npz")
    with pytest.raises(ConfigError, match=r"--csv-id.*CSV layout.*s\.npz"):
        load_session(p, mouse="M1", day="D1", session="S1")
