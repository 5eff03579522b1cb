"""Honest numbers: accuracy beside balanced accuracy and the best constant predictor."""
import numpy as np
import pytest

from neurogrs.evaluate import classification_metrics, format_metrics, metrics_from_confusion


def _session_like_the_report():
    # the report: a test part 69% positive, the training part's majority was class 0
    y_true = np.array([0] * 31 + [1] * 69)
    y_pred = y_true.copy()
    y_pred[:14] = 1          # 17 of 31 class-0 frames right
    y_pred[31:31 + 31] = 0   # 38 of 69 class-1 frames right -> accuracy 0.55
    return y_true, y_pred


def test_baseline_is_the_best_constant_on_the_evaluated_set():
    y_true, y_pred = _session_like_the_report()
    m = classification_metrics(y_true, y_pred, majority_class=0, n_classes=2)
    assert m["accuracy"] == pytest.approx(0.55)
    assert m["baseline_accuracy"] == pytest.approx(0.69)  # always answering class 1
    assert m["baseline_class"] == 1
    assert m["train_majority_class"] == 0
    assert m["train_majority_accuracy"] == pytest.approx(0.31)
    assert m["beats_baseline"] is False


def test_format_warns_against_the_stronger_baseline_and_names_both():
    y_true, y_pred = _session_like_the_report()
    text = format_metrics("test", classification_metrics(y_true, y_pred, 0, 2))
    assert "best constant" in text and "0.690" in text
    assert "training majority" in text and "0.310" in text
    assert "WARNING" in text


def test_without_a_training_majority_only_the_best_constant_is_reported():
    m = classification_metrics([0, 1, 1, 1], [0, 1, 1, 0], None, 2)
    assert m["baseline_accuracy"] == pytest.approx(0.75) and "train_majority_accuracy" not in m
    assert m["beats_baseline"] is False  # 0.75 accuracy does not beat always answering 1
    assert "training majority" not in format_metrics("all", m)


def test_metrics_from_confusion_equal_metrics_from_labels():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 3, 500))
    m = classification_metrics(y_true, y_pred, 2, 3)
    again = metrics_from_confusion(np.asarray(m["confusion"]), train_majority=2)
    assert again == m
    recalls = [np.mean(y_pred[y_true == c] == c) for c in range(3)]
    assert m["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert m["beats_baseline"] is True
