"""neurogrs.codegen"""
