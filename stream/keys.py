"""CURVE keys for the service and its peers (ZeroMQ CURVE via `zmq.auth`).

Layout written by `create_keys(DIR)` (``neurogrs keys DIR``):

    DIR/server.key, DIR/server.key_secret        the service's key pair
    DIR/client.key, DIR/client.key_secret        one client key pair (replay, listen)
    DIR/authorized_clients/client.key            public keys the service accepts

Authorise another client by copying its public ``.key`` file into
``DIR/authorized_clients/``. Secret files are created with mode 0600 (whatever the umask;
an overwritten file is replaced by a new one, never reopened with its old mode): zmq.auth's
own writer leaves them at the umask's default (0644). Both are ZPL certificates that
`zmq.auth.load_certificate` reads.
"""
from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from neurogrs.errors import ConfigError

__all__ = ["create_keys", "server_keys", "client_keys", "authorized_dir",
           "configure_server", "configure_client"]

AUTHORIZED = "authorized_clients"
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644

_BANNER = """#   ****  Generated on {now} by neurogrs keys  ****
#   ZeroMQ CURVE {kind} Certificate
#   {advice}

metadata
curve
    public-key = "{public}"
"""


def create_keys(directory: "str | os.PathLike", overwrite: bool = False) -> Path:
    d = Path(directory)
    if (d / "server.key_secret").exists() and not overwrite:
        raise ConfigError(f"{d} already holds keys (pass overwrite to replace them)")
    d.mkdir(parents=True, exist_ok=True)
    (d / AUTHORIZED).mkdir(exist_ok=True)
    _write_pair(d, "server")
    pub = _write_pair(d, "client")
    shutil.copy(pub, d / AUTHORIZED / "client.key")
    return d


def _write_pair(directory: Path, name: str) -> Path:
    """Write DIR/name.key (public) and DIR/name.key_secret (0600); returns the public path."""
    import zmq

    public, secret = (k.decode("ascii") for k in zmq.curve_keypair())
    now = datetime.datetime.now().isoformat(timespec="seconds")
    _write_new(directory / f"{name}.key", PUBLIC_MODE, _BANNER.format(
        now=now, kind="**Public**", advice="Give this file to peers that must trust it.",
        public=public))
    _write_new(directory / f"{name}.key_secret", SECRET_MODE, _BANNER.format(
        now=now, kind="**Secret**", advice="DO NOT PROVIDE THIS FILE TO OTHER USERS.",
        public=public) + f'    secret-key = "{secret}"\n')
    return directory / f"{name}.key"


def _write_new(path: Path, mode: int, text: str) -> None:
    """Create a fresh file with `mode` from the start (no chmod after: no window in which
    another user could open it), then move it over `path` atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        if mode != SECRET_MODE:
            os.fchmod(fd, mode)  # loosening a public key file only
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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
