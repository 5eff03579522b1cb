"""A deterministic generator of realistic calcium-imaging sessions.

The model, step by step (all randomness from `numpy.random.Generator`s seeded by `seed`;
nothing global is seeded):

1. **Field of view.** Neuron centroids in a `fov_px` x `fov_px` image: a fraction of the
   neurons in compact Gaussian clusters (sd `cluster_sd_px`), the rest uniform; no two
   somata closer than `min_distance_px`.
2. **Behaviour** (10 Hz): a semi-Markov process over rest / fine / coarse motion with
   gamma-distributed dwell times of seconds; the fine-motion dwell time is set so that the
   expected label-1 fraction is `label1_fraction`, and the process is redrawn (from the same
   generator) until the realised fraction is within `label1_tolerance` of it. Speed per
   frame follows the state: rest < 0.15 cm/s, fine motion 0.22-1.9 cm/s, coarse > 2.2 cm/s
   (slowly fluctuating inside each bout). Label = fine motion (0.2 < speed < 2 cm/s), so
   `labels_from_speed(speed, fs)` reproduces the labels exactly.
3. **Tuning.** A subpopulation (`tuned_fraction`) is tuned to locomotion through smooth
   curves of log-speed: "fine" cells (a bump over the fine-motion range), "run" cells
   (rising sigmoid: fire in fine and more in coarse motion), "rest" cells (falling). Tuned
   neurons concentrate in some clusters, which share a type. The others are untuned. Every
   neuron also follows a shared slow fluctuation (arousal/brain state) and its own slow
   fluctuation, which are unrelated to the label.
4. **Spikes -> calcium.** Poisson spikes at the modulated rate, each adding a GCaMP-like
   transient (rise ~50 ms, decay `decay_s` 0.5-1.0 s per neuron, lognormal amplitude).
5. **Noise and events.** Gaussian noise, then a per-neuron threshold at the neuron's
   `zero_fraction` quantile (deconvolution-like): non-negative, event-like traces where
   about half of all entries are exactly zero.

`simulate_suite` writes nine sessions mirroring the paper: three "mice" (273, 140, 114
neurons) x three sessions of 3,000 frames. Sessions of one mouse share the neurons
(positions, tuning types, curves), with day-to-day drift in rates and gains, so training
on one session and decoding another is meaningful.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from neurogrs.session import Session
from neurogrs.simulate_settings import SimulationSettings, check_range

__all__ = [
    "SimulationSettings",
    "MouseModel",
    "simulate_mouse",
    "simulate_session",
    "simulate_recording",
    "simulate_behaviour",
    "simulate_suite",
    "suite_session",
    "SUITE",
    "REST",
    "FINE",
    "COARSE",
]

REST, FINE, COARSE = 0, 1, 2
STATE_NAMES = ("rest", "fine", "coarse")
CELL_TYPES = ("untuned", "fine", "run", "rest")

# Speed bands per state, cm/s (strictly inside the paper's label thresholds 0.2 / 2).
_REST_MAX = 0.15
_FINE_BAND = (0.22, 1.9)
_COARSE_BAND = (2.2, 30.0)

# Embedded jump chain between states (no self-transitions): rows from, columns to.
_JUMP = np.array([
    [0.0, 0.7, 0.3],   # rest  -> fine / coarse
    [0.55, 0.0, 0.45],  # fine  -> rest / coarse
    [0.4, 0.6, 0.0],   # coarse -> rest / fine
])


@dataclass(frozen=True)
class MouseModel:
    """The neurons of one simulated animal, shared by all of its sessions."""

    positions: np.ndarray   # [N, 2] px
    cell_type: np.ndarray   # [N] index into CELL_TYPES
    cluster: np.ndarray     # [N] cluster index, -1 = scattered
    base_rate: np.ndarray   # [N] Hz
    gain: np.ndarray        # [N] log-rate modulation depth
    centre: np.ndarray      # [N] tuning-curve centre in log10(speed)
    width: np.ndarray       # [N] tuning-curve width in log10(speed)
    shared_coupling: np.ndarray  # [N]
    decay_s: np.ndarray     # [N]
    amplitude: np.ndarray   # [N] transient amplitude per spike
    zero_fraction: np.ndarray  # [N]

    @property
    def n_neurons(self) -> int:
        return int(self.positions.shape[0])


# --------------------------------------------------------------------------- neurons
def simulate_mouse(settings: SimulationSettings, rng: np.random.Generator) -> MouseModel:
    s = settings
    n = s.n_neurons
    margin = min(3.0 * s.cluster_sd_px, s.fov_px / 4)
    centres = rng.uniform(margin, s.fov_px - margin, size=(s.n_clusters, 2))
    in_cluster = rng.random(n) < s.clustered_fraction
    cluster = np.where(in_cluster, rng.integers(0, s.n_clusters, size=n), -1)
    pos = np.empty((n, 2))
    for i in range(n):  # somata do not overlap: redraw closer than min_distance_px
        for _ in range(100):
            if in_cluster[i]:
                p = centres[cluster[i]] + rng.normal(0.0, s.cluster_sd_px, size=2)
            else:
                p = rng.uniform(0.0, s.fov_px, size=2)
            p = np.clip(p, 0.0, s.fov_px)
            if i == 0 or np.min(np.sum((pos[:i] - p) ** 2, axis=1)) >= s.min_distance_px ** 2:
                break
        pos[i] = p

    # half of the clusters are "tuned" clusters, each with one dominant type
    cluster_type = rng.integers(1, len(CELL_TYPES), size=s.n_clusters)
    tuned_cluster = rng.random(s.n_clusters) < 0.5
    n_tuned = int(round(s.tuned_fraction * n))
    weight = np.ones(n)
    weight[in_cluster & tuned_cluster[np.maximum(cluster, 0)]] = 4.0
    tuned_idx = rng.choice(n, size=n_tuned, replace=False, p=weight / weight.sum()) \
        if n_tuned else np.zeros(0, dtype=np.int64)
    cell_type = np.zeros(n, dtype=np.int64)
    random_type = rng.choice([1, 2, 3], size=n, p=[0.35, 0.4, 0.25])
    follow = rng.random(n) < 0.8
    for i in tuned_idx:
        c = cluster[i]
        if c >= 0 and tuned_cluster[c] and follow[i]:
            cell_type[i] = cluster_type[c]
        else:
            cell_type[i] = random_type[i]

    base_rate = s.base_rate_hz * rng.lognormal(0.0, 0.6, size=n)
    gain = s.tuning_gain * rng.lognormal(0.0, 0.35, size=n)
    centre = np.zeros(n)
    width = np.zeros(n)
    fine = cell_type == 1
    run = cell_type == 2
    rest = cell_type == 3
    centre[fine] = rng.uniform(-0.55, 0.15, size=fine.sum())   # bump over 0.3-1.4 cm/s
    width[fine] = rng.uniform(0.2, 0.4, size=fine.sum())
    centre[run] = rng.uniform(-0.5, 0.6, size=run.sum())       # sigmoid midpoint
    width[run] = rng.uniform(0.1, 0.3, size=run.sum())
    centre[rest] = rng.uniform(-0.9, -0.5, size=rest.sum())
    width[rest] = rng.uniform(0.1, 0.2, size=rest.sum())
    shared = rng.normal(0.6, 0.4, size=n)
    decay = rng.uniform(s.decay_s[0], s.decay_s[1], size=n)
    amplitude = rng.lognormal(0.0, 0.3, size=n)
    zf = np.clip(s.zero_fraction + rng.uniform(-0.15, 0.15, size=n), 0.0, 0.95)
    return MouseModel(
        positions=pos.astype(np.float32), cell_type=cell_type, cluster=cluster,
        base_rate=base_rate, gain=gain, centre=centre, width=width,
        shared_coupling=shared, decay_s=decay, amplitude=amplitude, zero_fraction=zf,
    )


def _drifted(mouse: MouseModel, drift: float, rng: np.random.Generator) -> MouseModel:
    """Day-to-day drift: rates, gains and curve centres change; positions and types do not."""
    if drift == 0:
        return mouse
    n = mouse.n_neurons
    base = mouse.base_rate * rng.lognormal(0.0, drift, size=n)
    silent = rng.random(n) < 0.05 * min(1.0, drift / 0.25)  # a few cells fade out that day
    base[silent] *= 0.2
    return replace(
        mouse,
        base_rate=base,
        gain=mouse.gain * rng.lognormal(0.0, drift, size=n),
        centre=mouse.centre + rng.normal(0.0, 0.3 * drift, size=n),
        amplitude=mouse.amplitude * rng.lognormal(0.0, 0.5 * drift, size=n),
    )


# --------------------------------------------------------------------------- behaviour
def _fine_dwell(settings: SimulationSettings) -> float:
    # stationary visit frequencies of the jump chain
    w, v = np.linalg.eig(_JUMP.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1.0))])
    pi = pi / pi.sum()
    f = settings.label1_fraction
    other = pi[REST] * settings.rest_dwell_s + pi[COARSE] * settings.coarse_dwell_s
    return f * other / ((1.0 - f) * pi[FINE])


def _draw_states(settings: SimulationSettings, rng: np.random.Generator) -> np.ndarray:
    T, fs = settings.n_frames, settings.fs
    dwell = np.array([settings.rest_dwell_s, _fine_dwell(settings), settings.coarse_dwell_s])
    states = np.empty(T, dtype=np.int64)
    state = int(rng.choice(3, p=dwell / dwell.sum()))
    t = 0
    shape = 3.0
    while t < T:
        d = max(1.0, rng.gamma(shape, dwell[state] / shape))
        k = max(1, int(round(d * fs)))
        states[t:t + k] = state
        t += k
        state = int(rng.choice(3, p=_JUMP[state]))
    return states


def _ar1(rng: np.random.Generator, T: int, tau_frames: float, sd: float, size: int = 1
         ) -> np.ndarray:
    """Stationary AR(1) with time constant `tau_frames` and marginal sd `sd`: [T, size]."""
    a = math.exp(-1.0 / max(tau_frames, 1e-9))
    noise = rng.normal(0.0, sd * math.sqrt(1.0 - a * a), size=(T, size))
    x = np.empty((T, size))
    x[0] = rng.normal(0.0, sd, size=size)
    for t in range(1, T):
        x[t] = a * x[t - 1] + noise[t]
    return x


def simulate_behaviour(settings: SimulationSettings, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(states [T], speed [T] cm/s). Redraws until the label-1 fraction is on target."""
    T, fs = settings.n_frames, settings.fs
    best = None
    for _ in range(500):
        states = _draw_states(settings, rng)
        err = abs(float(np.mean(states == FINE)) - settings.label1_fraction)
        if best is None or err < best[0]:
            best = (err, states)
        if err <= settings.label1_tolerance and np.any(states == FINE) and np.any(states != FINE):
            break
    states = best[1]
    # speed: a level per bout, slow fluctuation inside it (log-space), clipped to the band
    wobble = _ar1(rng, T, 1.0 * fs, 0.25)[:, 0]
    bout_start = np.r_[0, np.flatnonzero(np.diff(states)) + 1]
    bout_id = np.cumsum(np.isin(np.arange(T), bout_start)) - 1
    n_bouts = len(bout_start)
    level = np.empty(n_bouts)
    for b, start in enumerate(bout_start):
        st = states[start]
        if st == REST:
            level[b] = math.log(rng.uniform(0.01, 0.06))
        elif st == FINE:
            level[b] = rng.uniform(math.log(0.35), math.log(1.3))
        else:
            level[b] = rng.uniform(math.log(3.5), math.log(15.0))
    speed = np.exp(level[bout_id] + wobble)
    speed = np.where(states == REST, np.minimum(speed, _REST_MAX), speed)
    speed = np.where(states == FINE, np.clip(speed, *_FINE_BAND), speed)
    speed = np.where(states == COARSE, np.clip(speed, *_COARSE_BAND), speed)
    return states, speed


