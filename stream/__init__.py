"""neurogrs.stream: the online service, wire protocol v1, metrics and the client API.

    from neurogrs.stream import subscribe
    for pred in subscribe(">tcp://127.0.0.1:5556", session="mouse1", timeout=5): ...
"""
from neurogrs.stream.client import Subscriber, subscribe

__all__ = ["subscribe", "Subscriber"]
