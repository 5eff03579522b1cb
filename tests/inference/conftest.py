import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory):
    """C and numba engines build into a fresh cache, never the user's."""
    old = os.environ.get("NEUROGRS_CACHE")
    path = tmp_path_factory.mktemp("neurogrs_cache")
    os.environ["NEUROGRS_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("NEUROGRS_CACHE", None)
    else:
        os.environ["NEUROGRS_CACHE"] = old
