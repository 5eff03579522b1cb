"""neurogrs: real-time neural decoding for closed-loop calcium-imaging experiments."""
from neurogrs.errors import NeurogrsError
from neurogrs.session import Session
from neurogrs.artifact import load_artifact, save_artifact
from neurogrs.spec import ModelSpec

__version__ = "0.1.0"
__all__ = ["NeurogrsError", "Session", "ModelSpec", "load_artifact", "save_artifact", "__version__"]
