"""Engine speed: wall and CPU time of one step for real scenarios (both fidelities), the op
intervals simulated per second, and bare simpy timeouts per second measured in the same run
(the event loop's ceiling on this machine), and the CPU time of one analytic planning point
(load a scenario with an override, simulate, memory, result) over a small sweep. CPU time is
printed next to wall time because the 2-core VM is shared: wall time is only meaningful on
an idle machine; the load average is printed first.
Usage: python benchmarks/bench_engine.py"""

from __future__ import annotations

import os
import time
from pathlib import Path

import simpy

from moesim.engine import Simulation
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
CASES = [("scenarios/mixtral-8x7b-64xh100.yaml", 2.0),
         ("scenarios/deepseek-v3-2048xh800.yaml", 10.0)]


def bare_simpy_rate(n: int = 200_000) -> float:
    """simpy timeouts per second in one process (no work per event)."""
    env = simpy.Environment()

    def proc():  # noqa: ANN202
        for _ in range(n):
            yield env.timeout(1.0)

    env.process(proc())
    t = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t)


def analytic_point_ms(path: str, n: int = 40) -> float:
    """CPU milliseconds per analytic point over ``n`` distinct batch sizes of ``path`` (every
    point builds its own program; nothing is shared but the cost models' shape caches)."""
    Simulation(load_scenario(ROOT / path), fidelity="analytic").run()  # imports
    c = time.process_time()
    for i in range(n):
        sc = load_scenario(ROOT / path, (f"workload.global_batch_size={512 + 64 * (i + 1)}",))
        Simulation(sc, fidelity="analytic").run()
    return (time.process_time() - c) / n * 1e3


def main() -> None:
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"bare simpy timeouts/s: {bare_simpy_rate():,.0f}")
    print(f"analytic planning point (Mixtral 8x7B, 64 H100): "
          f"{analytic_point_ms(CASES[0][0]):.1f} ms CPU (target < 30 ms)")
    for path, target in CASES:
        sc = load_scenario(ROOT / path)
        for fidelity in ("des", "analytic"):
            t, c = time.perf_counter(), time.process_time()
            sim = Simulation(sc, fidelity=fidelity)  # type: ignore[arg-type]
            res = sim.run()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            ops = sim.ops_simulated
            print(f"{sc.name:24s} {fidelity:8s} wall {wall:6.2f} s cpu {cpu:6.2f} s "
                  f"(target {target} s)  step {res.step_time_s:.3f} s  "
                  f"{res.model_tflops_per_device:.0f} TFLOP/s  ops {ops:,} ({ops / wall:,.0f}/s)")


if __name__ == "__main__":
    main()
