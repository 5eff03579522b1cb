"""The masked, candidate-stacked training graph behind `neurogrs.pruning.fit` (TensorFlow).

One pure function trains K candidates of one architecture at once: weights stacked on a
leading candidate axis, a unit mask per prunable layer and candidate, applied to the layer's
output after its activation (masking weights alone would let a bias leak through ReLU). A
masked unit then gets exactly zero gradient, and Adam keeps its zero weights at zero.

Everything that varies between calls is a tensor argument (weights, Adam state, masks, X,
Y, per-step batch indices and sample weights, dropout rates, seed, step counter), so one
trace serves every candidate set of an architecture; the whole multi-epoch loop
(`tf.while_loop` over steps, `GradientTape` inside) is one XLA call. No Keras optimizer and
no tf.Variable inside: Adam is written out with Keras 3's update rule and constants.

Dropout noise is drawn with `tf.random.stateless_uniform(alg="threefry")` (an explicit
algorithm: auto-select is several times slower under XLA on CPU), seeded by (seed, global
step, dropout layer), and shared by every candidate, so a candidate's result does not depend
on which other candidates it is stacked with.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from neurogrs.pruning.tf_quiet import import_tensorflow
from neurogrs.errors import ModelError
from neurogrs.layers import is_stateful
from neurogrs.spec import Activation, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ModelSpec

__all__ = ["Arch", "arch_of", "Batches", "compiled", "train_graph", "trace_count"]

tf = import_tensorflow()


def _one_intra_op_thread() -> None:
    """Run TensorFlow ops on one intra-op thread (process-wide, set on first import).

    For these small models one thread beat the default pool on the 2-core machine, for MLP
    retraining and CNN steps alike, Keras included (docs/concepts.md, Training). Left alone
    when the TensorFlow runtime already started (another module used it first).
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:
        pass


_one_intra_op_thread()

# Keras 3 Adam constants, and the clip Keras applies to probabilities in cross-entropy
BETA_1, BETA_2, ADAM_EPS, PROB_EPS = 0.9, 0.999, 1e-7, 1e-7

# One op per spec layer, static Python (part of the cache key):
#   ("dense", activation, mask slot | -1)
#   ("conv", (kh, kw), (sh, sw), activation, mask slot | -1)
#   ("maxpool", (ph, pw), (sh, sw)) | ("flatten",) | ("dropout", slot) | ("act", activation)
Arch = tuple[tuple, ...]


def arch_of(spec: ModelSpec, prunable: list[int]) -> Arch:
    ops: list[tuple] = []
    n_drop = 0
    for i, layer in enumerate(spec.layers):
        slot = prunable.index(i) if i in prunable else -1
        if isinstance(layer, Dense):
            ops.append(("dense", layer.activation, slot))
        elif isinstance(layer, Conv2D):
            ops.append(("conv", tuple(layer.kernel.shape[:2]), layer.strides, layer.activation, slot))
        elif isinstance(layer, MaxPool2D):
            ops.append(("maxpool", layer.pool_size, layer.strides))
        elif isinstance(layer, Flatten):
            ops.append(("flatten",))
        elif isinstance(layer, Dropout):
            ops.append(("dropout", n_drop))
            n_drop += 1
        elif isinstance(layer, Activation):
            ops.append(("act", layer.activation))
        elif is_stateful(layer):  # not trained: x enters after it / the loss is before it
            continue
        else:
            raise ModelError(f"layer {i} ({type(layer).__name__}) cannot be trained")
    return tuple(ops)


class Batches(NamedTuple):
    """Per-step batch indices [S, bs] (int32) and sample weights [S, bs] (0 = padding)."""

    index: np.ndarray
    weight: np.ndarray


def _activate(h: tf.Tensor, act: str, logits_out: bool) -> tf.Tensor:
    if act == "relu":
        return tf.nn.relu(h)
    if act == "softmax" and not logits_out:
        return tf.nn.softmax(h, axis=-1)
    return h


