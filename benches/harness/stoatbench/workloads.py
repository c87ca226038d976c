"""One entry per workload: how to generate its input, what result to expect, how to check it.

To add a workload (windowed aggregation, stream-table join, async enrichment): write a class with
the same methods, register it in WORKLOADS, and add the matching module to benches/stoat-app and
class to benches/kafka-streams.
"""

from collections import Counter

from . import generator

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = (1 << 64) - 1


def fnv1a(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def fnv1a_many(values):
    """FNV-1a of many equal-length values at once (numpy when available)."""
    try:
        import numpy as np
    except ImportError:
        return [fnv1a(v) for v in values]
    if not values:
        return []
    arr = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), len(values[0]))
    h = np.full(len(values), FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(FNV_PRIME)
    with np.errstate(over="ignore"):
        for col in range(arr.shape[1]):
            h = (h ^ arr[:, col].astype(np.uint64)) * prime
    return [int(x) for x in h]


class Stateless:
    """(a) 1 KB values, map (upper case + hash) and filter keeping ~90 %."""

    name = "stateless"
    partitions = 4

    def generate(self, seed, n):
        return generator.stateless_records(seed, n)

    def expected(self, records):
        """The sequence numbers kept, and a sample of exact outputs to compare."""
        hashes = fnv1a_many([v for _, v in records])
        kept = {i for i, h in enumerate(hashes) if h % 10 != 0}
        sample = {}
        for i in list(sorted(kept))[:: max(1, len(kept) // 500)]:
            v = records[i][1]
            sample[i] = v.upper() + b":" + format(hashes[i], "x").encode()
        return {"kept": kept, "sample": sample}

    def verify(self, expected, outputs, exact_updates=True):
        seen = Counter()
        for _key, value, _ts in outputs:
            if value is None or not value.startswith(b"SEQ"):
                return False, "an output is not a transformed input: %r" % (value[:40] if value else value)
            seq = int(value[3:13])
            seen[seq] += 1
            want = expected["sample"].get(seq)
            if want is not None and value != want:
                return False, "output of record %d differs from the expected transform" % seq
        dups = [s for s, c in seen.items() if c > 1]
        if dups:
            return False, "%d records duplicated (e.g. %d)" % (len(dups), dups[0])
        lost = expected["kept"] - set(seen)
        if lost:
            return False, "%d records lost (e.g. %d)" % (len(lost), min(lost))
        extra = set(seen) - expected["kept"]
        if extra:
            return False, "%d records should have been filtered out" % len(extra)
        return True, "%d outputs, exact" % len(seen)


class WordCount:
    """(b) split lines, re-key by word, count; outputs carry running counts."""

    name = "wordcount"
    partitions = 4

    def generate(self, seed, n):
        return generator.wordcount_lines(seed, n)

    def expected(self, records):
        counts = Counter()
        for _, line in records:
            counts.update(line.decode().split())
        return counts

    def verify(self, expected, outputs, exact_updates=True):
        """Each word's counts must increase (by exactly 1 when every update is emitted) and end
        at the oracle's count: a duplicate or a loss breaks one of the two."""
        last = {}
        for key, value, _ts in outputs:
            word = key.decode()
            n = int(value)
            prev = last.get(word, 0)
            if n <= prev or (exact_updates and n != prev + 1):
                return False, "word %r: count %d after %d" % (word, n, prev)
            last[word] = n
        for word, n in expected.items():
            if last.get(word) != n:
                return False, "word %r: final count %s, expected %d" % (word, last.get(word), n)
        if len(last) != len(expected):
            return False, "%d words in the output, %d expected" % (len(last), len(expected))
        return True, "%d words, final counts exact" % len(last)


class Join:
    """(c) orders keyed by order id enriched with their customer from a 100K-customer table:
    each output is the order's value, `|`, the customer's. Kafka Streams needs a repartition
    topic or a GlobalKTable to join on a key the stream is not partitioned by; both sides use
    the global table here (read to its end before the orders), which keeps the result exact."""

    name = "join"
    partitions = 4
    customers = 100_000

    def side_inputs(self, seed):
        """Topics preloaded before the input: (suffix of the input topic, records, partitions)."""
        return [("-customers", generator.customers(seed, self.customers), self.partitions)]

    def generate(self, seed, n):
        return generator.orders(seed, n, self.customers)

    def expected(self, records):
        return {"orders": {key: value for key, value in records}}

    def attach(self, expected, seed):
        """The customers the orders are joined with (kept apart: `expected` must stay cheap)."""
        expected["customers"] = dict(generator.customers(seed, self.customers))
        return expected

    def verify(self, expected, outputs, exact_updates=True):
        customers = expected.get("customers", {})
        seen = Counter()
        for key, value, _ts in outputs:
            order = expected["orders"].get(key)
            if order is None:
                return False, "an output for an unknown order %r" % key
            want = order + b"|" + customers.get(order.split(b"|", 1)[0], b"?")
            if value != want:
                return False, "order %r: %r, expected %r" % (key, value[:60] if value else value, want[:60])
            seen[key] += 1
        dups = [k for k, c in seen.items() if c > 1]
        if dups:
            return False, "%d orders joined twice (e.g. %r)" % (len(dups), dups[0])
        lost = len(expected["orders"]) - len(seen)
        if lost:
            return False, "%d orders lost" % lost
        return True, "%d orders, each joined exactly once" % len(seen)


class Windowed:
    """(d) 1-minute tumbling count per key with 10 s grace, emitted once when each window closes.
    Output key `user@window-start`, value the count; a window is emitted once stream time (the
    largest timestamp read) passes its end plus grace, so the last windows stay open."""

    name = "windowed"
    # One input partition: with several, a preloaded backlog is fetched partition by partition,
    # far apart in event time, and records of the lagging partitions would be late (in either
    # system) depending on fetch timing, not on the input.
    partitions = 1
    # Event time is in the input: latency runs (timestamps = send time) do not apply.
    latency = False
    size_ms = 60_000
    grace_ms = 10_000

    def generate(self, seed, n):
        return generator.windowed_records(seed, n)

    def expected(self, records):
        counts = Counter()
        stream_time = max(ts for _, _, ts in records)
        for key, _, ts in records:
            start = ts - ts % self.size_ms
            if start + self.size_ms + self.grace_ms <= stream_time:
                counts[b"%s@%d" % (key, start)] += 1
        return counts

    def verify(self, expected, outputs, exact_updates=True):
        seen = Counter()
        for key, value, _ts in outputs:
            if key in seen:
                return False, "window %r emitted twice" % key
            seen[key] = int(value)
            if expected.get(key) != seen[key]:
                return False, "window %r: %s, expected %s" % (key, seen[key], expected.get(key))
        if len(seen) != len(expected):
            return False, "%d windows emitted, %d closed" % (len(seen), len(expected))
        return True, "%d windows, each emitted once with its count" % len(seen)


class Enrich:
    """(e) 200 B events, 10K keys, each enriched by a 5 ms call to a remote service (`enrich`: the
    harness's local HTTP service; `enrich-sim`: 5 ms of simulated I/O in the process). The output
    is the value, `|` and the service's answer for the key (its FNV-1a hash in hex); every record
    once, and each key's records in order."""

    partitions = 4
    latency = False

    def __init__(self, name):
        self.name = name

    def generate(self, seed, n):
        return generator.enrich_records(seed, n)

    def expected(self, records):
        return {"n": len(records), "keys": {int(v[3:13]): k for k, v in records}}

    def verify(self, expected, outputs, exact_updates=True):
        seen = set()
        last = {}
        for key, value, _ts in outputs:
            if value is None or not value.startswith(b"seq"):
                return False, "an output is not an enriched input: %r" % (value[:40] if value else value)
            seq = int(value[3:13])
            if seq in seen:
                return False, "record %d enriched twice" % seq
            seen.add(seq)
            want_key = expected["keys"].get(seq)
            if key != want_key:
                return False, "record %d came out with key %r, not %r" % (seq, key, want_key)
            answer = value.rsplit(b"|", 1)[-1]
            if answer != b"%016x" % fnv1a(key):
                return False, "record %d has the answer %r, not the service's for %r" % (seq, answer, key)
            if last.get(key, -1) > seq:
                return False, "key %r: record %d came out after %d" % (key, seq, last[key])
            last[key] = seq
        if len(seen) != expected["n"]:
            return False, "%d of %d records enriched" % (len(seen), expected["n"])
        return True, "%d outputs, exact, in each key's order" % len(seen)


WORKLOADS = {w.name: w for w in (Stateless(), WordCount(), Join(), Windowed(), Enrich("enrich"),
                                  Enrich("enrich-sim"))}
