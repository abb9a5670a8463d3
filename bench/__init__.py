"""Benchmarks: run each module with ``python -m bench.<name>``; they are not part of the test suite."""
