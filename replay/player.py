"""Replay a recorded session as protocol-v1 frames: paced, XPUB-synchronised, lossless.

- Pacing: frame k is due at t0 + k / (fs * speed); `speed=None` sends as fast as the
  receiver takes them.
- Sync: an XPUB socket receives the subscription of the service, so the first frame is
  sent only once someone listens (no sleep()).
- Sync waits for as long as it takes by default (a rig may start the decoder after the
  source), or up to `subscriber_timeout_s`.
- Never drops silently: ZMQ_XPUB_NODROP makes a send at the high-water mark fail with
  EAGAIN instead of dropping; the player waits for POLLOUT, retries and counts the waits.
- `stop()` (SIGTERM) is seen within POLL_MS, also while waiting at the high-water mark;
  frames already queued then get STOP_FLUSH_MS to go out (a live receiver takes them in
  that time, a dead one would hold the process for nothing), and the report says whether
  the end-of-stream could be queued (`end_sent`).
- seq = loop * T + frame index, so a listener maps seq back to the recording's label with
  seq % T. t_src_ns is the frame's scheduled time (t0 + k / (fs * speed)), or its actual
  send time with `restamp` (always so at max speed).
- At the end, an end-of-stream message ``end.<session>`` carries the count of frames sent.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurogrs.settings import SettingsDict
from neurogrs.errors import ConfigError, TransportError, TransportTimeout
from neurogrs.session import Session
from neurogrs.stream import protocol as P
from neurogrs.stream.transport import CLIENT_FRAMES, parse_endpoint, two_part_io

__all__ = ["ReplaySettings", "ReplayReport", "Player", "load_session_file", "default_session_name"]

DEFAULT_FRAMES = CLIENT_FRAMES
FLUSH_LINGER_MS = 5000  # frames queued at close are flushed for up to this long
STOP_FLUSH_MS = 500  # ... after stop(): the receiver may be gone (we are being stopped)
POLL_MS = 100  # waits (subscriber, high-water mark) see stop() within this
PACE_SLACK_NS = 50_000  # send at once when due within 50 us (sleep overshoots about that)


def load_session_file(path: "str | os.PathLike", nwb: Any = None) -> Session:
    """The one place replay reads a session file (native .npz, CSV layout, NWB: neurogrs.formats).

    nwb: a neurogrs.nwb.NwbSelectionSettings picking the series of an NWB file (None: defaults).
    """
    from neurogrs.formats import load_session

    return load_session(path, nwb=nwb)


def default_session_name(path: "str | os.PathLike") -> str:
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", Path(path).stem)[:64].lstrip("_-")
    return name or "replay"


@dataclass(frozen=True)
class ReplaySettings(SettingsDict):
    frames: str = DEFAULT_FRAMES
    session_name: str = "replay"
    speed: float | None = 1.0  # None: as fast as possible
    start: int = 0
    loop: bool = False
    restamp: bool = False
    max_frames: int | None = None  # stop after this many frames (with loop: required to end)
    sndhwm: int = 1000
    subscriber_timeout_s: float | None = None  # None: wait for the service as long as it takes
    stall_timeout_s: float = 30.0  # give up if the receiver takes nothing for this long
    curve_dir: str | None = None

    def __post_init__(self) -> None:
        parse_endpoint(self.frames, "connect")
        P.check_session_name(self.session_name)
        if self.speed is not None and not (isinstance(self.speed, (int, float)) and 0 < self.speed <= 1e6):
            raise ConfigError(f"speed must be in (0, 1e6] or None (max), got {self.speed!r}")
        if not isinstance(self.start, int) or self.start < 0:
            raise ConfigError(f"start must be a non-negative frame index, got {self.start!r}")
        if self.max_frames is not None and (not isinstance(self.max_frames, int) or self.max_frames < 0):
            raise ConfigError(f"max_frames must be a non-negative integer, got {self.max_frames!r}")
        if not isinstance(self.sndhwm, int) or not 1 <= self.sndhwm <= 1 << 24:
            raise ConfigError(f"sndhwm must be in [1, 2^24], got {self.sndhwm!r}")
        for name in ("subscriber_timeout_s", "stall_timeout_s"):
            v = getattr(self, name)
            if name == "subscriber_timeout_s" and v is None:
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 86400:
                raise ConfigError(f"{name} must be in (0, 86400] s, got {v!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ReplayReport:
    session: str
    sent: int
    first_seq: int | None
    last_seq: int | None
    elapsed_s: float
    rate_fps: float
    hwm_waits: int  # sends that found the high-water mark full and had to wait (none lost)
    max_behind_s: float  # worst lateness of a send against its schedule (paced runs)
    interrupted: bool
    end_sent: bool  # the end-of-stream was queued (not when stopped at a full queue)

    def to_dict(self) -> dict:
        return asdict(self)


class Player:
    """Plays `traces` [T, N] float32 recorded at `fs` Hz as frames on `config.frames`."""

    def __init__(self, traces: np.ndarray, fs: float, config: ReplaySettings, context: Any = None) -> None:
        traces = np.ascontiguousarray(traces, dtype=np.float32)
        if traces.ndim != 2 or traces.shape[0] == 0:
            raise ConfigError(f"traces must be [T, N] with T > 0, got shape {traces.shape}")
        if config.start >= traces.shape[0]:
            raise ConfigError(f"start {config.start} is past the last frame ({traces.shape[0] - 1})")
        if not fs > 0:
            raise ConfigError(f"fs must be > 0, got {fs}")
        self.traces = traces
        self.fs = float(fs)
        self.config = config
        self._ctx = context
        self._own_ctx = context is None
        self._sock = None
        self._stop = threading.Event()
        self.endpoint: str | None = None
        self.hwm_waits = 0  # sends that found the high-water mark full, in the current play()

    # ------------------------------------------------------------------ sockets
    def open(self) -> str:
        import zmq

        if self._ctx is None:
            self._ctx = zmq.Context()
        s = self._ctx.socket(zmq.XPUB)
        s.linger = FLUSH_LINGER_MS
        s.sndhwm = self.config.sndhwm
        s.setsockopt(zmq.XPUB_NODROP, 1)
        if self.config.curve_dir is not None:
            from neurogrs.stream import keys

            keys.configure_client(s, self.config.curve_dir)
        self._sock = s
        self._send_nowait = two_part_io(s).send_nowait
        try:
            self.endpoint = parse_endpoint(self.config.frames, "connect").apply(s)
        except TransportError:
            self.close()
            raise
        return self.endpoint

    def close(self) -> None:
        if self._sock is not None:
            # queued frames still go out: for FLUSH_LINGER_MS, or STOP_FLUSH_MS once stopped
            self._sock.close(linger=STOP_FLUSH_MS if self._stop.is_set() else None)
            self._sock = None
        if self._own_ctx and self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def stop(self) -> None:
        self._stop.set()

    def wait_for_subscriber(self, timeout_s: float | None = None) -> None:
        """Block until a subscription matching frame.<session> arrives (XPUB) or stop();
        raises TransportTimeout after `timeout_s` (default: the config's
        subscriber_timeout_s; None: no limit)."""
        import zmq

        want = P.topic(P.FRAME_PREFIX, self.config.session_name)
        timeout = self.config.subscriber_timeout_s if timeout_s is None else timeout_s
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set():
            left = POLL_MS / 1000 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TransportTimeout(f"no subscriber for {want.decode()} on {self.endpoint} "
                                       f"within {timeout:g} s (is the service running?)")
            if self._sock.poll(int(min(left, POLL_MS / 1000) * 1000) + 1, zmq.POLLIN):
                msg = self._sock.recv()
                if msg[:1] == b"\x01" and want.startswith(msg[1:]):
                    return

    def _send(self, parts: list[bytes]) -> bool:
        """Send without ever dropping: at the HWM wait for POLLOUT (each wait counted in
        `hwm_waits`). False when stop() came first (the message was not queued); raises
        TransportTimeout when the receiver takes nothing for stall_timeout_s."""
        import zmq

        stalled_since = None
        while not self._send_nowait(parts):
            if self._stop.is_set():
                return False
            self.hwm_waits += 1
            now = time.monotonic()
            stalled_since = stalled_since or now
            if now - stalled_since > self.config.stall_timeout_s:
                raise TransportTimeout(f"receiver took nothing for {self.config.stall_timeout_s:g} s "
                                       "(high-water mark full); stopping without dropping")
            self._sock.poll(POLL_MS, zmq.POLLOUT)
            self._drain_subscriptions()
        return True

    def _drain_subscriptions(self) -> None:
        import zmq

        while self._sock.poll(0, zmq.POLLIN):
            self._sock.recv()

    # ------------------------------------------------------------------ play
    def play(self, progress: bool = False) -> ReplayReport:
        from tqdm import tqdm

        cfg = self.config
        T = self.traces.shape[0]
        total = cfg.max_frames if cfg.max_frames is not None else (None if cfg.loop else T - cfg.start)
        period_ns = 0 if cfg.speed is None else int(round(1e9 / (self.fs * cfg.speed)))
        stamp_now = cfg.restamp or cfg.speed is None
        name = cfg.session_name
        run = P.new_run()  # a new run id per play: the service sees a restart at once
        encode = P.FrameEncoder(name, run).encode
        sent = self.hwm_waits = 0
        first = last = None
        max_behind = 0
        bar = tqdm(total=total, unit="frame", disable=not progress, mininterval=0.5,
                   desc=f"replay {name}", leave=True)
        pending = 0
        t0_mono = time.perf_counter_ns()
        t0_wall = time.time_ns()
        seq = cfg.start
        try:
            while not self._stop.is_set() and (total is None or sent < total):
                idx = seq % T
                if idx == 0 and seq != 0 and not cfg.loop:
                    break
                if period_ns:
                    due = sent * period_ns
                    ahead = due - (time.perf_counter_ns() - t0_mono)
                    if ahead > PACE_SLACK_NS:  # no busy wait: the receiver may share the core
                        time.sleep(ahead / 1e9)
                    max_behind = max(max_behind, time.perf_counter_ns() - t0_mono - due)
                    t_src = time.time_ns() if stamp_now else t0_wall + due
                else:
                    t_src = time.time_ns()
                if not self._send(encode(seq, self.traces[idx], t_src)):
                    break  # stopped at the high-water mark: this frame was not sent
                if first is None:
                    first = seq
                last = seq
                sent += 1
                seq += 1
                pending += 1
                if pending >= 64:
                    bar.update(pending)
                    pending = 0
            end_sent = self._send(P.encode_end(name, seq, sent, run=run))
        finally:
            bar.update(pending)
            bar.close()
        elapsed = (time.perf_counter_ns() - t0_mono) / 1e9
        return ReplayReport(name, sent, first, last, elapsed, sent / elapsed if elapsed > 0 else 0.0,
                            self.hwm_waits, max_behind / 1e9, self._stop.is_set(), end_sent)
