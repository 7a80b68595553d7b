"""Layout search speed: ``plan_layouts`` for a scenario on N devices, with its funnel counts.

    python benchmarks/bench_plan.py [--scenario PATH] [--devices N] [--workers N]
                                    [--budget B] [--des-top K] [--evaluator M:F --memory M:F]

Default: Qwen3-235B-A22B on 256 H100 (global batch 2048, sequence 4096) with the real
engine and memory model. Prints layouts considered, excluded by reason, fitting, ranked,
estimate_memory calls, wall seconds per phase and in all, where the scenario's own layout
ranks, and the top 10.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from moesim.plan.evaluate import ENGINE_MEMORY, PLAN_EVALUATOR, Backend
from moesim.plan.executors import LocalExecutor, default_workers
from moesim.plan.search import (
    DEFAULT_ANALYTIC_BUDGET,
    plan_layouts,
    shipped_candidates,
    summary_rows,
)
from moesim.specs.loader import load_scenario
from moesim.units import GB

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path,
                    default=ROOT / "scenarios" / "qwen3-235b-a22b-256xh100.yaml")
    ap.add_argument("--devices", type=int, default=256)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--budget", type=int, default=DEFAULT_ANALYTIC_BUDGET)
    ap.add_argument("--des-top", type=int, default=3)
    ap.add_argument("--evaluator", default=PLAN_EVALUATOR)
    ap.add_argument("--memory", default=ENGINE_MEMORY)
    args = ap.parse_args()
    s = load_scenario(args.scenario, ["workload.global_batch_size=2048"])
    t0 = time.perf_counter()
    res = plan_layouts(s, args.devices, des_top=args.des_top, analytic_budget=args.budget,
                       backend=Backend(args.evaluator, args.memory),
                       executor=LocalExecutor(args.workers) if args.workers > 1 else None)
    wall = time.perf_counter() - t0
    print(f"scenario    {s.name} on {args.devices} devices, workers {args.workers}")
    print(f"considered  {res.considered}")
    for reason, n in res.excluded.most_common():
        print(f"  excluded  {n:>7}  {reason}")
    print(f"ranked      {len(res.ranked)} (analytic budget {args.budget}, DES top {args.des_top})")
    print(f"memory      {res.memory_calls} estimate_memory calls")
    print("phases_s    " + ", ".join(f"{k} {v:.1f}" for k, v in res.phase_s.items()))
    print(f"wall_s      {wall:.1f}")
    own = shipped_candidates(s, [c.layout for c in res.ranked])
    for c in (x for x in res.ranked if x.layout in own):
        print(f"shipped     rank {res.ranked.index(c) + 1}: {c.layout.label} ({c.fidelity}) "
              f"{c.tokens_per_s:,.0f} tok/s")
    for r in summary_rows(res, 10):
        print(f"  {r['rank']:>2} {r['layout']:<58} {r['fidelity']:<8} "
              f"{(r['tokens_per_s'] or 0):>12,.0f} tok/s  peak {r['peak_bytes'] / GB:5.1f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
