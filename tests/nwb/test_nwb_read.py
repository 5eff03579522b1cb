"""Reading NWB files written by pynwb in the layouts suite2p and CaImAn export: traces,
frame times, centroids from masks, labels from position, speed, label series or intervals;
selection by name; and the bad files, each with an error naming the problem."""
from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("pynwb", reason="the 'nwb' extra (make test installs it)")

import nwb_builders as B  # noqa: E402

from neurogrs.errors import ConfigError, FormatError  # noqa: E402
from neurogrs.formats import SpeedLabelRule, labels_from_speed, load_session  # noqa: E402
from neurogrs.nwb import NwbSelectionSettings, nwb_catalog  # noqa: E402


def _load(path, **sel):
    return load_session(path, nwb=NwbSelectionSettings(**sel) if sel else None)


# ------------------------------------------------------------------ the good layouts
def test_suite2p_layout_position_to_speed_to_labels(tmp_path):
    p = tmp_path / "s2p.nwb"
    d = B.suite2p_like(p, t=200, n=12)
    s = load_session(p)
    np.testing.assert_array_equal(s.traces, d["traces"])  # float32, exact
    assert s.fs == 10.0 and s.n_frames == 200
    # plus-shaped masks, symmetric around the integer centre: the weighted mean is the centre
    np.testing.assert_array_equal(s.positions, d["centroids"].astype(np.float32))
    t_img = np.arange(200) / 10.0
    # speed = |d position / dt| on the 30 Hz samples, interpolated onto the 10 Hz frames
    np.testing.assert_allclose(s.speed, 1.0 + np.sin(t_img), atol=0.02)
    expected = labels_from_speed(1.0 + np.sin(t_img), 10.0)  # the fine-motion default, cm/s
    assert np.mean(s.labels == expected) > 0.97
    assert s.meta["nwb"]["behaviour"] == "behavior/Position/position"
    assert s.meta["nwb"]["traces"] == "ophys/Fluorescence/RoiResponseSeries"
    assert s.meta["speed_units"] == "cm/s" and s.meta["nwb"]["frames_cut"] == [0, 0]


def test_caiman_layout_dfoverf_image_masks_timestamps_and_a_speed_series(tmp_path):
    f = B.new_file()
    xy = B.centroids(6, seed=3)
    ps = B.add_plane(f, "PlaneSegmentation", xy, masks="image")
    tr = B.traces(150, 6, seed=3)
    t_img = 100.0 + np.arange(150) / 15.0  # 15 Hz, starting 100 s into the recording
    B.add_traces(f, ps, tr, container="DfOverF", timestamps=t_img)
    tb = 99.0 + np.arange(4000) / 200.0  # speed sampled at 200 Hz from 99 s, in m/s
    B.add_acquisition_series(f, "speed", 0.01 + 0.01 * np.sin(tb - 99.0), "m/s", 200.0,
                             starting_time=99.0)
    B.write(f, tmp_path / "caiman.nwb")
    s = load_session(tmp_path / "caiman.nwb")
    np.testing.assert_array_equal(s.traces, tr)
    assert s.fs == pytest.approx(15.0)
    assert s.meta["nwb"]["fs_from"] == "timestamps"
    np.testing.assert_allclose(s.positions, xy, atol=1e-6)  # 3x3 squares in image_mask [x, y]
    true = 0.01 + 0.01 * np.sin(t_img - 99.0)
    np.testing.assert_allclose(s.speed, true, atol=1e-4)
    # thresholds in cm/s converted to the file's m/s: 0.2 < 100 * speed < 2
    np.testing.assert_array_equal(s.labels, ((true * 100 > 0.2) & (true * 100 < 2)).astype(int))


def test_intervals_table_labels_frames_inside(tmp_path):
    f = B.new_file()
    ps = B.add_plane(f, "PlaneSegmentation", B.centroids(4))
    B.add_traces(f, ps, B.traces(100, 4))
    B.add_intervals(f, "grooming", [(1.0, 2.5), (6.0, 7.0)])
    B.write(f, tmp_path / "i.nwb")
    s = load_session(tmp_path / "i.nwb")
    t = np.arange(100) / 10.0
    inside = ((t >= 1.0) & (t < 2.5)) | ((t >= 6.0) & (t < 7.0))
    np.testing.assert_array_equal(s.labels, inside.astype(int))
    assert s.label_names == ["not grooming", "grooming"]


