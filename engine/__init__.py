"""Numerics only: array backend, body model, fitting solver. Arrays in, arrays out; no I/O."""
