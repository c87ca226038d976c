"""Quick tests of the harness's pieces: generator determinism, the verifiers catching a planted
duplicate and a planted loss, ratio arithmetic, the /proc sampler, the latency window and the commit figures."""

import os

from stoatbench import generator, report, sampler, stats, systems, verifier
from stoatbench.workloads import WORKLOADS, fnv1a, fnv1a_many


def test_generator_is_deterministic():
    assert generator.stateless_records(7, 50) == generator.stateless_records(7, 50)
    assert generator.wordcount_lines(7, 50) == generator.wordcount_lines(7, 50)
    assert generator.stateless_records(7, 50) != generator.stateless_records(8, 50)
    lines = generator.wordcount_lines(3, 200)
    avg = sum(len(v) for _, v in lines) / len(lines)
    assert 50 < avg < 130, avg
    values = [v for _, v in generator.stateless_records(1, 20)]
    assert all(len(v) == 1024 for v in values)
    assert len(set(values)) == 20


def test_vectorised_hash_matches_the_plain_one():
    values = [v for _, v in generator.stateless_records(5, 30)]
    assert fnv1a_many(values) == [fnv1a(v) for v in values]
    assert fnv1a(b"") == 0xCBF29CE484222325
    assert fnv1a(b"a") == 0xAF63DC4C8601EC8C  # the published FNV-1a 64 test vector


def stateless_outputs(records, expected):
    out = []
    for i, (k, v) in enumerate(records):
        if i in expected["kept"]:
            out.append((k, v.upper() + b":" + format(fnv1a(v), "x").encode(), 0))
    return out


def test_stateless_verifier_catches_duplicates_and_losses():
    w = WORKLOADS["stateless"]
    records = w.generate(11, 300)
    expected = w.expected(records)
    good = stateless_outputs(records, expected)
    assert 230 < len(good) < 300
    assert w.verify(expected, good)[0]
    ok, why = w.verify(expected, good + [good[5]])
    assert not ok and "duplicated" in why
    ok, why = w.verify(expected, good[:-1])
    assert not ok and "lost" in why


def test_wordcount_verifier_catches_duplicates_and_losses():
    w = WORKLOADS["wordcount"]
    records = [(None, b"a b a"), (None, b"b c")]
    expected = w.expected(records)
    updates = [(b"a", b"1", 0), (b"b", b"1", 0), (b"a", b"2", 0), (b"b", b"2", 0), (b"c", b"1", 0)]
    assert w.verify(expected, updates)[0]
    assert not w.verify(expected, updates + [(b"c", b"1", 0)])[0], "a duplicate"
    assert not w.verify(expected, updates[:-1])[0], "a loss"
    assert not w.verify(expected, [updates[0], updates[2], updates[1], updates[3], updates[4], (b"a", b"2", 0)])[0]
    # With a record cache, intermediate counts may be skipped, but never repeated.
    cached = [(b"a", b"2", 0), (b"b", b"2", 0), (b"c", b"1", 0)]
    assert w.verify(expected, cached, exact_updates=False)[0]
    assert not w.verify(expected, cached, exact_updates=True)[0]


def test_ratio_arithmetic():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 2, 3]) == 2.5
    r = stats.pair_ratios([(1.0, 4.0), (2.0, 4.0), (3.0, 4.0)])
    assert r == {"median": 0.5, "min": 0.25, "max": 0.75, "n": 3}
    assert stats.ratio(1.0, 0) is None
    assert stats.pair_ratios([(None, 1.0)]) is None


def test_sampler_reads_this_process():
    pid = os.getpid()
    assert sampler.cpu_seconds(pid) >= 0
    assert sampler.status_kb(pid, "VmHWM") > 0
    steal, total = sampler.steal_ticks()
    assert total > 0 and steal >= 0


def test_latency_window_drops_the_warmup():
    # (visible ms, latency ms): records stamped at 1000, 1500, 3000 and 3100 ms.
    timeline = [(1010.0, 10.0), (1600.0, 100.0), (3050.0, 50.0), (3120.0, 20.0)]
    assert verifier.after_warmup(timeline, 2.0) == [(3050.0, 50.0), (3120.0, 20.0)]
    assert verifier.after_warmup(timeline, 0) == timeline
    rows = verifier.by_second(timeline)
    assert [r[0] for r in rows] == [0, 2]
    assert rows[0][1] == 2 and rows[0][4] == 100.0


