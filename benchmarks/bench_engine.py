"""Engine speed: wall and CPU time of one step for real scenarios (both fidelities), the op
intervals simulated per second, and bare simpy timeouts per second measured in the same run
(the event loop's ceiling on this machine), and the CPU time of one analytic planning point
(load a scenario with an override, simulate, memory, result) over a small sweep. Steps run
without their trace (``trace=False``; the numbers are the same, the trace is what
``moesim run`` adds). CPU time is
printed next to wall time because the 2-core VM is shared: wall time is only meaningful on
an idle machine; the load average is printed first.
Usage: python benchmarks/bench_engine.py"""

from __future__ import annotations

import os
import time
from pathlib import Path

import simpy

from moesim.engine import Simulation
from moesim.engine.session import EngineSession
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
CASES = [("scenarios/mixtral-8x7b-64xh100.yaml", 2.0),
         ("scenarios/deepseek-v3-2048xh800.yaml", 0.5)]


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


def analytic_point_ms(path: str, n: int = 40) -> tuple[float, float]:
    """CPU milliseconds per analytic point over ``n`` distinct batch sizes of ``path`` (every
    point builds its own program): (a planner's point: one EngineSession shared by the
    points, no memory estimate or trace; a standalone point: load, simulate, memory, result,
    each with a fresh session)."""
    base = load_scenario(ROOT / path)
    session = EngineSession()
    Simulation(base, fidelity="analytic", session=session).run()  # imports, tables
    points = [load_scenario(ROOT / path, (f"workload.global_batch_size={512 + 64 * (i + 1)}",))
              for i in range(n)]
    c = time.process_time()
    for sc in points:
        Simulation(sc, fidelity="analytic", session=session, include_memory=False,
                   trace=False).run()
    planner = (time.process_time() - c) / n * 1e3
    c = time.process_time()
    for i in range(n):
        sc = load_scenario(ROOT / path, (f"workload.global_batch_size={512 + 64 * (i + 1)}",))
        Simulation(sc, fidelity="analytic").run()
    return planner, (time.process_time() - c) / n * 1e3


def main() -> None:
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"bare simpy timeouts/s: {bare_simpy_rate():,.0f}")
    planner, alone = analytic_point_ms(CASES[0][0])
    print(f"analytic planning point (Mixtral 8x7B, 64 H100): {planner:.1f} ms CPU in a "
          f"planner's session, {alone:.1f} ms standalone (target 2 ms)")
    for path, target in CASES:
        sc = load_scenario(ROOT / path)
        for fidelity in ("des", "analytic"):
            t, c = time.perf_counter(), time.process_time()
            sim = Simulation(sc, fidelity=fidelity, trace=False)  # type: ignore[arg-type]
            res = sim.run()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            ops = sim.ops_simulated
            print(f"{sc.name:24s} {fidelity:8s} wall {wall:6.2f} s cpu {cpu:6.2f} s "
                  f"(target {target} s)  step {res.step_time_s:.3f} s  "
                  f"{res.model_tflops_per_device:.0f} TFLOP/s  ops {ops:,} ({ops / wall:,.0f}/s)")


if __name__ == "__main__":
    main()
