"""neurogrs.replay: play a recorded session as protocol-v1 frames (paced, lossless)."""
from neurogrs.replay.player import Player, ReplaySettings, ReplayReport

__all__ = ["Player", "ReplaySettings", "ReplayReport"]
