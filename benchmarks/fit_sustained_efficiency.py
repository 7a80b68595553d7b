"""Re-derive moesim's two fitted whole-step constants and their leave-one-out errors.

SUSTAINED_COMPUTE_EFFICIENCY (e: every compute kernel time is divided by it;
moesim/engine/binding.py) and HOST_OP_S (f: the host's issue time per modeled op;
moesim/engine/host.py) are fitted together: for each published case in CASES the analytic
step time T_i(e, f) is evaluated by the engine itself, and (e, f) minimizes
sum_i log(T_i(e, f) / P_i)^2 (P_i: the published step time). T is not linear in f (the host
only shows where it outruns the device), so the fit is a pattern search on a grid of 0.001
in e and 1 us in f, every point a real engine run. Then
the same fit runs once per case with that case left out, to show the error on a case the fit
did not see, and the held-out cases (HELD_OUT, never in any fit) are predicted.
Usage: python benchmarks/fit_sustained_efficiency.py   (about 3 minutes on 2 cores)
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from moesim.engine import Simulation
from moesim.engine.binding import SUSTAINED_COMPUTE_EFFICIENCY, ScenarioCostProvider
from moesim.engine.host import HOST_OP_S
from moesim.results.flops import model_flops_per_step
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
# (scenario, published metric, value): published case ids mcore-mixtral8x7b-h100-64gpu,
# bridge-qwen3-30b-h100-16gpu (26.06, EP16), automodel-qwen3-30b-8gpu-h100-bf16,
# dsv3-h800-2048gpu-step-breakdown.
CASES = [("scenarios/mixtral-8x7b-64xh100.yaml", "model_tflops_per_device", 468.0),
         ("scenarios/qwen3-30b-a3b-16xh100.yaml", "tokens_per_s_per_device", 8826.0),
         ("scenarios/qwen3-30b-a3b-8xh100.yaml", "step_time_s", 21.773),
         ("scenarios/deepseek-v3-2048xh800.yaml", "step_time_s", 19.926)]
# Never fitted to: Megatron-Bridge 26.02.01 PP2 VP12 EP8 on the same 16 H100.
HELD_OUT = [("scenarios/published/bridge-qwen3-30b-h100-16gpu-pp2.yaml",
             "tokens_per_s_per_device", 9058.0)]
E_STEP, F_STEP = 0.001, 1e-6


def published_step_s(path: str, metric: str, value: float) -> float:
    """The published figure as a step time (seconds), with moesim's FLOP convention."""
    sc = load_scenario(ROOT / path)
    if metric == "step_time_s":
        return value
    if metric == "tokens_per_s_per_device":
        return sc.workload.tokens_per_step / (value * sc.devices)
    flops = model_flops_per_step(sc.model_spec, sc.workload)
    return flops / (value * 1e12 * sc.devices)


@cache
def step_at(path: str, ei: int, fi: int) -> float:
    """Analytic step time of ``path`` at e = ei * E_STEP, host issue time = fi * F_STEP."""
    sc = load_scenario(ROOT / path)
    costs = ScenarioCostProvider(sc, fidelity="analytic", sustained_efficiency=ei * E_STEP)
    sim = Simulation(sc, fidelity="analytic", costs=costs, include_memory=False,
                     host_op_s=fi * F_STEP)
    return sim.run().step_time_s


def loss(cases: list[tuple[str, float]], ei: int, fi: int) -> float:
    return sum(float(np.log(step_at(p, ei, fi) / pub)) ** 2 for p, pub in cases)


def fit(cases: list[tuple[str, float]], start: tuple[int, int] = (800, 40)) -> tuple[int, int]:
    """Pattern search for the grid point (ei, fi) of least loss; steps halve to one grid unit."""
    best, here = start, loss(cases, *start)
    de, df = 32, 32
    while True:
        moved = False
        for d in ((de, 0), (-de, 0), (0, df), (0, -df)):
            cand = (min(1000, max(300, best[0] + d[0])), max(0, best[1] + d[1]))
            val = loss(cases, *cand)
            if val < here - 1e-12:
                best, here, moved = cand, val, True
        if not moved:
            if de == 1 and df == 1:
                return best
            de, df = max(1, de // 2), max(1, df // 2)


def main() -> None:
    cases = [(p, published_step_s(p, m, v)) for p, m, v in CASES]
    e, f = fit(cases)
    print(f"fitted over all {len(cases)} cases: sustained efficiency {e * E_STEP:.3f}, "
          f"host issue time {f * F_STEP * 1e6:.0f} us per op "
          f"(in moesim: {SUSTAINED_COMPUTE_EFFICIENCY}, {HOST_OP_S * 1e6:.0f} us)")
    for i, (path, pub) in enumerate(cases):
        t = step_at(path, e, f)
        le, lf = fit(cases[:i] + cases[i + 1:], (e, f))
        tl = step_at(path, le, lf)
        print(f"{Path(path).stem:28s} published step {pub:7.3f} s  fit {t:7.3f} s "
              f"({100 * (t / pub - 1):+5.1f}%)  left out: e={le * E_STEP:.3f} "
              f"f={lf * F_STEP * 1e6:.0f}us -> {tl:7.3f} s ({100 * (tl / pub - 1):+5.1f}%)")
    for path, metric, value in HELD_OUT:
        pub = published_step_s(path, metric, value)
        t = step_at(path, e, f)
        print(f"held out {Path(path).stem:28s} published step {pub:7.3f} s  "
              f"predicted {t:7.3f} s ({100 * (t / pub - 1):+5.1f}%)")


if __name__ == "__main__":
    main()
