"""Session files: native `.npz`, the NeuroGRS CSV layout, speed-only sessions.

    load_session(path, **options) -> Session     dispatch on what `path` is
    save_session(session, path)                   native .npz (no pickle)
    save_csv_session(session, directory, ...)     NeuroGRS CSV layout
    labels_from_speed(speed, fs, ...)             thresholds (+ optional smoothing)
    SpeedLabelRule                                 the same thresholds as validated settings

Native `.npz` keys: `traces` [T, N], `labels` [T], optional `speed` [T] and
`positions` [N, 2], `fs` (scalar), `meta` (a JSON string). Loading never unpickles:
an archive holding object arrays is refused. An archive without `labels` but with
`speed` gets labels derived from speed (`SpeedLabelRule`); the real nelpy session
(`source` = "nelpy/example-data ...", speed in pixels/s) has its own default rule,
"moving vs still": moving = speed > 10 px/s.

NeuroGRS CSV layout (comma-separated, no header; `neurogrs.csv_layout`):
    TRACES_<mouse>_<day>_<session>.csv    N rows x T columns
    BEHAVIOR_<mouse>_<day>_<session>.csv  T rows x 5 binary columns (label: column 2)
    CELLXY_<mouse>.csv                    N rows "x,y" (optional; positions)

NWB files (`.nwb`, calcium imaging: RoiResponseSeries under 'ophys') are read through
`neurogrs.nwb` when the optional extra is installed (`pip install 'neurogrs[nwb]'`).
"""
from __future__ import annotations

import json
import math
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neurogrs.csv_layout import csv_session_paths, load_csv_session, save_csv_session
from neurogrs.errors import ConfigError, FormatError, SessionError
from neurogrs.session import Session, single_class_allowed

if TYPE_CHECKING:
    from neurogrs.nwb import NwbSelectionSettings

__all__ = [
    "SpeedLabelRule",
    "FINE_MOTION_RULE",
    "NELPY_RULE",
    "labels_from_speed",
    "gaussian_smooth",
    "normalise_speed_units",
    "load_session",
    "save_session",
    "load_npz_session",
    "load_csv_session",
    "save_csv_session",
    "csv_session_paths",
    "NPZ_REQUIRED_KEYS",
    "NPZ_OPTIONAL_KEYS",
]

NPZ_REQUIRED_KEYS = ("traces", "fs")
NPZ_OPTIONAL_KEYS = ("labels", "speed", "positions", "meta")

# Length units we can convert between (factor to cm/s). Pixels are not convertible.
_TO_CM_PER_S = {"cm/s": 1.0, "mm/s": 0.1, "m/s": 100.0}
_UNIT_ALIASES = {
    "cm/s": "cm/s", "cm/sec": "cm/s", "cm s-1": "cm/s", "cms": "cm/s",
    "mm/s": "mm/s", "mm/sec": "mm/s",
    "m/s": "m/s", "m/sec": "m/s",
    "px/s": "px/s", "pixels/s": "px/s", "pixel/s": "px/s", "pix/s": "px/s",
    "px/sec": "px/s", "pixels/sec": "px/s",
}
KNOWN_SPEED_UNITS = tuple(sorted(set(_UNIT_ALIASES.values())))


def normalise_speed_units(text: str) -> str:
    """'pixels/s (camera 640x480 ...)' -> 'px/s'; 'cm/s' -> 'cm/s'. Unknown -> ConfigError."""
    head = str(text).strip().split("(")[0].strip().lower()
    head = head.split()[0] if head else head
    if head in _UNIT_ALIASES:
        return _UNIT_ALIASES[head]
    raise ConfigError(
        f"speed units {text!r} not understood: use one of {', '.join(KNOWN_SPEED_UNITS)}"
    )


