"""closeloop benchmarks: `make bench` runs them all in one process against the local stack."""
