"""TensorFlow, imported without its start-up noise.

TensorFlow 2.21 writes, twice per process, "WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR" and an "oneDNN custom operations are
on" line from C++ while it is imported, before absl logging is initialised, so
TF_CPP_MIN_LOG_LEVEL does not reach them (measured: levels 2 and 3 both print them; only
TF_ENABLE_ONEDNN_OPTS=0 removes the oneDNN line, and it changes the numerics). So the
import runs with file descriptor 2 pointed at a temporary file, and everything written
there except those known lines is written back to stderr afterwards: nothing else is lost.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from types import ModuleType

__all__ = ["import_tensorflow", "is_start_up_noise", "RetraceNotice"]

_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc.*This TensorFlow binary is optimized"
    r"|^To enable the following instructions: .* rebuild TensorFlow"
)


def is_start_up_noise(line: str) -> bool:
    """True for the lines TensorFlow prints at import that tell a user nothing."""
    return bool(_NOISE.search(line))


def import_tensorflow() -> ModuleType:
    """`import tensorflow`, its start-up noise dropped, anything else kept on stderr.

    The retrace-notice filter is installed on every call (once per logger), so it holds
    even when something imported TensorFlow first (a benchmark's LiteRT/Keras reference).
    """
    if "tensorflow" in sys.modules:
        _filter_retrace_notices()
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO/WARNING after start-up
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode(errors="replace").splitlines()
                    if not is_start_up_noise(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
    _filter_retrace_notices()
    return tf


def _filter_retrace_notices() -> None:
    log = logging.getLogger("tensorflow")
    if not any(isinstance(f, RetraceNotice) for f in log.filters):
        log.addFilter(RetraceNotice())


class RetraceNotice(logging.Filter):
    """Drops TensorFlow's "N out of the last N calls ... triggered tf.function retracing"
    warning. The one training loop compiles one program per model architecture and data
    bucket by design (pruning/fit.py; bounded by tests/pruning/test_retraces.py), so a
    benchmark that trains eight architectures in one process would print it for nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()
