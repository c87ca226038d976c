"""Reads an output topic with isolation.level=read_committed: everything committed, in order per
partition, with the wall-clock time each record became visible (for end-to-end latency)."""

import os
import time


def read_all(bootstrap, topic, timeout_s=300):
    """Every committed record of `topic`: [(key, value, timestamp_ms)]."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "stoatbench-verifier",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    meta = c.list_topics(topic, timeout=10)
    parts = sorted(meta.topics[topic].partitions)
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    deadline = time.time() + timeout_s
    while True:
        batch = c.consume(num_messages=10_000, timeout=0.5)
        for m in batch:
            if m.error():
                continue
            out.append((m.key(), m.value(), m.timestamp()[1]))
        if not batch:
            pos = {tp.partition: tp.offset for tp in c.position([TopicPartition(topic, p) for p in parts])}
            if all(ends[p] == 0 or pos.get(p, -1) >= ends[p] for p in parts):
                break
            if time.time() > deadline:
                raise TimeoutError("reading %s did not reach its end" % topic)
    c.close()
    return out


def percentiles(samples, points=(50, 95, 99, 99.9)):
    """Percentiles of a list of numbers (nearest rank)."""
    if not samples:
        return {}
    s = sorted(samples)
    out = {}
    for p in points:
        idx = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
        out["p%s" % p] = s[idx]
    return out


def after_warmup(timeline, warmup_s):
    """The [(visible_ms, latency_ms)] samples of records stamped (intended to be sent) at least
    `warmup_s` after the first record."""
    if not timeline:
        return []
    stamped = [(t - x, t, x) for t, x in timeline]
    start = min(s for s, _, _ in stamped) + warmup_s * 1000.0
    return [(t, x) for s, t, x in stamped if s >= start]


def by_second(timeline):
    """[(visible_ms, latency_ms)] -> per second of the run: [second, count, p50, p99, max]: shows
    whether latency is steady or a backlog grows."""
    if not timeline:
        return []
    t0 = min(t for t, _ in timeline)
    buckets = {}
    for t, x in timeline:
        buckets.setdefault(int((t - t0) // 1000), []).append(x)
    rows = []
    for sec in sorted(buckets):
        p = percentiles(buckets[sec], points=(50, 99))
        rows.append([sec, len(buckets[sec]), round(p["p50"], 1), round(p["p99"], 1), round(max(buckets[sec]), 1)])
    return rows


def _tail(bootstrap, topic, stop, out_path):
    """Process body: tails `topic` until `stop` is set; writes latencies (ms), one per line."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "stoatbench-latency",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        # The broker answers a fetch as soon as there is data; this bounds the wait otherwise.
        "fetch.wait.max.ms": 10,
    })
    meta = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions])
    samples = []
    while not stop.is_set():
        # One record per call: `consume(n, timeout)` would hold a record until n arrived or the
        # timeout passed, adding up to that timeout to its latency.
        m = c.poll(0.05)
        if m is not None and not m.error():
            now = time.time() * 1000.0
            samples.append((now, now - m.timestamp()[1]))
    c.close()
    with open(out_path, "w") as f:
        f.write("\n".join("%.3f %.3f" % x for x in samples))


class LiveLatency:
    """Tails an output topic during a run, in its own process (so the generator's work does not
    delay it), and records visible-time minus record timestamp."""

    def __init__(self, bootstrap, topic):
        import multiprocessing
        import tempfile

        self._mp = multiprocessing.get_context("spawn")
        self._stop = self._mp.Event()
        self._out = tempfile.mktemp(prefix="stoatbench-latency-")
        self._proc = self._mp.Process(target=_tail, args=(bootstrap, topic, self._stop, self._out), daemon=True)
        self.samples = []
        self.timeline = []

    def start(self):
        self._proc.start()

    def stop(self):
        self._stop.set()
        self._proc.join(timeout=60)
        try:
            with open(self._out) as f:
                pairs = [line.split() for line in f.read().splitlines() if line.strip()]
            self.timeline = [(float(t), float(x)) for t, x in pairs]
            self.samples = [x for _, x in self.timeline]
        except OSError:
            self.samples, self.timeline = [], []
        finally:
            try:
                os.remove(self._out)
            except OSError:
                pass
