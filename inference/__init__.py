"""neurogrs.inference"""
