"""Measurements the docs quote, and the benchmark harness (`harness.py`) behind `python -m fmnist_core bench`."""
