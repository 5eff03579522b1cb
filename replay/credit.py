"""Credit-based replay: evaluate a session through the real online path at full speed.

At most `credit` frames are in flight: the replayer subscribes to the service's
prediction endpoint and sends the next frame only when an earlier one comes back as
a prediction or an error report. `credit=1` is lockstep (each frame sent when the
previous one is answered): under the service's default `latest` policy nothing is ever
conflated, so every frame is answered, as fast as the service answers.

Credit returned per message of our session:
- a prediction gives back 1 + `skipped` (the frames conflated into it, possible with
  credit > 1 under `latest`: they will never get their own answer);
- an error report (stale, bad input, engine error) gives back 1.

Frames the service drops silently (seq gaps) never come back: if no answer arrives for
`answer_timeout_s` while frames are in flight, the replay stops with TransportTimeout
naming how many are outstanding (it never waits forever).

`play_credit` reuses an opened `Player` (its frame socket, its XPUB sync, its lossless
send) and reports frames/s reached, the answered / skipped / reported counts and the
largest number of frames in flight seen.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from neurogrs.errors import ConfigError, TransportTimeout
from neurogrs.settings import SettingsDict
from neurogrs.replay.player import POLL_MS, Player
from neurogrs.stream import protocol as P
from neurogrs.stream.transport import CLIENT_PREDICTIONS, parse_endpoint

__all__ = ["CreditSettings", "CreditReport", "play_credit"]

MAX_CREDIT = 1 << 16


@dataclass(frozen=True)
class CreditSettings(SettingsDict):
    """How many frames may be in flight, where the answers come from, how long to wait."""

    credit: int = 1  # frames in flight at most (1: lockstep)
    predictions: str = CLIENT_PREDICTIONS  # the service's prediction endpoint (SUB connects)
    answer_timeout_s: float = 10.0  # stop if nothing comes back for this long
    hello_timeout_s: float | None = None  # wait for the service's greeting (None: as long as it takes)

    def __post_init__(self) -> None:
        if isinstance(self.credit, bool) or not isinstance(self.credit, int) \
                or not 1 <= self.credit <= MAX_CREDIT:
            raise ConfigError(f"credit must be an integer in [1, {MAX_CREDIT}], got {self.credit!r}")
        parse_endpoint(self.predictions, "connect")
        for name in ("answer_timeout_s", "hello_timeout_s"):
            v = getattr(self, name)
            if v is None and name == "hello_timeout_s":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 86400:
                raise ConfigError(f"{name} must be in (0, 86400] s, got {v!r}")


@dataclass(frozen=True)
class CreditReport:
    session: str
    mode: str  # "credit"
    credit: int
    sent: int
    answered: int  # predictions received for our frames
    skipped: int  # frames conflated into a later prediction (sum of `skipped`)
    reported: int  # error reports received for our frames
    outstanding: int  # sent, neither answered nor skipped nor reported (0 on a clean run)
    max_in_flight: int
    first_seq: int | None
    last_seq: int | None
    elapsed_s: float
    rate_fps: float  # frames sent per second, start to last answer
    interrupted: bool
    end_sent: bool

    def to_dict(self) -> dict:
        return asdict(self)


class _Window:
    """Frames in flight and what came back for them."""

    def __init__(self) -> None:
        self.in_flight = self.max_in_flight = 0
        self.answered = self.skipped = self.reported = 0

    def sent(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def take(self, msg: Any) -> bool:
        """Account one message; True when it gave credit back."""
        if isinstance(msg, P.Prediction):
            self.answered += 1
            self.skipped += msg.skipped
            self.in_flight -= 1 + msg.skipped
        elif isinstance(msg, P.ErrorReport):
            self.reported += 1
            self.in_flight -= 1
        else:
            return False
        self.in_flight = max(self.in_flight, 0)
        return True


def _wait_hello(player: Player, sub: Any, timeout_s: float | None) -> None:
    end = None if timeout_s is None else time.monotonic() + timeout_s
    while sub.hello is None and not player._stop.is_set():
        left = POLL_MS / 1000 if end is None else min(POLL_MS / 1000, end - time.monotonic())
        if left <= 0:
            raise TransportTimeout(f"no service greeted the replayer on {sub.endpoint} within "
                                   f"{timeout_s:g} s (is the service running? --predictions)")
        sub.recv(left)


def _collect(player: Player, sub: Any, window: _Window, until_in_flight: int,
             timeout_s: float) -> None:
    """Receive until at most `until_in_flight` frames are in flight (or stop())."""
    last = time.monotonic()
    while window.in_flight > until_in_flight and not player._stop.is_set():
        msg = sub.recv(POLL_MS / 1000)
        if msg is not None and window.take(msg):
            last = time.monotonic()
        elif time.monotonic() - last > timeout_s:
            raise TransportTimeout(f"no answer from the service for {timeout_s:g} s with "
                                   f"{window.in_flight} frame(s) in flight (dropped silently, "
                                   "or the service is gone)")


def play_credit(player: Player, settings: CreditSettings, progress: bool = False) -> CreditReport:
    """Play `player`'s session (opened; its frame subscriber not yet awaited) with at most
    `settings.credit` frames in flight. Waits for the service's greeting on the prediction
    endpoint, then for its frame subscription, then plays."""
    from tqdm import tqdm

    from neurogrs.stream.client import Subscriber

    cfg = player.config
    T = player.traces.shape[0]
    total = cfg.max_frames if cfg.max_frames is not None else (None if cfg.loop else T - cfg.start)
    name = cfg.session_name
    run = P.new_run()  # a new run id per play, as `Player.play` sends: a restart is seen at once
    encode = P.FrameEncoder(name, run).encode
    window = _Window()
    sent = 0
    first = last = None
    sub = Subscriber(settings.predictions, name, curve_dir=cfg.curve_dir, context=player._ctx)
    try:
        _wait_hello(player, sub, settings.hello_timeout_s)
        player.wait_for_subscriber()
        bar = tqdm(total=total, unit="frame", disable=not progress, mininterval=0.5,
                   desc=f"replay {name} (credit {settings.credit})", leave=True)
        t0 = time.perf_counter_ns()
        seq = cfg.start
        try:
            while not player._stop.is_set() and (total is None or sent < total):
                idx = seq % T
                if idx == 0 and seq != 0 and not cfg.loop:
                    break
                _collect(player, sub, window, settings.credit - 1, settings.answer_timeout_s)
                if player._stop.is_set() or not player._send(encode(seq, player.traces[idx], time.time_ns())):
                    break
                window.sent()
                first = seq if first is None else first
                last = seq
                sent += 1
                seq += 1
                bar.update(1)
            _collect(player, sub, window, 0, settings.answer_timeout_s)
            elapsed = (time.perf_counter_ns() - t0) / 1e9
            end_sent = player._send(P.encode_end(name, seq, sent, run=run))
        finally:
            bar.close()
    finally:
        sub.close()
    return CreditReport(name, "credit", settings.credit, sent, window.answered, window.skipped,
                        window.reported, window.in_flight, window.max_in_flight, first, last,
                        elapsed, sent / elapsed if elapsed > 0 else 0.0,
                        player._stop.is_set(), end_sent)
