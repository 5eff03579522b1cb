import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "stream"))
from stream_helpers import artifact_dir  # noqa: E402,F401  (fixture)
