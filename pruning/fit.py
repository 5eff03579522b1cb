"""The one training loop: initial training now, retraining of pruning candidates later.

`fit` trains one model, `fit_many` trains several masked candidates of one full-width model
together (stacked on a candidate axis inside one XLA call). Both run the same compiled graph
(`pruning/fit_graph.py`): Adam with Keras 3's rule and constants, sparse categorical
cross-entropy, batches drawn from a fresh numpy permutation every epoch, the short last
batch of an epoch reproduced by padding it with sample weight 0.

Masks (`pruning.surgery.Masks`) switch units off; results are full-width specs already
passed through `zero_masked`, so `slice_masked` of a result is the physically smaller
model. Keep pruning at full width (accumulate masks, slice once at export): a new
architecture costs a new trace and XLA compile (seconds), a new mask set costs nothing.
The other shapes are held fixed too (see "fixed shapes" below): every call runs at most
`CALL_STEPS` steps with its batch rows padded to that, and D_T is padded to a row bucket,
so the initial training and every fine-tuning share one program per candidate-slot count.

Randomness comes only from `seed`: the batch order (`np.random.default_rng(seed)`) and
dropout (stateless threefry noise keyed by seed and step, shared by all stacked candidates).
Same seed -> identical weights; candidate i of `fit_many` equals `fit` with masks i up to
float summation order.

Stateful layers (temporal context) are not trained: x holds the core's inputs (after the
leading stateful layers, `neurogrs.temporal.core_inputs`), the loss is taken at the core's
softmax, and the stateful layers come back unchanged.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from neurogrs.errors import ConfigError, ModelError
from neurogrs.pruning import fit_graph as G
from neurogrs.pruning.surgery import Masks, check_masks, full_masks, prunable_layers, zero_masked
from neurogrs.spec import Dropout, ModelSpec
from neurogrs.temporal import core_input_shape

__all__ = ["FitSettings", "FitHistory", "fit", "fit_many", "fit_with_history", "candidate_slots",
           "CALL_STEPS", "row_bucket"]

Progress = Callable[[int, float], None]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class FitSettings:
    """Adam + sparse cross-entropy training settings (paper: 150 epochs initial, 50 retrain)."""

    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 1e-3
    dropout_scale: float = 1.0  # multiplies every Dropout rate (GRS decays it 0.95**k)

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or not 1 <= self.epochs <= 100_000:
            raise ConfigError(f"epochs must be an integer in [1, 100000], got {self.epochs!r}")
        if (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                or not 1 <= self.batch_size <= 65_536):
            raise ConfigError(f"batch_size must be an integer in [1, 65536], got {self.batch_size!r}")
        if not _is_number(self.learning_rate) or not 0 < self.learning_rate <= 1:
            raise ConfigError(f"learning_rate must be in (0, 1], got {self.learning_rate!r}")
        if not _is_number(self.dropout_scale) or not 0 <= self.dropout_scale <= 1:
            raise ConfigError(f"dropout_scale must be in [0, 1], got {self.dropout_scale!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FitSettings":
        unknown = set(d) - {"epochs", "batch_size", "learning_rate", "dropout_scale"}
        if unknown:
            raise ConfigError(f"unknown FitSettings fields {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class FitHistory:
    """Per-epoch training loss and accuracy (training mode, dropout on), as Keras reports."""

    loss: tuple[float, ...]
    accuracy: tuple[float, ...]


# ------------------------------------------------------------------ validation
def _check_data(spec: ModelSpec, x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y)
    want = core_input_shape(spec)  # after any leading stateful layers (neurogrs.temporal)
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise ConfigError(f"x must have shape [B, {', '.join(map(str, want))}] (preprocessed "
                          f"inputs of this model's trained layers), got {list(x.shape)}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ConfigError("x must be finite numbers")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"y must be 1-D integer labels, got {y.dtype}{list(y.shape)}")
    if len(y) != len(x):
        raise ConfigError(f"x has {len(x)} samples but y has {len(y)}")
    if len(y) == 0:
        raise ConfigError("no training samples")
    if y.min() < 0 or y.max() >= spec.n_outputs:
        raise ConfigError(f"y must be labels in [0, {spec.n_outputs - 1}], got "
                          f"values in [{y.min()}, {y.max()}]")
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int32)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _rates(spec: ModelSpec, scale: float) -> np.ndarray:
    rates = np.array([l.rate * scale for l in spec.layers if isinstance(l, Dropout)], np.float32)
    if rates.size and not (rates.min() >= 0 and rates.max() < 1):
        raise ModelError(f"dropout rates must be in [0, 1), got {rates.tolist()}")
    return rates


# ------------------------------------------------------------------ batching
def _batches(n: int, batch_size: int, epochs: int, rng: np.random.Generator) -> G.Batches:
    """One permutation per epoch; the short last batch padded with weight-0 samples."""
    steps = -(-n // batch_size)
    index = np.zeros((epochs, steps * batch_size), np.int32)
    weight = np.zeros((epochs, steps * batch_size), np.float32)
    for e in range(epochs):
        index[e, :n] = rng.permutation(n)
        weight[e, :n] = 1.0
    return G.Batches(index.reshape(-1, batch_size), weight.reshape(-1, batch_size))


def _chunk_epochs(epochs: int, progress: Progress | None) -> int:
    """Epochs per compiled call: all of them, or ~1/15 of them (a divisor) for a progress bar."""
    if progress is None:
        return epochs
    target = max(1, round(epochs / 15))
    return min((d for d in range(1, epochs + 1) if epochs % d == 0), key=lambda d: abs(d - target))


# ------------------------------------------------------------------ fixed shapes
# Every compiled call sees the same shapes whatever the epochs, the data size (within a
# bucket) and the progress chunking, so one XLA program per (architecture, candidate slots,
# row bucket) serves the initial training and every fine-tuning of a process: a new shape
# costs a retrace and an XLA compile (2-3 s idle, 7-12 s on the loaded 2-core machine),
# against 0.2 s for a whole 50-epoch fine-tuning of nn1 at 273 neurons.
CALL_STEPS = 1024  # steps per compiled call: the batch rows are padded to this


def _pad_steps(a: np.ndarray) -> np.ndarray:
    """[n, bs] batch rows padded with zero rows to [CALL_STEPS, bs] (never run)."""
    return np.concatenate([a, np.zeros((CALL_STEPS - len(a),) + a.shape[1:], a.dtype)])


def row_bucket(n: int) -> int:
    """Rows D_T is padded to: the next multiple of 2**(bit length - 3), at least 64
    (≤ 12.5 % padding; sessions of similar size share a bucket, hence a program)."""
    step = 1 << max(6, n.bit_length() - 3)
    return -(-n // step) * step


def _pad_rows(a: np.ndarray) -> np.ndarray:
    """Data padded with zero rows to `row_bucket` (batch indices never point there)."""
    pad = row_bucket(len(a)) - len(a)
    return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a


# ------------------------------------------------------------------ the loop
def _stack(specs: Sequence[ModelSpec]) -> list[np.ndarray]:
    """[kernel, bias] of every weighted layer, each stacked over the specs: [K, ...]."""
    per_spec = [[a for _, l in s.weighted_layers() for a in (l.kernel, l.bias)] for s in specs]
    return [np.stack(arrays) for arrays in zip(*per_spec)]


def _unstack(spec: ModelSpec, weights: Sequence[np.ndarray], k: int) -> ModelSpec:
    layers = list(spec.layers)
    for pos, (i, layer) in enumerate(spec.weighted_layers()):
        layers[i] = dataclasses.replace(layer, kernel=weights[2 * pos][k],
                                        bias=weights[2 * pos + 1][k])
    return ModelSpec(spec.preprocessing, tuple(layers), spec.label_names, spec.name,
                     provenance=spec.provenance)


def _run(spec, masks_list: list[Masks], n_slots: int, x, y, settings: FitSettings, seed: int,
         progress: Progress | None):
    """Train len(masks_list) candidates padded to n_slots; returns trained specs and histories."""
    n_real = len(masks_list)
    prunable = prunable_layers(spec)
    starts = [zero_masked(spec, m) for m in masks_list]
    masks_list = masks_list + [masks_list[0]] * (n_slots - len(masks_list))
    starts = starts + [starts[0]] * (n_slots - len(starts))
    masks = [np.stack([m[i] for m in masks_list]).astype(np.float32) for i in prunable]
    weights = _stack(starts)
    m1 = [np.zeros_like(w) for w in weights]
    m2 = [np.zeros_like(w) for w in weights]
    arch = G.arch_of(spec, prunable)
    logits_out = not spec.ends_in_softmax()
    rates = _rates(spec, settings.dropout_scale)
    batches = _batches(len(y), settings.batch_size, settings.epochs, np.random.default_rng(seed))
    steps = batches.index.shape[0] // settings.epochs
    chunk = _chunk_epochs(settings.epochs, progress)
    x, y = _pad_rows(x), _pad_rows(y)
    losses, hits = [], []
    for e0 in range(0, settings.epochs, chunk):
        for s0 in range(e0 * steps, (e0 + chunk) * steps, CALL_STEPS):
            n = min(CALL_STEPS, (e0 + chunk) * steps - s0)
            part = G.Batches(_pad_steps(batches.index[s0:s0 + n]),
                             _pad_steps(batches.weight[s0:s0 + n]))
            weights, m1, m2, loss, hit = G.train_graph(
                arch, logits_out, weights, m1, m2, masks, x, y, part, rates,
                float(settings.learning_rate), seed, s0, n_steps=n)
            losses.append(loss[:n])
            hits.append(hit[:n])
        if progress is not None:
            part_loss = np.concatenate(losses)[e0 * steps:]
            part_weight = batches.weight[e0 * steps:(e0 + chunk) * steps]
            progress(e0 + chunk, _epoch_means(part_loss, part_weight, steps)[0][-1, 0])
    loss = np.concatenate(losses)
    hit = np.concatenate(hits)
    epoch_loss, epoch_acc = _epoch_means(loss, batches.weight, steps, hit)
    results = []
    for k in range(n_real):  # the padding slots are dropped
        trained = zero_masked(_unstack(spec, weights, k), masks_list[k])
        hist = FitHistory(tuple(float(v) for v in epoch_loss[:, k]),
                          tuple(float(v) for v in epoch_acc[:, k]))
        results.append((trained, hist))
    return results


def _epoch_means(loss, weight, steps, hit=None):
    """Per-epoch mean loss (batches weighted by their size, as Keras) and accuracy, [E, K]."""
    n_b = weight.sum(axis=1)[:, None]  # [S, 1]
    e = loss.shape[0] // steps
    loss_e = (loss * n_b).reshape(e, steps, -1).sum(1) / n_b.reshape(e, steps, 1).sum(1)
    acc_e = None if hit is None else hit.reshape(e, steps, -1).sum(1) / n_b.reshape(e, steps, 1).sum(1)
    return loss_e, acc_e


def fit_with_history(spec: ModelSpec, x, y, settings: FitSettings, *, seed: int,
                     masks: Masks | None = None,
                     progress: Progress | None = None) -> tuple[ModelSpec, FitHistory]:
    """`fit`, also returning the per-epoch loss and accuracy."""
    x, y = _check_data(spec, x, y)
    seed = _check_seed(seed)
    m = full_masks(spec)
    m.update(check_masks(spec, masks or {}))
    return _run(spec, [m], 1, x, y, settings, seed, progress)[0]


def fit(spec: ModelSpec, x, y, settings: FitSettings, *, seed: int, masks: Masks | None = None,
        progress: Progress | None = None) -> ModelSpec:
    """Train `spec` (its weights are the start) with fresh Adam; masked units stay off.

    x: the core's inputs [B, *core_input_shape(spec)] (preprocessed frames, then any
    leading stateful layers); y: integer labels [B].
    `progress(epochs_done, loss)` is called every ~1/15 of the epochs when given.
    """
    return fit_with_history(spec, x, y, settings, seed=seed, masks=masks, progress=progress)[0]


def candidate_slots(spec: ModelSpec, count: int) -> int:
    """The fixed candidate count `count` candidates are padded to (fewer retraces).

    1 stays 1; up to one per prunable layer (a GRS iteration) pads to that number; more
    pad to the next power of two.
    """
    if count <= 1:
        return 1
    n = len(prunable_layers(spec))
    return n if count <= n else 1 << (count - 1).bit_length()


def fit_many(spec: ModelSpec, masks_list: Sequence[Masks], x, y, settings: FitSettings, *,
             seed: int) -> list[ModelSpec]:
    """Train one candidate per mask set, all from `spec`'s weights, in one compiled call.

    Returns one full-width spec per mask set, passed through `zero_masked`. The candidates
    share the batch order and the dropout noise (common random numbers: differences between
    them come from their masks alone).
    """
    if len(masks_list) == 0:
        raise ConfigError("fit_many needs at least one mask set, got an empty list")
    x, y = _check_data(spec, x, y)
    seed = _check_seed(seed)
    full = []
    for i, masks in enumerate(masks_list):
        m = full_masks(spec)
        try:
            m.update(check_masks(spec, masks))
        except ModelError as exc:
            raise ModelError(f"candidate {i}: {exc}") from exc
        full.append(m)
    slots = candidate_slots(spec, len(full))
    return [trained for trained, _ in _run(spec, full, slots, x, y, settings, seed, None)]
