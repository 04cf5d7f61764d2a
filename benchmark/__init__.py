"""Benchmark suite: ideal latencies, load-ramp analysis and statistics (pure, no I/O)."""
