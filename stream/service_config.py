"""The service's settings: `ServiceSettings` (validated on creation, round-trips through
dicts) and the frame socket's receive limit. Used by `neurogrs.stream.service`, which
re-exports them."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from neurogrs.errors import ConfigError
from neurogrs.stream import protocol as P
from neurogrs.stream.policy import CLOCKS, POLICIES
from neurogrs.stream.transport import SERVICE_FRAMES, SERVICE_PREDICTIONS, parse_endpoint

__all__ = ["ServiceSettings", "receive_limit", "HARD_MAX_MESSAGE_BYTES", "FRAME_HEADER_SLACK",
           "QUEUE_BYTES"]

HARD_MAX_MESSAGE_BYTES = 16 << 20  # libzmq refuses (and disconnects) above this
FRAME_HEADER_SLACK = 16 << 10  # a frame's keys and small values, unknown keys included
QUEUE_BYTES = 256 << 20  # the frame socket queues at most this many bytes (rcvhwm x limit)


def receive_limit(n_inputs: int, max_message_bytes: int | None = None) -> int:
    """ZMQ_MAXMSGSIZE of the frame socket: the largest valid frame for an N-input model
    (4N bytes of data + header slack), unless given; libzmq drops larger messages."""
    if max_message_bytes is not None:
        return max_message_bytes
    return min(4 * n_inputs + FRAME_HEADER_SLACK, HARD_MAX_MESSAGE_BYTES)


@dataclass(frozen=True)
class ServiceSettings:
    frames: str = SERVICE_FRAMES
    predictions: str = SERVICE_PREDICTIONS
    deadline_s: float = 0.1
    policy: str = "latest"
    sessions: tuple[str, ...] = ()  # empty: every session (up to max_sessions)
    max_body_bytes: int = P.DEFAULT_MAX_BODY_BYTES  # protocol limit: counted as "oversized"
    max_message_bytes: int | None = None  # ZMQ_MAXMSGSIZE on the frame socket (receive_limit)
    max_sessions: int = 64
    session_idle_s: float = 60.0  # a session without frames for this long is forgotten
    clock: str = "auto"  # "auto": correct a skewed source clock; "source": trust t_src
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
        if self.clock not in CLOCKS:
            raise ConfigError(f"clock must be one of {CLOCKS}, got {self.clock!r}")
        if not (isinstance(self.session_idle_s, (int, float)) and not isinstance(self.session_idle_s, bool)
                and 0.01 <= self.session_idle_s <= 7 * 86400):
            raise ConfigError(f"session_idle_s must be in [0.01, 604800] s, got {self.session_idle_s!r}")
        object.__setattr__(self, "sessions", tuple(P.check_session_name(s) for s in self.sessions))
        for name, lo, hi in (("max_body_bytes", 64, HARD_MAX_MESSAGE_BYTES),
                             ("max_sessions", 1, 4096),
                             ("max_drain", 1, 1 << 20), ("rcvhwm", 1, 1 << 24),
                             ("pub_hwm", 1, 1 << 24),
                             ("poll_ms", 1, 10_000)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ConfigError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
        if self.max_message_bytes is not None and not (
                isinstance(self.max_message_bytes, int) and not isinstance(self.max_message_bytes, bool)
                and 64 <= self.max_message_bytes <= 1 << 30):
            raise ConfigError(f"max_message_bytes must be None or an integer in [64, {1 << 30}], "
                              f"got {self.max_message_bytes!r}")
        if self.max_message_bytes is not None and self.max_message_bytes < self.max_body_bytes:
            raise ConfigError(f"max_message_bytes ({self.max_message_bytes}) must be >= "
                              f"max_body_bytes ({self.max_body_bytes})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sessions"] = list(self.sessions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ServiceSettings":
        d = dict(d)
        d["sessions"] = tuple(d.get("sessions", ()))
        return cls(**d)
