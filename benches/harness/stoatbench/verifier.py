"""Reads an output topic with isolation.level=read_committed: everything committed, in order per
partition, with the wall-clock time each record became visible (for end-to-end latency)."""

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


class LiveLatency:
    """Tails an output topic during a run and records visible-time minus record timestamp."""

    def __init__(self, bootstrap, topic):
        import threading

        self.bootstrap, self.topic = bootstrap, topic
        self.samples = []
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def _run(self):
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": "stoatbench-latency",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        })
        meta = c.list_topics(self.topic, timeout=10)
        c.assign([TopicPartition(self.topic, p, 0) for p in meta.topics[self.topic].partitions])
        while not self._stop.is_set():
            for m in c.consume(num_messages=10_000, timeout=0.2):
                if m.error():
                    continue
                now = time.time() * 1000.0
                self.samples.append(now - m.timestamp()[1])
                self.count += 1
        c.close()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