# --------------------------------------------------------------------------- activity
def _tuning(mouse: MouseModel, speed: np.ndarray) -> np.ndarray:
    """Tuning drive in [0, 1], [T, N], from log10 speed."""
    u = np.log10(speed + 0.02)[:, None]
    typ = mouse.cell_type
    c = mouse.centre[None, :]
    w = np.where(typ == 0, 1.0, np.maximum(mouse.width, 1e-3))[None, :]
    z = np.clip((u - c) / w, -50.0, 50.0)
    drive = np.zeros((speed.shape[0], mouse.n_neurons))
    bump = np.exp(-0.5 * z ** 2)
    rise = 1.0 / (1.0 + np.exp(-z))
    drive[:, typ == 1] = bump[:, typ == 1]
    drive[:, typ == 2] = rise[:, typ == 2]
    drive[:, typ == 3] = 1.0 - rise[:, typ == 3]
    return drive


def simulate_recording(
    mouse: MouseModel, settings: SimulationSettings, rng: np.random.Generator,
    meta: dict | None = None,
) -> Session:
    """One session of `mouse`: behaviour, spikes, calcium, noise, thresholding."""
    s = settings
    T, N, fs = s.n_frames, mouse.n_neurons, s.fs
    states, speed = simulate_behaviour(s, rng)
    labels = (states == FINE).astype(np.int64)

    drive = _tuning(mouse, speed)
    shared = _ar1(rng, T, 30.0 * fs, s.shared_fluctuation)           # [T, 1]
    private = _ar1(rng, T, 8.0 * fs, s.private_fluctuation, size=N)   # [T, N]
    log_rate = (np.log(mouse.base_rate)[None, :] + mouse.gain[None, :] * drive
                + mouse.shared_coupling[None, :] * shared + private)
    rate = np.exp(np.minimum(log_rate, math.log(50.0)))
    spikes = rng.poisson(rate / fs)

    amp = mouse.amplitude[None, :] * rng.lognormal(0.0, 0.25, size=(T, N))
    inp = spikes * amp
    a_decay = np.exp(-1.0 / (mouse.decay_s * fs))
    a_rise = math.exp(-1.0 / (0.05 * fs))
    d = np.zeros(N)
    r = np.zeros(N)
    calcium = np.empty((T, N))
    for t in range(T):
        d = a_decay * d + inp[t]
        r = a_rise * r + inp[t]
        calcium[t] = d - r
    f = calcium + rng.normal(0.0, s.noise_sd, size=(T, N))
    thresh = np.array([np.quantile(f[:, i], mouse.zero_fraction[i]) for i in range(N)])
    traces = np.maximum(f - thresh[None, :], 0.0).astype(np.float32)

    info = {
        "source": "neurogrs.simulate",
        "simulated": True,
        "label_names": ["other", "fine_motion"],
        "label_rule": "1 if 0.2 < speed < 2 cm/s else 0 (fine motion)",
        "speed_units": "cm/s",
        "traces_units": "thresholded dF/F-like events (a.u.)",
        "position_units": "px",
        "settings": s.to_dict(),
        "state_fractions": {n: float(np.mean(states == i)) for i, n in enumerate(STATE_NAMES)},
        "cell_types": {n: int(np.sum(mouse.cell_type == i)) for i, n in enumerate(CELL_TYPES)},
    }
    info.update(meta or {})
    return Session(traces=traces, labels=labels, fs=fs, speed=speed.astype(np.float32),
                   positions=mouse.positions, meta=info)


