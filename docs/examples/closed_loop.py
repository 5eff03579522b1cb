#!/usr/bin/env python3
"""A closed-loop client, as an imaging rig would run one against `neurogrs serve`.

It publishes one frame per acquisition period on the service's frame endpoint, receives
each prediction on the prediction endpoint, acts on it (here: "stimulate" when the decoder
says label 1 in time, nothing otherwise; a late prediction is never acted on), and at the
end accounts for every frame it sent:

    answered (a prediction) + skipped (conflated by the service, carried in the next
    prediction's `skipped`) + reported (an error report, e.g. a NaN frame) = sent

Run a service first (numpy engine: no compiler needed), then this client:

    neurogrs serve art/nn1 --engine numpy --frames @tcp://127.0.0.1:5555 \\
        --predictions @tcp://127.0.0.1:5556 --metrics-port -1
    python examples/closed_loop.py --count 300 --rate 100

It prints one JSON summary on stdout and exits 0 when every frame is accounted for and the
service forwarded the end-of-stream, 1 otherwise. Wire format: docs/protocol.md; the
client pieces used here: neurogrs.stream.client.Subscriber and neurogrs.stream.protocol.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import zmq

from neurogrs.stream import protocol as P
from neurogrs.stream.client import Subscriber
from neurogrs.stream.transport import parse_endpoint


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Send frames like a rig, act on the predictions, account for every frame.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--frames", default="tcp://127.0.0.1:5555", help="the service's frame endpoint")
    p.add_argument("--predictions", default="tcp://127.0.0.1:5556",
                   help="the service's prediction endpoint")
    p.add_argument("--session", default="rig1", help="session name (the topic)")
    p.add_argument("--session-file", metavar="FILE", default=None,
                   help="send this recorded session's traces (default: random frames of the "
                        "model's input size)")
    p.add_argument("--count", type=int, default=300, help="frames to send")
    p.add_argument("--rate", type=float, default=10.0, help="frames per second (the rig's fs)")
    p.add_argument("--bad-every", type=int, default=0, metavar="K",
                   help="make every K-th frame NaN, as a glitching rig would (0: never)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for the service (greeting, subscription, the end)")
    return p


class Ledger:
    """What happened to the frames sent, from the messages the service published."""

    def __init__(self) -> None:
        self.sent = self.answered = self.skipped = self.reported = 0
        self.late = self.stimulated = 0
        self.reasons: dict[str, int] = {}
        self.latency_ms: list[float] = []
        self.ended = False

    def take(self, msg: object, received_ns: int) -> None:
        if isinstance(msg, P.Prediction):
            self.answered += 1
            self.skipped += msg.skipped
            self.latency_ms.append((received_ns - msg.t_src_ns) / 1e6)
            self.act(msg)
        elif isinstance(msg, P.ErrorReport):
            self.reported += 1
            self.reasons[msg.reason] = self.reasons.get(msg.reason, 0) + 1
        elif isinstance(msg, P.EndOfStream):
            self.ended = True

    def act(self, pred: P.Prediction) -> None:
        """The controller: a late prediction describes the past, so it is ignored."""
        if pred.late:
            self.late += 1
        elif pred.label == 1:
            self.stimulated += 1  # a real rig would trigger its stimulus here

    def summary(self) -> dict:
        lat = np.asarray(self.latency_ms) if self.latency_ms else np.full(1, np.nan)
        return {"sent": self.sent, "answered": self.answered, "skipped": self.skipped,
                "reported": self.reported, "reasons": self.reasons,
                "accounted": self.answered + self.skipped + self.reported == self.sent,
                "end_of_stream": self.ended, "late": self.late, "stimulated": self.stimulated,
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 3),
                "latency_ms_p99": round(float(np.percentile(lat, 99)), 3)}


def _frames(args: argparse.Namespace, n_inputs: int) -> np.ndarray:
    if args.session_file is None:
        return np.random.default_rng(0).normal(size=(64, n_inputs)).astype(np.float32)
    from neurogrs.formats import load_session

    traces = load_session(args.session_file).traces
    if traces.shape[1] != n_inputs:
        sys.exit(f"closed_loop: {args.session_file} has {traces.shape[1]} neurons, "
                 f"the service's model takes {n_inputs}")
    return traces


def _publisher(ctx: zmq.Context, endpoint: str, timeout_s: float) -> zmq.Socket:
    """An XPUB on the frame endpoint, returned once the service has subscribed to it (so no
    frame is sent into the void); XPUB_NODROP: wait at the high-water mark, never drop."""
    pub = ctx.socket(zmq.XPUB)
    pub.linger = 0
    pub.setsockopt(zmq.XPUB_NODROP, 1)
    parse_endpoint(endpoint, "connect").apply(pub)
    if not pub.poll(int(timeout_s * 1000), zmq.POLLIN):
        pub.close()
        sys.exit(f"closed_loop: no service subscribed on {endpoint} within {timeout_s:g} s")
    pub.recv()
    return pub


def run(args: argparse.Namespace) -> dict:
    ledger = Ledger()
    ctx = zmq.Context()
    try:
        with Subscriber(args.predictions, args.session, context=ctx) as sub:
            hello = sub.wait_hello(args.timeout)  # from here on no prediction is missed
            pub = _publisher(ctx, args.frames, args.timeout)
            try:
                frames = _frames(args, hello.n_inputs)
                encoder = P.FrameEncoder(args.session)
                period = 1.0 / args.rate
                next_send = time.monotonic()
                for seq in range(args.count):
                    x = frames[seq % len(frames)]
                    if args.bad_every and seq % args.bad_every == args.bad_every - 1:
                        x = x.copy()
                        x[0] = np.nan
                    pub.send_multipart(encoder.encode(seq, x, time.time_ns()))
                    ledger.sent += 1
                    next_send += period
                    while (left := next_send - time.monotonic()) > 0:  # act while waiting
                        msg = sub.recv(left)
                        if msg is not None:
                            ledger.take(msg, sub.received_ns)
                pub.send_multipart(P.encode_end(args.session, args.count, args.count))
                while not ledger.ended:  # the service forwards it after the last answer
                    msg = sub.recv(args.timeout)
                    if msg is None:
                        break
                    ledger.take(msg, sub.received_ns)
            finally:
                pub.close()
    finally:
        ctx.term()
    return {"model": hello.model[:12], "engine": hello.engine, "n_inputs": hello.n_inputs,
            **ledger.summary()}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, value, rule, ok in (("--count", args.count, ">= 1", args.count >= 1),
                                  ("--rate", args.rate, "> 0", args.rate > 0),
                                  ("--bad-every", args.bad_every, ">= 0", args.bad_every >= 0),
                                  ("--timeout", args.timeout, "> 0", args.timeout > 0)):
        if not ok:
            parser.error(f"{name} must be {rule}, got {value}")
    summary = run(args)
    print(json.dumps(summary))
    return 0 if summary["accounted"] and summary["end_of_stream"] else 1


if __name__ == "__main__":
    sys.exit(main())