def test_commit_stats_are_read_from_the_log(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("noise\nstoat-bench: commits=12 commit_ms_mean=9.500 commit_ms_max=31.000\n")
    assert systems.commit_stats(str(log)) == {"commit_ms_mean": 9.5, "commit_ms_max": 31.0}
    log.write_text("stoat-bench: commit_ms_mean=NaN commit_ms_max=NaN\n")
    assert systems.commit_stats(str(log)) == {}
    assert systems.commit_stats(str(tmp_path / "missing.log")) == {}


def test_latency_ratios_pair_runs_by_pair_index():
    def lat(system, pair, p99):
        return {"system": system, "workload": "w", "mode": "eos", "kind": "latency", "rate": 100,
                "pair": pair, "verified": True, "p99": p99}

    runs = [lat("stoat", 0, 10.0), lat("kafka-streams", 0, 100.0), lat("kafka-streams", 1, 50.0),
            lat("stoat", 1, 25.0)]
    rows = [r for r in report.summarize({"runs": runs}) if r["metric"] == "p99"]
    assert len(rows) == 1
    assert rows[0]["ratio"] == {"median": 0.3, "min": 0.1, "max": 0.5, "n": 2}


def test_join_verifier_catches_wrong_customers_duplicates_and_losses():
    w = WORKLOADS["join"]
    records = w.generate(5, 200)
    expected = w.attach(w.expected(records), 5)
    customers = dict(w.side_inputs(5)[0][1])
    good = [(k, v + b"|" + customers[v.split(b"|", 1)[0]], 0) for k, v in records]
    assert w.verify(expected, good)[0]
    ok, why = w.verify(expected, good + [good[3]])
    assert not ok and "twice" in why
    ok, why = w.verify(expected, good[:-1])
    assert not ok and "lost" in why
    wrong = list(good)
    wrong[7] = (wrong[7][0], records[7][1] + b"|name-0|gold", 0)
    ok, why = w.verify(expected, wrong)
    assert not ok and "expected" in why


def test_a_run_of_some_workloads_and_guarantees_keeps_the_earlier_results_of_the_others(tmp_path):
    import json

    from stoatbench.run import merge_earlier

    earlier = {"date": "2026-01-01", "runs": [
        {"workload": "stateless", "mode": "eos", "x": 1},
        {"workload": "join", "mode": "eos", "x": 2},
        {"workload": "join", "mode": "alo", "x": 4},
    ]}
    (tmp_path / "quick-latest.json").write_text(json.dumps(earlier))
    merged = merge_earlier(str(tmp_path), "quick", [{"workload": "join", "mode": "eos", "x": 3}])
    assert [(r["workload"], r["mode"], r["x"]) for r in merged] == [
        ("stateless", "eos", 1), ("join", "alo", 4), ("join", "eos", 3)]
    assert merged[0]["date"] == "2026-01-01" and merged[2]["date"] != "2026-01-01"


def test_windowed_verifier_catches_duplicates_losses_and_wrong_counts():
    w = WORKLOADS["windowed"]
    records = w.generate(3, 200_000)
    expected = w.expected(records)
    assert len(expected) > 100
    good = [(k, str(n).encode(), 0) for k, n in expected.items()]
    assert w.verify(expected, good)[0]
    ok, why = w.verify(expected, good + [good[0]])
    assert not ok and "twice" in why
    ok, why = w.verify(expected, good[1:])
    assert not ok and "closed" in why
    wrong = [(good[0][0], b"999999", 0)] + good[1:]
    ok, why = w.verify(expected, wrong)
    assert not ok and "expected" in why


def test_latency_loads_come_from_the_slower_systems_eos_capacity(tmp_path):
    import json

    from stoatbench.latency import capacities

    runs = [
        {"workload": "stateless", "mode": "eos", "system": "stoat", "verified": True, "throughput": 60_000},
        {"workload": "stateless", "mode": "eos", "system": "stoat", "verified": True, "throughput": 50_000},
        {"workload": "stateless", "mode": "eos", "system": "stoat", "verified": True, "throughput": 70_000},
        {"workload": "stateless", "mode": "eos", "system": "kafka-streams", "verified": True, "throughput": 20_000},
        {"workload": "stateless", "mode": "alo", "system": "kafka-streams", "verified": True, "throughput": 1_000},
        {"workload": "stateless", "mode": "eos", "system": "kafka-streams", "verified": False, "throughput": 10},
        {"workload": "wordcount", "mode": "eos", "system": "stoat", "verified": True, "throughput": 5_000},
    ]
    (tmp_path / "quick-latest.json").write_text(json.dumps({"runs": runs}))
    caps = capacities(str(tmp_path))
    assert caps == {"stateless": 20_000}, "wordcount has no Kafka Streams run: no capacity"


def test_latency_table_reports_each_run_against_the_floor():
    from stoatbench.latency import latency_table

    result = {"floor": {"p50": 11.0, "p99": 30.0, "p99.9": 40.0, "commit_ms_mean": 16.0}, "runs": [
        {"workload": "stateless", "load": 0.25, "rate": 5000, "system": "stoat", "label": "stoat", "verified": True,
         "p50": 20.0, "p99": 45.0, "p99.9": 60.0, "p99_over_floor": 1.5, "commit_ms_mean": 14.0},
        {"workload": "stateless", "load": 0.25, "rate": 5000, "system": "kafka-streams", "label": "Kafka Streams",
         "verified": False, "verification": "lost 3"},
    ]}
    text = latency_table(result)
    assert "| stateless | 25 % | 5,000 | stoat | 20.0 | 45.0 | 60.0 | 1.50x | 14.0 |" in text
    assert "failed: lost 3" in text
    assert "p99 30.0 ms" in text


def test_enrich_verifier_catches_duplicates_losses_wrong_answers_and_reordering():
    w = WORKLOADS["enrich"]
    records = w.generate(5, 2_000)
    expected = w.expected(records)
    good = [(k, v + b"|" + b"%016x" % fnv1a(k), 0) for k, v in records]
    assert w.verify(expected, good)[0]
    ok, why = w.verify(expected, good + [good[7]])
    assert not ok and "twice" in why
    ok, why = w.verify(expected, good[1:])
    assert not ok and "of 2000" in why
    k, v, t = good[3]
    ok, why = w.verify(expected, good[:3] + [(k, v[:-1] + b"0", t)] + good[4:])
    assert not ok and "answer" in why
    # Two records of one key swapped.
    first = next(i for i in range(len(good)) if any(good[j][0] == good[i][0] for j in range(i + 1, len(good))))
    second = next(j for j in range(first + 1, len(good)) if good[j][0] == good[first][0])
    swapped = list(good)
    swapped[first], swapped[second] = swapped[second], swapped[first]
    ok, why = w.verify(expected, swapped)
    assert not ok and "after" in why
