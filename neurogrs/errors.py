"""The neurogrs exception tree.

    NeurogrsError                 every error this package raises on purpose
    ├── SessionError              a session (traces, labels, positions, ...) is invalid
    │   └── FormatError           a session file cannot be read (layout, keys, pickle)
    ├── ConfigError               a setting is out of range (names field, value, range)
    ├── ModelError                a model cannot be represented (unsupported layer, ...)
    ├── ArtifactError             an artifact directory is missing, malformed or tampered
    ├── EngineError               an inference engine cannot run (bad frame, no compiler)
    │   └── CompilerError         the C compiler is missing or failed
    ├── ProtocolError             a wire message does not follow protocol v1
    └── TransportError            a socket cannot bind, connect, send or receive (zmq errors)
        └── TransportTimeout      a peer did not show up or answer in time (no subscriber,
                                  no service greeting, a receiver that takes nothing)

Third-party errors (zmq, OSError from ctypes, subprocess failures) are translated into
these where they enter the package, so callers catch one family.
"""
from __future__ import annotations

__all__ = [
    "NeurogrsError",
    "SessionError",
    "FormatError",
    "ConfigError",
    "ModelError",
    "ArtifactError",
    "EngineError",
    "CompilerError",
    "ProtocolError",
    "TransportError",
    "TransportTimeout",
]


class NeurogrsError(Exception):
    """Base class of every error neurogrs raises on purpose."""


class SessionError(NeurogrsError, ValueError):
    """A recorded or simulated session is invalid."""


class FormatError(SessionError):
    """A session file cannot be read."""


class ConfigError(NeurogrsError, ValueError):
    """A configuration value is out of range."""


class ModelError(NeurogrsError, ValueError):
    """A model uses something neurogrs cannot represent."""


class ArtifactError(NeurogrsError):
    """An artifact directory is missing, malformed, or its weights were altered."""


class EngineError(NeurogrsError, ValueError):
    """An inference engine cannot run as asked (bad frame, bad artifact)."""


class CompilerError(EngineError):
    """The C compiler is missing or failed."""


class ProtocolError(NeurogrsError, ValueError):
    """A wire message does not follow the protocol."""


class TransportError(NeurogrsError):
    """A ZeroMQ socket cannot bind, connect, send or receive (translated from zmq.ZMQError
    where it enters: neurogrs.stream.transport)."""


class TransportTimeout(TransportError):
    """A peer did not show up or answer within the time allowed."""
