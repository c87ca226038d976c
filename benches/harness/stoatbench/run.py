"""The tiers: capacity runs (preloaded input, the 10-90 % window) in interleaved ABBA pairs, and
in the full tier latency runs at fixed rates."""

import json
import multiprocessing
import os
import platform
import signal
import subprocess
import tempfile
import time
import uuid

from . import report, sampler, stats, systems, verifier
from .workloads import WORKLOADS

COMMIT_MS = 100
# A capacity window shorter than this is a few commits of progress, not a rate.
MIN_WINDOW_S = 1.0

TIERS = {
    # Sized to finish in under 20 minutes on a 2-core machine.
    "quick": {"pairs": 3, "sizes": {"stateless": 500_000, "wordcount": 250_000, "join": 1_000_000,
                        "windowed": 2_000_000},
              "latency": False},
    # Latency runs: at 25 % and 50 % of the slower system's capacity, EOS, in ABBA pairs; each
    # sends `latency_warmup` seconds of input unmeasured, then `latency_seconds` measured.
    "full": {"pairs": 5, "sizes": {"stateless": 600_000, "wordcount": 400_000, "join": 1_200_000, "windowed": 2_400_000}, "latency": True,
             "latency_seconds": 30, "latency_warmup": 15, "latency_pairs": 2},
}


def admin(bootstrap):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap, name, partitions):
    from confluent_kafka.admin import NewTopic

    client = admin(bootstrap)  # kept alive until the futures resolve
    for f in client.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result()


def delete_topics_with_prefix(bootstrap, prefix):
    a = admin(bootstrap)
    names = [t for t in a.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for f in a.delete_topics(names).values():
            try:
                f.result()
            except Exception:  # already gone
                pass


def preload(bootstrap, topic, records, partitions):
    from confluent_kafka import Producer

    create_topic(bootstrap, topic, partitions)
    # Idempotent: a retried batch cannot land after a later one, so each partition holds the
    # records in the order given (the verifiers of per-key order rely on it).
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 1_000_000, "enable.idempotence": True})
    for record in records:
        key, value = record[0], record[1]
        # A third field is the record's timestamp (event time); otherwise the producer's clock.
        timestamp = record[2] if len(record) > 2 else 0
        while True:
            try:
                p.produce(topic, key=key, value=value, timestamp=timestamp)
                break
            except BufferError:
                p.poll(0.05)
    p.flush(120)


class Progress:
    """The app's committed input offsets (its consumer group = its app id)."""

    def __init__(self, bootstrap, group, topic, partitions):
        from confluent_kafka import Consumer, TopicPartition

        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]

    def committed(self):
        try:
            return sum(max(tp.offset, 0) for tp in self.c.committed(self.tps, timeout=5))
        except Exception:
            return 0

    def close(self):
        self.c.close()


def output_end(bootstrap, topic, partitions):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "stoatbench-progress"})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in range(partitions))
    finally:
        c.close()


def wait_until_output_settles(bootstrap, topic, partitions, quiet_s=3.0, limit_s=180.0):
    """Input offsets can be committed before the work is done (Kafka Streams commits its source
    offsets before its repartition topics are drained): wait until the output stops growing."""
    start = time.time()
    last, since = output_end(bootstrap, topic, partitions), time.time()
    while time.time() - start < limit_s:
        time.sleep(0.5)
        now = output_end(bootstrap, topic, partitions)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet_s:
            return


