"""Benchmarks of the hub, each reported against a baseline measured in the same run."""
