"""neurogrs.pruning"""
