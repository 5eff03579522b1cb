"""The online decoding service: frames in over ZeroMQ SUB, predictions out over XPUB.

One explicit loop (zguide style): one context, linger 0, a poll with a timeout (and a
wake-up socket, so a stop request ends the wait at once), a maximum message size on the
receiving socket sized from the model's input (stream/inputwatch.py reconnects it when
libzmq drops a connection for an oversized message and would not come back). Each
message is decoded (neurogrs.stream.protocol), then admitted or not by the pure policy
(neurogrs.stream.policy: deadline, sequence, conflation); this module does the I/O and the
counting. Every frame is accounted for: answered, or counted in
neurogrs_frames_dropped_total{reason} (stale, conflated, seq_gap, bad_input) and, except
conflated and gaps, reported on ``error.<session>``. A stateful model (temporal context)
gets one engine state per session (stream/session_state.py), fed every accepted frame in
seq order, answered or not (stale, conflated). The service does not know which
engine it runs, nor whether it is fast on read-only input (engines take the received
buffer as it is: making it suit their compiled code is their business).
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, NamedTuple

import numpy as np

from neurogrs.errors import EngineError
from neurogrs.stream import policy
from neurogrs.stream import protocol as P
from neurogrs.stream.inputwatch import InputWatch, RateLimitedLog, report_input_event
from neurogrs.stream.metrics import ServiceMetrics
from neurogrs.stream.policy import CLOCKS, POLICIES
from neurogrs.stream.session_state import SessionStates
from neurogrs.stream.service_config import (  # re-exported: part of this module's API
    FRAME_HEADER_SLACK, HARD_MAX_MESSAGE_BYTES, QUEUE_BYTES, ServiceSettings, receive_limit,
)
from neurogrs.stream.transport import greet_subscribers, parse_endpoint, two_part_io

__all__ = ["ServiceSettings", "Service", "POLICIES", "CLOCKS", "receive_limit",
           "HARD_MAX_MESSAGE_BYTES", "FRAME_HEADER_SLACK", "QUEUE_BYTES"]

HOUSEKEEPING_S = 0.5  # how often idle sessions are looked for
SUBSCRIPTIONS_PER_WAKE = 1000  # subscription messages read per wake-up at most
WARMUP_CALLS = 20
log = logging.getLogger("neurogrs.stream.service")


class _Accepted(NamedTuple):
    frame: P.Frame
    t_recv: int
    t_src_judged: int  # t_src on the service's clock (corrected for a skewed source clock)
    restarted: bool = False


class Service:
    """`serve()` runs start → loop → close in the calling thread; `stop()` from anywhere."""

    def __init__(self, engine: Any, config: ServiceSettings, registry: Any = None,
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
        self._sessions = policy.SessionTable(config.max_sessions,
                                             int(round(config.session_idle_s * 1e9)))
        self._clocks = policy.SessionClocks(2 * config.max_sessions)  # per session: offset
        self._states = SessionStates.of(engine)  # per session, for a stateful model
        self._correct_clock = config.clock == policy.CLOCK_AUTO
        self._warn = RateLimitedLog(log)
        self._next_housekeeping = 0.0
        self._watch: InputWatch | None = None
        self._caught_up = True  # the last drain ended with the frame queue empty
        # stop() writes a byte here: the poll wakes at once (signal- and thread-safe)
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
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
            self._receive_limit = limit = receive_limit(self.engine.n_inputs, cfg.max_message_bytes)
            self._sub.setsockopt(zmq.MAXMSGSIZE, limit)
            # the queue holds at most QUEUE_BYTES of frames however large they are
            self._sub.rcvhwm = min(cfg.rcvhwm, max(16, QUEUE_BYTES // limit))
            # a client slower than the service loses messages once its queue holds pub_hwm
            # (ZeroMQ PUB semantics: the others are not held up); `listen` reports them
            self._pub.sndhwm = cfg.pub_hwm
            self._pub.setsockopt(zmq.XPUB_VERBOSE, 1)  # see every subscription: send hello
            if cfg.curve_dir is not None:
                from neurogrs.stream import keys

                keys.configure_server(self._sub, cfg.curve_dir)
                keys.configure_server(self._pub, cfg.curve_dir)
                self._auth.watch(self._pub)  # failed handshakes counted, logged (the frame
                # socket's are forwarded by its InputWatch: one monitor per socket)
            self._frames_in = two_part_io(self._sub)
            self._preds_out = two_part_io(self._pub)
            frames_at = parse_endpoint(cfg.frames, "bind")
            if self._auth is not None:
                from neurogrs.stream.auth import handshake_failure_mask

                self._watch = InputWatch(self._sub, frames_at, handshake_failure_mask(),
                                         self._auth.failure)
            else:
                self._watch = InputWatch(self._sub, frames_at)
            self.endpoints["frames"] = frames_at.apply(self._sub)
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
        warm = SessionStates.of(self.engine)  # a stateful model warms on a state of its own
        for _ in range(WARMUP_CALLS):
            self.engine.predict(x) if warm is None else warm.predict("warmup", x)

    def stop(self) -> None:
        """Ask the loop to finish the frame in hand and return (thread- and signal-safe)."""
        self._stop.set()
        try:
            self._wake_w.send(b"\0")
        except OSError:  # closed, or already full of wake-ups
            pass

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
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
        self._wake_r.close()
        self._wake_w.close()

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
        """Until stop(): wait up to poll_ms for frames, subscriptions, input events or a
        wake-up, then serve them."""
        import zmq

        wake = self._wake_r.fileno()
        monitor = self._watch.monitor
        watched = [(self._sub, zmq.POLLIN), (self._pub, zmq.POLLIN), (wake, zmq.POLLIN),
                   (monitor, zmq.POLLIN)]
        while not self._stop.is_set():
            frames_ready = False
            for sock, _ in zmq.zmq_poll(watched, self.config.poll_ms):
                if sock is self._sub:
                    frames_ready = True
                elif sock is self._pub:
                    greet_subscribers(self._preds_out, self._hello, SUBSCRIPTIONS_PER_WAKE)
                elif sock is monitor:
                    for what in self._watch.handle():
                        self._count_input(what)
            if frames_ready and self.config.policy == policy.LATEST:
                self._serve_latest()
            elif frames_ready:
                self._serve_all()
            if time.monotonic() >= self._next_housekeeping:
                self._housekeeping()
            if self._watch.pending:
                self._count_input(self._watch.retry())

    def _housekeeping(self) -> None:
        """Forget sessions idle longer than session_idle_s (the cap never locks out), and
        input connections libzmq closed without telling."""
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_S
        self._watch.sweep()
        gone = self._sessions.expire(time.monotonic_ns())  # idle time: never the wall clock
        for name in gone:
            self._clocks.forget(name)
        self._count_expired(len(gone))

    def _count_expired(self, n: int) -> None:
        if n:
            if self._states is not None:  # forgotten sessions start afresh
                self._states.keep_only(self._sessions.__contains__)
            self.metrics.sessions_expired.value += n
            self.metrics.sessions_active.set(len(self._sessions))
            self._warn(logging.INFO, "expired", f"{n} idle session(s) expired after "
                                                f"{self.config.session_idle_s:g} s without a frame")

    def _count_input(self, what: str | None) -> None:
        """Count and log what the frame socket's watch reports (stream/inputwatch.py)."""
        report_input_event(what, self.metrics, self._warn,
                           self.endpoints.get("frames", self._watch.endpoint.address),
                           self._receive_limit)

    def _serve_all(self) -> None:
        """Answer every queued message in order (at most max_drain per wake-up)."""
        n = 0
        parts = None
        while n < self.config.max_drain and not self._stop.is_set():
            parts = self._frames_in.recv_nowait()
            if parts is None:
                break
            item = self._admit(parts, time.time_ns(), sample_clock=n == 0 and self._caught_up)
            n += 1
            if type(item) is _Accepted:
                self._answer(item)
            elif item is not None:
                self._forward_end(item)
        self._caught_up = parts is None
        self.metrics.drained_messages.observe(n)

    def _serve_latest(self) -> None:
        """Drain the queue (at most max_drain), keeping only the newest frame of each
        session (policy.Conflator: the batch holds one frame per session, not max_drain),
        then answer those; the others are conflated, counted in the answer's `skipped`.
        The newest frame is answered even if it arrived stale (flagged late): under
        overload the service keeps answering the freshest frame it has at its capacity,
        and never sends one report per frame."""
        conflator = policy.Conflator()
        n = 0
        parts = None
        while n < self.config.max_drain:
            parts = self._frames_in.recv_nowait()
            if parts is None:
                break
            item = self._admit(parts, time.time_ns(), keep_stale=True,
                               sample_clock=n == 0 and self._caught_up)
            n += 1
            if type(item) is _Accepted:
                if item.restarted:  # the old run's newest frame is answered before the new run
                    self._answer_pending(conflator.take(item.frame.session))
                older = conflator.replace(item.frame.session, item)
                if older is not None:
                    self._dropped[P.CONFLATED].inc()
                    if self._states is not None:  # not answered, but part of the stream
                        self._predict(older)
            elif item is not None:  # an end closes its stream where it stands in the queue
                self._answer_pending(conflator.take(item.session))
                self._forward_end(item)
        self._caught_up = parts is None
        self.metrics.drained_messages.observe(n)
        for pending in conflator.flush():
            self._answer_pending(pending)

    def _answer_pending(self, pending: "tuple[_Accepted, int] | None") -> None:
        if pending is not None:
            self._answer(pending[0], pending[1])

    def _observe_clock(self, f: P.Frame, t_recv: int) -> None:
        """Feed a frame to its session's clock estimate: only the first frame of a drain
        that began with the service caught up (its queue found empty last time), so a
        backlog in the service's own queue does not read as a slow clock."""
        est = self._clocks.observe(f.session, f.t_src_ns, t_recv)
        if est is not None:
            self.metrics.clock_offset_seconds.set(est / 1e9)
            if self._clocks.correction(f.session):
                self._warn(logging.WARNING, "skew",
                           f"session {f.session}: source clock {est / 1e6:+.1f} ms from the "
                           "service's" + (": deadlines judged on the service's clock"
                                          if self._correct_clock else " (--clock source: "
                                          "t_src trusted as is)"))

    # ------------------------------------------------------------------ per message
    def _admit(self, parts: list, t_recv: int, keep_stale: bool = False,
               sample_clock: bool = False) -> "_Accepted | P.EndOfStream | None":
        """Decode one message and apply the policy: a frame to answer, an end-of-stream to
        forward, or None (rejected, stale or not ours: counted and reported here).
        `keep_stale`: a stale frame is returned like the others (the `latest` policy);
        `sample_clock`: the frame found the service caught up (a clock-offset sample)."""
        topic = parts[0]
        if topic.startswith(P.END_PREFIX):
            if self._allowed_end and topic not in self._allowed_end:
                self.metrics.messages_ignored.labels(reason=P.EXCLUDED_SESSION).inc()
                return None
            try:
                end = P.decode_end(parts, self.config.max_body_bytes)
            except P.BadMessage as exc:
                self._reject(exc)
                return None
            if self._sessions.end(end.session):  # a new stream may start at any seq
                self.metrics.sessions_active.set(len(self._sessions))
            return end
        if not topic.startswith(P.FRAME_PREFIX):
            self.metrics.messages_ignored.labels(reason=P.UNKNOWN_TOPIC).inc()
            return None
        if self._allowed and topic not in self._allowed:
            # prefix-match artefact: frame.ab when subscribed to frame.a
            self.metrics.messages_ignored.labels(reason=P.EXCLUDED_SESSION).inc()
            return None
        self.metrics.frames_received.value += 1
        t0 = time.perf_counter()
        try:
            frame = P.decode_frame(parts, self.engine.n_inputs, self.config.max_body_bytes)
        except P.BadMessage as exc:
            if exc.session is not None and exc.seq is not None:  # it arrived: seq used up
                self._sessions.refused(exc.session, exc.seq)
            self._reject(exc)
            return None
        if sample_clock:
            self._observe_clock(frame, t_recv)
        t_src = frame.t_src_ns
        if t_src - t_recv > policy.SKEW_TOLERANCE_NS:
            self.metrics.frames_from_future.value += 1
            self._warn(logging.WARNING, "future", f"session {frame.session}: frame stamped "
                                                  f"{(t_src - t_recv) / 1e6:.1f} ms in the future "
                                                  "(source clock ahead of the service's)")
        if self._correct_clock:
            t_src -= self._clocks.correction(frame.session)
        expired = self._sessions.expired
        verdict, lost, detail, new_session, restarted = self._sessions.admit(
            frame.session, frame.seq, t_src, t_recv, self._deadline_ns, frame.run,
            time.monotonic_ns())
        if new_session or restarted:
            self._count_expired(self._sessions.expired - expired)
            self.metrics.sessions_active.set(len(self._sessions))
        if restarted:
            self.metrics.source_restarts.value += 1
            self._warn(logging.INFO, "restart", f"session {frame.session}: source restarted "
                                                f"(run {frame.run}, seq {frame.seq})")
        if lost:
            self._dropped[P.SEQ_GAP].inc(lost)
        if verdict is policy.ANSWER or (keep_stale and verdict == P.STALE):
            self._decode_seconds.observe(time.perf_counter() - t0)
            return _Accepted(frame, t_recv, t_src, restarted)
        if verdict == P.STALE:
            self._decode_seconds.observe(time.perf_counter() - t0)
            self._dropped[P.STALE].inc()
            if self._states is not None:  # not answered, but part of the stream
                self._predict(_Accepted(frame, t_recv, t_src, restarted))
            self._preds_out.send(P.encode_error(frame.session, frame.seq, P.STALE, detail))
        else:
            self._reject(P.BadMessage(verdict, detail, frame.session, frame.seq))
        return None

    def _reject(self, exc: P.BadMessage) -> None:
        self._dropped[P.BAD_INPUT].inc()
        self.metrics.bad_input.labels(kind=exc.reason).inc()
        self._preds_out.send(P.encode_error(exc.session, exc.seq, exc.reason, exc.detail))

    def _predict(self, item: _Accepted) -> "np.ndarray | None":
        """The engine's answer, or None (engine error reported); advances a state."""
        frame = item.frame
        try:
            if self._states is None:
                return self.engine.predict(frame.data)
            return self._states.predict(frame.session, frame.data, item.restarted)
        except EngineError as exc:
            self._reject(P.BadMessage(P.ENGINE_ERROR, str(exc), frame.session, frame.seq))
            return None

    def _answer(self, item: _Accepted, skipped: int = 0) -> None:
        m = self.metrics
        frame, t_recv = item.frame, item.t_recv
        t0 = time.perf_counter()
        probs = self._predict(item)
        if probs is None:
            return
        t1 = time.perf_counter()
        self._inference_seconds.observe(t1 - t0)
        t_pub = time.time_ns()
        late = policy.is_late(item.t_src_judged, t_pub, self._deadline_ns)
        parts = self._encoder.encode(frame.session, frame.seq, frame.t_src_ns, t_recv, t_pub,
                                     int(probs.argmax()), probs.tolist(), late, skipped, frame.run)
        # counters first, so whoever holds the prediction sees them updated
        m.predictions_published.value += 1
        e2e = t_pub - frame.t_src_ns
        m.end_to_end_seconds.observe(e2e / 1e9 if e2e > 0 else 0.0)
        if late:
            m.deadline_misses.value += 1
        m.service_seconds.observe((t_pub - t_recv) / 1e9)
        if t_pub - t_recv > self._deadline_ns:
            m.service_deadline_misses.value += 1
        self._preds_out.send(parts)
        self._publish_seconds.observe(time.perf_counter() - t1)

    def _forward_end(self, end: P.EndOfStream) -> None:
        if self._states is not None:  # the stream ended: a new one starts afresh
            self._states.drop(end.session)
        self.metrics.end_of_stream.inc()
        self._preds_out.send(P.encode_end(end.session, end.seq, end.frames, end.t_src_ns, end.run))
