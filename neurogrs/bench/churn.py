"""Session churn for the `bench service` soak: many short sessions that start and vanish
without end-of-stream, as sources on a rig that crash or are killed do.

    python -m neurogrs.bench.churn --frames tcp://H:P --predictions tcp://H:P \
        --sessions 3600 --frames-per-session 10 --duration 140 --inputs 273

Session k (``churn<k>``) starts at k * duration / sessions s, sends its frames back to back
(seq 0..K-1, t_src = now, a run id of its own) and is never heard of again. With
``--restart-every N``, every N-th session is a source that crashes and restarts: after its K
frames it sends K more from seq 0 under the same name with a new run id, as a restarted
acquisition program does; the service must serve the new run from its first frame. The predictions and error reports of
the churn sessions are counted here (the soak's listener does not see them), so the table
can say how many churn frames were answered and why the others were refused (e.g.
``too_many_sessions`` while vanished sessions hold the service's session table).
Prints ``{"event": "ready"}`` once the service has subscribed and greeted, and
``{"event": "done", ...}`` at the end; SIGTERM ends it early (``interrupted``).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

__all__ = ["main", "run_churn"]

SETTLE_S = 3.0  # after the last session: wait this long for the last answers
PREFIX = "churn"


def run_churn(frames: str, predictions: str, sessions: int, per_session: int,
              duration_s: float, n_inputs: int, stop: threading.Event,
              restart_every: int = 0) -> dict:
    import numpy as np
    import zmq

    from neurogrs.errors import TransportTimeout
    from neurogrs.stream import protocol as P
    from neurogrs.stream.transport import parse_endpoint, two_part_io

    ctx = zmq.Context()
    out = ctx.socket(zmq.XPUB)
    out.linger = 0
    out.sndhwm = 100_000
    out.setsockopt(zmq.XPUB_NODROP, 1)
    sub = ctx.socket(zmq.SUB)  # only the churn sessions' answers (not the soak's)
    sub.linger = 0
    sub.rcvhwm = 1_000_000
    for prefix in (P.PRED_PREFIX, P.ERROR_PREFIX):
        sub.subscribe(prefix + PREFIX.encode())
    sub.subscribe(P.HELLO_TOPIC)
    counts = {"sessions": 0, "sent": 0, "answered": 0, "errors": {}, "restarts": 0}
    hello = []

    def drain(until: float) -> None:
        while (left := until - time.monotonic()) > 0:
            if not sub.poll(int(left * 1000) + 1):
                return
            try:
                msg = P.decode_message(sub.recv_multipart())
            except P.BadMessage:
                continue
            if isinstance(msg, P.Hello):
                hello.append(msg)
            elif isinstance(msg, P.Prediction):
                counts["answered"] += 1
            elif isinstance(msg, P.ErrorReport):
                counts["errors"][msg.reason] = counts["errors"].get(msg.reason, 0) + 1

    try:
        parse_endpoint(predictions, "connect").apply(sub)
        parse_endpoint(frames, "connect").apply(out)
        while not stop.is_set() and not out.poll(100, zmq.POLLIN):
            pass  # the service's subscription (XPUB): then nothing is lost
        end = time.monotonic() + 30
        while not hello and not stop.is_set():  # greeted: our subscription is in place
            if time.monotonic() > end:
                raise TransportTimeout(f"no greeting from the service on {predictions}")
            drain(time.monotonic() + 0.1)
        print(json.dumps({"event": "ready"}), flush=True)
        send = two_part_io(out).send_nowait
        data = np.zeros(n_inputs, np.float32)
        t0 = time.monotonic()
        for k in range(sessions):
            if stop.is_set():
                break
            drain(t0 + k * duration_s / sessions)
            name = f"{PREFIX}{k}"
            runs = 2 if restart_every and k % restart_every == 0 else 1
            for r in range(runs):  # a second run: the source restarted from seq 0
                run = P.new_run() + r
                for seq in range(per_session):
                    while not send(P.encode_frame(name, seq, data, time.time_ns(), run=run)):
                        out.poll(100, zmq.POLLOUT)  # lossless: wait at the high-water mark
            counts["sessions"] += 1
            counts["restarts"] += runs - 1
            counts["sent"] += per_session * runs
        settle = time.monotonic() + SETTLE_S
        while (not stop.is_set() and time.monotonic() < settle
               and counts["answered"] + sum(counts["errors"].values()) < counts["sent"]):
            drain(min(settle, time.monotonic() + 0.2))
    finally:
        sub.close()
        out.close(linger=0)
        ctx.term()
    counts["unanswered"] = counts["sent"] - counts["answered"] - sum(counts["errors"].values())
    counts["interrupted"] = stop.is_set()
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neurogrs.bench.churn")
    ap.add_argument("--frames", required=True, help="the service's frame endpoint (connect)")
    ap.add_argument("--predictions", required=True, help="its prediction endpoint (connect)")
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--frames-per-session", type=int, default=10)
    ap.add_argument("--duration", type=float, required=True, help="seconds to spread them over")
    ap.add_argument("--inputs", type=int, required=True, help="frame length (model inputs)")
    ap.add_argument("--restart-every", type=int, default=0, metavar="N",
                    help="every N-th session restarts from seq 0 with a new run id (0: none)")
    args = ap.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    res = run_churn(args.frames, args.predictions, args.sessions, args.frames_per_session,
                    args.duration, args.inputs, stop, args.restart_every)
    print(json.dumps({"event": "done", **res}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