def test_label_series_nearest_sample_and_speed_rule_refused_for_it(tmp_path):
    f = B.new_file()
    ps = B.add_plane(f, "PlaneSegmentation", B.centroids(4))
    B.add_traces(f, ps, B.traces(100, 4))
    tb = np.arange(0, 10.0, 0.5) + 0.04  # 2 Hz labels, slightly late
    lab = (np.arange(tb.size) % 3 == 0).astype(np.int64)
    B.add_timeseries(f, "state", lab, "label", timestamps=tb)
    B.write(f, tmp_path / "l.nwb")
    with pytest.warns(UserWarning, match="0 frame.s. before and 4 after"):
        s = load_session(tmp_path / "l.nwb")
    t = np.arange(100) / 10.0
    kept = t[(t >= tb[0] - 0.05) & (t <= tb[-1] + 0.05)]
    nearest = np.abs(kept[:, None] - tb[None, :]).argmin(axis=1)
    np.testing.assert_array_equal(s.labels, lab[nearest])
    with pytest.raises(FormatError, match="no speed or position series"):
        load_session(tmp_path / "l.nwb", label_rule=SpeedLabelRule(1.0, None))
    with pytest.raises(ConfigError, match="behavior/BehavioralTimeSeries/state is a label series"):
        load_session(tmp_path / "l.nwb", label_rule=SpeedLabelRule(1.0, None),
                     nwb=NwbSelectionSettings(behaviour="state"))


def test_frames_outside_the_behaviour_are_cut_with_a_warning(tmp_path):
    f = B.new_file()
    ps = B.add_plane(f, "PlaneSegmentation", B.centroids(4))
    tr = B.traces(100, 4)
    B.add_traces(f, ps, tr)
    tb = 2.0 + np.arange(491) / 100.0  # behaviour 2.00 .. 6.90 s; frames 0 .. 9.9 s
    B.add_timeseries(f, "speed", 1.0 + np.sin(3 * tb), "cm/s", timestamps=tb)
    B.write(f, tmp_path / "cut.nwb")
    with pytest.warns(UserWarning, match="20 frame.s. before and 30 after"):
        s = load_session(tmp_path / "cut.nwb")
    assert s.n_frames == 50 and s.meta["nwb"]["frames_cut"] == [20, 30]
    np.testing.assert_array_equal(s.traces, tr[20:70])


def test_selection_by_name_or_path_and_listing_when_ambiguous(tmp_path):
    f = B.new_file()
    ps = B.add_plane(f, "PlaneSegmentation", B.centroids(5))
    B.add_traces(f, ps, B.traces(80, 5, seed=1), container="Fluorescence", name="Fluorescence")
    B.add_traces(f, ps, B.traces(80, 5, seed=2), container="Neuropil", name="Neuropil")
    B.add_timeseries(f, "speed", 1.0 + np.sin(np.arange(80) / 5), "cm/s", rate=10.0)
    B.add_intervals(f, "licks", [(1.0, 2.0)])
    B.write(f, tmp_path / "two.nwb")
    with pytest.raises(FormatError, match=r"several trace series.*--nwb-traces.*"
                                          r"ophys/Fluorescence/Fluorescence.*ophys/Neuropil/Neuropil"):
        load_session(tmp_path / "two.nwb")
    with pytest.raises(FormatError, match=r"several behaviour sources.*--nwb-behaviour.*"
                                          r"behavior/BehavioralTimeSeries/speed \[speed\].*"
                                          r"intervals/licks \[intervals\]"):
        _load(tmp_path / "two.nwb", traces="Neuropil")
    s = _load(tmp_path / "two.nwb", traces="ophys/Neuropil/Neuropil", behaviour="licks")
    np.testing.assert_array_equal(s.traces, B.traces(80, 5, seed=2))
    s = _load(tmp_path / "two.nwb", traces="Fluorescence/Fluorescence",
              behaviour="behavior/BehavioralTimeSeries/speed")
    np.testing.assert_array_equal(s.traces, B.traces(80, 5, seed=1))
    with pytest.raises(FormatError, match=r"--nwb-behaviour running: no such series; "
                                          r"candidates: .*speed.*licks"):
        _load(tmp_path / "two.nwb", traces="Neuropil", behaviour="running")
    cat = nwb_catalog(tmp_path / "two.nwb")
    assert [c["path"] for c in cat["traces"]] == ["ophys/Fluorescence/Fluorescence",
                                                  "ophys/Neuropil/Neuropil"]
    assert cat["chosen"]["traces"] is None and "several" in cat["chosen"]["traces_problem"]


