"""Benchmarks of OrderPipeline: `.venv/bin/python -m bench.run [--quick]` (make bench)."""
