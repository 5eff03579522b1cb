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


def _mode(path):
    import stat

    return stat.S_IMODE(path.stat().st_mode)


def test_secret_key_files_are_0600_even_with_a_permissive_umask(tmp_path):
    import os

    old = os.umask(0)  # the files must not rely on the umask for their mode
    try:
        d = create_keys(tmp_path / "k")
    finally:
        os.umask(old)
    assert _mode(d / "server.key_secret") == 0o600
    assert _mode(d / "client.key_secret") == 0o600


def test_overwritten_secret_key_files_are_0600(tmp_path):
    d = create_keys(tmp_path / "k")
    (d / "server.key_secret").chmod(0o644)  # e.g. written by an older version
    (d / "client.key_secret").chmod(0o644)
    old_pub, _ = server_keys(d)
    create_keys(d, overwrite=True)
    assert _mode(d / "server.key_secret") == 0o600
    assert _mode(d / "client.key_secret") == 0o600
    assert server_keys(d)[0] != old_pub  # new keys, loadable
    cpub, _, spub = client_keys(d)
    assert spub == server_keys(d)[0]
