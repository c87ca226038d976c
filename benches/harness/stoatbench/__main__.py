"""python -m stoatbench quick|full [--out DIR] [--workload NAME ...] [--mode eos|alo ...]"""

import argparse
import os

from .run import TIERS, run_tier
from .systems import ROOT


def main():
    parser = argparse.ArgumentParser(prog="stoatbench")
    parser.add_argument("tier", choices=sorted(TIERS) + ["report", "latency", "enrich"],
                        help="a tier to run (`latency`: latency over load next to the broker's floor), or `report` "
                             "to rewrite BENCHMARKS.md from --json")
    parser.add_argument("--json", help="with `report`: a results JSON written by an earlier run")
    parser.add_argument("--out", default=os.path.join(ROOT, "benches", "results"))
    parser.add_argument("--workload", action="append")
    parser.add_argument("--mode", action="append", choices=["eos", "alo"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the input sizes (smoke runs)")
    parser.add_argument("--pairs", type=int, help="override the number of ABBA pairs")
    parser.add_argument("--latency-seconds", type=float, help="override the length of each latency run")
    args = parser.parse_args()
    if args.tier == "latency":
        from .latency import run_latency
        from .report import rewrite_benchmarks_md

        kwargs = {"seconds": args.latency_seconds} if args.latency_seconds else {}
        run_latency(args.out, workloads=args.workload or ("stateless", "wordcount"), seed=args.seed, **kwargs)
        rewrite_benchmarks_md(args.out)
        return
    if args.tier == "enrich":
        from .enrich import run_enrich
        from .report import rewrite_benchmarks_md

        run_enrich(args.out, seed=args.seed)
        rewrite_benchmarks_md(args.out)
        return
    if args.tier == "report":
        import json

        from .report import write_all

        with open(args.json or os.path.join(args.out, "quick-latest.json")) as f:
            write_all(json.load(f), args.out)
        return
    run_tier(args.tier, args.out, seed=args.seed, workloads=args.workload, modes=args.mode or ("eos", "alo"),
             scale=args.scale, pairs=args.pairs, latency_seconds=args.latency_seconds)


if __name__ == "__main__":
    main()
