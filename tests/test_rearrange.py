import numpy as np
import pytest

from neurogrs.rearrange import fill_order, grid_side, rearrangement_index
from neurogrs.spec import Preprocessing


def ranks(n_neurons):
    """Rank grid (1-based, 0 = empty) for neurons whose x+y order is their index order."""
    pos = np.stack([np.arange(n_neurons, dtype=float), np.zeros(n_neurons)], axis=1)
    idx = rearrangement_index(n_neurons, pos)
    n = grid_side(n_neurons)
    return np.where(idx >= 0, idx + 1, 0).reshape(n, n)


def test_worked_example_n9():
    assert ranks(9).tolist() == [[1, 3, 6], [2, 4, 8], [5, 7, 9]]


def test_worked_example_n10():
    assert ranks(10).tolist() == [[1, 3, 6, 0], [2, 4, 8, 0], [5, 7, 9, 0], [10, 0, 0, 0]]


@pytest.mark.parametrize("n, side", [(1, 1), (4, 2), (5, 3), (9, 3), (10, 4), (273, 17), (289, 17), (290, 18)])
def test_grid_side_is_exact_ceil_sqrt(n, side):
    assert grid_side(n) == side


def test_fill_order_visits_every_cell_once():
    cells = fill_order(7)
    assert len(cells) == 49 and len(set(cells)) == 49


def test_sort_by_x_plus_y_is_stable_and_spatial():
    # neuron 2 has the smallest x+y, neurons 0 and 1 tie (stable: 0 before 1)
    pos = np.array([[5, 5], [4, 6], [0, 1], [9, 9]], dtype=float)
    idx = rearrangement_index(4, pos)
    assert idx.tolist() == [2, 1, 0, 3]  # ranks 1..4 fill (0,0), (1,0), (0,1), (1,1)


def test_apply_places_neurons_and_zero_fills():
    pos = np.stack([np.arange(10.0), np.zeros(10)], axis=1)
    idx = rearrangement_index(10, pos)
    frames = np.arange(1, 11, dtype=np.float32)[None, :] * np.array([[1], [10]], np.float32)
    img = Preprocessing(10, index=idx, grid=4).apply(frames)  # what every engine runs
    assert img.shape == (2, 4, 4, 1)
    assert img[0, :, :, 0].tolist() == ranks(10).astype(float).tolist()
    assert img[1, 3, 0, 0] == 100.0 and img[1, 3, 3, 0] == 0.0


def test_no_positions_warns_and_uses_index_order():
    with pytest.warns(UserWarning, match="no neuron positions"):
        idx = rearrangement_index(9, None)
    n = 3
    expected = ranks(9) - 1
    assert np.array_equal(idx.reshape(n, n), expected)


def test_preprocessing_normalises_before_it_rearranges():
    pos = np.stack([np.arange(10.0), np.zeros(10)], axis=1)
    idx = rearrangement_index(10, pos)
    mean = np.arange(10, dtype=np.float32)
    scale = np.full(10, 0.5, np.float32)
    frames = np.arange(1, 11, dtype=np.float32)[None, :] * np.array([[1], [3]], np.float32)
    img = Preprocessing(10, mean, scale, idx, 4).apply(frames)
    assert img.shape == (2, 4, 4, 1) and img.dtype == np.float32
    want = (frames - mean) * scale
    cells = idx >= 0
    np.testing.assert_array_equal(img.reshape(2, 16)[:, cells], want[:, idx[cells]])
    assert not img.reshape(2, 16)[:, ~cells].any()  # empty cells stay 0, not -mean*scale
