"""The latency tier: exactly-once end-to-end latency over load, at each system's default settings
and at an equal fixed commit interval, next to the broker's floor measured in the same session.

- The floor: a bare librdkafka transactional producer (confluent-kafka) commits one small
  transaction at a time (20 records plus input offsets) while a read_committed consumer times
  each record from produce to visible. No exactly-once system on this broker can beat it.
- Systems: stoat at its defaults (adaptive cadence: an epoch ends when the input is caught up, at
  the latest after 100 ms), stoat with a fixed 100 ms interval, and Kafka Streams at its
  `exactly_once_v2` default (`commit.interval.ms` 100): so the default and the equal-interval
  comparisons share the Kafka Streams runs.
- Loads: fractions of the slower system's exactly-once capacity from the latest capacity tier
  (`quick-latest.json`), each run sending at a fixed rate with no coordinated omission.
"""

import json
import os
import tempfile
import threading
import time

from . import systems, verifier
from .run import create_topic, latency_run, machine, systems_broker
from .workloads import WORKLOADS

LOADS = (0.1, 0.25, 0.5)
SYSTEMS = (systems.STOAT, systems.STOAT_FIXED, systems.KS)
FLOOR_BATCH = 20


def floor_probe(bootstrap, seconds=20.0):
    """Back-to-back transactions of FLOOR_BATCH records plus offsets; returns produce-to-visible
    percentiles (ms) and the commit durations."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    out = "floor-out-%d" % int(time.time())
    offsets_topic = out + "-in"
    create_topic(bootstrap, out, 1)
    create_topic(bootstrap, offsets_topic, 1)
    live = verifier.LiveLatency(bootstrap, out)
    live.start()
    time.sleep(3)
    group = Consumer({"bootstrap.servers": bootstrap, "group.id": out + "-group"})
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": out, "linger.ms": 0,
                  "retry.backoff.ms": 1})
    p.init_transactions(30)
    commits = []
    n = 0
    end = time.time() + seconds
    while time.time() < end:
        p.begin_transaction()
        for _ in range(FLOOR_BATCH):
            p.produce(out, key=b"k%d" % (n % 100), value=b"x" * 100, timestamp=int(time.time() * 1000))
            n += 1
        p.send_offsets_to_transaction([TopicPartition(offsets_topic, 0, n)], group.consumer_group_metadata(), 30)
        started = time.time()
        p.commit_transaction(30)
        commits.append((time.time() - started) * 1000.0)
    time.sleep(2)
    live.stop()
    group.close()
    result = {"kind": "floor", "records": n, "transactions": len(commits), "seconds": seconds}
    # The first transactions wait for the coordinator to load: not the floor.
    result.update(verifier.percentiles([x for _, x in verifier.after_warmup(live.timeline, 2.0)]))
    result["commit_ms_mean"] = sum(commits) / len(commits) if commits else None
    result["commit_ms_p99"] = verifier.percentiles(commits).get("p99")
    return result


def capacities(out_dir):
    """Per workload, the exactly-once capacity (records/s) of the slower system, from the latest
    capacity tier."""
    caps = {}
    for tier in ("full", "quick"):
        try:
            with open(os.path.join(out_dir, "%s-latest.json" % tier)) as f:
                runs = json.load(f)["runs"]
        except (OSError, ValueError, KeyError):
            continue
        for name in WORKLOADS:
            if name in caps:
                continue
            per_system = {}
            for r in runs:
                if r.get("workload") == name and r.get("mode") == "eos" and r.get("kind", "capacity") == "capacity" \
                        and r.get("verified") and r.get("throughput") and r["system"] in ("stoat", "kafka-streams"):
                    per_system.setdefault(r["system"], []).append(r["throughput"])
            if len(per_system) == 2:
                medians = [sorted(v)[len(v) // 2] for v in per_system.values()]
                caps[name] = min(medians)
    return caps


def run_latency(out_dir, workloads=("stateless", "wordcount"), loads=LOADS, seconds=15.0, warmup=5.0, seed=42):
    os.makedirs(out_dir, exist_ok=True)
    logs = tempfile.mkdtemp(prefix="stoatbench-logs-")
    caps = capacities(out_dir)
    broker = systems_broker()
    runs = []
    try:
        floor = floor_probe(broker.bootstrap)
        print(json.dumps(floor), flush=True)
        for name in workloads:
            workload = WORKLOADS[name]
            cap = caps.get(name, 10_000)
            for i, load in enumerate(loads):
                rate = max(100, int(cap * load))
                # Rotate the order per load, so no system always runs first.
                order = list(SYSTEMS[i % len(SYSTEMS):] + SYSTEMS[:i % len(SYSTEMS)])
                for position, system in enumerate(order):
                    r = latency_run(broker, system, workload, "eos", rate, seconds, seed, logs, warmup=warmup)
                    r.update({"load": load, "capacity": cap, "position": position, "label": system.label})
                    if floor.get("p99"):
                        r["p99_over_floor"] = r["p99"] / floor["p99"] if r.get("p99") else None
                    print(json.dumps({k: v for k, v in r.items() if k != "latency_by_second"}), flush=True)
                    runs.append(r)
    finally:
        broker.stop()
    result = {"tier": "latency", "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "machine": machine(), "floor": floor, "runs": runs, "seconds": seconds, "warmup_s": warmup}
    with open(os.path.join(out_dir, "latency-latest.json"), "w") as f:
        json.dump(result, f, indent=1)
    chart(result, os.path.join(out_dir, "latency-latest.png"))
    print(latency_table(result))
    return result


STYLE = {"stoat": ("#2b7bba", "-"), "stoat-fixed": ("#7fb2da", "--"), "kafka-streams": ("#d95f02", "-")}


def chart(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = sorted({r["workload"] for r in result["runs"]})
    fig, axes = plt.subplots(1, max(1, len(workloads)), figsize=(7 * max(1, len(workloads)), 5), squeeze=False)
    floor = result.get("floor", {})
    for ax, name in zip(axes[0], workloads):
        for system, (color, style) in STYLE.items():
            sel = sorted((r for r in result["runs"] if r["workload"] == name and r["system"] == system
                          and r.get("verified") and r.get("p99")), key=lambda r: r["load"])
            if not sel:
                continue
            label = sel[0].get("label", system)
            xs = [100 * r["load"] for r in sel]
            ax.plot(xs, [r["p50"] for r in sel], style, color=color, marker="o", label=label + " p50")
            ax.plot(xs, [r["p99"] for r in sel], style, color=color, marker="^", label=label + " p99")
            ax.plot(xs, [r.get("p99.9") for r in sel], style, color=color, marker="s", alpha=0.5,
                    label=label + " p99.9")
        if floor.get("p99"):
            ax.axhline(floor["p99"], color="grey", linestyle=":", label="broker EOS floor p99")
        ax.set_yscale("log")
        ax.set_xlabel("load (% of the slower system's exactly-once capacity)")
        ax.set_ylabel("end-to-end latency (ms), exactly-once")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.suptitle("Latency over load: stoat (adaptive, and fixed 100 ms) vs Kafka Streams 4.4.0 (100 ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency_table(result):
    floor = result.get("floor", {})
    lines = ["| workload | load | rate (rec/s) | system | p50 (ms) | p99 (ms) | p99.9 (ms) | p99 / floor p99 | mean commit (ms) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    fmt = lambda v, f="{:.1f}": f.format(v) if isinstance(v, (int, float)) else "-"
    for r in sorted(result["runs"], key=lambda r: (r["workload"], r["load"], r["system"])):
        if not r.get("verified"):
            lines.append("| %s | %d %% | %s | %s | failed: %s | | | | |" % (
                r["workload"], 100 * r["load"], r["rate"], r.get("label", r["system"]), r.get("verification")))
            continue
        lines.append("| %s | %d %% | %s | %s | %s | %s | %s | %s | %s |" % (
            r["workload"], round(100 * r["load"]), "{:,}".format(r["rate"]), r.get("label", r["system"]),
            fmt(r.get("p50")), fmt(r.get("p99")), fmt(r.get("p99.9")), fmt(r.get("p99_over_floor"), "{:.2f}x"),
            fmt(r.get("commit_ms_mean"))))
    lines += ["", "Broker floor (bare transactional producer, %d records per transaction, back to back): "
              "p50 %s ms, p99 %s ms, p99.9 %s ms; commit %s ms mean." % (
                  FLOOR_BATCH, fmt(floor.get("p50")), fmt(floor.get("p99")), fmt(floor.get("p99.9")),
                  fmt(floor.get("commit_ms_mean")))]
    return "\n".join(lines)


def section(result):
    """The latency section of BENCHMARKS.md."""
    lines = [
        "## Latency over load (exactly-once)",
        "",
        "`benches/kafka-bench latency` (run %s): each system at a fixed input rate, %d s measured after %d s"
        " of warm-up, EOS. stoat runs at its defaults (adaptive cadence: an epoch ends when the input is"
        " caught up, at the latest after 100 ms) and with a fixed 100 ms interval; Kafka Streams at its"
        " `exactly_once_v2` default, `commit.interval.ms` 100, so it is both the default and the"
        " equal-interval peer. The floor is a bare librdkafka transactional producer on the same broker,"
        " measured in the same session." % (result.get("date"), result.get("seconds", 0), result.get("warmup_s", 0)),
        "",
        "![latency over load](benches/results/latency-latest.png)",
        "",
        latency_table(result),
        "",
    ] + targets(result)
    return lines


# Issue 12's targets at 25 % load, at each system's defaults: stoat's p99 at most this multiple
# of the floor's, and at most this fraction of Kafka Streams'.
TARGETS = {"stateless": (2.0, 1 / 3.0), "wordcount": (2.0, 1 / 10.0)}


def targets(result):
    floor = result.get("floor", {}).get("p99")
    lines = []
    for name, (max_floor, max_ks) in TARGETS.items():
        at = {r["system"]: r for r in result["runs"]
              if r["workload"] == name and r.get("load") == 0.25 and r.get("verified")}
        stoat, ks = at.get("stoat", {}).get("p99"), at.get("kafka-streams", {}).get("p99")
        if not (stoat and ks and floor):
            continue
        met = lambda ok: "met" if ok else "missed"
        lines.append("- %s at 25 %% load: stoat's p99 is %.2fx the floor's (target <= %.0fx: %s) and %.3f of Kafka"
                     " Streams' (target <= %.3f: %s)." % (name, stoat / floor, max_floor, met(stoat / floor <= max_floor),
                                                          stoat / ks, max_ks, met(stoat / ks <= max_ks)))
    if lines:
        lines.append("- Re-run of stoat alone after the commit pipeline (2026-11-30, its own floor probe: p99 39.2 ms"
                     " that day): stateless 25 % p99 44.6 ms = 1.14x the floor, word count 25 % 24.1 ms = 0.62x;"
                     " against the Kafka Streams runs above 0.39 and 0.048 (Kafka Streams not re-run that day)."
                     " Numbers and the A/B that set the overlap default:"
                     " [`benches/results/latency-stoat-rerun.txt`](benches/results/latency-stoat-rerun.txt).")
    return lines + [""] if lines else []
