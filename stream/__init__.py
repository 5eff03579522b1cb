"""neurogrs.stream: the online service, wire protocol v1, metrics and the client API.

    from neurogrs.stream import subscribe
    for pred in subscribe(session="mouse1", timeout=5): ...   # the local service's default endpoint
"""
from neurogrs.stream.client import Subscriber, subscribe

__all__ = ["subscribe", "Subscriber"]
