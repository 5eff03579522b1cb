"""The online decoding service: frames in over ZeroMQ SUB, predictions out over XPUB.

One explicit loop (zguide style): one context, linger 0, a poll with a timeout so stop
requests are seen within `poll_ms`, a maximum message size on the receiving socket. Each
message is decoded (neurogrs.stream.protocol), then admitted or not by the pure policy
(neurogrs.stream.policy: deadline, sequence, conflation); this module does the I/O and the
counting. Every frame is accounted for: answered, or counted in
neurogrs_frames_dropped_total{reason} (stale, conflated, seq_gap, bad_input) and, except
conflated and gaps, reported on ``error.<session>``. The service does not know which
engine it runs, nor whether it is fast on read-only input (engines take the received
buffer as it is: making it suit their compiled code is their business).
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from neurogrs.errors import ConfigError, EngineError
from neurogrs.stream import policy
from neurogrs.stream import protocol as P
from neurogrs.stream.metrics import ServiceMetrics
from neurogrs.stream.policy import POLICIES
from neurogrs.stream.transport import SERVICE_FRAMES, SERVICE_PREDICTIONS, parse_endpoint, two_part_io

__all__ = ["ServiceConfig", "Service", "POLICIES"]

HARD_MAX_MESSAGE_BYTES = 16 << 20  # libzmq refuses (and disconnects) above this
WARMUP_CALLS = 20


@dataclass(frozen=True)
class ServiceConfig:
    frames: str = SERVICE_FRAMES
    predictions: str = SERVICE_PREDICTIONS
    deadline_s: float = 0.1
    policy: str = "latest"
    sessions: tuple[str, ...] = ()  # empty: every session (up to max_sessions)
    max_body_bytes: int = P.DEFAULT_MAX_BODY_BYTES  # protocol limit: counted as "oversized"
    max_message_bytes: int = HARD_MAX_MESSAGE_BYTES  # ZMQ_MAXMSGSIZE on the frame socket
    max_sessions: int = 64
    max_drain: int = 4096  # messages taken per wake-up under "latest"
    rcvhwm: int = 10000
    pub_hwm: int = 100_000  # per-subscriber queue on the prediction socket (slow clients)
    poll_ms: int = 100
    curve_dir: str | None = None

    def __post_init__(self) -> None:
        parse_endpoint(self.frames, "bind")
        parse_endpoint(self.predictions, "bind")
        if not (isinstance(self.deadline_s, (int, float)) and 1e-4 <= self.deadline_s <= 60):
            raise ConfigError(f"deadline_s must be in [0.0001, 60] s, got {self.deadline_s!r}")
        if self.policy not in POLICIES:
            raise ConfigError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        object.__setattr__(self, "sessions", tuple(P.check_session_name(s) for s in self.sessions))
        for name, lo, hi in (("max_body_bytes", 64, HARD_MAX_MESSAGE_BYTES),
                             ("max_message_bytes", 64, 1 << 30), ("max_sessions", 1, 4096),
                             ("max_drain", 1, 1 << 20), ("rcvhwm", 1, 1 << 24),
                             ("pub_hwm", 1, 1 << 24),
                             ("poll_ms", 1, 10_000)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ConfigError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
        if self.max_message_bytes < self.max_body_bytes:
            raise ConfigError(f"max_message_bytes ({self.max_message_bytes}) must be >= "
                              f"max_body_bytes ({self.max_body_bytes})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sessions"] = list(self.sessions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ServiceConfig":
        d = dict(d)
        d["sessions"] = tuple(d.get("sessions", ()))
        return cls(**d)


class _Accepted(NamedTuple):
    frame: P.Frame
    t_recv: int


class Service:
    """`serve()` runs start → loop → close in the calling thread; `stop()` from anywhere."""

    def __init__(self, engine: Any, config: ServiceConfig, registry: Any = None,
                 context: Any = None) -> None:
        from prometheus_client import CollectorRegistry

        self.engine = engine
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = m = ServiceMetrics.create(self.registry, config.deadline_s,
                                                 engine.model_hash, engine.name)
        self._ctx = context
        self._own_ctx = context is None
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.endpoints: dict[str, str] = {}
        self._sessions = policy.SessionTable(config.max_sessions)
        self._allowed = {P.topic(P.FRAME_PREFIX, s) for s in config.sessions}
        self._allowed_end = {P.topic(P.END_PREFIX, s) for s in config.sessions}
        self._deadline_ns = int(round(config.deadline_s * 1e9))
        self._auth = None
        self._sub = self._pub = None
        self._frames_in = self._preds_out = None  # transport.TwoPartIO, once started
        # per-frame metric handles (plain numbers, see stream/metrics.py)
        self._decode_seconds = m.stage_seconds.labels(stage="decode")
        self._inference_seconds = m.stage_seconds.labels(stage="inference")
        self._publish_seconds = m.stage_seconds.labels(stage="publish")
        self._dropped = {r: m.frames_dropped.labels(reason=r) for r in P.DROP_REASONS}
        self._encoder = P.PredictionEncoder(engine.model_hash)
        self._hello = P.encode_hello(P.Hello(engine.model_hash, engine.name, engine.n_inputs,
                                             tuple(engine.spec.label_names), self._deadline_ns))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> dict[str, str]:
        """Bind/connect, warm the engine, then subscribe. Raises TransportError if it cannot
        bind, ConfigError for missing CURVE keys."""
        import zmq

        cfg = self.config
        if self._ctx is None:
            self._ctx = zmq.Context()
        try:
            if cfg.curve_dir is not None:  # admitted by key from any address (stream/auth.py)
                from neurogrs.stream.auth import CurveGuard

                self._auth = CurveGuard.start(self._ctx, cfg.curve_dir, self.registry)
            self._sub = self._ctx.socket(zmq.SUB)
            self._pub = self._ctx.socket(zmq.XPUB)
            for s in (self._sub, self._pub):
                s.linger = 0
            self._sub.setsockopt(zmq.MAXMSGSIZE, cfg.max_message_bytes)
            self._sub.rcvhwm = cfg.rcvhwm
            # a client slower than the service loses messages once its queue holds pub_hwm
            # (ZeroMQ PUB semantics: the others are not held up); `listen` reports them
            self._pub.sndhwm = cfg.pub_hwm
            self._pub.setsockopt(zmq.XPUB_VERBOSE, 1)  # see every subscription: send hello
            if cfg.curve_dir is not None:
                from neurogrs.stream import keys

                keys.configure_server(self._sub, cfg.curve_dir)
                keys.configure_server(self._pub, cfg.curve_dir)
                self._auth.watch(self._sub, self._pub)  # failed handshakes counted, logged
            self._frames_in = two_part_io(self._sub)
            self._preds_out = two_part_io(self._pub)
            self.endpoints["frames"] = parse_endpoint(cfg.frames, "bind").apply(self._sub)
            self.endpoints["predictions"] = parse_endpoint(cfg.predictions, "bind").apply(self._pub)
            self._warm()
            if cfg.sessions:
                for s in cfg.sessions:
                    self._sub.subscribe(P.topic(P.FRAME_PREFIX, s))
                    self._sub.subscribe(P.topic(P.END_PREFIX, s))
            else:
                self._sub.subscribe(P.FRAME_PREFIX)
                self._sub.subscribe(P.END_PREFIX)
        except BaseException:
            self.close()
            raise
        self.ready.set()
        return dict(self.endpoints)

    def _warm(self) -> None:
        """Warm the engine with frames exactly like the ones that will come: read-only views
        decoded from the wire."""
        n = self.engine.n_inputs
        x = P.decode_frame(P.encode_frame("warmup", 0, np.zeros(n, np.float32), 0), n).data
        for _ in range(WARMUP_CALLS):
            self.engine.predict(x)

    def stop(self) -> None:
        """Ask the loop to finish the frame in hand and return (thread- and signal-safe)."""
        self._stop.set()

    def close(self) -> None:
        for s in (self._sub, self._pub):
            if s is not None:
                s.close(linger=0)
        self._sub = self._pub = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._own_ctx and self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def serve(self) -> dict:
        """start, loop until stop(), close; returns the final metrics snapshot."""
        if not self.ready.is_set():
            self.start()
        try:
            self.run()
        finally:
            self.close()
        return self.metrics.snapshot()

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        """Until stop(): wait up to poll_ms for frames or subscriptions, then serve them."""
        import zmq

        watched = [(self._sub, zmq.POLLIN), (self._pub, zmq.POLLIN)]
        while not self._stop.is_set():
            frames_ready = False
            for sock, _ in zmq.zmq_poll(watched, self.config.poll_ms):
                if sock is self._pub:
                    self._greet_subscribers()
                else:
                    frames_ready = True
            if frames_ready and self.config.policy == policy.LATEST:
                self._serve_latest()
            elif frames_ready:
                self._serve_all()

    def _serve_all(self) -> None:
        """Answer every queued message in order (at most max_drain per wake-up)."""
        n = 0
        while n < self.config.max_drain and not self._stop.is_set():
            parts = self._frames_in.recv_nowait()
            if parts is None:
                break
            n += 1
            item = self._admit(parts, time.time_ns())
            if type(item) is _Accepted:
                self._answer(item.frame, item.t_recv)
            elif item is not None:
                self._forward_end(item)
        self.metrics.drained_messages.observe(n)

    def _serve_latest(self) -> None:
        """Drain the queue (at most max_drain), then answer only the newest frame of each
        session (policy.conflate); the others are conflated, counted in `skipped`."""
        admitted: list[_Accepted | P.EndOfStream] = []
        n = 0
        while n < self.config.max_drain:
            parts = self._frames_in.recv_nowait()
            if parts is None:
                break
            n += 1
            item = self._admit(parts, time.time_ns())
            if item is not None:
                admitted.append(item)
        self.metrics.drained_messages.observe(n)
        answers = policy.conflate([(x.frame.session, False) if type(x) is _Accepted
                                   else (x.session, True) for x in admitted])
        for i, item in enumerate(admitted):
            if type(item) is not _Accepted:
                self._forward_end(item)
            elif i in answers:
                self._answer(item.frame, item.t_recv, answers[i])
            else:
                self._dropped[P.CONFLATED].inc()

    def _greet_subscribers(self) -> None:
        while (msg := self._preds_out.recv_nowait()) is not None:
            if msg[0][:1] == b"\x01":  # a new subscription: greet it (and everyone else)
                self._preds_out.send(self._hello)

    # ------------------------------------------------------------------ per message
    def _admit(self, parts: list, t_recv: int) -> "_Accepted | P.EndOfStream | None":
        """Decode one message and apply the policy: a frame to answer, an end-of-stream to
        forward, or None (rejected, stale or not ours: counted and reported here)."""
        topic = parts[0]
        if topic.startswith(P.END_PREFIX):
            if self._allowed_end and topic not in self._allowed_end:
                return None
            try:
                end = P.decode_end(parts, self.config.max_body_bytes)
            except P.BadMessage as exc:
                self._reject(exc)
                return None
            if self._sessions.end(end.session):  # a new stream may start at any seq
                self.metrics.sessions_active.set(len(self._sessions))
            return end
        if self._allowed and topic not in self._allowed:
            return None  # prefix-match artefact: frame.ab when subscribed to frame.a
        self.metrics.frames_received.value += 1
        t0 = time.perf_counter()
        try:
            frame = P.decode_frame(parts, self.engine.n_inputs, self.config.max_body_bytes)
        except P.BadMessage as exc:
            self._reject(exc)
            return None
        verdict, lost, detail, new_session = self._sessions.admit(
            frame.session, frame.seq, frame.t_src_ns, t_recv, self._deadline_ns)
        if new_session:
            self.metrics.sessions_active.set(len(self._sessions))
        if lost:
            self._dropped[P.SEQ_GAP].inc(lost)
        if verdict is policy.ANSWER:
            self._decode_seconds.observe(time.perf_counter() - t0)
            return _Accepted(frame, t_recv)
        if verdict == P.STALE:
            self._decode_seconds.observe(time.perf_counter() - t0)
            self._dropped[P.STALE].inc()
            self._preds_out.send(P.encode_error(frame.session, frame.seq, P.STALE, detail))
        else:
            self._reject(P.BadMessage(verdict, detail, frame.session, frame.seq))
        return None

    def _reject(self, exc: P.BadMessage) -> None:
        self._dropped[P.BAD_INPUT].inc()
        self.metrics.bad_input.labels(kind=exc.reason).inc()
        self._preds_out.send(P.encode_error(exc.session, exc.seq, exc.reason, exc.detail))

    def _answer(self, frame: P.Frame, t_recv: int, skipped: int = 0) -> None:
        m = self.metrics
        t0 = time.perf_counter()
        try:
            probs = self.engine.predict(frame.data)
        except EngineError as exc:
            self._reject(P.BadMessage(P.ENGINE_ERROR, str(exc), frame.session, frame.seq))
            return
        t1 = time.perf_counter()
        self._inference_seconds.observe(t1 - t0)
        t_pub = time.time_ns()
        late = policy.is_late(frame.t_src_ns, t_pub, self._deadline_ns)
        parts = self._encoder.encode(frame.session, frame.seq, frame.t_src_ns, t_recv, t_pub,
                                     int(probs.argmax()), probs.tolist(), late, skipped)
        # counters first, so whoever holds the prediction sees them updated
        m.predictions_published.value += 1
        e2e = t_pub - frame.t_src_ns
        m.end_to_end_seconds.observe(e2e / 1e9 if e2e > 0 else 0.0)
        if late:
            m.deadline_misses.value += 1
        self._preds_out.send(parts)
        self._publish_seconds.observe(time.perf_counter() - t1)

    def _forward_end(self, end: P.EndOfStream) -> None:
        self.metrics.end_of_stream.inc()
        self._preds_out.send(P.encode_end(end.session, end.seq, end.frames, end.t_src_ns))
