"""NWB (Neurodata Without Borders) sessions: the entry points, importable without pynwb.

    load_nwb_session(path, selection, label_rule) -> Session   read a calcium-imaging NWB file
    save_nwb_session(session, path) -> Path                     write a session as NWB
    nwb_catalog(path) -> dict                                   every usable series, the defaults
    NwbSelectionSettings(traces, behaviour, plane)              which series to use, by name

Reading and writing use pynwb (the optional extra `nwb`: pip install 'neurogrs[nwb]');
the code that imports it lives in `neurogrs.nwb_read` / `neurogrs.nwb_write` and is only
imported here, after `require_pynwb()` has said clearly what is missing. What is read,
how series are chosen and aligned: docs/data.md, section NWB.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from neurogrs.errors import ConfigError, FormatError

__all__ = [
    "NwbSelectionSettings",
    "load_nwb_session",
    "save_nwb_session",
    "nwb_catalog",
    "require_pynwb",
    "NWB_EXTRA_HINT",
]

NWB_EXTRA_HINT = "pip install 'neurogrs[nwb]'"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class NwbSelectionSettings:
    """Which series of an NWB file make the session (None: the single candidate).

    traces:    a RoiResponseSeries, by name ('RoiResponseSeries'), path
               ('ophys/Fluorescence/RoiResponseSeries') or whole path components ('Fluorescence')
    behaviour: the labels' source: a TimeSeries (speed or labels), a SpatialSeries
               (position -> speed) or an intervals table, named the same ways
    plane:     the PlaneSegmentation whose ROIs are the neurons, when there are several
               (or suite2p's per-plane series name: plane0, plane1, ...)
    """

    traces: str | None = None
    behaviour: str | None = None
    plane: str | None = None

    def __post_init__(self) -> None:
        for name in ("traces", "behaviour", "plane"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip("/ "):
                raise ConfigError(f"{name} = {value!r}: must be a series name or path "
                                  "(a non-empty string), or None for the single candidate")
            object.__setattr__(self, name, value.strip().strip("/"))

    @property
    def is_default(self) -> bool:
        return (self.traces, self.behaviour, self.plane) == (None, None, None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NwbSelectionSettings":
        return cls(traces=d.get("traces"), behaviour=d.get("behaviour"), plane=d.get("plane"))


def require_pynwb() -> Any:
    """The pynwb module, or a FormatError naming the optional extra."""
    try:
        import pynwb
    except ImportError as exc:
        raise FormatError(
            f"reading and writing NWB files needs pynwb, the optional extra 'nwb' "
            f"({NWB_EXTRA_HINT}); it is not installed here ({exc})"
        ) from exc
    return pynwb


def _check_nwb_file(path: Path) -> None:
    """Exists, and starts like HDF5 (NWB 2 files are HDF5; the signature may sit at 0, 512, ...)."""
    if not path.exists():
        raise FormatError(f"session file not found: {path}")
    if path.is_dir():
        raise FormatError(f"{path}: is a directory, not an NWB file")
    with path.open("rb") as fh:
        head = fh.read(8)
        offset = 512
        while head != _HDF5_SIGNATURE:
            fh.seek(offset)
            head = fh.read(8)
            if len(head) < 8 or offset > 2 ** 20:
                raise FormatError(
                    f"{path.name}: not an NWB file: no HDF5 signature (NWB 2 files are HDF5, "
                    f"as written by pynwb or MatNWB; reading them needs neurogrs[nwb])"
                )
            offset *= 2


def load_nwb_session(path: str | Path, selection: NwbSelectionSettings | None = None,
                     label_rule: Any = None):
    """Read an NWB file as a Session (traces, labels aligned to the imaging frames, centroids).

    selection picks the traces, the plane and the behaviour by name (default: the single
    candidate of each; several -> a FormatError listing them). label_rule (a
    formats.SpeedLabelRule) derives labels from a speed or position series.
    """
    p = Path(path)
    _check_nwb_file(p)
    require_pynwb()
    from neurogrs.nwb_read import read_nwb_session

    return read_nwb_session(p, selection or NwbSelectionSettings(), label_rule)


def nwb_catalog(path: str | Path, selection: NwbSelectionSettings | None = None,
                want_speed: bool = False) -> dict[str, Any]:
    """Every usable series of an NWB file (name, path, shape, timing, unit) and what
    `selection` chooses (want_speed: as with a speed-to-label rule, which needs speed)."""
    p = Path(path)
    _check_nwb_file(p)
    require_pynwb()
    from neurogrs.nwb_read import catalog_of

    return catalog_of(p, selection or NwbSelectionSettings(), want_speed)


def save_nwb_session(session: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write `session` as an NWB file (atomically); see `neurogrs.nwb_write`."""
    p = Path(path)
    if p.suffix.lower() != ".nwb":
        p = p.with_name(p.name + ".nwb")
    if p.exists() and not overwrite:
        raise FormatError(f"{p}: exists; refusing to overwrite it (remove it, or --force)")
    require_pynwb()
    from neurogrs.nwb_write import write_nwb_session

    return write_nwb_session(session, p)
