"""neurogrs.replay: play a recorded session as protocol-v1 frames (paced, lossless)."""
from neurogrs.replay.player import Player, ReplayConfig, ReplayReport

__all__ = ["Player", "ReplayConfig", "ReplayReport"]