def stop_process(proc, timeout=60):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def capacity_run(broker, system, workload, mode, topic, n, expected, logs):
    """Preloaded input, from offset 0: throughput and CPU over the 10-90 % window."""
    app_id = "bench-%s-%s-%s-%s" % (workload.name, system.name, mode, uuid.uuid4().hex[:8])
    out = app_id + "-out"
    create_topic(broker.bootstrap, out, workload.partitions)
    state = tempfile.mkdtemp(prefix="stoatbench-state-")
    log_path = os.path.join(logs, app_id + ".log")
    progress = Progress(broker.bootstrap, app_id, topic, workload.partitions)
    steal0 = sampler.steal_ticks()
    started = time.time()
    proc = systems.start(system, log_path, workload=workload.name, bootstrap=broker.bootstrap, inp=topic, out=out,
                         app_id=app_id, mode=mode, commit_ms=COMMIT_MS, state_dir=state)
    rss = sampler.RssSampler(proc.pid).start()
    marks = {}
    error = None
    deadline = started + 600
    while True:
        done = progress.committed()
        now = time.time()
        for frac in (0.1, 0.9):
            if frac not in marks and done >= frac * n:
                marks[frac] = (now, sampler.cpu_seconds(proc.pid), sampler.cpu_seconds(broker.pid))
        if done >= n:
            break
        if proc.poll() is not None:
            error = "%s exited with %s (log: %s)" % (system.name, proc.returncode, log_path)
            break
        if now > deadline:
            error = "timed out at %d of %d records" % (done, n)
            break
        time.sleep(0.1)
    if error is None:
        wait_until_output_settles(broker.bootstrap, out, workload.partitions)
    rss.stop()
    stop_process(proc)
    progress.close()
    steal1 = sampler.steal_ticks()
    result = {
        "system": system.name, "workload": workload.name, "mode": mode, "kind": "capacity", "records": n,
        "app_id": app_id, "flags": system.flags(), "commit_interval_ms": COMMIT_MS,
        **systems.commit_stats(log_path),
        "peak_rss_mb": rss.peak_kb / 1024.0, "steady_rss_mb": rss.steady_kb() / 1024.0,
        "steal_pct": 100.0 * (steal1[0] - steal0[0]) / max(1, steal1[1] - steal0[1]),
    }
    if error is None and 0.1 in marks and 0.9 in marks and marks[0.9][0] - marks[0.1][0] < MIN_WINDOW_S:
        error = "the 10-90 %% window lasted %.2f s (< %.1f s): too few records for this system's speed" % (
            marks[0.9][0] - marks[0.1][0], MIN_WINDOW_S)
    if error is None and 0.1 in marks and 0.9 in marks:
        (t0, a0, b0), (t1, a1, b1) = marks[0.1], marks[0.9]
        window = 0.8 * n
        result.update({
            "window_s": t1 - t0,
            "throughput": window / max(1e-9, t1 - t0),
            "app_cpu_s_per_M": (a1 - a0) / window * 1e6,
            "broker_cpu_s_per_M": (b1 - b0) / window * 1e6,
        })
        outputs = verifier.read_all(broker.bootstrap, out)
        ok, message = workload.verify(expected, outputs, exact_updates=system.emits_every_update)
        result.update({"verified": ok, "verification": message, "outputs": len(outputs)})
    else:
        result.update({"verified": False, "verification": error or "the window was not observed"})
    delete_topics_with_prefix(broker.bootstrap, app_id)
    subprocess.run(["rm", "-rf", state])
    return result


def latency_run(broker, system, workload, mode, rate, seconds, seed, logs, warmup=0.0):
    """A fixed rate, record timestamp = intended send time; latency = visible - timestamp. The
    first `warmup` seconds of input (JIT, caches, the first fetches) are sent but not measured."""
    app_id = "lat-%s-%s-%s-%s" % (workload.name, system.name, mode, uuid.uuid4().hex[:8])
    topic, out = app_id + "-in", app_id + "-out"
    create_topic(broker.bootstrap, topic, workload.partitions)
    create_topic(broker.bootstrap, out, workload.partitions)
    preload_side_inputs(broker.bootstrap, workload, topic, seed)
    total = warmup + seconds
    records = workload.generate(seed, int(rate * total))
    state = tempfile.mkdtemp(prefix="stoatbench-state-")
    log_path = os.path.join(logs, app_id + ".log")
    proc = systems.start(system, log_path, workload=workload.name, bootstrap=broker.bootstrap, inp=topic,
                         out=out, app_id=app_id, mode=mode, commit_ms=COMMIT_MS, state_dir=state)
    live = verifier.LiveLatency(broker.bootstrap, out)
    live.start()
    time.sleep(8)  # start-up, not measured
    gen = multiprocessing.get_context("spawn").Process(
        target=generate_at_rate, args=(broker.bootstrap, topic, workload.name, seed, rate, total), daemon=True)
    gen.start()
    gen.join(timeout=total + 120)
    time.sleep(3)
    live.stop()
    stop_process(proc)
    expected = workload.expected(records)
    if hasattr(workload, "attach"):
        expected = workload.attach(expected, seed)
    ok, message = workload.verify(expected, verifier.read_all(broker.bootstrap, out),
                                  exact_updates=system.emits_every_update)
    result = {"system": system.name, "workload": workload.name, "mode": mode, "kind": "latency", "rate": rate,
              "records": len(records), "commit_interval_ms": COMMIT_MS, "warmup_s": warmup,
              "measured_s": seconds, "verified": ok, "verification": message}
    measured = verifier.after_warmup(live.timeline, warmup)
    result.update(verifier.percentiles([x for _, x in measured]))
    result["measured_outputs"] = len(measured)
    result["p99_with_warmup"] = verifier.percentiles(live.samples).get("p99")
    result["latency_by_second"] = verifier.by_second(live.timeline)
    result.update(systems.commit_stats(log_path))
    delete_topics_with_prefix(broker.bootstrap, app_id)
    subprocess.run(["rm", "-rf", state])
    return result


def generate_at_rate(bootstrap, topic, workload_name, seed, rate, seconds):
    """Process body: sends the workload's records at a fixed rate, each stamped with its intended
    send time (so a slow system cannot hide its delay: no coordinated omission)."""
    from confluent_kafka import Producer

    records = WORKLOADS[workload_name].generate(seed, int(rate * seconds))
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    start = time.time() + 0.5
    for i, record in enumerate(records):
        key, value = record[0], record[1]
        intended = start + i / rate
        delay = intended - time.time()
        if delay > 0:
            time.sleep(delay)
        while True:
            try:
                p.produce(topic, key=key, value=value, timestamp=int(intended * 1000))
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(60)


