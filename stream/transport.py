"""ZeroMQ transport: default endpoints, endpoint parsing, two-part message I/O.

The wire format (what is inside a message) is `neurogrs.stream.protocol`; this module only
moves bytes. Endpoints follow the CZMQ convention: ``@tcp://127.0.0.1:5555`` binds,
``>tcp://127.0.0.1:5555`` connects, a bare address takes the socket's natural role
(services bind, clients connect). zmq errors are translated here into
`neurogrs.errors.TransportError`; `zmq.Again` (nothing queued, queue full) is not an
error: the I/O functions return None / False instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from neurogrs.errors import ConfigError, TransportError

__all__ = [
    "greet_subscribers",
    "FRAMES_PORT",
    "PREDICTIONS_PORT",
    "LOOPBACK",
    "SERVICE_FRAMES",
    "SERVICE_PREDICTIONS",
    "CLIENT_FRAMES",
    "CLIENT_PREDICTIONS",
    "Endpoint",
    "parse_endpoint",
    "TwoPartIO",
    "two_part_io",
]

FRAMES_PORT = 5555  # the service's frame socket (SUB)
PREDICTIONS_PORT = 5556  # the service's prediction socket (XPUB)
LOOPBACK = "127.0.0.1"  # defaults never leave the host; other interfaces must be asked for
SERVICE_FRAMES = f"@tcp://{LOOPBACK}:{FRAMES_PORT}"
SERVICE_PREDICTIONS = f"@tcp://{LOOPBACK}:{PREDICTIONS_PORT}"
CLIENT_FRAMES = f">tcp://{LOOPBACK}:{FRAMES_PORT}"  # replay, acquisition
CLIENT_PREDICTIONS = f">tcp://{LOOPBACK}:{PREDICTIONS_PORT}"  # listen, subscribe()
_TRANSPORTS = ("tcp", "ipc", "inproc")


@dataclass(frozen=True)
class Endpoint:
    """A ZeroMQ endpoint and whether to bind or connect it (CZMQ convention)."""

    action: str  # "bind" | "connect"
    address: str  # e.g. "tcp://127.0.0.1:5555"

    def apply(self, socket: Any) -> str:
        """Bind or connect `socket`; returns the actual address (resolves ``:*`` ports).
        Raises TransportError when libzmq refuses (address in use, no such interface)."""
        import zmq

        try:
            if self.action == "bind":
                socket.bind(self.address)
                return socket.getsockopt_string(zmq.LAST_ENDPOINT)
            socket.connect(self.address)
            return self.address
        except zmq.ZMQError as exc:
            raise TransportError(f"cannot {self.action} {self.address}: {exc}") from exc

    def __str__(self) -> str:
        return ("@" if self.action == "bind" else ">") + self.address


def parse_endpoint(text: str, default: str = "connect") -> Endpoint:
    """``@tcp://127.0.0.1:5555`` binds, ``>tcp://127.0.0.1:5555`` connects, a bare address
    uses `default` (the socket's natural role: services bind, clients connect)."""
    if default not in ("bind", "connect"):
        raise ConfigError(f"default must be 'bind' or 'connect', got {default!r}")
    if not isinstance(text, str) or not text:
        raise ConfigError(f"endpoint must be a non-empty string, got {text!r}")
    action = default
    if text[0] == "@":
        action, text = "bind", text[1:]
    elif text[0] == ">":
        action, text = "connect", text[1:]
    transport, sep, rest = text.partition("://")
    if not sep or transport not in _TRANSPORTS or not rest:
        raise ConfigError(
            f"endpoint {text!r} must look like tcp://HOST:PORT, ipc://PATH or inproc://NAME "
            "(prefix @ to bind, > to connect)"
        )
    if transport == "tcp":
        host, colon, port = rest.rpartition(":")
        if not colon or not host or not (port == "*" or (port.isdigit() and 0 < int(port) < 65536)):
            raise ConfigError(f"tcp endpoint {text!r} needs HOST:PORT with PORT 1..65535 or *")
    return Endpoint(action, text)


# ----------------------------------------------------------------------------- message I/O
class TwoPartIO(NamedTuple):
    """Two-part message I/O on one socket (the hot paths of service, replayer and client).

    send(parts): send [topic, body], blocking like send_multipart.
    send_nowait(parts) -> bool: False when the queue is full (ZeroMQ takes a multipart
        message whole or not at all, so only the first part can find it full).
    recv_nowait() -> list | None: the next message (every part, whatever their number:
        the decoders reject a wrong count), or None when nothing is queued.
    """

    send: Callable[[list], None]
    send_nowait: Callable[[list], bool]
    recv_nowait: Callable[[], "list | None"]


def two_part_io(sock: Any) -> TwoPartIO:
    """Two-part message I/O on `sock` through pyzmq's public Socket methods with int flags
    (what send_multipart / recv_multipart do, without their per-call Python layer)."""
    import zmq

    send, recv, get = sock.send, sock.recv, sock.get
    more, noblock, rcvmore = int(zmq.SNDMORE), int(zmq.NOBLOCK), int(zmq.RCVMORE)
    Again, ZMQError = zmq.Again, zmq.ZMQError

    def send_two(parts: list) -> None:
        try:
            send(parts[0], more)
            send(parts[1], 0)
        except ZMQError as exc:
            raise TransportError(f"send failed: {exc}") from exc

    def send_two_nowait(parts: list) -> bool:
        try:
            send(parts[0], more | noblock)
        except Again:
            return False
        except ZMQError as exc:
            raise TransportError(f"send failed: {exc}") from exc
        try:
            send(parts[1], noblock)
        except ZMQError as exc:
            raise TransportError(f"send failed: {exc}") from exc
        return True

    def recv_nowait() -> list | None:
        try:
            parts = [recv(noblock)]
            while get(rcvmore):
                parts.append(recv(noblock))
        except Again:
            return None
        except ZMQError as exc:
            raise TransportError(f"receive failed: {exc}") from exc
        return parts

    return TwoPartIO(send_two, send_two_nowait, recv_nowait)


def greet_subscribers(preds_out: Any, hello: Any, limit: int) -> None:
    """One hello for the subscriptions queued on the predictions socket now (it greets
    every client): a client subscribing to many topics is not amplified into a hello per
    topic to everyone, and at most `limit` are read before frames are served again."""
    new = False
    for _ in range(limit):
        msg = preds_out.recv_nowait()
        if msg is None:
            break
        new = new or msg[0][:1] == b"\x01"
    if new:
        preds_out.send(hello)