def test_position_in_pixels_needs_thresholds_in_px_and_nan_samples_are_skipped(tmp_path):
    f = B.new_file()
    ps = B.add_plane(f, "PlaneSegmentation", B.centroids(4))
    B.add_traces(f, ps, B.traces(100, 4))
    tb = np.arange(400) / 40.0
    pos = np.c_[20 * (tb - np.cos(tb)), np.full(tb.size, 5.0)]  # px: speed 20 (1 + sin t)
    pos[100:104] = np.nan  # tracking lost for 0.1 s
    B.add_position(f, pos, tb, unit="pixels")
    f.add_invalid_time_interval(start_time=2.5, stop_time=2.6)  # not a behaviour source
    B.write(f, tmp_path / "px.nwb")
    with pytest.raises(FormatError, match=r"speed is in px/s.*--label-from-speed LOW HIGH "
                                          r"--speed-units px/s"), pytest.warns(UserWarning):
        load_session(tmp_path / "px.nwb")
    with pytest.warns(UserWarning, match="4 of 400 samples are NaN/Inf and were skipped"):
        s = load_session(tmp_path / "px.nwb", label_rule=SpeedLabelRule(20.0, None, "px/s"))
    t = np.arange(100) / 10.0
    np.testing.assert_allclose(s.speed, 20 * (1 + np.sin(t)), atol=0.5)
    assert np.mean(s.labels == (np.sin(t) > 0)) > 0.95
    assert s.meta["speed_units"] == "px/s"


def test_core_works_without_pynwb(tmp_path, monkeypatch):
    from neurogrs.cli import build_parser
    from neurogrs.formats import save_session
    from neurogrs.nwb import save_nwb_session
    from neurogrs.simulate import simulate_session

    monkeypatch.setitem(sys.modules, "pynwb", None)
    sess = simulate_session(n_neurons=5, n_frames=200, seed=0)
    assert load_session(save_session(sess, tmp_path / "s.npz")).digest() == sess.digest()
    build_parser().parse_args(["convert", "s.npz", "s.nwb"])
    with pytest.raises(FormatError, match=r"neurogrs\[nwb\]"):
        save_nwb_session(sess, tmp_path / "s.nwb")


def test_irregular_frame_times_warn_and_fs_is_the_median_rate(tmp_path):
    t = np.arange(50) / 10.0
    t[30:] += 0.5  # five frames dropped
    f, p = _plain(tmp_path, rate=None, timestamps=t)
    B.write(f, p)
    with pytest.warns(UserWarning) as seen:
        s = load_session(p)
    messages = [str(w.message) for w in seen]
    assert any("frame intervals vary (0.1..0.6 s); fs = 1 / median interval = 10 Hz" in m
               for m in messages), messages
    assert any("0 frame(s) before and 5 after" in m for m in messages), messages  # speed ends at 4.9 s
    assert s.fs == pytest.approx(10.0) and s.n_frames == 45


def test_suite2p_export_layout_containers_and_per_plane_series(tmp_path):
    p = tmp_path / "ophys.nwb"
    d = B.suite2p_export(p, t=120, per_plane=(5, 3))
    with pytest.raises(FormatError, match=r"several trace series.*ophys/Deconvolved/plane0 "
                                          r"\[traces\]; ophys/Deconvolved/plane1 \[traces\]; "
                                          r"ophys/Fluorescence/plane0"):
        load_session(p)
    s = _load(p, traces="Deconvolved", plane="plane1")
    np.testing.assert_array_equal(s.traces, d["Deconvolved"][1])
    # voxel masks (multi-plane): x, y of the ROIs the series' region refers to
    np.testing.assert_array_equal(s.positions, d["centroids"][5:].astype(np.float32))
    s = _load(p, traces="Fluorescence/plane0")
    np.testing.assert_array_equal(s.traces, d["Fluorescence"][0])
    assert s.meta["nwb"]["positions_from"] == "voxel_mask"


# ------------------------------------------------------------------ bad files
def _plain(tmp_path, name="bad.nwb", **kw):
    f = B.new_file()
    ps = B.add_plane(f, "PlaneSegmentation", B.centroids(4))
    B.add_traces(f, ps, B.traces(50, 4), **kw)
    B.add_timeseries(f, "speed", 1.0 + np.sin(np.arange(50) / 5), "cm/s", rate=10.0)
    return f, tmp_path / name


def test_no_ophys_module(tmp_path):
    f = B.new_file()
    B.add_timeseries(f, "speed", np.ones(50), "cm/s", rate=10.0)
    B.write(f, tmp_path / "noophys.nwb")
    with pytest.raises(FormatError, match=r"noophys.nwb: no processing module 'ophys' "
                                          r"\(processing modules present: behavior\)"):
        load_session(tmp_path / "noophys.nwb")


