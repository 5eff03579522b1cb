"""neurogrs.stream"""
