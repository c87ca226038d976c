"""CPU and memory of a process from /proc: CPU-seconds (utime + stime), peak RSS (VmHWM) and
RSS samples (VmRSS, once a second); steal time from /proc/stat."""

import os
import threading

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of `pid` (and its exited children it waited for), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def steal_ticks():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    total = sum(int(x) for x in fields[1:])
    steal = int(fields[8]) if len(fields) > 8 else 0
    return steal, total


class RssSampler:
    """Samples VmRSS of a process every second until stopped."""

    def __init__(self, pid, every=1.0):
        self.pid, self.every = pid, every
        self.samples_kb = []
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every):
            try:
                self.samples_kb.append(status_kb(self.pid, "VmRSS"))
                self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmHWM"))
            except (FileNotFoundError, ProcessLookupError):
                return

    def stop(self):
        try:
            self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmHWM"))
        except (FileNotFoundError, ProcessLookupError):
            pass
        self._stop.set()
        self._thread.join(timeout=5)

    def steady_kb(self):
        if not self.samples_kb:
            return self.peak_kb
        s = sorted(self.samples_kb)
        return s[len(s) // 2]
