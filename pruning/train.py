"""Training a candidate decoder on a session and exporting it as an artifact.

A function of (session, config): the seed in the config drives every random choice
(split, undersampling, initial weights, dropout, batch order) through explicit seeds; no
global seeding. Zoo models start from `neurogrs.zoo.init_spec` (numpy glorot), a user's
`.keras` candidate from its own weights (through `keras_adapter`, the Keras gate); both
train with `neurogrs.pruning.fit`, the one training loop.

Temporal zoo models (`nn1_traces`, `nn1_filter`, ...; docs/temporal.md): the core trains on
the leading LeakyTraces' features, computed causally over the whole session in time order
and then indexed by the balanced training part; the ForwardFilter is fitted from the
training part's labels (`neurogrs.temporal.fit_filter`). Validation and test run the
whole session from a fresh state and score their frames (`evaluate_spec`).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurogrs.errors import ConfigError, ModelError
from neurogrs.evaluate import evaluate_spec
from neurogrs.layers_temporal import ForwardFilter
from neurogrs.rearrange import grid_side, rearrangement_index
from neurogrs.session import Session
from neurogrs.spec import ModelSpec, Preprocessing
from neurogrs.splits import Split, SplitSettings, make_split
from neurogrs.temporal import core_inputs, fit_filter, with_filter
from neurogrs.zoo import ZOO, Blueprint, init_spec, spec_from_blueprint

__all__ = ["TrainSettings", "TrainResult", "train"]


@dataclass(frozen=True)
class TrainSettings:
    """Training settings (paper defaults: Adam 1e-3, batch 32, 150 epochs)."""

    model: str = "nn1"  # a zoo name or a path to a .keras Sequential candidate
    epochs: int = 150
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    split: SplitSettings = field(default_factory=SplitSettings)
    standardize: bool = False  # z-score each neuron with D_T statistics

    def __post_init__(self) -> None:
        if isinstance(self.split, dict):
            object.__setattr__(self, "split", SplitSettings(**self.split))
        if not (isinstance(self.epochs, int) and 1 <= self.epochs <= 100_000):
            raise ConfigError(f"epochs must be an integer in [1, 100000], got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536):
            raise ConfigError(f"batch_size must be an integer in [1, 65536], got {self.batch_size!r}")
        if not (0 < float(self.learning_rate) <= 1):
            raise ConfigError(f"learning_rate must be in (0, 1], got {self.learning_rate!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.model not in ZOO and not str(self.model).endswith(".keras"):
            raise ConfigError(
                f"model {self.model!r} is neither a zoo model {sorted(ZOO)} nor a .keras file"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["split"] = self.split.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        return cls(**d)


@dataclass
class TrainResult:
    spec: ModelSpec
    keras_model: Any  # None for a stateful (temporal) model
    split: Split
    metrics: dict
    seconds: float


def _preprocessing(session: Session, cnn: bool, standardize: bool, idx: np.ndarray) -> Preprocessing:
    mean = scale = None
    if standardize:
        x = session.traces[idx].astype(np.float64)
        mean = x.mean(axis=0).astype(np.float32)
        sd = x.std(axis=0)
        scale = np.where(sd > 1e-8, 1.0 / np.maximum(sd, 1e-8), 1.0).astype(np.float32)
    if cnn:
        n = grid_side(session.n_neurons)
        index = rearrangement_index(session.n_neurons, session.positions)
        return Preprocessing(session.n_neurons, mean, scale, index, n)
    return Preprocessing(session.n_neurons, mean, scale)


class _Progress:
    """tqdm bar over epochs showing the training loss; `update` is fit's progress callable."""

    def __init__(self, epochs: int, enabled: bool, desc: str) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=False)

    def update(self, epochs_done: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}")
            self.bar.update(epochs_done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_candidate(model, path: str, session: Session, input_shape: tuple[int, ...]) -> None:
    got = tuple(model.inputs[0].shape[1:])
    if got != tuple(input_shape):
        raise ModelError(
            f"{path} expects input {got}, but this session gives {tuple(input_shape)} "
            f"({session.n_neurons} neurons)"
        )
    n_out = int(model.outputs[0].shape[-1])
    if n_out != session.n_classes:
        raise ModelError(f"{path} outputs {n_out} classes, the session has {session.n_classes}")


def _eval_session_metrics(spec: ModelSpec, session: Session, other: Session,
                          majority: int) -> dict:
    """Metrics on every frame of another session, with what identifies it."""
    digest = other.digest()
    same = digest == session.digest()
    if same:
        warnings.warn("--eval-session is the training session itself (same content): its "
                      "numbers are NOT a cross-session result (in a CSV directory, name "
                      "the other session with --eval-csv-id MOUSE DAY SESSION)", stacklevel=3)
    return {**evaluate_spec(spec, other, None, majority),
            "source": other.meta.get("source"), "session_sha256": digest,
            "same_as_training": same}


def train(
    session: Session,
    config: TrainSettings,
    *,
    progress: bool = True,
    eval_session: Session | None = None,
    blueprint: Blueprint | None = None,
) -> TrainResult:
    """Split, balance, train, export to a spec and evaluate it honestly.

    `blueprint` (zoo models only) replaces the zoo's blueprint of `config.model`, e.g. a
    temporal variant with other trace time constants (neurogrs.bench.temporal).
    """
    from neurogrs.pruning import keras_adapter as ka
    from neurogrs.pruning.fit import FitSettings, fit_with_history

    t0 = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    split = make_split(session.labels, config.split, rng)
    name = Path(str(config.model)).stem
    if config.model in ZOO:  # glorot kernels, zero biases (numpy, seeded from config.seed)
        with warnings.catch_warnings():  # its preprocessing is replaced: _preprocessing warns
            warnings.simplefilter("ignore")
            init_rng = np.random.default_rng((config.seed, 1))
            if blueprint is None:
                start = init_spec(config.model, session.n_neurons, init_rng,
                                  session.positions, n_classes=session.n_classes)
            else:
                start = spec_from_blueprint(blueprint, session.n_neurons, init_rng,
                                            session.positions, name=config.model)
        pre = _preprocessing(session, start.preprocessing.grid is not None, config.standardize,
                             split.balanced)
    else:  # a user's candidate, loaded (and checked) once; its weights are the start
        if blueprint is not None:
            raise ConfigError("a blueprint replaces a zoo model's, not a .keras candidate's")
        model = ka.load_candidate(config.model)
        cnn = any(type(layer).__name__ == "Conv2D" for layer in model.layers)
        pre = _preprocessing(session, cnn, config.standardize, split.balanced)
        _check_candidate(model, config.model, session, pre.input_shape)
        start = ka.from_keras(model, pre)
    start = ModelSpec(pre, start.layers, session.label_names, name=name)

    y = session.labels[split.balanced].astype(np.int32)
    if start.stateful:  # causal features over the whole session, then the training frames
        x = core_inputs(start, session.traces)[split.balanced]
    else:
        x = pre.apply(session.traces[split.balanced])
    settings = FitSettings(epochs=config.epochs, batch_size=config.batch_size,
                           learning_rate=config.learning_rate)
    bar = _Progress(config.epochs, progress, f"train {name}")
    try:
        spec, history = fit_with_history(start, x, y, settings, seed=config.seed,
                                         progress=bar.update if bar.bar is not None else None)
    finally:
        bar.close()
    if any(isinstance(layer, ForwardFilter) for layer in spec.layers):
        spec = with_filter(spec, fit_filter(session.labels, split.train, session.n_classes, y))
    seconds = time.perf_counter() - t0

    majority = int(np.bincount(session.labels[split.train]).argmax())
    metrics: dict[str, Any] = {
        "val": evaluate_spec(spec, session, split.val, majority),
        "test": evaluate_spec(spec, session, split.test, majority),
        "train_loss_final": history.loss[-1],
        "train_accuracy_final": history.accuracy[-1],
        "split": split.sizes(),
        "train_seconds": seconds,
    }
    if eval_session is not None:
        if eval_session.n_neurons != session.n_neurons:
            raise ConfigError(
                f"--eval-session has {eval_session.n_neurons} neurons, the training session "
                f"{session.n_neurons}: it must record the same neurons"
            )
        metrics["eval_session"] = _eval_session_metrics(spec, session, eval_session, majority)
    metrics.update({k_: v for k_, v in spec.summary().items()})
    provenance = {
        "session_sha256": session.digest(),
        "session_meta": session.meta,
        "train_config": config.to_dict(),
        "created_unix": time.time(),
    }
    spec = ModelSpec(spec.preprocessing, spec.layers, spec.label_names, spec.name,
                     metrics=metrics, provenance=provenance)
    keras_model = None if spec.stateful else ka.to_keras(spec)  # Keras has no stateful twin
    return TrainResult(spec=spec, keras_model=keras_model, split=split, metrics=metrics,
                       seconds=seconds)
