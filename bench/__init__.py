"""Benchmarks: `scripts/bench.sh` (or `make bench`) runs them; see bench/README.md."""
