"""Results: the raw JSON, the summary table (medians, per-pair ratios), the PNG chart and
BENCHMARKS.md, all from one run of the harness."""

import json
import os

from .stats import median, pair_ratios
from .systems import ROOT

METRICS = [
    ("throughput", "input records/s", "{:,.0f}"),
    ("app_cpu_s_per_M", "app CPU-s per M records", "{:.2f}"),
    ("broker_cpu_s_per_M", "broker CPU-s per M records", "{:.2f}"),
    ("peak_rss_mb", "peak RSS (MB)", "{:.0f}"),
    ("steady_rss_mb", "steady RSS (MB)", "{:.0f}"),
]
LATENCY = [
    ("p50", "p50 latency (ms)", "{:.1f}"),
    ("p95", "p95 latency (ms)", "{:.1f}"),
    ("p99", "p99 latency (ms)", "{:.1f}"),
    ("p99.9", "p99.9 latency (ms)", "{:.1f}"),
    ("p99_with_warmup", "p99 latency incl. warm-up (ms)", "{:.1f}"),
    ("commit_ms_mean", "mean commit (ms)", "{:.1f}"),
]
TARGETS = {"app_cpu_s_per_M": 1 / 5.0, "peak_rss_mb": 1 / 20.0, "p99": 1 / 10.0}


def summarize(result):
    runs = [r for r in result["runs"] if r.get("verified")]
    rows = []
    keys = sorted({(r["workload"], r["mode"]) for r in runs})
    peers = sorted({r["system"] for r in runs if r["system"] != "stoat"})
    for workload, mode in keys:
        for peer in peers:
            mine = [r for r in runs if (r["workload"], r["mode"], r["kind"]) == (workload, mode, "capacity")]
            stoat = {r["pair"]: r for r in mine if r["system"] == "stoat"}
            other = {r["pair"]: r for r in mine if r["system"] == peer}
            for metric, label, fmt in METRICS if other else []:
                pairs = [(stoat[p].get(metric), other[p].get(metric)) for p in stoat if p in other]
                rows.append({
                    "workload": workload, "mode": mode, "peer": peer, "metric": metric, "label": label,
                    "fmt": fmt, "stoat": median([a for a, _ in pairs if a is not None]),
                    "peer_value": median([b for _, b in pairs if b is not None]),
                    "ratio": pair_ratios(pairs),
                })
            lat = [r for r in runs if (r["workload"], r["mode"], r["kind"]) == (workload, mode, "latency")]
            for rate in sorted({r["rate"] for r in lat}):
                stoat = {r["pair"]: r for r in lat if r["rate"] == rate and r["system"] == "stoat"}
                other = {r["pair"]: r for r in lat if r["rate"] == rate and r["system"] == peer}
                for key, label, fmt in LATENCY:
                    pairs = [(stoat[p].get(key), other[p].get(key)) for p in stoat if p in other]
                    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
                    if pairs:
                        rows.append({
                            "workload": workload, "mode": mode, "peer": peer, "metric": key,
                            "label": "%s at %s rec/s" % (label, "{:,}".format(rate)), "fmt": fmt,
                            "stoat": median([a for a, _ in pairs]), "peer_value": median([b for _, b in pairs]),
                            "ratio": pair_ratios(pairs),
                        })
    return rows


def table(rows):
    lines = ["| workload | guarantee | metric | stoat | peer | stoat / peer: median (min..max) |",
             "| --- | --- | --- | ---: | ---: | --- |"]
    for r in rows:
        fmt = r["fmt"]
        val = lambda v: fmt.format(v) if v is not None else "-"
        ratio = r["ratio"]
        rtext = "%.3f (%.3f..%.3f)" % (ratio["median"], ratio["min"], ratio["max"]) if ratio else "-"
        target = TARGETS.get(r["metric"])
        if target and ratio and r["mode"] == "eos" and not r["peer"].endswith("nocache"):
            rtext += " met" if ratio["median"] <= target else " missed (target <= %.2f)" % target
        peer = "Kafka Streams" + (" (cache 0)" if r["peer"].endswith("nocache") else "")
        lines.append("| %s | %s | %s | %s | %s: %s | %s |" % (
            r["workload"], r["mode"], r["label"], val(r["stoat"]), peer, val(r["peer_value"]), rtext))
    return "\n".join(lines)


