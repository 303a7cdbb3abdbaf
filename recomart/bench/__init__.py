"""Benchmarks (`make bench-*`): figures written to reports/, compared side by side in one run."""
