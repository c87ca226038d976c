"""The systems under test and how each one starts."""

import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
KS_DIR = os.path.join(ROOT, "benches", "kafka-streams")
KS_HEAP = ["-Xms512m", "-Xmx512m"]
KS_FLAGS = KS_HEAP + ["-XX:+UseG1GC"]
KS_CACHE_DEFAULT = 10 * 1024 * 1024


class Stoat:
    name = "stoat"
    label = "stoat"
    emits_every_update = True

    def command(self, workload, bootstrap, inp, out, app_id, mode, commit_ms, state_dir):
        lanes = str(os.cpu_count() or 2)
        binary = os.path.join(ROOT, "target", "release", "examples", "bench_app")
        return [binary, workload, bootstrap, inp, out, app_id, mode, str(commit_ms), state_dir, lanes]

    def flags(self):
        return {"lanes": os.cpu_count() or 2, "binary": "target/release/examples/bench_app"}


class KafkaStreams:
    emits_every_update = False

    def __init__(self, cache_bytes=KS_CACHE_DEFAULT):
        self.cache_bytes = cache_bytes
        self.name = "kafka-streams" if cache_bytes else "kafka-streams-nocache"
        self.label = "Kafka Streams" if cache_bytes else "Kafka Streams (cache 0)"
        self.emits_every_update = cache_bytes == 0

    def command(self, workload, bootstrap, inp, out, app_id, mode, commit_ms, state_dir):
        cp = os.path.join(KS_DIR, "target", "classes") + ":" + os.path.join(KS_DIR, "target", "dependency", "*")
        return ["java"] + KS_FLAGS + ["-cp", cp, "dev.stoat.bench.Main", workload, bootstrap, inp, out, app_id,
                                      mode, str(commit_ms), str(self.cache_bytes), state_dir]

    def flags(self):
        return {"jvm": KS_FLAGS, "statestore.cache.max.bytes": self.cache_bytes, "num.stream.threads": 1}


def start(system, log_path, **kwargs):
    log = open(log_path, "wb")
    return subprocess.Popen(system.command(**kwargs), stdin=subprocess.DEVNULL, stdout=log, stderr=log)


STOAT = Stoat()
KS = KafkaStreams()
KS_NOCACHE = KafkaStreams(cache_bytes=0)
