"""NWB files written by pynwb itself, laid out as real pipelines export them.

suite2p: processing module 'ophys', ImageSegmentation/PlaneSegmentation with pixel masks,
Fluorescence/RoiResponseSeries; CaImAn: DfOverF with image masks. Behaviour goes in a
'behavior' module (Position/SpatialSeries, BehavioralTimeSeries) or an intervals table.
Every builder takes keyword switches for the bad cases the tests need.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.behavior import BehavioralTimeSeries, Position
from pynwb.epoch import TimeIntervals
from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel

START = datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc)


def new_file() -> NWBFile:
    return NWBFile(session_description="test session", identifier="test-id",
                   session_start_time=START)


def add_plane(nwbfile: NWBFile, name: str, centroids: np.ndarray, masks: str = "pixel"):
    """A PlaneSegmentation named `name` with one ROI per centroid (x, y)."""
    if "Microscope" not in nwbfile.devices:
        nwbfile.create_device(name="Microscope")
    channel = OpticalChannel(name="OpticalChannel", description="green", emission_lambda=510.0)
    plane = nwbfile.create_imaging_plane(
        name=f"ImagingPlane_{name}", optical_channel=channel, description="plane",
        device=nwbfile.devices["Microscope"], excitation_lambda=920.0, indicator="GCaMP6f",
        location="CA1", imaging_rate=10.0)
    ophys = nwbfile.processing.get("ophys") or nwbfile.create_processing_module(
        name="ophys", description="optical physiology")
    if "ImageSegmentation" not in ophys.data_interfaces:
        ophys.add(ImageSegmentation(name="ImageSegmentation"))
    ps = ophys["ImageSegmentation"].create_plane_segmentation(
        name=name, description="ROIs", imaging_plane=plane)
    for x, y in centroids:
        xi, yi = int(round(x)), int(round(y))
        if masks == "pixel":  # a plus-shaped ROI centred on (xi, yi), centre weighted 2
            ps.add_roi(pixel_mask=[(xi, yi, 2.0), (xi - 1, yi, 1.0), (xi + 1, yi, 1.0),
                                   (xi, yi - 1, 1.0), (xi, yi + 1, 1.0)])
        else:  # image mask [x, y], a 3x3 square around (xi, yi)
            img = np.zeros((64, 64), dtype=np.float32)
            img[xi - 1:xi + 2, yi - 1:yi + 2] = 0.5
            ps.add_roi(image_mask=img)
    return ps


def add_traces(nwbfile: NWBFile, ps, traces: np.ndarray, container: str = "Fluorescence",
               name: str = "RoiResponseSeries", rate: float | None = 10.0,
               timestamps: np.ndarray | None = None):
    ophys = nwbfile.processing["ophys"]
    if container not in ophys.data_interfaces:
        ophys.add(Fluorescence(name=container) if container != "DfOverF" else DfOverF(name=container))
    region = ps.create_roi_table_region(region=list(range(traces.shape[1])), description="all")
    timing = {"rate": rate} if timestamps is None else {"timestamps": timestamps}
    return ophys[container].create_roi_response_series(
        name=name, data=traces, rois=region, unit="lumens", **timing)


def behaviour_module(nwbfile: NWBFile):
    return nwbfile.processing.get("behavior") or nwbfile.create_processing_module(
        name="behavior", description="behaviour")


def add_position(nwbfile: NWBFile, position: np.ndarray, timestamps: np.ndarray,
                 unit: str = "cm", name: str = "position"):
    mod = behaviour_module(nwbfile)
    if "Position" not in mod.data_interfaces:
        mod.add(Position(name="Position"))
    return mod["Position"].create_spatial_series(
        name=name, data=position, timestamps=timestamps, reference_frame="track start",
        unit=unit)


def add_timeseries(nwbfile: NWBFile, name: str, data: np.ndarray, unit: str,
                   rate: float | None = None, timestamps: np.ndarray | None = None):
    mod = behaviour_module(nwbfile)
    if "BehavioralTimeSeries" not in mod.data_interfaces:
        mod.add(BehavioralTimeSeries(name="BehavioralTimeSeries"))
    timing = {"rate": rate} if timestamps is None else {"timestamps": timestamps}
    return mod["BehavioralTimeSeries"].create_timeseries(name=name, data=data, unit=unit, **timing)


def add_intervals(nwbfile: NWBFile, name: str, spans: list[tuple[float, float]]):
    table = TimeIntervals(name=name, description=f"{name} bouts")
    for start, stop in spans:
        table.add_interval(start_time=start, stop_time=stop)
    nwbfile.add_time_intervals(table)
    return table


def add_acquisition_series(nwbfile: NWBFile, name: str, data: np.ndarray, unit: str, rate: float,
                           starting_time: float = 0.0):
    nwbfile.add_acquisition(TimeSeries(name=name, data=data, unit=unit, rate=rate,
                                       starting_time=starting_time))


def replace_dataset(path: Path, where: str, values: np.ndarray) -> None:
    """Overwrite a dataset of a written file (attributes kept): the damage other writers do."""
    import h5py

    with h5py.File(path, "r+") as h:
        attrs = dict(h[where].attrs)
        del h[where]
        h[where] = values
        h[where].attrs.update(attrs)


def write(nwbfile: NWBFile, path: Path) -> Path:
    with NWBHDF5IO(str(path), mode="w") as io:
        io.write(nwbfile)
    return path


def centroids(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(3, 60, size=(n, 2)).astype(np.float64)


def traces(t: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(1.0, 1.0, size=(t, n)).astype(np.float32)


def suite2p_like(path: Path, t: int = 200, n: int = 12, seed: int = 0) -> dict:
    """ophys/Fluorescence/RoiResponseSeries at 10 Hz + behavior/Position/position (cm) at 30 Hz.

    position = t - cos(t): speed 1 + sin(t) cm/s, between 0 and 2.
    """
    f = new_file()
    xy = centroids(n, seed)
    ps = add_plane(f, "PlaneSegmentation", xy)
    tr = traces(t, n, seed)
    add_traces(f, ps, tr)
    tb = np.arange(int(t / 10 * 30) + 3) / 30.0
    pos = tb - np.cos(tb)
    add_position(f, pos[:, None], tb)
    write(f, path)
    return {"traces": tr, "centroids": xy, "tb": tb, "position": pos}


def suite2p_export(path: Path, t: int = 120, per_plane: tuple[int, ...] = (5, 3),
                   fs: float = 10.0) -> dict:
    """As suite2p's save_nwb names things: one PlaneSegmentation for every plane (voxel
    masks when there are several), containers Fluorescence, Neuropil and Deconvolved holding
    one RoiResponseSeries per plane, named plane0, plane1, ...; an `iscell` column."""
    f = new_file()
    f.create_device(name="Microscope")
    channel = OpticalChannel(name="OpticalChannel", description="an optical channel",
                             emission_lambda=500.0)
    plane = f.create_imaging_plane(
        name="ImagingPlane", optical_channel=channel, imaging_rate=fs, description="standard",
        device=f.devices["Microscope"], excitation_lambda=600.0, indicator="GCaMP", location="V1")
    seg = ImageSegmentation()
    ps = seg.create_plane_segmentation(name="PlaneSegmentation", description="suite2p output",
                                       imaging_plane=plane)
    ophys = f.create_processing_module(name="ophys", description="optical physiology processed data")
    ophys.add(seg)
    xy = centroids(sum(per_plane), seed=7)
    plane_of = np.repeat(np.arange(len(per_plane)), per_plane)
    for (x, y), z in zip(xy, plane_of):
        xi, yi = int(x), int(y)
        ps.add_roi(voxel_mask=[(xi, yi, int(z), 1.0), (xi - 1, yi, int(z), 0.5),
                               (xi + 1, yi, int(z), 0.5)])
    ps.add_column(name="iscell", description="two columns - iscell & probcell",
                  data=np.tile([1.0, 0.9], (len(xy), 1)))
    starts = np.r_[0, np.cumsum(per_plane)[:-1]]
    regions = [ps.create_roi_table_region(region=list(range(a, a + n)),
                                          description=f"ROIs for plane{k}")
               for k, (a, n) in enumerate(zip(starts, per_plane))]
    out: dict = {"centroids": xy}
    for seed, name in enumerate(("Fluorescence", "Neuropil", "Deconvolved")):
        out[name] = []
        container = Fluorescence(name=name)
        ophys.add(container)
        for k, n in enumerate(per_plane):
            data = traces(t, n, seed=10 * seed + k)
            out[name].append(data)
            container.create_roi_response_series(name=f"plane{k}", data=data, rois=regions[k],
                                                 unit="lumens", rate=fs)
    tb = np.arange(t) / fs
    add_timeseries(f, "speed", 1.0 + np.sin(tb), "cm/s", rate=fs)
    write(f, path)
    return out
