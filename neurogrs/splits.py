"""Train / validation / test splits (algorithms.md §2) and the balanced training set.

D_S : D_V : D_E = 8 : 1 : 1. `blocked` (the default) keeps time order: within each of
`blocks` contiguous chunks the first 80% trains, the next 10% validates, the last 10%
tests, so every evaluated frame lies in the future of the frames trained on in its chunk.
`shuffled` is the paper's split; because labels come in runs of ~10 s, it puts
neighbours of every test frame into training and inflates accuracy.

D_T: all frames of the rarest class in D_S plus as many randomly drawn frames of every
other class (random undersampling; for binary labels, of label 0 as in the paper).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from neurogrs.settings import SettingsDict
from neurogrs.errors import ConfigError, SessionError

__all__ = ["SplitSettings", "Split", "make_split", "undersample"]

SPLIT_MODES = ("blocked", "shuffled")


@dataclass(frozen=True)
class SplitSettings(SettingsDict):
    mode: str = "blocked"
    blocks: int = 1
    ratios: tuple[int, int, int] = (8, 1, 1)

    def __post_init__(self) -> None:
        if self.mode not in SPLIT_MODES:
            raise ConfigError(f"split mode {self.mode!r} is not one of {SPLIT_MODES}")
        if not isinstance(self.blocks, int) or self.blocks < 1:
            raise ConfigError(f"split blocks must be an integer >= 1, got {self.blocks!r}")
        if self.mode == "shuffled" and self.blocks != 1:
            raise ConfigError(
                f"split blocks = {self.blocks}: blocks apply to the blocked split only "
                "(a shuffled split has no time order to cut); drop --blocks or use "
                "--split blocked"
            )
        r = tuple(self.ratios)
        if len(r) != 3 or min(r) <= 0:
            raise ConfigError(f"split ratios must be three positive numbers, got {self.ratios!r}")
        object.__setattr__(self, "ratios", r)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Split:
    """Frame indices of each part; `balanced` is D_T (a subset of `train`)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    balanced: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {k: int(getattr(self, k).size) for k in ("train", "val", "test", "balanced")}


def undersample(labels: np.ndarray, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-balanced subset of `index` (undersampling the larger classes)."""
    lab = labels[index]
    classes, counts = np.unique(lab, return_counts=True)
    if classes.size < 2:
        raise SessionError(
            f"the training part holds a single class ({int(classes[0])}): "
            "use more --blocks or a shuffled split"
        )
    n = int(counts.min())
    keep = [
        rng.choice(index[lab == c], size=n, replace=False) if cnt > n else index[lab == c]
        for c, cnt in zip(classes, counts)
    ]
    return np.sort(np.concatenate(keep))


def _single_class_hint(config: SplitSettings) -> str:
    if config.mode == "shuffled":
        return "the labels are nearly all one class"
    if config.blocks == 1:
        return "try --blocks K to spread the split over the session"
    return (f"--blocks {config.blocks} was given: try a larger K, or look at where the "
            "labels change with `neurogrs inspect`")


def make_split(labels: np.ndarray, config: SplitSettings, rng: np.random.Generator) -> Split:
    labels = np.asarray(labels)
    T = labels.shape[0]
    r = np.asarray(config.ratios, dtype=float)
    r = r / r.sum()
    if config.mode == "shuffled":
        chunks = [rng.permutation(T)]
    else:
        bounds = np.linspace(0, T, config.blocks + 1).round().astype(int)
        chunks = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for chunk in chunks:
        n = chunk.size
        a = int(round(n * r[0]))
        b = int(round(n * (r[0] + r[1])))
        parts["train"].append(chunk[:a])
        parts["val"].append(chunk[a:b])
        parts["test"].append(chunk[b:])
    train, val, test = (np.sort(np.concatenate(parts[k])) for k in ("train", "val", "test"))
    for name, idx in (("train", train), ("validation", val), ("test", test)):
        if idx.size == 0:
            raise SessionError(f"the {name} part of the split is empty: the session has only {T} frames")
    for name, idx in (("validation", val), ("test", test)):
        if np.unique(labels[idx]).size < 2:
            warnings.warn(f"the {name} part holds a single class: accuracy there says "
                          f"little ({_single_class_hint(config)})", stacklevel=2)
    return Split(train=train, val=val, test=test, balanced=undersample(labels, train, rng))
