"""The NeuroGRS CSV session layout (comma-separated, no header).

    TRACES_<mouse>_<day>_<session>.csv    N rows x T columns
    BEHAVIOR_<mouse>_<day>_<session>.csv  T rows x 5 binary columns (label: column 2)
    CELLXY_<mouse>.csv                    N rows "x,y" (optional; positions)

`neurogrs.formats.load_session` dispatches here for a .csv file or a directory; these names
are also exported from `neurogrs.formats`.
"""
from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from neurogrs.errors import ConfigError, FormatError, SessionError
from neurogrs.session import Session

__all__ = ["load_csv_session", "save_csv_session", "csv_session_paths"]

_TRACES_RE = re.compile(r"TRACES_(?P<mouse>[^_]+)_(?P<day>[^_]+)_(?P<session>.+)\.csv", re.I)


def csv_session_paths(directory: Path, mouse: str, day: str, session: str) -> tuple[Path, Path, Path]:
    d = Path(directory)
    return (
        d / f"TRACES_{mouse}_{day}_{session}.csv",
        d / f"BEHAVIOR_{mouse}_{day}_{session}.csv",
        d / f"CELLXY_{mouse}.csv",
    )


def _read_numeric_csv(path: Path, what: str) -> np.ndarray:
    """A comma-separated numeric table, 2-D float64; errors name row/column (1-based)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # empty files warn in loadtxt
            arr = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
        if arr.size == 0:
            raise FormatError(f"{path.name}: {what} file is empty")
        return arr
    except (ValueError, UserWarning):
        pass  # fall through to a careful scan that names the problem
    rows: list[list[float]] = []
    width = None
    with open(path, newline="") as fh:
        for r, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue  # blank line
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise FormatError(
                    f"{path.name}: ragged rows: row {r} has {len(row)} columns, "
                    f"earlier rows have {width}"
                )
            vals = []
            for c, cell in enumerate(row, start=1):
                try:
                    vals.append(float(cell))
                except ValueError:
                    raise FormatError(
                        f"{path.name}: non-numeric cell {cell.strip()!r} at row {r}, column {c} "
                        f"({what} files have no header)"
                    ) from None
            rows.append(vals)
    if not rows:
        raise FormatError(f"{path.name}: {what} file is empty")
    return np.asarray(rows, dtype=np.float64)


def _resolve_csv(path: Path, mouse: str | None, day: str | None, session: str | None
                 ) -> tuple[Path, Path, Path, dict]:
    if path.is_dir():
        if mouse is not None and day is not None and session is not None:
            ids = {"mouse": str(mouse), "day": str(day), "session": str(session)}
        else:
            found = sorted(f.name for f in path.iterdir() if _TRACES_RE.fullmatch(f.name))
            want = [f for f in found
                    if all(v is None or _TRACES_RE.fullmatch(f).group(k) == str(v)
                           for k, v in (("mouse", mouse), ("day", day), ("session", session)))]
            if not found:
                raise FormatError(
                    f"{path}: no TRACES_<mouse>_<day>_<session>.csv file in this directory "
                    "(a NeuroGRS CSV directory holds TRACES_, BEHAVIOR_ and CELLXY_ files)"
                )
            if len(want) != 1:
                raise FormatError(
                    f"{path}: cannot pick one session ({len(want)} of {len(found)} match"
                    f"{_ids_text(mouse, day, session)}); name it with --csv-id MOUSE DAY "
                    f"SESSION (in code: mouse=, day=, session=); TRACES files present: "
                    f"{', '.join(found)}"
                )
            m = _TRACES_RE.fullmatch(want[0])
            ids = {k: m.group(k) for k in ("mouse", "day", "session")}
        t, b, c = csv_session_paths(path, ids["mouse"], ids["day"], ids["session"])
        return t, b, c, ids
    m = _TRACES_RE.fullmatch(path.name)
    if not m:
        raise FormatError(
            f"{path.name}: a CSV session is named TRACES_<mouse>_<day>_<session>.csv "
            "(BEHAVIOR_... and CELLXY_<mouse>.csv beside it)"
        )
    ids = {k: m.group(k) for k in ("mouse", "day", "session")}
    given = {"mouse": mouse, "day": day, "session": session}
    clash = {k: v for k, v in given.items() if v is not None and str(v) != ids[k]}
    if clash:
        raise ConfigError(
            f"--csv-id {mouse} {day} {session} disagrees with the file named, {path.name} "
            f"({', '.join(f'{k} {ids[k]!r} vs {v!r}' for k, v in clash.items())}): give the "
            "directory with --csv-id, or the TRACES file without it"
        )
    t, b, c = csv_session_paths(path.parent, ids["mouse"], ids["day"], ids["session"])
    return path, b, c, ids


def _ids_text(mouse: str | None, day: str | None, session: str | None) -> str:
    given = [f"{k} {v}" for k, v in (("mouse", mouse), ("day", day), ("session", session))
             if v is not None]
    return f" {', '.join(given)}" if given else ""


def load_csv_session(
    path: str | Path,
    *,
    mouse: str | None = None,
    day: str | None = None,
    session: str | None = None,
    label_column: int = 2,
    fs: float = 10.0,
) -> Session:
    """A session in the NeuroGRS CSV layout (see the module docstring)."""
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer)) \
            or label_column < 0:
        raise ConfigError(f"label_column = {label_column!r}: must be an integer >= 0")
    traces_p, behav_p, xy_p, ids = _resolve_csv(Path(path), mouse, day, session)
    for p, what in ((traces_p, "traces"), (behav_p, "behaviour")):
        if not p.is_file():
            raise FormatError(f"{what} file not found: looked for {p}")

    traces_nt = _read_numeric_csv(traces_p, "TRACES")  # N x T
    behav = _read_numeric_csv(behav_p, "BEHAVIOR")      # T x 5
    n_neurons, n_frames = traces_nt.shape
    if label_column >= behav.shape[1]:
        raise FormatError(
            f"{behav_p.name}: label column {label_column} requested (0-based) but the file "
            f"has {behav.shape[1]} column(s); the NeuroGRS layout has 5"
        )
    nonbin = ~np.isin(behav, (0.0, 1.0))
    if nonbin.any():
        r, c = (int(i) for i in np.argwhere(nonbin)[0])
        raise FormatError(
            f"{behav_p.name}: behaviour columns must be binary (0/1); found {behav[r, c]:g} "
            f"at row {r + 1}, column {c + 1}"
        )
    if behav.shape[0] != n_frames:
        raise FormatError(
            f"frame count mismatch: {traces_p.name} has {n_frames} columns (frames) but "
            f"{behav_p.name} has {behav.shape[0]} rows (TRACES is N rows x T columns)"
        )
    positions = None
    meta: dict[str, Any] = {
        "source": str(traces_p),
        "format": "neurogrs-csv",
        **ids,
        "label_column": int(label_column),
        "label_names": ["other", "fine_motion"] if label_column == 2 else
        ["class0", f"behaviour_col{label_column}"],
    }
    if xy_p.is_file():
        xy = _read_numeric_csv(xy_p, "CELLXY")
        if xy.shape[1] != 2:
            raise FormatError(f"{xy_p.name}: expected 2 columns (x,y), got {xy.shape[1]}")
        if xy.shape[0] != n_neurons:
            raise FormatError(
                f"neuron count mismatch: {traces_p.name} has {n_neurons} rows (neurons) but "
                f"{xy_p.name} has {xy.shape[0]} rows"
            )
        positions = xy
    else:
        meta["positions"] = f"missing ({xy_p.name} not found)"
        warnings.warn(f"{xy_p.name} not found beside {traces_p.name}: session has no "
                      "neuron positions (CNN input falls back to neuron index order)",
                      stacklevel=2)
    labels = behav[:, label_column].astype(np.int64)
    return Session(traces=traces_nt.T, labels=labels, fs=fs, positions=positions, meta=meta)


def save_csv_session(
    session: Session,
    directory: str | Path,
    mouse: str = "M1",
    day: str = "D1",
    session_id: str = "S1",
    label_column: int = 2,
    n_behaviour_columns: int = 5,
) -> tuple[Path, Path, Path | None]:
    """Write `session` in the NeuroGRS CSV layout.

    BEHAVIOR gets `n_behaviour_columns` binary columns: the label (must be binary) in
    `label_column`, zeros elsewhere. CELLXY is written only if the session has positions
    (and overwrites an existing CELLXY_<mouse>.csv).
    """
    if not 0 <= label_column < n_behaviour_columns:
        raise ConfigError(
            f"label_column = {label_column}: must be in [0, {n_behaviour_columns - 1}]"
        )
    if session.labels.max() > 1:
        raise SessionError("the CSV layout holds binary labels only; this session has "
                           f"{session.n_classes} classes")
    for name, v in (("mouse", mouse), ("day", day), ("session_id", session_id)):
        if not v or "_" in str(v) or "/" in str(v):
            raise ConfigError(f"{name} = {v!r}: must be non-empty without '_' or '/'")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    traces_p, behav_p, xy_p = csv_session_paths(d, mouse, day, session_id)
    np.savetxt(traces_p, np.asarray(session.traces, dtype=np.float64).T, delimiter=",", fmt="%.9g")
    behav = np.zeros((session.n_frames, n_behaviour_columns), dtype=np.int64)
    behav[:, label_column] = session.labels
    np.savetxt(behav_p, behav, delimiter=",", fmt="%d")
    if session.positions is not None:
        np.savetxt(xy_p, np.asarray(session.positions, dtype=np.float64), delimiter=",", fmt="%.9g")
        return traces_p, behav_p, xy_p
    return traces_p, behav_p, None
