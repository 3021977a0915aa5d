"""Miragen: invent new sounds for the Ensoniq Mirage."""

__version__ = "0.1.0"
