"""Write a Session as an NWB file (imports pynwb; use neurogrs.nwb.save_nwb_session).

The layout suite2p's export uses, so other NWB tools read it too:

    processing/ophys/ImageSegmentation/PlaneSegmentation   one ROI per neuron: a pixel_mask
        holding the centroid as bilinear weights on the 4 pixels around it (an all-zero
        1x1 image_mask when the session has no positions or one is negative), and the exact
        centroid in the column `neurogrs_centroid`
    processing/ophys/Fluorescence/RoiResponseSeries        traces [T, N] float32 (gzip), rate fs
    processing/behavior/BehavioralTimeSeries/labels        labels [T], unit 'label', rate fs
    processing/behavior/BehavioralTimeSeries/speed         speed [T] (when the session has it)
    notes                                                  'neurogrs-meta: ' + meta as JSON

Acquisition metadata the session does not know (device, indicator, location, excitation
wavelength) is written as 'unknown' / NaN.
"""
from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from hdmf.backends.hdf5.h5_utils import H5DataIO
from pynwb import NWBHDF5IO, NWBFile
from pynwb.behavior import BehavioralTimeSeries
from pynwb.ophys import Fluorescence, ImageSegmentation, OpticalChannel

from neurogrs.nwb_read import CENTROID_COLUMN, META_PREFIX

__all__ = ["write_nwb_session", "bilinear_pixel_mask"]


def bilinear_pixel_mask(x: float, y: float) -> list[tuple[int, int, float]]:
    """(x, y, weight) rows whose weighted mean is (x, y): the 4 pixels around it."""
    x0, y0 = math.floor(x), math.floor(y)
    fx, fy = x - x0, y - y0
    rows = [(x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
            (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)]
    return [(int(a), int(b), float(w)) for a, b, w in rows if w > 0]


def _start_time(meta: dict) -> datetime:
    text = meta.get("session_start_time")
    if isinstance(text, str):
        try:
            when = datetime.fromisoformat(text)
            return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return datetime.now(timezone.utc)


def write_nwb_session(session: Any, path: Path) -> Path:
    meta = dict(session.meta)
    start = _start_time(meta)
    meta["session_start_time"] = start.isoformat()
    nwbfile = NWBFile(
        session_description=str(meta.get("source") or "neurogrs session"),
        identifier=str(uuid.uuid4()),
        session_start_time=start,
        notes=META_PREFIX + json.dumps(meta, sort_keys=True),
    )
    device = nwbfile.create_device(name="Microscope", description="unknown")
    channel = OpticalChannel(name="OpticalChannel", description="unknown",
                             emission_lambda=float("nan"))
    plane = nwbfile.create_imaging_plane(
        name="ImagingPlane", optical_channel=channel, description="unknown", device=device,
        excitation_lambda=float("nan"), indicator="unknown", location="unknown",
        imaging_rate=float(session.fs))
    ophys = nwbfile.create_processing_module(name="ophys", description="optical physiology")
    segmentation = ImageSegmentation(name="ImageSegmentation")
    ophys.add(segmentation)
    rois = segmentation.create_plane_segmentation(
        name="PlaneSegmentation", description="one ROI per neuron (neurogrs)", imaging_plane=plane)
    positions = session.positions
    masks = positions is not None and bool(np.all(positions >= 0))
    if positions is not None:
        rois.add_column(name=CENTROID_COLUMN, description="ROI centroid (x, y) in pixels, exact")
    for i in range(session.n_neurons):
        extra = {} if positions is None else {CENTROID_COLUMN: positions[i].astype(np.float32)}
        if masks:
            rois.add_roi(pixel_mask=bilinear_pixel_mask(*map(float, positions[i])), **extra)
        else:
            rois.add_roi(image_mask=np.zeros((1, 1), dtype=np.float32), **extra)
    region = rois.create_roi_table_region(region=list(range(session.n_neurons)),
                                          description="every neuron")
    fluorescence = Fluorescence(name="Fluorescence")
    ophys.add(fluorescence)
    fluorescence.create_roi_response_series(
        name="RoiResponseSeries", rois=region,
        data=H5DataIO(np.asarray(session.traces, dtype=np.float32), compression="gzip"),
        unit=str(meta.get("traces_units") or "a.u."), rate=float(session.fs), starting_time=0.0)

    behavior = nwbfile.create_processing_module(name="behavior", description="behaviour")
    series = BehavioralTimeSeries(name="BehavioralTimeSeries")
    behavior.add(series)
    series.create_timeseries(
        name="labels", data=np.asarray(session.labels, dtype=np.int64), unit="label",
        rate=float(session.fs), starting_time=0.0,
        description="class per imaging frame: " + json.dumps(session.label_names))
    if session.speed is not None:
        series.create_timeseries(
            name="speed", data=np.asarray(session.speed, dtype=np.float32),
            unit=str(meta.get("speed_units") or "cm/s"), rate=float(session.fs),
            starting_time=0.0, description="speed per imaging frame")

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.nwb")  # pynwb warns unless it ends in .nwb
    try:
        with NWBHDF5IO(str(tmp), mode="w") as io:
            io.write(nwbfile)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
