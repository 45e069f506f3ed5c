"""Avatars from photos: capture, capture checks, fitting, measurements, body-model data."""
