"""python -m stoatbench quick|full [--out DIR] [--workload NAME ...] [--mode eos|alo ...]"""

import argparse
import os

from .run import TIERS, run_tier
from .systems import ROOT


def main():
    parser = argparse.ArgumentParser(prog="stoatbench")
    parser.add_argument("tier", choices=sorted(TIERS))
    parser.add_argument("--out", default=os.path.join(ROOT, "benches", "results"))
    parser.add_argument("--workload", action="append")
    parser.add_argument("--mode", action="append", choices=["eos", "alo"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the input sizes (smoke runs)")
    parser.add_argument("--pairs", type=int, help="override the number of ABBA pairs")
    parser.add_argument("--latency-seconds", type=float, help="override the length of each latency run")
    args = parser.parse_args()
    run_tier(args.tier, args.out, seed=args.seed, workloads=args.workload, modes=args.mode or ("eos", "alo"),
             scale=args.scale, pairs=args.pairs, latency_seconds=args.latency_seconds)


if __name__ == "__main__":
    main()
