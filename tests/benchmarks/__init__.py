"""Tests of the benchmark scripts (benchmarks/): they still run and report."""
