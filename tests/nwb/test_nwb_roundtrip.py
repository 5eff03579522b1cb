"""Session -> NWB -> session is the same session (traces float32 exact, labels, centroids,
fs, speed, label names); `neurogrs convert` from .npz, the CSV layout and NWB; `inspect`
lists an NWB file's series."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pynwb", reason="the 'nwb' extra (make test installs it)")

import nwb_builders as B  # noqa: E402

from neurogrs.cli import main  # noqa: E402
from neurogrs.errors import FormatError  # noqa: E402
from neurogrs.formats import load_session, save_csv_session, save_session  # noqa: E402
from neurogrs.nwb import nwb_catalog, save_nwb_session  # noqa: E402
from neurogrs.nwb_write import bilinear_pixel_mask  # noqa: E402
from neurogrs.session import Session  # noqa: E402
from neurogrs.simulate import simulate_session  # noqa: E402


def _same(a: Session, b: Session) -> None:
    np.testing.assert_array_equal(b.traces, a.traces)
    assert b.traces.dtype == np.float32
    np.testing.assert_array_equal(b.labels, a.labels)
    assert b.fs == a.fs
    if a.positions is None:
        assert b.positions is None
    else:
        np.testing.assert_array_equal(b.positions, a.positions)
    if a.speed is not None:
        np.testing.assert_array_equal(b.speed, a.speed)
    assert b.label_names == a.label_names
    assert b.digest() == a.digest()


@pytest.fixture(scope="module")
def sim():
    return simulate_session(n_neurons=30, n_frames=400, seed=2, fs=7.5)


def test_simulated_session_round_trips(tmp_path, sim):
    p = save_nwb_session(sim, tmp_path / "sim.nwb")
    back = load_session(p)
    _same(sim, back)
    assert back.meta["nwb"]["behaviour"] == "behavior/BehavioralTimeSeries/labels"
    assert back.meta["nwb"]["positions_from"] == "neurogrs_centroid"
    assert back.meta["simulated"] is True  # the rest of meta travels in the file's notes


def test_round_trip_without_positions_with_negative_ones_and_three_classes(tmp_path):
    rng = np.random.default_rng(5)
    tr = rng.normal(size=(90, 4)).astype(np.float32)
    labels = np.arange(90) % 3
    for positions in (None, np.array([[-3.5, 2.0], [1.25, -7.0], [0.0, 0.0], [9.0, 9.5]])):
        s = Session(traces=tr, labels=labels, fs=20.0, positions=positions,
                    meta={"label_names": ["a", "b", "c"]})
        back = load_session(save_nwb_session(s, tmp_path / "s.nwb", overwrite=True))
        _same(s, back)


def test_written_pixel_masks_hold_the_centroids(tmp_path, sim):
    for x, y in [(3.0, 4.0), (10.25, 0.75), (511.9, 0.001)]:
        rows = np.array(bilinear_pixel_mask(x, y))
        w = rows[:, 2]
        assert (rows[:, :2] >= 0).all()
        assert (w * rows[:, 0]).sum() / w.sum() == pytest.approx(x, abs=1e-9)
        assert (w * rows[:, 1]).sum() / w.sum() == pytest.approx(y, abs=1e-9)
    # other tools see them: the masks alone (no neurogrs column) give the same centroids
    import h5py

    p = save_nwb_session(sim, tmp_path / "m.nwb")
    with h5py.File(p, "r") as h:
        table = h["processing/ophys/ImageSegmentation/PlaneSegmentation"]
        pm, ends = table["pixel_mask"][:], table["pixel_mask_index"][:]
    starts = np.r_[0, ends[:-1]]
    xy = np.array([[np.average(pm["x"][a:b], weights=pm["weight"][a:b]),
                    np.average(pm["y"][a:b], weights=pm["weight"][a:b])]
                   for a, b in zip(starts, ends)])
    np.testing.assert_allclose(xy, sim.positions, atol=1e-3)


def test_save_refuses_to_overwrite(tmp_path, sim):
    p = save_nwb_session(sim, tmp_path / "x.nwb")
    with pytest.raises(FormatError, match="exists; refusing to overwrite"):
        save_nwb_session(sim, p)


def test_convert_npz_csv_nwb(tmp_path, capsys, sim):
    npz = save_session(sim, tmp_path / "sim.npz")
    assert main(["convert", str(npz), str(tmp_path / "a.nwb")]) == 0
    _same(sim, load_session(tmp_path / "a.nwb"))
    # NWB -> npz
    assert main(["convert", str(tmp_path / "a.nwb"), str(tmp_path / "b.npz")]) == 0
    _same(sim, load_session(tmp_path / "b.npz"))
    # the NeuroGRS CSV layout -> NWB
    traces_p, _, _ = save_csv_session(sim, tmp_path / "csv")
    from_csv = load_session(traces_p)
    assert main(["convert", str(traces_p), str(tmp_path / "c.nwb")]) == 0
    _same(from_csv, load_session(tmp_path / "c.nwb"))
    # refusals
    capsys.readouterr()
    assert main(["convert", str(npz), str(tmp_path / "a.nwb")]) == 2
    assert "a.nwb exists: remove it or give --force" in capsys.readouterr().err
    assert main(["convert", str(npz), str(tmp_path / "a.nwb"), "--force"]) == 0
    assert main(["convert", str(npz), str(tmp_path / "a.h5")]) == 2
    assert "write .nwb (NWB) or .npz (native)" in capsys.readouterr().err


def test_convert_with_selection_and_speed_labels(tmp_path, capsys):
    p = tmp_path / "s2p.nwb"
    B.suite2p_like(p, t=200, n=8)
    assert main(["convert", str(p), str(tmp_path / "out.npz"), "--label-from-speed", "1.5",
                 "--nwb-behaviour", "position"]) == 0
    s = load_session(tmp_path / "out.npz")
    np.testing.assert_array_equal(s.labels, (s.speed > 1.5).astype(int))


def test_inspect_lists_the_series_and_the_default(tmp_path, capsys):
    f = B.new_file()
    ps = B.add_plane(f, "PlaneSegmentation", B.centroids(5))
    B.add_traces(f, ps, B.traces(80, 5))
    B.add_timeseries(f, "speed", 1.0 + np.sin(np.arange(80) / 5), "cm/s", rate=10.0)
    B.add_intervals(f, "licks", [(1.0, 2.0)])
    B.write(f, tmp_path / "two.nwb")
    capsys.readouterr()
    # two behaviour sources: listed, no default, then the error saying how to choose
    assert main(["inspect", str(tmp_path / "two.nwb")]) == 2
    out, err = capsys.readouterr()
    assert "* ophys/Fluorescence/RoiResponseSeries  [traces] 80x5, rate 10 Hz from 0 s" in out
    assert "behavior/BehavioralTimeSeries/speed  [speed] 80, rate 10 Hz from 0 s, unit cm/s" in out
    assert "intervals/licks  [intervals] 1, start_time/stop_time, unit s" in out
    assert "no default: several behaviour sources" in out
    assert "--nwb-behaviour" in err
    assert main(["inspect", str(tmp_path / "two.nwb"), "--nwb-behaviour", "licks", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nwb"]["chosen"]["behaviour"] == "intervals/licks"
    assert info["frames"] == 80 and info["class_counts"] == {"not licks": 70, "licks": 10}
    cat = nwb_catalog(tmp_path / "two.nwb")
    assert [c["kind"] for c in cat["behaviour"]] == ["speed", "intervals"]
