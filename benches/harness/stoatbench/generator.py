"""Seeded input generation: the same seed gives the same bytes, for both systems."""

import random

ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789 ,.;-"


def stateless_value(seed: int, seq: int, size: int = 1024) -> bytes:
    """A ~1 KB lowercase value that starts with its sequence number (unique per record)."""
    head = b"seq%010d|" % seq
    rng = random.Random(seed * 1_000_003 + seq)
    body = bytes(ALPHABET[rng.randrange(len(ALPHABET))] for _ in range(64))
    reps = (size - len(head)) // len(body) + 1
    return (head + body * reps)[:size]


def stateless_records(seed: int, n: int, keys: int = 10_000):
    """(key, value) pairs: 10K keys, 1 KB values."""
    rng = random.Random(seed)
    return [(b"key-%05d" % rng.randrange(keys), stateless_value(seed, i)) for i in range(n)]


def enrich_records(seed: int, n: int, keys: int = 10_000):
    """(key, value) pairs: 10K keys, 200 B values `seq<10 digits>|` then filler."""
    rng = random.Random(seed)
    filler = bytes(97 + (i * 7) % 26 for i in range(200))
    return [(b"key-%05d" % rng.randrange(keys), (b"seq%010d|" % i + filler)[:200]) for i in range(n)]


def vocabulary(seed: int, size: int):
    rng = random.Random(seed)
    words = set()
    while len(words) < size:
        n = rng.randint(3, 9)
        words.add("".join(chr(97 + rng.randrange(26)) for _ in range(n)))
    return sorted(words)


def zipf_cdf(size: int, exponent: float = 1.0):
    weights = [1.0 / (r ** exponent) for r in range(1, size + 1)]
    total = sum(weights)
    acc, cdf = 0.0, []
    for w in weights:
        acc += w / total
        cdf.append(acc)
    return cdf


def wordcount_lines(seed: int, n: int, vocab: int = 100_000, words_per_line: int = 10):
    """Lines of ~10 Zipf(1.0) words over a vocabulary of lowercase ASCII words (~100 B)."""
    import bisect

    rng = random.Random(seed)
    words = vocabulary(seed + 1, vocab)
    cdf = zipf_cdf(vocab)
    lines = []
    for _ in range(n):
        picked = [words[min(bisect.bisect_left(cdf, rng.random()), vocab - 1)] for _ in range(words_per_line)]
        lines.append(" ".join(picked).encode())
    return [(None, line) for line in lines]


def customers(seed: int, n: int = 100_000):
    """(customer id, "name|tier") for `n` customers: the join's table."""
    rng = random.Random(seed + 7)
    tiers = [b"gold", b"silver", b"bronze"]
    return [(b"cust-%06d" % i, b"name-%08x|%s" % (rng.getrandbits(32), tiers[rng.randrange(3)]))
            for i in range(n)]


def orders(seed: int, n: int, customers: int = 100_000):
    """(order id, "customer|amount|padding") keyed by order id, not by customer (~100 B)."""
    rng = random.Random(seed + 11)
    return [(b"order-%09d" % i, b"cust-%06d|%d|%s" % (rng.randrange(customers), rng.randrange(1, 100_000), b"x" * 60))
            for i in range(n)]


WINDOWED_BASE_MS = 1_700_000_000_000


def windowed_records(seed: int, n: int, keys: int = 1_000):
    """(key, value, timestamp): 1 record per ms of event time, each up to 5 s early (out of order
    within the 10 s grace), over `keys` users."""
    rng = random.Random(seed + 13)
    return [(b"user-%04d" % rng.randrange(keys), b"x", WINDOWED_BASE_MS + i - rng.randrange(5_000))
            for i in range(n)]
