"""Benchmarks: `python -m bench.<name>`; each prints figures and ratios against a baseline run beside it."""
