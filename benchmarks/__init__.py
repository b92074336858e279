"""Benchmarks of avcompile against AlgoVision; run ``python -m benchmarks.bubble_sort``."""
