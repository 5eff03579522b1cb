"""CURVE keys for the service and its peers (ZeroMQ CURVE via `zmq.auth`).

Layout written by `create_keys(DIR)` (``neurogrs keys DIR``):

    DIR/server.key, DIR/server.key_secret        the service's key pair
    DIR/client.key, DIR/client.key_secret        one client key pair (replay, listen)
    DIR/authorized_clients/client.key            public keys the service accepts

Authorise another client by copying its public ``.key`` file into
``DIR/authorized_clients/``. Secret files are written with mode 0600 by zmq.auth.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from neurogrs.errors import ConfigError

__all__ = ["create_keys", "server_keys", "client_keys", "authorized_dir",
           "configure_server", "configure_client"]

AUTHORIZED = "authorized_clients"


def create_keys(directory: "str | os.PathLike", overwrite: bool = False) -> Path:
    import zmq.auth

    d = Path(directory)
    if (d / "server.key_secret").exists() and not overwrite:
        raise ConfigError(f"{d} already holds keys (pass overwrite to replace them)")
    d.mkdir(parents=True, exist_ok=True)
    (d / AUTHORIZED).mkdir(exist_ok=True)
    zmq.auth.create_certificates(str(d), "server")
    pub, _ = zmq.auth.create_certificates(str(d), "client")
    shutil.copy(pub, d / AUTHORIZED / "client.key")
    return d


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.is_file():
        raise ConfigError(f"key file {path} not found (create keys with `neurogrs keys DIR`)")
    try:
        return zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot read key file {path}: {exc}") from exc


def server_keys(directory: "str | os.PathLike") -> tuple[bytes, bytes]:
    pub, sec = _load(Path(directory) / "server.key_secret", True)
    if sec is None:
        raise ConfigError(f"{directory}/server.key_secret holds no secret key")
    return pub, sec


def client_keys(directory: "str | os.PathLike") -> tuple[bytes, bytes, bytes]:
    """(client public, client secret, server public)."""
    d = Path(directory)
    pub, sec = _load(d / "client.key_secret", True)
    if sec is None:
        raise ConfigError(f"{d}/client.key_secret holds no secret key")
    server_pub, _ = _load(d / "server.key", False)
    return pub, sec, server_pub


def authorized_dir(directory: "str | os.PathLike") -> Path:
    p = Path(directory) / AUTHORIZED
    if not p.is_dir():
        raise ConfigError(f"{p} not found: no authorised client keys")
    return p


def configure_server(socket: Any, directory: "str | os.PathLike") -> None:
    pub, sec = server_keys(directory)
    socket.curve_secretkey = sec
    socket.curve_publickey = pub
    socket.curve_server = True


def configure_client(socket: Any, directory: "str | os.PathLike") -> None:
    pub, sec, server_pub = client_keys(directory)
    socket.curve_secretkey = sec
    socket.curve_publickey = pub
    socket.curve_serverkey = server_pub
