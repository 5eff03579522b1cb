"""Read a calcium-imaging NWB file as a Session (imports pynwb; use neurogrs.nwb).

Traces: the chosen RoiResponseSeries, [T, N] (data x conversion + offset), float32.
Frame times: its timestamps (fs = 1 / median interval) or starting_time + k / rate.
Centroids: per ROI of the series' `rois` region, the weighted mean (x, y) of its
pixel_mask (x, y, weight), image_mask ([x, y] weights) or voxel_mask; a file written by
neurogrs also holds them exactly in the column `neurogrs_centroid`, read first.
Labels, aligned to the frame times:
    speed TimeSeries   linear interpolation, then the speed-to-label rule
    SpatialSeries      speed = |d position / dt| at the behaviour's samples, then as speed
    label TimeSeries   the nearest behaviour sample (unit 'label')
    intervals table    1 inside any [start_time, stop_time), else 0
Frames outside the behaviour's time range (by more than half a frame) are cut from the
session's start and end, with a warning and meta['nwb']['frames_cut'] = [before, after];
no overlap at all is an error.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pynwb import NWBHDF5IO, TimeSeries

from neurogrs.errors import ConfigError, FormatError, SessionError
from neurogrs.nwb_catalog import SPEED_KINDS, Candidate, Catalog, find_candidates

__all__ = ["read_nwb_session", "catalog_of", "series_times", "roi_centroids", "META_PREFIX",
           "CENTROID_COLUMN"]

META_PREFIX = "neurogrs-meta: "
CENTROID_COLUMN = "neurogrs_centroid"
_LENGTH_UNITS = {"m": "m/s", "meter": "m/s", "meters": "m/s", "metre": "m/s", "metres": "m/s",
                 "cm": "cm/s", "centimeter": "cm/s", "centimeters": "cm/s",
                 "mm": "mm/s", "millimeter": "mm/s", "millimeters": "mm/s",
                 "px": "px/s", "pixel": "px/s", "pixels": "px/s"}


def _open(path: Path) -> tuple[NWBHDF5IO, Any]:
    """(the open io, the NWBFile); the caller closes the io."""
    io = None
    try:
        io = NWBHDF5IO(str(path), mode="r", load_namespaces=True)
        return io, io.read()
    except Exception as exc:  # h5py/hdmf raise many kinds; all mean "cannot read this"
        if io is not None:
            io.close()
        raise FormatError(f"{path.name}: not a readable NWB file: {type(exc).__name__}: {exc}") from exc


def catalog_of(path: Path, selection: Any, want_speed: bool = False) -> dict[str, Any]:
    io, nwbfile = _open(path)
    try:
        cat = find_candidates(nwbfile)
        return {"file": path.name, "processing_modules": cat.modules, "planes": cat.planes,
                "traces": [c.to_dict() for c in cat.traces],
                "behaviour": [c.to_dict() for c in cat.behaviour],
                "chosen": cat.default_names(selection, want_speed)}
    finally:
        io.close()


def series_times(ts: TimeSeries, n: int, path: str) -> tuple[np.ndarray, str]:
    """Sample times [n] in seconds and where they came from ('timestamps' or 'rate')."""
    if ts.timestamps is not None:
        t = np.asarray(ts.get_timestamps()[:], dtype=np.float64)
        if t.ndim != 1 or t.shape[0] != n:
            raise FormatError(f"{path}: {t.shape[0] if t.ndim else 0} timestamps for {n} "
                              "samples: the timestamps must have one entry per sample")
        if not np.all(np.isfinite(t)):
            raise FormatError(f"{path}: timestamps hold NaN/Inf")
        steps = np.diff(t)
        if np.any(steps <= 0):
            i = int(np.argmax(steps <= 0))
            raise FormatError(f"{path}: timestamps are not strictly increasing (sample {i + 1}: "
                              f"{t[i + 1]:g} s after {t[i]:g} s)")
        return t, "timestamps"
    rate = ts.rate
    if rate is None or not np.isfinite(rate) or rate <= 0:
        raise FormatError(f"{path}: neither timestamps nor a rate > 0 (rate = {rate!r})")
    start = float(ts.starting_time or 0.0)
    return start + np.arange(n, dtype=np.float64) / float(rate), "rate"


def _values(ts: TimeSeries, path: str) -> np.ndarray:
    data = np.asarray(ts.data[:])
    if data.dtype.kind not in "iufb":
        raise FormatError(f"{path}: data must be numeric, got {data.dtype}")
    conv, offset = float(ts.conversion or 1.0), float(getattr(ts, "offset", 0.0) or 0.0)
    if conv != 1.0 or offset != 0.0:
        data = data.astype(np.float64) * conv + offset
    return data


def read_traces(cand: Candidate) -> tuple[np.ndarray, np.ndarray, str]:
    rrs = cand.obj
    data = _values(rrs, cand.path)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise FormatError(f"{cand.path}: traces must be [time, ROI], got shape {data.shape}")
    n_rois = len(rrs.rois.data) if rrs.rois is not None else data.shape[1]
    if data.shape[1] != n_rois:
        raise FormatError(f"{cand.path}: data has {data.shape[1]} columns but its rois region "
                          f"names {n_rois} ROIs")
    t, source = series_times(rrs, data.shape[0], cand.path)
    return np.ascontiguousarray(data, dtype=np.float32), t, source


def _fs_of(t: np.ndarray, path: str) -> float:
    """1 / the median frame interval; a warning when the intervals vary by more than 10%."""
    steps = np.diff(t)
    median = float(np.median(steps))
    if steps.max() > 1.1 * median or steps.min() < 0.9 * median:
        warnings.warn(f"{path}: frame intervals vary ({steps.min():.4g}..{steps.max():.4g} s); "
                      f"fs = 1 / median interval = {1.0 / median:.4g} Hz", stacklevel=4)
    return 1.0 / median


def roi_centroids(rrs: Any) -> tuple[np.ndarray | None, str]:
    """[N, 2] (x, y) of the ROIs the series refers to, and where they came from."""
    if rrs.rois is None:
        return None, "no rois region"
    table, rows = rrs.rois.table, np.asarray(rrs.rois.data[:], dtype=np.int64)
    if CENTROID_COLUMN in table.colnames:
        xy = np.asarray(table[CENTROID_COLUMN].data[:], dtype=np.float64)
        return xy[rows], CENTROID_COLUMN
    for column in ("pixel_mask", "voxel_mask", "image_mask"):
        if column in table.colnames:
            break
    else:
        return None, "no masks"
    out = np.full((rows.size, 2), np.nan)
    for k, row in enumerate(rows):
        mask = table[column][int(row)]
        if column == "image_mask":
            w = np.abs(np.asarray(mask, dtype=np.float64))
            if w.ndim == 3:
                w = w.sum(axis=2)
            xs, ys = np.indices(w.shape[:2])
        else:
            mask = np.asarray(mask)
            xs, ys = mask["x"].astype(np.float64), mask["y"].astype(np.float64)
            w = np.abs(mask["weight"].astype(np.float64))
        total = w.sum()
        if total > 0:
            out[k] = ((w * xs).sum() / total, (w * ys).sum() / total)
    if np.isnan(out).any():
        missing = int(np.isnan(out[:, 0]).sum())
        if missing < rows.size:
            warnings.warn(f"{table.name}: {missing} of {rows.size} ROIs have an empty {column}: "
                          "the session has no positions", stacklevel=3)
        return None, f"empty {column}"
    return out, column


# --------------------------------------------------------------------------- behaviour
def _overlap(t_img: np.ndarray, tb: np.ndarray, fs: float, path: str) -> slice:
    tol = 0.5 / fs
    inside = np.flatnonzero((t_img >= tb[0] - tol) & (t_img <= tb[-1] + tol))
    if inside.size == 0:
        raise FormatError(f"{path}: behaviour covers {tb[0]:g}..{tb[-1]:g} s but the imaging "
                          f"frames {t_img[0]:g}..{t_img[-1]:g} s: no overlap")
    return slice(int(inside[0]), int(inside[-1]) + 1)


def _finite_samples(values: np.ndarray, tb: np.ndarray, path: str) -> tuple[np.ndarray, np.ndarray]:
    ok = np.all(np.isfinite(values.reshape(values.shape[0], -1)), axis=1)
    if ok.sum() < 2:
        raise FormatError(f"{path}: fewer than 2 finite samples")
    if not ok.all():
        warnings.warn(f"{path}: {int((~ok).sum())} of {ok.size} samples are NaN/Inf and "
                      "were skipped (interpolated over)", stacklevel=4)
    return values[ok], tb[ok]


def behaviour_speed(cand: Candidate) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(speed at the behaviour's samples, their times, units or None) of a speed/position series."""
    ts = cand.obj
    values = _values(ts, cand.path).astype(np.float64)
    tb, _ = series_times(ts, values.shape[0], cand.path)
    values, tb = _finite_samples(values, tb, cand.path)
    unit = str(ts.unit or "").strip().lower()
    if cand.kind == "position":
        pos = values.reshape(values.shape[0], -1)
        if pos.shape[1] > 3:
            raise FormatError(f"{cand.path}: position must have 1-3 columns, got {pos.shape[1]}")
        speed = np.linalg.norm(np.gradient(pos, tb, axis=0), axis=1)
        return speed, tb, _LENGTH_UNITS.get(unit.split("(")[0].strip())
    from neurogrs.formats import normalise_speed_units

    try:
        units = normalise_speed_units(unit)
    except ConfigError:
        units = None
    return values.reshape(-1), tb, units