def machine():
    def cmd(*args):
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip() or \
                subprocess.run(args, capture_output=True, text=True, timeout=30).stderr.strip()
        except Exception as e:  # a missing tool
            return "unavailable: %s" % e
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": platform.release(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "java": cmd("java", "-version").splitlines()[0] if cmd("java", "-version") else "",
            "rustc": cmd("rustc", "--version"), "kafka": "4.4.0 (KRaft, one node, RF 1)",
            "kafka_streams": "4.4.0"}


def systems_for(workload):
    if workload.name == "wordcount":
        return [systems.STOAT, systems.KS, systems.KS_NOCACHE]
    return [systems.STOAT, systems.KS]


def run_tier(tier, out_dir, seed=42, workloads=None, modes=("eos", "alo"), scale=1.0, pairs=None,
             latency_seconds=None):
    conf = dict(TIERS[tier])
    if pairs:
        conf["pairs"] = pairs
    if latency_seconds:
        conf["latency_seconds"] = latency_seconds
    os.makedirs(out_dir, exist_ok=True)
    logs = tempfile.mkdtemp(prefix="stoatbench-logs-")
    broker = systems_broker()
    runs = []
    try:
        # Enrichment needs the harness's remote service: its own tier (`enrich`).
        for name in workloads or [w for w in WORKLOADS if not w.startswith("enrich")]:
            workload = WORKLOADS[name]
            n = max(1000, int(conf["sizes"][name] * scale))
            records = workload.generate(seed, n)
            expected = workload.expected(records)
            topic = "bench-in-%s-%d-%d" % (name, seed, n)
            preload_side_inputs(broker.bootstrap, workload, topic, seed)
            if hasattr(workload, "attach"):
                expected = workload.attach(expected, seed)
            preload(broker.bootstrap, topic, records, workload.partitions)
            del records
            for mode in modes:
                for pair in range(conf["pairs"]):
                    order = systems_for(workload)
                    if pair % 2:
                        order = list(reversed(order))
                    for position, system in enumerate(order):
                        r = capacity_run(broker, system, workload, mode, topic, n, expected, logs)
                        r.update({"pair": pair, "position": position})
                        print(json.dumps(r), flush=True)
                        runs.append(r)
            if conf["latency"] and getattr(workload, "latency", True):
                runs.extend(latency_runs(broker, workload, runs, seed, logs, conf))
    finally:
        broker.stop()
    result = {"tier": tier, "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "machine": machine(),
              "topic_layout": {"input_partitions": 4, "output_partitions": 4, "replication": 1},
              "seed": seed, "runs": merge_earlier(out_dir, tier, runs)}
    return report.write_all(result, out_dir)


def merge_earlier(out_dir, tier, runs):
    """A run of some workloads and guarantees keeps the tier's earlier results of the others
    (each run says when it ran), so BENCHMARKS.md always covers every workload and guarantee."""
    path = os.path.join(out_dir, "%s-latest.json" % tier)
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for r in runs:
        r.setdefault("date", now)
    try:
        with open(path) as f:
            earlier = json.load(f)
    except (OSError, ValueError):
        return runs
    fresh = {(r["workload"], r["mode"]) for r in runs}
    kept = [dict(r, date=r.get("date", earlier.get("date"))) for r in earlier.get("runs", [])
            if (r["workload"], r["mode"]) not in fresh]
    return kept + runs


def preload_side_inputs(bootstrap, workload, topic, seed):
    """The topics a workload reads besides its input (a join's table), named after the input."""
    for suffix, records, partitions in getattr(workload, "side_inputs", lambda _seed: [])(seed):
        preload(bootstrap, topic + suffix, records, partitions)


def latency_runs(broker, workload, runs, seed, logs, conf):
    out = []
    caps = [r["throughput"] for r in runs if r["workload"] == workload.name and r.get("throughput")]
    slowest = min(caps) if caps else 10_000
    for frac in (0.25, 0.5):
        rate = max(100, int(slowest * frac))
        for pair in range(conf.get("latency_pairs", 3)):
            order = [systems.STOAT, systems.KS] if pair % 2 == 0 else [systems.KS, systems.STOAT]
            for position, system in enumerate(order):
                r = latency_run(broker, system, workload, "eos", rate, conf["latency_seconds"], seed, logs,
                                warmup=conf.get("latency_warmup", 0))
                r.update({"pair": pair, "position": position, "load": frac})
                print(json.dumps({k: v for k, v in r.items() if k != "latency_by_second"}), flush=True)
                out.append(r)
    return out


def systems_broker():
    from .broker import Broker

    return Broker()


__all__ = ["run_tier", "capacity_run", "latency_run", "stats"]
