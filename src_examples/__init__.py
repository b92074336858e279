"""Algorithms written as plain Python and relaxed with ``@relax``."""
