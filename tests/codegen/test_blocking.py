"""The register-blocking rules shared by the C generator and the numba engine."""
from __future__ import annotations

import pytest

from neurogrs.codegen.blocking import FUSE_POOL_MAX, can_fuse_pool, near_equal_blocks


@pytest.mark.parametrize("max_size", [1, 2, 3, 4, 6, 8, 12, 24, 32, 64])
def test_near_equal_blocks_cover_in_as_few_blocks_as_fit(max_size):
    for n in range(1, 150):
        blocks = near_equal_blocks(n, max_size)
        assert [first for first, _ in blocks] == [sum(c for _, c in blocks[:k])
                                                   for k in range(len(blocks))]
        assert sum(c for _, c in blocks) == n
        assert len(blocks) == -(-n // max_size)  # as few as fit
        sizes = [c for _, c in blocks]
        assert max(sizes) <= max_size
        assert all(c == sizes[0] for c in sizes[:-1]) and sizes[-1] <= sizes[0]


def test_near_equal_blocks_examples():
    assert near_equal_blocks(70, 32) == [(0, 24), (24, 24), (48, 22)]
    assert near_equal_blocks(5, 4) == [(0, 3), (3, 2)]
    assert near_equal_blocks(3, 0) == [(0, 1), (1, 1), (2, 1)]  # block size clamped to 1


def test_can_fuse_pool():
    assert FUSE_POOL_MAX == 9
    assert can_fuse_pool("relu", (3, 3)) and can_fuse_pool("linear", (2, 2))
    assert not can_fuse_pool("relu", (2, 5))
    assert not can_fuse_pool("softmax", (2, 2))
