"""What an open NWB file offers, and which of it a session uses (imports pynwb).

    find_candidates(nwbfile) -> Catalog      traces, planes, behaviour sources, each named by path
    Catalog.choose_traces(selection)         the RoiResponseSeries (and its plane)
    Catalog.choose_behaviour(selection, ...) the labels' source

Traces: every RoiResponseSeries of the processing module 'ophys' (suite2p and CaImAn
exports: under Fluorescence or DfOverF). Behaviour: anywhere but 'ophys', a SpatialSeries
(position), a 1-D TimeSeries whose unit is a speed ('speed') or 'label' ('labels'), or
whose name says speed/velocity; every intervals table with rows (but `invalid_times`). A name given matches a
series' name, its path, or whole components of its path ('Deconvolved', 'Deconvolved/plane0');
the default is the single candidate, else an error listing them all. A plane is a
PlaneSegmentation, or (suite2p's multi-plane export: one PlaneSegmentation, series named
plane0, plane1, ... in each container) a per-plane series name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pynwb import NWBFile, TimeSeries
from pynwb.behavior import SpatialSeries
from pynwb.epoch import TimeIntervals
from pynwb.image import ImageSeries
from pynwb.ophys import PlaneSegmentation, RoiResponseSeries

from neurogrs.errors import ConfigError, FormatError

__all__ = ["Candidate", "Catalog", "find_candidates", "object_path", "LABEL_UNITS"]

OPHYS = "ophys"
INVALID_TIMES = "invalid_times"  # NWB's table of times to exclude: not a behaviour
LABEL_UNITS = ("label", "labels", "class", "classes")
SPEED_KINDS = ("speed", "position")


@dataclass(frozen=True)
class Candidate:
    """One usable series: kind is traces, speed, position, labels or intervals."""

    kind: str
    name: str
    path: str
    shape: tuple[int, ...]
    timing: str
    unit: str
    plane: str | None = None
    obj: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "name": self.name, "path": self.path,
             "shape": list(self.shape), "timing": self.timing, "unit": self.unit}
        if self.plane is not None:
            d["plane"] = self.plane
        return d


def object_path(obj: Any) -> str:
    """'ophys/Fluorescence/RoiResponseSeries', 'acquisition/speed', 'intervals/trials'."""
    parts = []
    node = obj
    while node is not None and not isinstance(node, NWBFile):
        parts.append(node.name)
        parent = node.parent
        if isinstance(parent, NWBFile):
            if isinstance(node, TimeIntervals):
                parts.append("intervals")
            elif node.name in parent.acquisition:
                parts.append("acquisition")
            elif node.name in parent.stimulus:
                parts.append("stimulus")
        node = parent
    return "/".join(reversed(parts))


def _shape(data: Any) -> tuple[int, ...]:
    """Shape of an h5py dataset or array without reading it (lists too)."""
    return tuple(int(n) for n in np.shape(data))


def _timing(ts: TimeSeries) -> str:
    if ts.timestamps is not None:
        t = ts.get_timestamps()
        if len(t) == 0:
            return "timestamps (none)"
        return f"timestamps {float(t[0]):g}..{float(t[-1]):g} s ({len(t)})"
    return f"rate {float(ts.rate):g} Hz from {float(ts.starting_time or 0.0):g} s"


def _speed_unit_ok(unit: str) -> bool:
    from neurogrs.formats import normalise_speed_units

    try:
        normalise_speed_units(unit)
    except ConfigError:
        return False
    return True


def _behaviour_kind(ts: TimeSeries) -> str | None:
    if isinstance(ts, SpatialSeries):
        return "position"
    if isinstance(ts, (RoiResponseSeries, ImageSeries)):
        return None
    shape = _shape(ts.data)
    unit = str(ts.unit or "").strip().lower()
    if len(shape) != 1 and not (len(shape) == 2 and shape[1] == 1):
        return None
    if unit in LABEL_UNITS:
        return "labels"
    name = ts.name.lower()
    if _speed_unit_ok(unit) or "speed" in name or "velocity" in name:
        return "speed"
    return None


@dataclass
class Catalog:
    """The candidates of one file (see the module docstring)."""

    traces: list[Candidate]
    planes: list[str]
    behaviour: list[Candidate]
    modules: list[str]

    # ---------------------------------------------------------------- traces
    def choose_traces(self, sel: Any) -> Candidate:
        if OPHYS not in self.modules:
            present = ", ".join(self.modules) or "none"
            raise FormatError(
                f"no processing module '{OPHYS}' (processing modules present: {present}): "
                "calcium-imaging NWB files (suite2p, CaImAn exports) keep their ROI traces "
                "there, as RoiResponseSeries under Fluorescence or DfOverF"
            )
        if not self.traces:
            raise FormatError(f"processing module '{OPHYS}' holds no RoiResponseSeries "
                              "(expected under Fluorescence or DfOverF)")
        pool = self.traces
        if sel.plane is not None:
            if sel.plane in self.planes:
                pool = [c for c in pool if c.plane == sel.plane]
            else:  # suite2p: one PlaneSegmentation, one series per plane named plane0, plane1...
                pool = [c for c in pool if c.name == sel.plane]
            if not pool:
                per_plane = sorted({c.name for c in self.traces if c.name.startswith("plane")})
                raise FormatError(
                    f"--nwb-plane {sel.plane}: no such PlaneSegmentation or per-plane series; "
                    f"planes: {', '.join(self.planes + per_plane) or 'none'}")
        if sel.traces is not None:
            pool = _matching(pool, sel.traces, "--nwb-traces", self.traces)
        if len(pool) == 1:
            return pool[0]
        planes = sorted({c.plane for c in pool if c.plane})
        if len(planes) > 1:
            raise FormatError(
                f"several imaging planes ({', '.join(planes)}): choose one with --nwb-plane; "
                f"trace series: {_listing(pool)}")
        raise FormatError(f"several trace series: choose one with --nwb-traces NAME: {_listing(pool)}")

    # ------------------------------------------------------------- behaviour
    def choose_behaviour(self, sel: Any, want_speed: bool) -> Candidate:
        pool = self.behaviour
        if sel.behaviour is not None:
            return _matching(pool, sel.behaviour, "--nwb-behaviour", pool, one=True)[0]
        if not pool:
            raise FormatError(
                "no behaviour to label the frames with: no speed, position (SpatialSeries) or "
                "label TimeSeries outside 'ophys', and no intervals table with rows; add one, "
                "or name one with --nwb-behaviour")
        if want_speed:
            speedish = [c for c in pool if c.kind in SPEED_KINDS]
            if len(speedish) == 1:
                return speedish[0]
            raise FormatError(
                "labels from speed were requested: "
                + ("the file has no speed or position series" if not speedish else
                   f"several speed/position series, choose one with --nwb-behaviour NAME: "
                   f"{_listing(speedish)}"))
        labels = [c for c in pool if c.kind == "labels"]
        if len(labels) == 1:
            return labels[0]
        if len(pool) == 1:
            return pool[0]
        raise FormatError(f"several behaviour sources: choose one with --nwb-behaviour NAME: "
                          f"{_listing(pool)}")

    def default_names(self, sel: Any, want_speed: bool = False) -> dict[str, str | None]:
        """What would be chosen with `sel` (None where the choice fails), for `inspect`."""
        out: dict[str, str | None] = {}
        for key, pick in (("traces", lambda: self.choose_traces(sel)),
                          ("behaviour", lambda: self.choose_behaviour(sel, want_speed))):
            try:
                out[key] = pick().path
            except FormatError as exc:
                out[key] = None
                out[f"{key}_problem"] = str(exc)
        return out


def _listing(pool: list[Candidate]) -> str:
    return "; ".join(f"{c.path} [{c.kind}]" for c in pool)


def _names(path: str, wanted: str) -> bool:
    """`wanted` is a run of whole components of `path` ('Fluorescence', 'Deconvolved/plane0')."""
    parts, want = path.split("/"), wanted.split("/")
    return any(parts[i:i + len(want)] == want for i in range(len(parts) - len(want) + 1))


def _matching(pool: list[Candidate], wanted: str, flag: str, every: list[Candidate],
              one: bool = False) -> list[Candidate]:
    found = [c for c in pool if _names(c.path, wanted)]
    if not found:
        raise FormatError(f"{flag} {wanted}: no such series; candidates: "
                          f"{_listing(every) or 'none'}")
    if one and len(found) > 1:
        raise FormatError(f"{flag} {wanted} names several series, give the path: {_listing(found)}")
    return found


def find_candidates(nwbfile: NWBFile) -> Catalog:
    traces: list[Candidate] = []
    behaviour: list[Candidate] = []
    planes: list[str] = []
    for obj in nwbfile.objects.values():
        if isinstance(obj, PlaneSegmentation):
            planes.append(obj.name)
        elif isinstance(obj, TimeIntervals):
            if len(obj) > 0 and obj.name != INVALID_TIMES:
                behaviour.append(Candidate("intervals", obj.name, object_path(obj), (len(obj),),
                                           "start_time/stop_time", "s", obj=obj))
        elif isinstance(obj, RoiResponseSeries):
            path = object_path(obj)
            if path.split("/")[0] == OPHYS:
                table = obj.rois.table if obj.rois is not None else None
                traces.append(Candidate("traces", obj.name, path, _shape(obj.data),
                                        _timing(obj), str(obj.unit),
                                        plane=None if table is None else table.name, obj=obj))
        elif isinstance(obj, TimeSeries):
            path = object_path(obj)
            kind = _behaviour_kind(obj)
            if kind is not None and path.split("/")[0] != OPHYS:
                behaviour.append(Candidate(kind, obj.name, path, _shape(obj.data),
                                           _timing(obj), str(obj.unit), obj=obj))
    order = {"labels": 0, "speed": 1, "position": 2, "intervals": 3}
    return Catalog(
        traces=sorted(traces, key=lambda c: c.path),
        planes=sorted(planes),
        behaviour=sorted(behaviour, key=lambda c: (order[c.kind], c.path)),
        modules=sorted(nwbfile.processing),
    )
