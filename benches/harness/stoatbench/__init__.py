"""The stoat benchmark harness: stoat and Kafka Streams, same workloads, same broker, same bytes.

Modules: generator (seeded input), workloads (one per workload: input, expected result, check),
verifier (read_committed reader, latency), sampler (CPU and memory from /proc), systems (how each
system starts), stats (medians and per-pair ratios), report (JSON, table, chart, BENCHMARKS.md),
run (the tiers).
"""