def _mouse_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0]))


def _session_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), 1, int(index)]))


def simulate_session(
    n_neurons: int | None = None,
    n_frames: int | None = None,
    seed: int = 0,
    label1_fraction: float | None = None,
    fs: float | None = None,
    settings: SimulationSettings | None = None,
    session_index: int = 0,
    **overrides: Any,
) -> Session:
    """A simulated session; same arguments -> identical bytes.

    `settings` (default `SimulationSettings()`: 273 neurons, 3000 frames, label-1
    fraction 0.30, 10 Hz) and keyword `overrides` of its fields tune the model; arguments
    given explicitly win over `settings`. `session_index` > 0 gives another session of
    the same simulated mouse (same neurons, drifted rates and gains).
    """
    check_range("seed", seed, 0, 2**63 - 1, integer=True)
    check_range("session_index", session_index, 0, 10**6, integer=True)
    explicit = {k: v for k, v in (("n_neurons", n_neurons), ("n_frames", n_frames),
                                  ("label1_fraction", label1_fraction), ("fs", fs))
                if v is not None}
    s = replace(settings or SimulationSettings(), **explicit, **overrides)
    mouse = simulate_mouse(s, _mouse_rng(seed))
    rng = _session_rng(seed, session_index)
    if session_index > 0:
        mouse = _drifted(mouse, s.drift, rng)
    return simulate_recording(mouse, s, rng, meta={"seed": int(seed),
                                                   "session_index": int(session_index)})