def _conv(h: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, size, strides) -> tf.Tensor:
    """Valid convolution of h [K, B, H, W, C] with per-candidate kernels [K, kh, kw, C, O]."""
    kh, kw = size
    sh, sw = strides
    ho = (h.shape[2] - kh) // sh + 1
    wo = (h.shape[3] - kw) // sw + 1
    patches = [h[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw, :]
               for i in range(kh) for j in range(kw)]
    x = tf.concat(patches, axis=-1)  # [K, B, Ho, Wo, kh*kw*C], (i, j, c) order = kernel reshape
    k = tf.reshape(kernel, [kernel.shape[0], -1, kernel.shape[-1]])
    return tf.einsum("kbhwc,kco->kbhwo", x, k) + bias[:, None, None, None, :]


def _maxpool(h: tf.Tensor, size, strides) -> tf.Tensor:
    """Valid max pooling of h [K, B, H, W, C].

    Non-overlapping pools (size == strides, the zoo's) are a reshape and a reduce_max: the
    gradient of max_pool2d under XLA on CPU (select-and-scatter) is far slower.
    """
    k, b = h.shape[0], h.shape[1]
    (ph, pw), (sh, sw) = size, strides
    if (ph, pw) == (sh, sw):
        ho, wo = (h.shape[2] - ph) // sh + 1, (h.shape[3] - pw) // sw + 1
        y = tf.reshape(h[:, :, :ho * ph, :wo * pw, :], [k, b, ho, ph, wo, pw, h.shape[4]])
        return tf.reduce_max(y, axis=[3, 5])
    y = tf.nn.max_pool2d(tf.reshape(h, [k * b, *h.shape[2:]]), size, strides, "VALID")
    return tf.reshape(y, [k, b, *y.shape[1:]])


def _mask(h: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    return h * tf.reshape(m, [m.shape[0]] + [1] * (h.ndim - 2) + [m.shape[1]])


def forward(arch: Arch, weights, masks, x, rates, seed, step, training: bool, logits_out: bool):
    """x [B, ...] shared by the K candidates -> outputs [K, B, C].

    The last layer's softmax is skipped when `logits_out` (models whose output layer is not
    a softmax are trained on logits).
    """
    k = weights[0].shape[0]
    h = tf.broadcast_to(x[None], [k, *x.shape])
    w = 0
    mask = None
    n_drop = sum(1 for op in arch if op[0] == "dropout")
    last = max(i for i, op in enumerate(arch) if op[0] in ("dense", "conv", "act"))
    for i, op in enumerate(arch):
        kind = op[0]
        if kind == "dense":
            h = tf.einsum("kbi,kio->kbo", h, weights[w]) + weights[w + 1][:, None, :]
            h = _activate(h, op[1], logits_out and i == last)
            w += 2
            mask = masks[op[2]] if op[2] >= 0 else None
        elif kind == "conv":
            h = _activate(_conv(h, weights[w], weights[w + 1], op[1], op[2]), op[3], False)
            w += 2
            mask = masks[op[4]] if op[4] >= 0 else None
        elif kind == "maxpool":
            h = _maxpool(h, op[1], op[2])
        elif kind == "flatten":
            h = tf.reshape(h, [h.shape[0], h.shape[1], -1])
            mask = None  # a masked channel is zero at every position already
        elif kind == "act":
            h = _activate(h, op[1], logits_out and i == last)
        elif kind == "dropout" and training:
            rate = rates[op[1]]
            s = tf.stack([seed, step * n_drop + op[1]])
            u = tf.random.stateless_uniform([1, *h.shape[1:]], s, alg="threefry")
            h = tf.where(u >= rate, h / (1.0 - rate), tf.zeros_like(h))
        if mask is not None and kind in ("dense", "conv", "act"):
            h = _mask(h, mask)
    return h


def _per_sample_loss(out: tf.Tensor, y: tf.Tensor, logits_out: bool) -> tf.Tensor:
    """Sparse categorical cross-entropy [K, B] as Keras computes it."""
    yk = tf.broadcast_to(y[None], out.shape[:2])
    if logits_out:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yk, logits=out)
    p = out / tf.reduce_sum(out, axis=-1, keepdims=True)
    p = tf.clip_by_value(p, PROB_EPS, 1.0 - PROB_EPS)
    return -tf.reduce_sum(tf.one_hot(yk, out.shape[-1]) * tf.math.log(p), axis=-1)


