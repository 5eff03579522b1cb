"""Is pyzmq's private Cython socket worth it? Two-part message I/O, side by side, one run.

    python -m neurogrs.bench.zmq_io [--messages 20000] [--rounds 15] [--body 1200]

PAIR sockets on tcp loopback; each round sends `messages` [topic, body] messages and then
receives them (the receiver polls until all have arrived, outside the timing), once per
variant, variants interleaved so a load burst on the shared machine hits all of them.
Printed: median ns per message to send and to receive, and the ratio to the public path.

- public: neurogrs.stream.transport.two_part_io (pyzmq's public Socket.send / recv / get
  with int flags, what the service uses);
- private: the same closures calling `zmq.backend.Socket` methods directly (skips the
  Python-level `zmq.Socket.send` wrapper; recv and get are the same Cython methods);
- multipart: `send_multipart` / `recv_multipart(NOBLOCK)` (pyzmq's convenience layer).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Callable

__all__ = ["main", "measure"]


def _private_io(sock: Any) -> tuple[Callable, Callable]:
    import zmq
    from zmq.backend import Socket as CSocket  # private: what this script weighs

    send, recv, get = CSocket.send, CSocket.recv, CSocket.get
    more, noblock, rcvmore = int(zmq.SNDMORE), int(zmq.NOBLOCK), int(zmq.RCVMORE)

    def send_two(parts: list) -> None:
        send(sock, parts[0], more)
        send(sock, parts[1], 0)

    def recv_nowait() -> list | None:
        try:
            parts = [recv(sock, noblock)]
            while get(sock, rcvmore):
                parts.append(recv(sock, noblock))
        except zmq.Again:
            return None
        return parts

    return send_two, recv_nowait


def _public_io(sock: Any) -> tuple[Callable, Callable]:
    from neurogrs.stream.transport import two_part_io

    io = two_part_io(sock)
    return io.send, io.recv_nowait


def _multipart_io(sock: Any) -> tuple[Callable, Callable]:
    import zmq

    def recv_nowait() -> list | None:
        try:
            return sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None

    return sock.send_multipart, recv_nowait


VARIANTS = {"public": _public_io, "private": _private_io, "multipart": _multipart_io}


def measure(messages: int = 20_000, rounds: int = 15, body: int = 1200) -> dict:
    """Median ns per message {variant: {"send": ns, "recv": ns}} over `rounds`."""
    import zmq

    ctx = zmq.Context()
    tx, rx = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        for s in (tx, rx):
            s.linger = 0
            s.sndhwm = s.rcvhwm = 2 * messages + 10
        rx.bind("tcp://127.0.0.1:*")
        tx.connect(rx.getsockopt_string(zmq.LAST_ENDPOINT))
        parts = [b"frame.bench", b"\x00" * body]
        ios = {name: (make(tx)[0], make(rx)[1]) for name, make in VARIANTS.items()}
        times: dict[str, dict[str, list[float]]] = {n: {"send": [], "recv": []} for n in VARIANTS}
        for r in range(rounds + 1):  # round 0 warms up
            for name, (send, recv) in ios.items():
                t0 = time.perf_counter_ns()
                for _ in range(messages):
                    send(parts)
                t1 = time.perf_counter_ns()
                rx.poll(5000)  # the first message has arrived; wait for the last one too
                got, spent = 0, 0
                end = time.monotonic() + 30
                while got < messages and time.monotonic() < end:
                    t2 = time.perf_counter_ns()
                    while recv() is not None:
                        got += 1
                    spent += time.perf_counter_ns() - t2
                    if got < messages:
                        rx.poll(100)
                if got != messages:
                    raise RuntimeError(f"{name}: received {got} of {messages}")
                if r:
                    times[name]["send"].append((t1 - t0) / messages)
                    times[name]["recv"].append(spent / messages)
        return {n: {k: statistics.median(v) for k, v in d.items()} for n, d in times.items()}
    finally:
        tx.close(0)
        rx.close(0)
        ctx.term()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neurogrs.bench.zmq_io")
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--body", type=int, default=1200, help="body bytes (1200: a 273-input frame)")
    args = ap.parse_args(argv)
    res = measure(args.messages, args.rounds, args.body)
    base = res["public"]
    print(f"{'variant':>10}  {'send ns':>8}  {'recv ns':>8}  {'send+recv':>9}  ratio to public")
    for name, d in res.items():
        both = d["send"] + d["recv"]
        print(f"{name:>10}  {d['send']:8.0f}  {d['recv']:8.0f}  {both:9.0f}  "
              f"{both / (base['send'] + base['recv']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
