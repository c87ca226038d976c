"""The systems under test and how each one starts."""

import os
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
KS_DIR = os.path.join(ROOT, "benches", "kafka-streams")
KS_HEAP = ["-Xms512m", "-Xmx512m"]
KS_FLAGS = KS_HEAP + ["-XX:+UseG1GC"]
KS_CACHE_DEFAULT = 10 * 1024 * 1024


class Stoat:
    emits_every_update = True

    def __init__(self, fixed=False, lanes=None, concurrency=None):
        # Its default cadence is adaptive (an epoch ends when the input is caught up, at the
        # latest after the commit interval); `fixed` runs Kafka Streams' fixed cadence. `lanes`
        # and `concurrency` (async calls in flight per lane) are for the enrichment workload.
        self.fixed = fixed
        self.lanes = lanes
        self.concurrency = concurrency
        self.name = "stoat-fixed" if fixed else "stoat"
        self.label = "stoat (fixed interval)" if fixed else "stoat"
        if lanes or concurrency:
            self.name += "-l%s-c%s" % (lanes or "cpus", concurrency or "default")
            self.label = "stoat, %s lanes x %s calls" % (lanes or "cpus", concurrency or 256)

    def env(self):
        return {"STOAT_BENCH_CONCURRENCY": str(self.concurrency)} if self.concurrency else {}

    def command(self, workload, bootstrap, inp, out, app_id, mode, commit_ms, state_dir):
        lanes = str(self.lanes or os.cpu_count() or 2)
        binary = os.path.join(ROOT, "target", "release", "examples", "bench_app")
        commit = ("fixed:%d" if self.fixed else "%d") % commit_ms
        return [binary, workload, bootstrap, inp, out, app_id, mode, commit, state_dir, lanes]

    def flags(self):
        return {"lanes": self.lanes or os.cpu_count() or 2, "binary": "target/release/examples/bench_app",
                "cadence": "fixed" if self.fixed else "adaptive", "concurrency": self.concurrency}


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

    def env(self):
        return {}

    def flags(self):
        return {"jvm": KS_FLAGS, "statestore.cache.max.bytes": self.cache_bytes,
                "num.stream.threads": "4 on enrichment, else 1"}


def commit_stats(log_path):
    """The commit durations a system printed at exit (`stoat-bench: commit_ms_mean=.. commit_ms_max=..`,
    written by both bench apps), or {} if it printed none."""
    out = {}
    try:
        with open(log_path, errors="replace") as f:
            lines = [l for l in f if l.startswith("stoat-bench:")]
    except OSError:
        return out
    for field in lines[-1].split()[1:] if lines else []:
        key, _, value = field.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return {k: v for k, v in out.items() if k in ("commit_ms_mean", "commit_ms_max") and v == v}


def start(system, log_path, **kwargs):
    log = open(log_path, "wb")
    env = dict(os.environ, **system.env())
    return subprocess.Popen(system.command(**kwargs), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)


STOAT = Stoat()
STOAT_FIXED = Stoat(fixed=True)
KS = KafkaStreams()
KS_NOCACHE = KafkaStreams(cache_bytes=0)