def _labels_from_series(cand: Candidate, t_img: np.ndarray) -> np.ndarray:
    ts = cand.obj
    values = _values(ts, cand.path).reshape(-1)
    tb, _ = series_times(ts, values.shape[0], cand.path)
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)) or values.min() < 0:
        raise FormatError(f"{cand.path}: labels must be whole numbers >= 0")
    i = np.clip(np.searchsorted(tb, t_img), 1, max(1, tb.size - 1))
    if tb.size == 1:
        return np.zeros(t_img.size, dtype=np.int64) + int(values[0])
    nearer_left = (t_img - tb[i - 1]) <= (tb[i] - t_img)
    return values[np.where(nearer_left, i - 1, i)].astype(np.int64)


def _labels_from_intervals(cand: Candidate, t_img: np.ndarray) -> np.ndarray:
    table = cand.obj
    start = np.asarray(table["start_time"].data[:], dtype=np.float64)
    stop = np.asarray(table["stop_time"].data[:], dtype=np.float64)
    bad = np.flatnonzero(~(stop >= start))
    if bad.size:
        raise FormatError(f"{cand.path}: row {int(bad[0])} stops ({stop[bad[0]]:g} s) before it "
                          f"starts ({start[bad[0]]:g} s)")
    inside = (t_img[:, None] >= start[None, :]) & (t_img[:, None] < stop[None, :])
    return inside.any(axis=1).astype(np.int64)


