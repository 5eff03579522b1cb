"""Quiet imports of TensorFlow and Keras (private to neurogrs.pruning).

TF_CPP_MIN_LOG_LEVEL=2 silences TensorFlow's C++ info/warning logs, but TF 2.21 prints its
oneDNN notice through absl before that setting is read, so the file descriptor 2 is pointed
at /dev/null for the first import only. Python exceptions still propagate normally.
"""
from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["import_tf", "import_keras"]


@contextlib.contextmanager
def _quiet_stderr_fd():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _quiet_stderr_fd():
        import tensorflow
    return tensorflow


def import_keras():
    import_tf()
    import keras

    return keras
