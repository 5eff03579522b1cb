"""The floor for `neurogrs bench service`: a bare pyzmq + msgpack echo.

Same sockets and topics as the service (SUB in, XPUB out, hello on subscription) but no
validation, no engine, no metrics: receive, unpack, encode a constant prediction (with the
protocol's own encoder, so the bytes are v1), send. Run as
``python -m neurogrs.bench.echo --frames EP --predictions EP``; prints a JSON ready line.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    import msgpack
    import zmq

    from neurogrs.errors import NeurogrsError
    from neurogrs.stream import protocol as P
    from neurogrs.stream.transport import parse_endpoint

    ap = argparse.ArgumentParser(prog="neurogrs-echo")
    ap.add_argument("--frames", default="@tcp://127.0.0.1:*")
    ap.add_argument("--predictions", default="@tcp://127.0.0.1:*")
    args = ap.parse_args(argv)
    ctx = zmq.Context()
    sub, pub = ctx.socket(zmq.SUB), ctx.socket(zmq.XPUB)
    for s in (sub, pub):
        s.linger = 0
    sub.rcvhwm = 10000
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    try:
        eps = {"frames": parse_endpoint(args.frames, "bind").apply(sub),
               "predictions": parse_endpoint(args.predictions, "bind").apply(pub)}
    except NeurogrsError as exc:
        print(f"echo: {exc}", file=sys.stderr)
        return 2
    sub.subscribe(P.FRAME_PREFIX)
    sub.subscribe(P.END_PREFIX)
    hello = P.encode_hello(P.Hello("echo", "echo", 0, ("0", "1"), 10**8))
    print(json.dumps({"event": "ready", **eps}), flush=True)
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    poller.register(pub, zmq.POLLIN)
    unpack = msgpack.unpackb
    encode = P.PredictionEncoder("echo").encode
    probs = [1.0, 0.0]
    while not stop:
        ev = dict(poller.poll(100))
        if pub in ev:
            while pub.poll(0):
                if pub.recv()[:1] == b"\x01":
                    pub.send_multipart(hello)
        if sub not in ev:
            continue
        while True:
            try:
                topic, body = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            t_recv = time.time_ns()
            if topic.startswith(P.END_PREFIX):
                pub.send_multipart([topic, body])
                continue
            d = unpack(body)
            pub.send_multipart(encode(d["session"], d["seq"], d["t_src_ns"], t_recv,
                                      time.time_ns(), 0, probs, False))
    ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
