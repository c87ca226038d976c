"""The benchmark's broker: one KRaft node started with tests/kafka/broker.sh, 1 GiB heap, full
JIT, on free loopback ports."""

import os
import shutil
import socket
import subprocess
import tempfile

from .systems import ROOT

SCRIPT = os.path.join(ROOT, "tests", "kafka", "broker.sh")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="stoatbench-kafka-")
        self.port, ctrl = free_port(), free_port()
        subprocess.run(["bash", SCRIPT, "single", self.dir, str(self.port), str(ctrl)], check=True)
        # The workloads' event times are fixed (the windowed one starts in 2023): with the
        # default 7-day retention the broker deleted the preloaded input at its first retention
        # check, 5 minutes in, and every later run found nothing to read.
        with open(os.path.join(self.dir, "server.properties"), "a") as f:
            f.write("log.retention.ms=-1\n")
        env = dict(os.environ, STOAT_KAFKA_HEAP="-Xms1g -Xmx1g", STOAT_KAFKA_JIT="")
        self.runner = subprocess.Popen(["bash", SCRIPT, "run", self.dir, str(os.getpid())], env=env,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        subprocess.run(["bash", SCRIPT, "ready", self.dir, "120"], check=True)
        self.bootstrap = "127.0.0.1:%d" % self.port

    @property
    def pid(self):
        with open(os.path.join(self.dir, "broker.pid")) as f:
            return int(f.read().strip())

    def stop(self):
        try:
            os.kill(self.pid, 15)
        except (OSError, ValueError):
            pass
        try:
            self.runner.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.runner.kill()
            self.runner.wait()
        # A run writes gigabytes of log segments: a broker left behind fills the disk.
        shutil.rmtree(self.dir, ignore_errors=True)
