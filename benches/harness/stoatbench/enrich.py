"""The enrichment tier: workload (e), each record needing a 5 ms remote call. The harness starts
the remote service (`bench_app serve`, a real HTTP server on 127.0.0.1 answering after 5 ms);
`enrich` calls it over HTTP, `enrich-sim` awaits 5 ms in the process instead. Kafka Streams makes
the call blocking, per record, on one stream thread per input partition (its only option);
stoat runs it as an async operator, at several lane counts and calls in flight per lane.
Capacity runs (preloaded input, the 10-90 % window), exactly-once, every output verified."""

import json
import os
import socket
import subprocess
import tempfile
import time

from . import systems
from .run import capacity_run, machine, preload, systems_broker
from .workloads import WORKLOADS

STOATS = [systems.Stoat(lanes=2, concurrency=64), systems.Stoat(lanes=2, concurrency=512),
          systems.Stoat(lanes=16, concurrency=64), systems.Stoat(lanes=64, concurrency=32)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_enrich(out_dir, n=(30_000, 400_000), seed=42, variants=("enrich", "enrich-sim")):
    """`n`: records for Kafka Streams and for stoat (each system's 10-90 % window must last
    seconds: stoat is about two orders of magnitude faster here)."""
    os.makedirs(out_dir, exist_ok=True)
    logs = tempfile.mkdtemp(prefix="stoatbench-logs-")
    port = free_port()
    server = subprocess.Popen([os.path.join(systems.ROOT, "target", "release", "examples", "bench_app"), "serve",
                               str(port)], stdin=subprocess.DEVNULL)
    os.environ["STOAT_BENCH_REMOTE"] = "http://127.0.0.1:%d" % port
    broker = systems_broker()
    runs = []
    try:
        time.sleep(1)
        for name in variants:
            workload = WORKLOADS[name]
            for size, group in zip(n, ([systems.KS], STOATS)):
                records = workload.generate(seed, size)
                expected = workload.expected(records)
                topic = "bench-in-%s-%d-%d" % (name, seed, size)
                preload(broker.bootstrap, topic, records, workload.partitions)
                del records
                for system in group:
                    r = capacity_run(broker, system, workload, "eos", topic, size, expected, logs)
                    r["label"] = system.label
                    print(json.dumps(r), flush=True)
                    runs.append(r)
    finally:
        broker.stop()
        server.kill()
        server.wait()
    result = {"tier": "enrich", "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "machine": machine(), "records": {"kafka-streams": n[0], "stoat": n[1]}, "runs": runs}
    with open(os.path.join(out_dir, "enrich-latest.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("\n".join(enrich_table(result)))
    return result


def enrich_table(result):
    lines = ["| workload | system | input records/s | vs Kafka Streams | app CPU-s per M | peak RSS (MB) | verified |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    fmt = lambda v, f: f.format(v) if isinstance(v, (int, float)) else "-"
    for name in sorted({r["workload"] for r in result["runs"]}):
        sel = [r for r in result["runs"] if r["workload"] == name]
        ks = next((r.get("throughput") for r in sel if r["system"] == "kafka-streams" and r.get("verified")), None)
        for r in sel:
            ratio = r["throughput"] / ks if ks and r.get("throughput") and r.get("verified") else None
            lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                name, r.get("label", r["system"]), fmt(r.get("throughput"), "{:,.0f}"), fmt(ratio, "{:.1f}x"),
                fmt(r.get("app_cpu_s_per_M"), "{:.1f}"), fmt(r.get("peak_rss_mb"), "{:.0f}"),
                "yes" if r.get("verified") else "no: %s" % r.get("verification")))
    return lines


def section(result):
    """The enrichment section of BENCHMARKS.md."""
    return [
        "## Enrichment: a 5 ms remote call per record (workload e)",
        "",
        "`benches/kafka-bench enrich` (run %s, %s input records, exactly-once, capacity runs): `enrich` calls"
        " a real HTTP service the harness starts on 127.0.0.1 (`bench_app serve`, answering after 5 ms);"
        " `enrich-sim` awaits 5 ms in the process. Kafka Streams calls blocking, per record, with one stream"
        " thread per input partition (4); stoat runs an async operator (`process_with`, calls in flight per"
        " lane as listed)." % (result.get("date"), ", ".join("%s %s" % (k, "{:,}".format(v))
                                                            for k, v in result.get("records", {}).items())),
        "",
    ] + enrich_table(result) + [""]