@pytest.mark.filterwarnings("ignore:.*Length of data does not match:UserWarning")  # pynwb's own
def test_traces_timestamps_length_mismatch_names_the_series(tmp_path):
    f, p = _plain(tmp_path, rate=None, timestamps=np.arange(50) / 10.0)
    B.write(f, p)  # pynwb refuses to write the mismatch; other writers do not
    B.replace_dataset(p, "processing/ophys/Fluorescence/RoiResponseSeries/timestamps",
                      np.arange(49) / 10.0)
    with pytest.raises(FormatError, match=r"ophys/Fluorescence/RoiResponseSeries: 49 timestamps "
                                          r"for 50 samples"):
        load_session(p)


def test_non_increasing_timestamps_name_the_series(tmp_path):
    t = np.arange(50) / 10.0
    t[20] = t[19]
    f, p = _plain(tmp_path, rate=None, timestamps=t)
    B.write(f, p)
    with pytest.raises(FormatError, match=r"RoiResponseSeries: timestamps are not strictly "
                                          r"increasing \(sample 20"):
        load_session(p)


def test_several_planes_need_nwb_plane(tmp_path):
    f = B.new_file()
    for name, n in (("plane0", 4), ("plane1", 7)):
        ps = B.add_plane(f, name, B.centroids(n))
        B.add_traces(f, ps, B.traces(60, n), container=f"Fluorescence_{name}")
    B.add_timeseries(f, "speed", 1.0 + np.sin(np.arange(60) / 5), "cm/s", rate=10.0)
    B.write(f, tmp_path / "planes.nwb")
    with pytest.raises(FormatError, match=r"several imaging planes \(plane0, plane1\): choose "
                                          r"one with --nwb-plane"):
        load_session(tmp_path / "planes.nwb")
    assert _load(tmp_path / "planes.nwb", plane="plane1").n_neurons == 7
    with pytest.raises(FormatError, match=r"--nwb-plane plane9: no such PlaneSegmentation or "
                                          r"per-plane series; planes: plane0, plane1"):
        _load(tmp_path / "planes.nwb", plane="plane9")


def test_no_behaviour(tmp_path):
    f = B.new_file()
    ps = B.add_plane(f, "PlaneSegmentation", B.centroids(4))
    B.add_traces(f, ps, B.traces(50, 4))
    B.write(f, tmp_path / "nobeh.nwb")
    with pytest.raises(FormatError, match="nobeh.nwb: no behaviour to label the frames with"):
        load_session(tmp_path / "nobeh.nwb")


def test_behaviour_without_overlap(tmp_path):
    f, p = _plain(tmp_path)
    B.add_position(f, np.arange(20.0)[:, None], 100.0 + np.arange(20) / 10.0, name="late")
    B.write(f, p)
    with pytest.raises(FormatError, match=r"behavior/Position/late: behaviour covers 100..101.9 s "
                                          r"but the imaging frames 0..4.9 s: no overlap"):
        _load(p, behaviour="late")


def test_not_hdf5_and_not_nwb(tmp_path):
    p = tmp_path / "text.nwb"
    p.write_text("this is not HDF5\n" * 100)
    with pytest.raises(FormatError, match="text.nwb: not an NWB file: no HDF5 signature"):
        load_session(p)
    import h5py

    with h5py.File(tmp_path / "plain.nwb", "w") as h:  # HDF5, but not NWB
        h["x"] = np.arange(3)
    with pytest.raises(FormatError, match="plain.nwb: not a readable NWB file"):
        load_session(tmp_path / "plain.nwb")


def test_without_pynwb_the_error_names_the_extra(tmp_path, monkeypatch):
    f, p = _plain(tmp_path)
    B.write(f, p)
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb -> ImportError
    with pytest.raises(FormatError, match=r"optional extra 'nwb' \(pip install 'neurogrs\[nwb\]'\)"):
        load_session(p)


def test_nwb_options_refused_for_other_formats(tmp_path):
    from neurogrs.formats import save_session
    from neurogrs.simulate import simulate_session

    p = save_session(simulate_session(n_neurons=5, n_frames=200, seed=0), tmp_path / "s.npz")
    with pytest.raises(ConfigError, match="s.npz is not one: drop them"):
        _load(p, traces="RoiResponseSeries")


def test_selection_settings_validate():
    with pytest.raises(ConfigError, match="behaviour"):
        NwbSelectionSettings(behaviour="  ")
    s = NwbSelectionSettings(traces="/ophys/Fluorescence/RoiResponseSeries/")
    assert s.traces == "ophys/Fluorescence/RoiResponseSeries"
    assert NwbSelectionSettings.from_dict(s.to_dict()) == s