# --------------------------------------------------------------------------- labels
@dataclass(frozen=True)
class SpeedLabelRule:
    """How to turn speed into labels.

    band mode (high given):     label 1 where low < speed < high  (fine motion)
    threshold mode (high None): label 1 where speed > low         (moving vs still)
    smooth_s: sigma in seconds of a Gaussian applied to speed first (0 = none).
    units: the units of low/high; converted to the session's speed units when both are
    lengths per second (cm/s, mm/s, m/s); px/s only matches px/s.
    """

    low: float = 0.2
    high: float | None = 2.0
    units: str = "cm/s"
    smooth_s: float = 0.0
    label_names: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.low, (int, float)) and math.isfinite(self.low) and self.low >= 0):
            raise ConfigError(f"low = {self.low!r}: must be a finite speed >= 0")
        if self.high is not None:
            if not (isinstance(self.high, (int, float)) and math.isfinite(self.high)):
                raise ConfigError(f"high = {self.high!r}: must be a finite speed > low or None")
            if self.high <= self.low:
                raise ConfigError(
                    f"high = {self.high!r}: must be > low ({self.low!r}) (band mode), "
                    "or None for threshold mode"
                )
        if not (isinstance(self.smooth_s, (int, float)) and math.isfinite(self.smooth_s)
                and 0 <= self.smooth_s <= 60):
            raise ConfigError(f"smooth_s = {self.smooth_s!r}: must be in [0, 60] seconds")
        object.__setattr__(self, "units", normalise_speed_units(self.units))
        if self.label_names is not None:
            names = tuple(str(n) for n in self.label_names)
            if len(names) != 2:
                raise ConfigError(f"label_names = {self.label_names!r}: need exactly 2 names")
            object.__setattr__(self, "label_names", names)

    @property
    def mode(self) -> str:
        return "threshold" if self.high is None else "band"

    @property
    def names(self) -> list[str]:
        if self.label_names is not None:
            return list(self.label_names)
        return ["still", "moving"] if self.high is None else ["other", "fine_motion"]

    def describe(self) -> str:
        smooth = f", speed Gaussian-smoothed sigma {self.smooth_s:g} s" if self.smooth_s else ""
        if self.high is None:
            return f"1 if speed > {self.low:g} {self.units} else 0{smooth}"
        return f"1 if {self.low:g} < speed < {self.high:g} {self.units} else 0{smooth}"

    def converted_to(self, units: str) -> "SpeedLabelRule":
        """The same rule with thresholds expressed in `units`."""
        target = normalise_speed_units(units)
        if target == self.units:
            return self
        if target in _TO_CM_PER_S and self.units in _TO_CM_PER_S:
            f = _TO_CM_PER_S[self.units] / _TO_CM_PER_S[target]
            return SpeedLabelRule(
                low=self.low * f,
                high=None if self.high is None else self.high * f,
                units=target,
                smooth_s=self.smooth_s,
                label_names=self.label_names,
            )
        raise FormatError(
            f"speed is in {target} but the label thresholds are in {self.units}: "
            f"give thresholds in {target} (--label-from-speed LOW HIGH --speed-units {target})"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["label_names"] = self.names
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SpeedLabelRule":
        names = d.get("label_names")
        return cls(
            low=float(d["low"]),
            high=None if d.get("high") is None else float(d["high"]),
            units=str(d.get("units", "cm/s")),
            smooth_s=float(d.get("smooth_s", 0.0)),
            label_names=None if names is None else tuple(names),
        )


FINE_MOTION_RULE = SpeedLabelRule(0.2, 2.0, "cm/s")
"""The paper's label: fine motion, 0.2 < speed < 2 cm/s."""

NELPY_RULE = SpeedLabelRule(10.0, None, "px/s", label_names=("still", "moving"))
"""The nelpy linear-track session: moving = LED speed > 10 px/s (about 24% of bins)."""


def gaussian_smooth(x: np.ndarray, sigma_samples: float) -> np.ndarray:
    """Gaussian smoothing (truncated at 4 sigma, edges reflected); numpy only."""
    x = np.asarray(x, dtype=np.float64)
    if sigma_samples <= 0:
        return x.copy()
    radius = max(1, int(math.ceil(4.0 * sigma_samples)))
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (k / sigma_samples) ** 2)
    kernel /= kernel.sum()
    if x.size == 0:
        return x.copy()
    radius = min(radius, x.size - 1) if x.size > 1 else 0
    if radius == 0:
        return x.copy()
    kernel = kernel[len(kernel) // 2 - radius: len(kernel) // 2 + radius + 1]
    kernel /= kernel.sum()
    padded = np.pad(x, radius, mode="reflect")
    return np.convolve(padded, kernel, mode="valid")


def labels_from_speed(
    speed: np.ndarray,
    fs: float,
    low: float = 0.2,
    high: float | None = 2.0,
    smooth_s: float = 0.0,
    units: str = "cm/s",
) -> np.ndarray:
    """int64 labels from speed: band (low < s < high -> 1) or threshold (high None: s > low -> 1).

    `units` names the units of `speed`, `low` and `high` (they must agree; converting
    between files and rules is `SpeedLabelRule.converted_to`). Smoothing (sigma
    `smooth_s` seconds) is applied to speed before thresholding.
    """
    rule = SpeedLabelRule(low=low, high=high, units=units, smooth_s=smooth_s)
    return _apply_rule(np.asarray(speed), float(fs), rule)


def _apply_rule(speed: np.ndarray, fs: float, rule: SpeedLabelRule) -> np.ndarray:
    if speed.ndim != 1:
        raise SessionError(f"speed must be 1-D [T], got shape {speed.shape}")
    if not np.all(np.isfinite(speed)):
        raise SessionError("speed contains NaN/Inf: cannot derive labels from it")
    if not (math.isfinite(fs) and fs > 0):
        raise SessionError(f"fs must be > 0 Hz, got {fs}")
    s = gaussian_smooth(speed, rule.smooth_s * fs) if rule.smooth_s > 0 else speed
    if rule.high is None:
        lab = s > rule.low
    else:
        lab = (s > rule.low) & (s < rule.high)
    return lab.astype(np.int64)


def _derive_labels(
    speed: np.ndarray, fs: float, rule: SpeedLabelRule, speed_units: str | None, meta: dict
) -> tuple[np.ndarray, dict]:
    if speed_units is not None:
        rule = rule.converted_to(speed_units)
    labels = _apply_rule(speed, fs, rule)
    meta = dict(meta)
    meta["label_rule"] = rule.describe()
    meta["label_rule_settings"] = rule.to_dict()
    meta["label_names"] = rule.names
    meta["speed_units"] = speed_units if speed_units is not None else rule.units
    if speed_units is None:
        meta["speed_units_assumed"] = True
    frac = float(labels.mean()) if labels.size else float("nan")
    if labels.size and (frac == 0.0 or frac == 1.0) and not single_class_allowed():
        raise SessionError(
            f"labels derived from speed ({rule.describe()}) hold a single class "
            f"(label-1 fraction {frac:.0%}; speed ranges {float(speed.min()):g}.."
            f"{float(speed.max()):g}): choose other thresholds (--label-from-speed LOW HIGH)"
        )
    return labels, meta


# --------------------------------------------------------------------------- dispatch
def load_session(
    path: str | Path,
    *,
    label_rule: SpeedLabelRule | None = None,
    label_column: int = 2,
    mouse: str | None = None,
    day: str | None = None,
    session: str | None = None,
    nwb: "NwbSelectionSettings | None" = None,
) -> Session:
    """Load a session from a native .npz, a NeuroGRS TRACES_*.csv, or a directory of them.

    label_rule: derive labels from speed (overrides labels stored in an .npz); an .npz
    without labels uses it, or the file's own default (nelpy), or the paper's fine-motion
    rule when speed is in cm/s.
    label_column: BEHAVIOR column holding the label (CSV layout).
    mouse/day/session: pick the session when `path` is a directory of CSV files; given with
    a TRACES file, they must agree with its name (ConfigError otherwise).
    nwb: which series of an NWB file to use (`neurogrs.nwb.NwbSelectionSettings`); refused
    for other formats.
    """
    p = Path(path)
    if not p.exists():
        raise FormatError(f"session file not found: {p}")
    suffix = p.suffix.lower()
    if nwb is not None and not nwb.is_default and suffix != ".nwb":
        raise ConfigError(f"--nwb-traces/--nwb-behaviour/--nwb-plane pick series of an NWB "
                          f"file; {p.name} is not one: drop them")
    if p.is_dir() or suffix == ".csv":
        if label_rule is not None:
            raise ConfigError(
                f"{p.name}: labels from speed were requested, but the NeuroGRS CSV layout has "
                "no speed; its labels come from a BEHAVIOR column (--label-column)"
            )
        return load_csv_session(p, mouse=mouse, day=day, session=session,
                                label_column=label_column)
    if suffix == ".npz":
        if (mouse, day, session) != (None, None, None):
            raise ConfigError(f"--csv-id (mouse/day/session) picks a session of the NeuroGRS CSV "
                              f"layout; {p.name} is a native .npz: drop it")
        return load_npz_session(p, label_rule=label_rule)
    if suffix == ".nwb":
        if (mouse, day, session) != (None, None, None):
            raise ConfigError(f"--csv-id (mouse/day/session) picks a session of the NeuroGRS CSV "
                              f"layout; {p.name} is an NWB file: drop it")
        from neurogrs.nwb import load_nwb_session

        return load_nwb_session(p, nwb, label_rule=label_rule)
    raise FormatError(
        f"{p.name}: unknown session format {suffix or '(no suffix)'}: expected a native .npz, "
        "an NWB file (.nwb), a TRACES_<mouse>_<day>_<session>.csv, or a directory of NeuroGRS "
        "CSV files"
    )


# --------------------------------------------------------------------------- npz
def save_session(session: Session, path: str | Path) -> Path:
    """Write `session` as a native .npz (no pickled objects; meta as a JSON string)."""
    p = Path(path)
    if p.suffix.lower() != ".npz":
        p = p.with_name(p.name + ".npz")
    p.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "traces": np.asarray(session.traces, dtype=np.float32),
        "labels": np.asarray(session.labels, dtype=np.int64),
        "fs": np.asarray(float(session.fs), dtype=np.float64),
        "meta": np.asarray(json.dumps(session.meta, sort_keys=True)),
    }
    if session.speed is not None:
        arrays["speed"] = np.asarray(session.speed, dtype=np.float32)
    if session.positions is not None:
        arrays["positions"] = np.asarray(session.positions, dtype=np.float32)
    tmp = p.with_name(p.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(p)
    return p


def _npz_scalar_str(data: Any, key: str, name: str) -> str:
    arr = data[key]
    if arr.dtype.kind not in "US" or arr.ndim != 0:
        raise FormatError(f"{name}: key {key!r} must be a string scalar, got {arr.dtype} {arr.shape}")
    return str(arr[()])


def load_npz_session(path: str | Path, label_rule: SpeedLabelRule | None = None) -> Session:
    p = Path(path)
    name = p.name
    if not zipfile.is_zipfile(p):  # np.load would try other formats, pickle among them
        raise FormatError(f"{name}: not a readable .npz archive (not a zip file)")
    try:
        with np.load(p, allow_pickle=False) as data:
            keys = list(data.files)
            arrays: dict[str, np.ndarray] = {}
            for k in keys:
                arrays[k] = data[k]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise FormatError(
                f"{name} holds pickled Python objects (object arrays); neurogrs never "
                "unpickles session files: refused. Save plain numeric arrays instead."
            ) from exc
        raise FormatError(f"{name}: not a readable .npz archive: {exc}") from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"{name}: not a readable .npz archive: {exc}") from exc

    present = ", ".join(sorted(keys)) or "(none)"
    for key in ("traces", "fs"):
        if key not in arrays:
            raise FormatError(f"{name}: missing key {key!r}; keys present: {present}")

    meta: dict = {}
    if "meta" in arrays:
        raw = _npz_scalar_str(arrays, "meta", name)
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{name}: key 'meta' is not valid JSON: {exc}") from exc
        if not isinstance(meta, dict):
            raise FormatError(f"{name}: key 'meta' must be a JSON object, got {type(meta).__name__}")

    fs_arr = arrays["fs"]
    if fs_arr.size != 1 or fs_arr.dtype.kind not in "iuf":
        raise FormatError(f"{name}: key 'fs' must be a numeric scalar, got {fs_arr.dtype} {fs_arr.shape}")
    fs = float(fs_arr.reshape(()))

    traces = arrays["traces"]
    speed = arrays.get("speed")
    positions = arrays.get("positions")
    meta.setdefault("source", str(p))
    meta.setdefault("file", name)

    # provenance strings written by other tools (e.g. the nelpy conversion)
    speed_units = meta.get("speed_units")
    if "speed_units" in arrays:
        speed_units = _npz_scalar_str(arrays, "speed_units", name)
        meta["speed_units"] = speed_units
        meta["speed_units_as_recorded"] = speed_units
    if "source" in arrays:
        meta["source"] = _npz_scalar_str(arrays, "source", name)

    labels = arrays.get("labels")
    if label_rule is not None or labels is None:
        if speed is None:
            raise FormatError(
                f"{name}: no 'labels' and no 'speed' to derive them from; keys present: {present}"
                if labels is None else
                f"{name}: labels from speed were requested but the file has no 'speed'; "
                f"keys present: {present}"
            )
        units_norm = None
        if speed_units is not None:
            try:
                units_norm = normalise_speed_units(speed_units)
            except ConfigError as exc:
                raise FormatError(f"{name}: {exc}") from exc
        rule = label_rule
        if rule is None:
            rule = _default_rule(meta, units_norm, name)
        speed_arr = np.asarray(speed)
        if speed_arr.dtype.kind not in "iuf":
            raise FormatError(f"{name}: key 'speed' must be numeric, got {speed_arr.dtype}")
        labels, meta = _derive_labels(speed_arr.astype(np.float64), fs, rule, units_norm, meta)
    return Session(traces=traces, labels=labels, fs=fs, speed=speed,
                   positions=positions, meta=meta)


def _default_rule(meta: dict, units: str | None, name: str) -> SpeedLabelRule:
    source = str(meta.get("source", ""))
    if source.startswith("nelpy/example-data"):
        return NELPY_RULE
    if units is None or units in _TO_CM_PER_S:
        return FINE_MOTION_RULE
    raise FormatError(
        f"{name}: no labels, and speed is in {units}: the default fine-motion thresholds "
        f"are in cm/s; give thresholds in {units} (--label-from-speed LOW HIGH "
        f"--speed-units {units}, or LOW only for moving vs still)"
    )