def _companion_speed(cat: Catalog, t: np.ndarray) -> np.ndarray | None:
    """Beside a label series: the file's single speed series on the frames, if it covers them."""
    speeds = [c for c in cat.behaviour if c.kind == "speed"]
    if len(speeds) != 1:
        return None
    sp, tb, _ = behaviour_speed(speeds[0])
    if t[0] < tb[0] - 1e-9 or t[-1] > tb[-1] + 1e-9:
        return None
    return np.interp(t, tb, sp)


def _stored_meta(nwbfile: Any) -> dict:
    notes = nwbfile.notes or ""
    if isinstance(notes, str) and notes.startswith(META_PREFIX):
        try:
            meta = json.loads(notes[len(META_PREFIX):])
        except json.JSONDecodeError:
            return {}
        return meta if isinstance(meta, dict) else {}
    return {}


def _behaviour_labels(beh: Candidate, cat: Catalog, t_img: np.ndarray, fs: float,
                      label_rule: Any, meta: dict) -> tuple[np.ndarray, np.ndarray | None, slice, dict]:
    """(labels, speed or None, the frames kept, meta) from the behaviour source `beh`."""
    from neurogrs.formats import _default_rule, _derive_labels

    if beh.kind in SPEED_KINDS:
        sp, tb, units = behaviour_speed(beh)
        keep = _overlap(t_img, tb, fs, beh.path)
        speed = np.interp(t_img[keep], tb, sp)
        rule = label_rule or _default_rule({}, units, meta["file"])
        try:
            labels, meta = _derive_labels(speed, fs, rule, units, meta)
        except SessionError as exc:
            raise SessionError(f"{meta['file']} ({beh.path}): {exc}") from None
        return labels, speed, keep, meta
    if label_rule is not None:
        what = "a label series" if beh.kind == "labels" else "an intervals table"
        raise ConfigError(f"labels from speed were requested, but {beh.path} is {what}; "
                          "name a speed or position series with --nwb-behaviour")
    if beh.kind == "labels":
        tb, _ = series_times(beh.obj, beh.shape[0], beh.path)
        keep = _overlap(t_img, tb, fs, beh.path)
        return (_labels_from_series(beh, t_img[keep]), _companion_speed(cat, t_img[keep]),
                keep, meta)
    meta = dict(meta, label_names=[f"not {beh.name}", beh.name],
                label_rule=f"1 inside the intervals of {beh.path}, else 0")
    meta.pop("label_rule_settings", None)
    return _labels_from_intervals(beh, t_img), None, slice(0, t_img.size), meta


