"""`neurogrs keys` layout."""
from __future__ import annotations

import pytest

from neurogrs.errors import ConfigError
from neurogrs.stream.keys import client_keys, create_keys, server_keys


def test_create_keys_layout_and_refuse_overwrite(tmp_path):
    d = create_keys(tmp_path / "k")
    for name in ("server.key", "server.key_secret", "client.key", "client.key_secret",
                 "authorized_clients/client.key"):
        assert (d / name).is_file(), name
    pub, sec = server_keys(d)
    cpub, csec, spub = client_keys(d)
    assert spub == pub and len(pub) == len(cpub) == 40
    with pytest.raises(ConfigError):
        create_keys(d)
    create_keys(d, overwrite=True)


def test_missing_keys_named(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        server_keys(tmp_path)
