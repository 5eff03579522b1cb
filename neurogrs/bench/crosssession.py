"""`neurogrs bench crosssession`: train on one day, decode the others.

The simulated nine-session suite (`neurogrs.simulate.SUITE`: mice M1/M2/M3 x sessions
S1-S3; sessions of a mouse share their neurons, later ones drift): for each mouse and each
candidate (any zoo name or .keras file, so new decoders slot in by name), train on S1 as
`neurogrs train` does (blocked split D_S:D_V:D_E = 8:1:1, balanced D_T; its test part is
reported as the within-session number), then decode every frame of S2 and S3
(`neurogrs.crosseval`: per session, pooled per mouse, pooled over all mice from the
summed confusion counts; the best constant predictor beside every number).

The real session (`nelpy_linear_track`, docs/data.md) has no second day: it is split
forward in time with the same blocked split (`real_blocks` chunks, each trained on its
first 80% and tested on its last 10%; one chunk would test on rest only, as the second
half of the recording is rest) and the test part is reported.

Nothing here selects anything on the decoded sessions: they are only scored. A candidate
that fails to train is recorded (`models.<name>.error`) and skipped; the others go on.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from neurogrs.crosseval import cross_evaluate, pool_rows, row_from_metrics
from neurogrs.errors import ConfigError
from neurogrs.settings import SettingsDict
from neurogrs.simulate import SUITE, suite_session

__all__ = ["CROSSSESSION_SCHEMA", "CROSS_DEFAULT_MODELS", "CrossSessionSettings", "default_real_session",
           "run_crosssession", "write_outputs"]

CROSSSESSION_SCHEMA = "neurogrs.bench-crosssession/1"
# the frame-wise zoo and the temporal-context MLPs (docs/temporal.md) side by side
CROSS_DEFAULT_MODELS = ("nn1", "nn2", "cnn1", "cnn2", "nn1_traces", "nn2_traces",
                        "nn1_traces_filter", "nn2_traces_filter")


def default_real_session() -> Path:
    """$NEUROGRS_NELPY, else ../shared/data/nelpy_linear_track/ beside the checkout."""
    env = os.environ.get("NEUROGRS_NELPY")
    if env:
        return Path(env)
    return (Path(__file__).resolve().parents[3] / "shared" / "data" / "nelpy_linear_track"
            / "nelpy_linear_track.npz")


def _int(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class CrossSessionSettings(SettingsDict):
    """What `bench crosssession` runs; `real_session`: "auto" (default_real_session(), skipped
    with a note when absent), "" (skip) or a path (must exist)."""

    models: tuple[str, ...] = CROSS_DEFAULT_MODELS
    mice: tuple[str, ...] = ("M1", "M2", "M3")
    frames: int = 3000  # frames per simulated session
    epochs: int = 150
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    blocks: int = 1  # blocked split of each mouse's S1
    real_session: str = "auto"
    real_blocks: int = 5

    def __post_init__(self) -> None:
        from neurogrs.pruning.train import TrainSettings

        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "mice", tuple(self.mice))
        if not self.models or len(set(self.models)) != len(self.models):
            raise ConfigError(f"models must be distinct names, got {list(self.models)}")
        for m in self.models:
            TrainSettings(model=m)  # a zoo name or a .keras file, else ConfigError naming both
        known = [name for name, *_ in SUITE]
        if not self.mice or len(set(self.mice)) != len(self.mice) or \
                any(m not in known for m in self.mice):
            raise ConfigError(f"mice must be distinct names among {known}, got {list(self.mice)}")
        _int("frames", self.frames, 200, 1_000_000)
        _int("epochs", self.epochs, 1, 100_000)
        _int("blocks", self.blocks, 1, 1000)
        _int("real_blocks", self.real_blocks, 1, 1000)
        _int("seed", self.seed, 0, 2**32 - 1)
        TrainSettings(batch_size=self.batch_size, learning_rate=self.learning_rate)
        if not isinstance(self.real_session, str):
            raise ConfigError(f"real_session must be 'auto', '' or a path, got {self.real_session!r}")

    def train_settings(self, model: str, blocks: int):
        from neurogrs.pruning.train import TrainSettings
        from neurogrs.splits import SplitSettings

        return TrainSettings(model=model, epochs=self.epochs, batch_size=self.batch_size,
                             learning_rate=self.learning_rate, seed=self.seed,
                             split=SplitSettings(mode="blocked", blocks=blocks))


def _majority(session, split) -> int:
    return int(np.bincount(session.labels[split.train]).argmax())


def _train(session, settings: CrossSessionSettings, model: str, blocks: int):
    import warnings

    from neurogrs.pruning.train import train

    with warnings.catch_warnings():  # single-class val/test parts are visible in the rows
        warnings.simplefilter("ignore", UserWarning)
        return train(session, settings.train_settings(model, blocks), progress=False)


def _real(settings: CrossSessionSettings, log: Callable[[str], None]):
    """(path, session) of the real session, or (None, why it is skipped)."""
    from neurogrs.formats import load_session

    if settings.real_session == "":
        return None, "skipped (--no-real)"
    path = default_real_session() if settings.real_session == "auto" else Path(settings.real_session)
    if not path.is_file():
        if settings.real_session == "auto":
            log(f"real session not found at {path}: skipped (give --real-session PATH)")
            return None, f"not found at {path} (give --real-session PATH)"
        raise ConfigError(f"--real-session {path}: no such file")
    return path, load_session(path)


def run_crosssession(settings: CrossSessionSettings,
                     log: Callable[[str], None] = lambda msg: None) -> dict:
    """Train every candidate on S1 of each mouse, decode S2 and S3; the real session too."""
    t0 = time.perf_counter()
    models: dict[str, dict] = {m: {"mice": {}, "train_seconds": 0.0} for m in settings.models}

    def failed(model: str, where: str, exc: Exception) -> None:
        """A candidate that cannot train is recorded and skipped; the others go on."""
        models[model]["error"] = f"{where}: {type(exc).__name__}: {exc}"
        log(f"{model}: FAILED on {where}: {exc}")

    for mouse in settings.mice:
        s1, s2, s3 = (suite_session(mouse, k, settings.frames) for k in range(3))
        others = [(f"{mouse}_S2", s2), (f"{mouse}_S3", s3)]
        for model in settings.models:
            if "error" in models[model]:
                continue
            log(f"{model}: train on {mouse}_S1 ({s1.n_neurons} neurons, {s1.n_frames} frames, "
                f"{settings.epochs} epochs), decode {mouse}_S2, {mouse}_S3")
            try:
                r = _train(s1, settings, model, settings.blocks)
                cross = cross_evaluate(r.spec, others, _majority(s1, r.split))
            except Exception as exc:  # noqa: BLE001 (recorded in the result, named in the table)
                failed(model, f"{mouse}_S1", exc)
                continue
            models[model]["train_seconds"] += r.seconds
            models[model]["mice"][mouse] = {
                "neurons": s1.n_neurons,
                "within": row_from_metrics(f"{mouse}_S1 test", r.metrics["test"]),
                "cross": cross,
            }
    for model, rec in models.items():
        if "error" in rec:
            continue
        mice = rec["mice"].values()
        rec["pooled"] = pool_rows([row for m in mice for row in m["cross"]["sessions"]],
                                  "pooled S2+S3")
        rec["pooled_within"] = pool_rows([m["within"] for m in mice], "pooled S1 test")
    path, real = _real(settings, log)
    real_info: dict = {"skipped": real} if path is None else {
        "path": str(path), "frames": real.n_frames, "neurons": real.n_neurons,
        "blocks": settings.real_blocks, "label_rule": real.meta.get("label_rule")}
    if path is not None:
        for model in settings.models:
            if "error" in models[model]:
                continue
            log(f"{model}: real session {path.name} ({real.n_frames} frames, blocked split "
                f"over {settings.real_blocks} chunks, forward in time)")
            try:
                r = _train(real, settings, model, settings.real_blocks)
            except Exception as exc:  # noqa: BLE001
                failed(model, path.name, exc)
                continue
            models[model]["real"] = {"test": row_from_metrics("test part", r.metrics["test"]),
                                     "val": row_from_metrics("val part", r.metrics["val"]),
                                     "split": r.split.sizes(), "train_seconds": r.seconds}
    return {"schema": CROSSSESSION_SCHEMA, "settings": settings.to_dict(), "real": real_info,
            "models": models, "seconds": round(time.perf_counter() - t0, 1)}


def write_outputs(result: dict, out_dir: str | Path) -> dict[str, Path]:
    """crosssession.json and crosssession.md under `out_dir` (atomically each)."""
    from neurogrs.bench.crosssession_tables import markdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "crosssession.json", "md": out / "crosssession.md"}
    for kind, text in (("json", json.dumps(result, indent=2) + "\n"),
                       ("md", markdown(result))):
        tmp = paths[kind].with_suffix(paths[kind].suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(paths[kind])
    return paths
