"""Sweep throughput: every point of a sweep file with the local process-pool executor.

    python benchmarks/bench_sweep.py [--sweep PATH] [--workers N] [--evaluator MODULE:FUNCTION]

Default: scenarios/sweeps/mixtral-ep-routing-fabric-1000.yaml (1000 analytic points over
Mixtral 8x7B on 64 H100: EP x capacity factor x Zipf exponent x micro-batch x NIC rate).
Runs it into a fresh temporary out dir and prints the load average before and after, wall
time, CPU seconds of this process and its workers, points per second and the statuses.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from moesim.plan.evaluate import ENGINE_EVALUATOR
from moesim.plan.executors import LocalExecutor, default_workers
from moesim.plan.sweep import run_sweep
from moesim.specs.sweep import load_sweep

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SWEEP = ROOT / "scenarios" / "sweeps" / "mixtral-ep-routing-fabric-1000.yaml"


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers, once the pool has exited
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", type=Path, default=DEFAULT_SWEEP)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--evaluator", default=ENGINE_EVALUATOR)
    args = ap.parse_args()
    spec = load_sweep(args.sweep)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, t0 = _cpu_s(), time.perf_counter()
        s = run_sweep(spec, args.sweep, Path(tmp) / "out", executor=LocalExecutor(args.workers),
                      evaluator=args.evaluator)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    print(f"sweep      {args.sweep.name} ({spec.fidelity})")
    print(f"evaluator  {args.evaluator}")
    print(f"workers    {args.workers}")
    print(f"load avg   {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after (1 min)")
    print(f"points     {s.total}")
    print(f"wall_s     {wall:.1f}")
    print(f"cpu_s      {cpu:.1f} ({1e3 * cpu / max(1, s.total):.1f} ms per point)")
    print(f"points/s   {s.total / wall:.1f}")
    print(f"statuses   {dict(sorted(s.counts.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
