"""Sweep throughput: N points in analytic fidelity with the local process-pool executor.

    python benchmarks/bench_sweep.py [--points 1000] [--workers N] [--scenario PATH]
                                     [--evaluator MODULE:FUNCTION]

Builds a grid sweep over expert-parallel degree, capacity factor, micro-batch size, seed
and NIC line rate of the base scenario (default Mixtral 8x7B on 64 H100), runs it into a
fresh temporary out dir and prints wall time, points per second and the status counts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

from moesim.plan.evaluate import ENGINE_EVALUATOR
from moesim.plan.executors import LocalExecutor, default_workers
from moesim.plan.sweep import run_sweep
from moesim.specs.sweep import load_sweep

ROOT = Path(__file__).resolve().parent.parent


def sweep_file(folder: Path, base: Path, points: int) -> Path:
    """A grid of at least ``points`` points (whole seed blocks of 36)."""
    axes = [("parallelism.expert_parallel_degree", [2, 4, 8]),
            ("routing.capacity_factor", [None, 1.25]),
            ("parallelism.micro_batch_size", [1, 2]),
            ("topology.tiers.1.nic_gbit_per_s", [200, 400, 800])]
    per_seed = 3 * 2 * 2 * 3
    seeds = max(1, -(-points // per_seed))
    spec = {"name": f"bench-{points}", "base": str(base.resolve()), "fidelity": "analytic",
            "axes": [{"path": p, "values": v} for p, v in axes]
            + [{"path": "seed", "values": list(range(seeds))}]}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml")
    ap.add_argument("--evaluator", default=ENGINE_EVALUATOR)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = sweep_file(Path(tmp), args.scenario, args.points)
        spec = load_sweep(path)
        t0 = time.perf_counter()
        s = run_sweep(spec, path, Path(tmp) / "out", executor=LocalExecutor(args.workers),
                      evaluator=args.evaluator)
        wall = time.perf_counter() - t0
    print(f"scenario   {args.scenario.name}")
    print(f"evaluator  {args.evaluator}")
    print(f"workers    {args.workers}")
    print(f"points     {s.total}")
    print(f"wall_s     {wall:.1f}")
    print(f"points/s   {s.total / wall:.1f}")
    print(f"statuses   {dict(sorted(s.counts.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
