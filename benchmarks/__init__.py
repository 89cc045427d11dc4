"""Benchmarks: figures printed beside the targets in DESIGN.md."""