def chart(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("app_cpu_s_per_M", "app CPU-seconds per million records"), ("peak_rss_mb", "peak RSS (MB)"),
              ("p99", "p99 end-to-end latency (ms)")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for ax, (metric, title) in zip(axes, panels):
        sel = [r for r in rows if r["metric"] == metric and r["peer"] == "kafka-streams"]
        ax.set_title(title)
        if not sel:
            ax.text(0.5, 0.5, "measured in the full tier", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        labels = ["%s\n%s" % (r["workload"], r["label"].split(" at ", 1)[1] if " at " in r["label"] else r["mode"])
                  for r in sel]
        xs = list(range(len(sel)))
        ax.bar([x - 0.2 for x in xs], [r["stoat"] or 0 for r in sel], 0.4, label="stoat", color="#2b7bba")
        ax.bar([x + 0.2 for x in xs], [r["peer_value"] or 0 for r in sel], 0.4, label="Kafka Streams",
               color="#d95f02")
        ax.set_xticks(xs)
        ax.set_xticklabels(labels)
        ax.legend()
    fig.suptitle("stoat vs Kafka Streams 4.4.0, same broker and input (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


TIER_TEXT = {
    "quick": "capacity runs, %d interleaved ABBA pairs per workload and mode",
    "full": "capacity runs, %d interleaved ABBA pairs per workload and mode, then latency runs",
}


def run_dates(result):
    """When each workload's runs were made (a tier's workloads may be re-run separately)."""
    dates, pairs = {}, {}
    for r in result["runs"]:
        d = r.get("date", result["date"])
        dates.setdefault(r["workload"], set()).add(d[:10])
        if r["kind"] == "capacity":
            pairs[r["workload"]] = max(pairs.get(r["workload"], 0), r.get("pair", 0) + 1)
    return "Runs: " + "; ".join("%s on %s (%d pair%s)" % (w, ", ".join(sorted(ds)), pairs.get(w, 0),
                                                           "" if pairs.get(w, 0) == 1 else "s")
                                for w, ds in sorted(dates.items())) + "."


def tier_section(result, rows, chart_name, json_name):
    m = result["machine"]
    failed = [r for r in result["runs"] if not r.get("verified")]
    pairs = 1 + max([r.get("pair", 0) for r in result["runs"] if r["kind"] == "capacity"] or [0])
    lines = [
        "## Latest `%s` tier (%s)" % (result["tier"], result["date"]),
        "",
        (TIER_TEXT.get(result["tier"], "%d pairs") % pairs) + "; raw runs in "
        "[`benches/results/%s`](benches/results/%s)." % (json_name, json_name),
        "",
        "Machine: %s, %s CPUs, %s GB, Linux %s; %s; %s; Kafka %s." % (
            m["cpu"], m["cpus"], m["memory_gb"], m["kernel"], m["java"], m["rustc"], m["kafka"]),
        "",
        run_dates(result),
        "",
        table(rows),
        "",
        "![stoat vs Kafka Streams, %s tier](benches/results/%s)" % (result["tier"], chart_name),
        "",
    ]
    if failed:
        lines += ["Runs that failed verification or did not finish (%d):" % len(failed), ""]
        for r in failed:
            lines.append("- %s %s %s: %s" % (r["system"], r["workload"], r["mode"], r.get("verification")))
        lines.append("")
    return lines


def benchmarks_md(sections):
    """BENCHMARKS.md from the latest result of each tier: [(result, rows, chart_name, json_name)]."""
    lines = [
        "# Benchmarks",
        "",
        "stoat against Kafka Streams 4.4.0 doing the same work on the same broker, the same input bytes",
        "and the same machine. Every number below comes from a real run of the harness; the raw runs",
        "are kept next to the charts in `benches/results/`.",
        "",
        "## How to run",
        "",
        "```sh",
        "benches/kafka-bench quick   # capacity runs, 3 interleaved ABBA pairs per workload and mode (< 20 min)",
        "benches/kafka-bench full    # 5 pairs, then latency runs at fixed rates in ABBA pairs",
        "benches/kafka-bench latency # latency over load at defaults and a fixed interval, next to the broker's EOS floor",
        "benches/kafka-bench enrich  # workload (e): a 5 ms remote call per record, HTTP and simulated",
        "cargo bench --bench engine  # engine only: stoat's embedded runtime vs a hand-written loop",
        "```",
        "",
        "The script builds both systems (`cargo build --release`, Maven for `benches/kafka-streams`),",
        "installs the harness's Python packages, starts a Kafka 4.4.0 broker and runs",
        "`benches/harness`. It rewrites this file and `benches/results/`.",
        "",
        "## Method in short",
        "",
        "- One KRaft broker (1 GiB heap), input topics with 4 partitions, preloaded once from a seed;",
        "  every run starts from offset 0 with a fresh app id, output topic and state directory.",
        "- Capacity runs: throughput and CPU-seconds per million input records over the 10-90 % window",
        "  of input consumed (progress = the app's committed input offsets); app and broker CPU from",
        "  `/proc/PID/stat`; peak RSS (`VmHWM`) and median RSS (`VmRSS` every second).",
        "- Latency runs (full tier): a generator sends at 25 % and 50 % of the slower system's capacity",
        "  on a uniform schedule, each record stamped with its intended send time (no coordinated",
        "  omission); a read_committed consumer records visible time minus timestamp. The first",
        "  seconds of input are a warm-up (JIT, first fetches) and not measured; the p99 including them",
        "  is reported too. Commit durations are each system's own figure (stoat's epoch commit, Kafka",
        "  Streams' `commit-latency-avg`).",
        "- Both systems run exactly-once (`exactly_once_v2` / one transaction per epoch) and",
        "  at-least-once, with a 100 ms commit interval: Kafka Streams' `commit.interval.ms`; for stoat",
        "  the longest an epoch lasts (its default cadence is adaptive: an epoch also ends when the",
        "  input is caught up; capacity runs dated before 2026-11-29 22:00 ran a fixed 100 ms). Kafka Streams",
        "  runs with its default record cache and, on word count, with the cache off; stoat emits every",
        "  update.",
        "- Under exactly-once, output becomes visible only when its transaction commits, so at a 100 ms",
        "  commit interval no system's p99 can drop much below ~100 ms plus its commit time. Kafka",
        "  Streams' word count pays that twice (once into its repartition topic, once to the output);",
        "  stoat re-keys in memory and pays it once. On a one-hop stateless transform both sit at",
        "  the floor.",
        "- Runs are interleaved in ABBA order; the table gives medians and per-pair ratios.",
        "- Workloads: (a) `stateless`, a map and filter of 1 KB values; (b) `wordcount`, split, re-key",
        "  by word, count; (c) `join`, orders keyed by order id enriched with their customer from a",
        "  100K-customer table. The orders are not partitioned by customer, so Kafka Streams needs a",
        "  repartition topic or a `GlobalKTable`; both systems use a global table here (read to its end",
        "  before the orders, so the result is exact), joined through a key selector; (d) `windowed`,",
        "  a 1-minute tumbling count per key with 10 s grace emitted once per window when it closes",
        "  (Kafka Streams: `suppress(untilWindowCloses)`), event time in the input (one partition, so",
        "  that no record's lateness depends on fetch timing).",
        "- Every run's output is verified with a read_committed consumer: exact outputs for the",
        "  stateless transform (no record lost or duplicated), exact final counts with increasing",
        "  updates for word count, every order joined exactly once with its customer, every closed",
        "  window emitted once with its count. A run that fails verification is reported, not counted.",
        "",
    ]
    for section in sections:
        lines += tier_section(*section)
    lines += [
        "## Engine only (no broker)",
        "",
        "`cargo bench --bench engine`: the same two workloads through stoat's embedded runtime against",
        "hand-written single-threaded loops (output of the last run, `benches/results/engine-latest.txt`;",
        "single runs on the 2-core machine vary by 15-30 %, so changes are judged by alternating the old",
        "and new binaries: the tables, joins and emission modes of issue 10 against the code before",
        "them: word count 1.72M vs 1.64M words/s (medians of five pairs), stateless 642K vs 633K",
        "records/s (three pairs): no slower within the noise). `rekey-order` measures `RekeyOrder::InputPartition`",
        "(unkeyed input read one partition per lane) against the default on word count: over five",
        "runs the ratio was 0.82-1.21 (median 0.95) with one partition and 0.78-1.02 (median 0.96)",
        "with four, on two lanes; the mode costs parallelism only where lanes outnumber partitions.",
        "",
        "```text",
        engine_output(),
        "```",
        "",
        "Targets (EOS, against Kafka Streams with its default cache): app CPU <= 1/5, peak RSS <= 1/20,",
        "p99 latency <= 1/10 (full tier); engine-only word count >= 50 % of a hand-written loop.",
        "Lanes (`lanes` above): 10,000 lanes within 2x the peak RSS and at >= 0.8x the throughput of 64.",
        "The RSS target is met on both workloads; the throughput target is not: with keys spread over",
        "10,000 lanes a batch per destination lane holds about one record, so every record costs a",
        "channel message and often a task wake-up. Re-run 2026-11-30 after the commit pipeline and lanes",
        "yielding only when they have more queued (`cargo bench --bench engine -- 300000 lanes`, best of 3):",
        "stateless 607,846 / 546,450 / 432,605 / 351,481 records/s at 2 / 64 / 1,024 / 10,000 lanes",
        "(10,000 vs 64: 0.64, was 0.52; 0.60 on a second run), word count 1,768,587 / 1,315,091 /",
        "780,802 / 497,611 words/s (0.38, was 0.41; 0.37 on a second run); peak RSS unchanged. A profile",
        "of word count at 10,000 lanes: 22 % in the kernel (futex wake-ups: tokio unparking workers, and",
        "glibc's malloc arena lock, as batches are allocated on one thread and freed on another), ~15 %",
        "in malloc/free. Tried and dropped: a lane woken for a few records yielding once before its step",
        "(no gain). What remains is structural: lanes run by a few tasks per worker thread, re-keyed",
        "records batched per destination task rather than per destination lane.",
        "Enrichment (`enrich` above, 5 ms of simulated async I/O per record): >= 100K records/s on two",
        "cores, with enough calls in flight (lanes x concurrency >= ~500).",
        "",
    ]
    return "\n".join(lines)


def engine_output():
    path = os.path.join(ROOT, "benches", "results", "engine-latest.txt")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "(not run yet: `cargo bench --bench engine | tee benches/results/engine-latest.txt`)"


def write_all(result, out_dir):
    json_name = "%s-latest.json" % result["tier"]
    chart_name = "%s-latest.png" % result["tier"]
    with open(os.path.join(out_dir, json_name), "w") as f:
        json.dump(result, f, indent=1)
    rows = summarize(result)
    chart(rows, os.path.join(out_dir, chart_name))
    rewrite_benchmarks_md(out_dir)
    print(table(rows))
    return result


def rewrite_benchmarks_md(out_dir):
    """BENCHMARKS.md from the latest results of every tier. It follows the results in the
    repository, not smoke runs written elsewhere."""
    if os.path.abspath(out_dir) != os.path.join(ROOT, "benches", "results"):
        return
    sections = []
    for tier in ("quick", "full"):
        path = os.path.join(out_dir, "%s-latest.json" % tier)
        if os.path.exists(path):
            with open(path) as f:
                latest = json.load(f)
            sections.append((latest, summarize(latest), "%s-latest.png" % tier, "%s-latest.json" % tier))
    text = benchmarks_md(sections)
    for name in ("latency", "enrich"):
        path = os.path.join(out_dir, "%s-latest.json" % name)
        if os.path.exists(path):
            module = __import__("stoatbench." + name, fromlist=["section"])
            with open(path) as f:
                text += "\n" + "\n".join(module.section(json.load(f)))
    with open(os.path.join(ROOT, "BENCHMARKS.md"), "w") as f:
        f.write(text)