# (mouse name, neurons, seed, label-1 targets of its three sessions)
SUITE: tuple[tuple[str, int, int, tuple[float, float, float]], ...] = (
    ("M1", 273, 1001, (0.30, 0.22, 0.38)),
    ("M2", 140, 1002, (0.17, 0.27, 0.41)),
    ("M3", 114, 1003, (0.34, 0.19, 0.25)),
)


def suite_session(mouse: str, index: int, n_frames: int = 3000,
                  settings: SimulationSettings | None = None) -> Session:
    """Session `index` (0, 1, 2 = S1, S2, S3) of suite mouse `mouse` ("M1", "M2", "M3"),
    in memory: the same content `simulate_suite` writes to `<mouse>_S<index + 1>.npz`."""
    from neurogrs.errors import ConfigError

    mice = {name: (n, seed, targets) for name, n, seed, targets in SUITE}
    if mouse not in mice:
        raise ConfigError(f"suite mouse must be one of {sorted(mice)}, got {mouse!r}")
    n, seed, targets = mice[mouse]
    if not (isinstance(index, int) and 0 <= index < len(targets)):
        raise ConfigError(f"suite session index must be in [0, {len(targets) - 1}], got {index!r}")
    base = settings or SimulationSettings()
    sess = simulate_session(n_neurons=n, n_frames=n_frames, seed=seed,
                            label1_fraction=targets[index], fs=base.fs, settings=base,
                            session_index=index)
    meta = dict(sess.meta, mouse=mouse, session=f"S{index + 1}", suite="neurogrs-sim-9")
    return Session(traces=sess.traces, labels=sess.labels, fs=sess.fs, speed=sess.speed,
                   positions=sess.positions, meta=meta)


def simulate_suite(out_dir: str | Path, n_frames: int = 3000,
                   settings: SimulationSettings | None = None) -> list[Path]:
    """Nine sessions like the paper's: mice M1/M2/M3 (273/140/114 neurons) x sessions S1-S3.

    Files: `<out_dir>/M<m>_S<s>.npz`. Sessions of one mouse share neurons (positions,
    tuning); later sessions drift. Fixed seeds: the suite is the same on every machine.
    """
    from neurogrs.formats import save_session

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, _, _, targets in SUITE:
        for k in range(len(targets)):
            sess = suite_session(name, k, n_frames, settings)
            paths.append(save_session(sess, out / f"{name}_S{k + 1}.npz"))
    return paths