def _train(arch, logits_out, weights, m1, m2, masks, x, y, index, weight, n_steps, rates, lr,
           seed, t0):
    """Run the first `n_steps` steps of `index`/`weight` (a tensor: the rows after it are
    padding, so calls of any length share one program); returns weights, Adam moments,
    per-step loss and hits ([rows of index, K], rows from n_steps on are zero)."""
    TRACES[arch] = TRACES.get(arch, 0) + 1  # runs only while tracing (see `trace_count`)
    rows = index.shape[0]

    def body(s, weights, m1, m2, losses, hits):
        xb = tf.gather(x, index[s])
        yb = tf.gather(y, index[s])
        wb = weight[s]
        t = t0 + tf.cast(s, tf.int64)  # global step before this update
        with tf.GradientTape() as tape:
            tape.watch(weights)
            out = forward(arch, weights, masks, xb, rates, seed, t, True, logits_out)
            per = _per_sample_loss(out, yb, logits_out)  # [K, B]
            loss_k = tf.reduce_sum(per * wb, axis=1) / tf.reduce_sum(wb)
            total = tf.reduce_sum(loss_k)  # candidates are independent: one tape for all
        grads = tape.gradient(total, weights)
        step = tf.cast(t + 1, tf.float32)
        alpha = lr * tf.sqrt(1.0 - BETA_2 ** step) / (1.0 - BETA_1 ** step)
        new_m1 = tuple(m + (g - m) * (1.0 - BETA_1) for m, g in zip(m1, grads))
        new_m2 = tuple(v + (tf.square(g) - v) * (1.0 - BETA_2) for v, g in zip(m2, grads))
        new_w = tuple(p - m * alpha / (tf.sqrt(v) + ADAM_EPS)
                      for p, m, v in zip(weights, new_m1, new_m2))
        correct = tf.cast(tf.equal(tf.argmax(out, axis=-1, output_type=tf.int32), yb[None]), tf.float32)
        hits = hits.write(s, tf.reduce_sum(correct * wb, axis=1))
        losses = losses.write(s, loss_k)
        return s + 1, new_w, new_m1, new_m2, losses, hits

    k = weights[0].shape[0]
    losses = tf.TensorArray(tf.float32, size=rows, element_shape=[k])
    hits = tf.TensorArray(tf.float32, size=rows, element_shape=[k])
    _, weights, m1, m2, losses, hits = tf.while_loop(
        lambda s, *_: s < n_steps, body,
        (tf.constant(0), tuple(weights), tuple(m1), tuple(m2), losses, hits),
    )
    return weights, m1, m2, losses.stack(), hits.stack()


# Traces of `_train` per architecture in this process: every trace is an XLA compile
# (seconds). Read by `trace_count`; the tests bound it for whole searches.
TRACES: dict[Arch, int] = {}


def trace_count() -> int:
    """How many times the trainer was traced (= XLA-compiled) in this process so far."""
    return sum(TRACES.values())


@functools.lru_cache(maxsize=64)
def compiled(arch: Arch, logits_out: bool):
    """The jitted trainer of one architecture (a per-process cache).

    tf.function keeps one XLA program per input shape signature (candidate slots, padded
    data rows, steps per call, batch size) underneath, so the key here is only what is
    static Python. `neurogrs.pruning.fit` keeps those shapes few (module docstring).
    """
    return tf.function(functools.partial(_train, arch, logits_out), jit_compile=True,
                       reduce_retracing=False)


def train_graph(arch: Arch, logits_out: bool, weights, m1, m2, masks, x, y, batches: Batches,
                rates, lr: float, seed: int, t0: int, n_steps: int | None = None):
    """Call the compiled trainer on the first `n_steps` rows of `batches` (default: all);
    numpy in, numpy out."""
    fn = compiled(arch, logits_out)
    n_steps = batches.index.shape[0] if n_steps is None else n_steps
    out = fn(tuple(tf.constant(w) for w in weights), tuple(tf.constant(m) for m in m1),
             tuple(tf.constant(v) for v in m2), tuple(tf.constant(m) for m in masks),
             tf.constant(x), tf.constant(y), tf.constant(batches.index),
             tf.constant(batches.weight), tf.constant(n_steps, tf.int32),
             tf.constant(rates, tf.float32),
             tf.constant(lr, tf.float32), tf.constant(seed, tf.int64), tf.constant(t0, tf.int64))
    return tuple([a.numpy() for a in part] if isinstance(part, tuple) else part.numpy() for part in out)