def read_nwb_session(path: Path, selection: Any, label_rule: Any):
    from neurogrs.session import Session

    io, nwbfile = _open(path)
    try:
        cat: Catalog = find_candidates(nwbfile)
        try:
            traces_c = cat.choose_traces(selection)
            beh_c = cat.choose_behaviour(selection, want_speed=label_rule is not None)
        except FormatError as exc:
            raise FormatError(f"{path.name}: {exc}") from None
        traces, t_img, fs_from = read_traces(traces_c)
        if traces.shape[0] < 2:
            raise FormatError(f"{path.name}: {traces_c.path} has {traces.shape[0]} frame(s)")
        fs = float(traces_c.obj.rate) if fs_from == "rate" else _fs_of(t_img, traces_c.path)
        positions, positions_from = roi_centroids(traces_c.obj)

        meta = _stored_meta(nwbfile)
        meta.setdefault("source", str(path))  # as .npz: a converted session keeps its source
        meta["file"] = path.name
        meta["traces_units"] = traces_c.unit
        nwb_meta = {"traces": traces_c.path, "plane": traces_c.plane, "behaviour": beh_c.path,
                    "behaviour_kind": beh_c.kind, "fs_from": fs_from,
                    "positions_from": positions_from}
        labels, speed, keep, meta = _behaviour_labels(beh_c, cat, t_img, fs, label_rule, meta)
        cut = [keep.start, t_img.size - keep.stop]
        if any(cut):
            warnings.warn(f"{path.name}: {cut[0]} frame(s) before and {cut[1]} after the time "
                          f"range of {beh_c.path} were cut", stacklevel=2)
        nwb_meta["frames_cut"] = cut
        meta["nwb"] = nwb_meta
        try:
            return Session(traces=traces[keep], labels=labels, fs=fs, speed=speed,
                           positions=positions, meta=meta)
        except SessionError as exc:
            raise SessionError(f"{path.name} ({traces_c.path}, {beh_c.path}): {exc}") from None
    finally:
        io.close()
