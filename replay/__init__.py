"""neurogrs.replay"""
