"""Re-derive moesim.engine.binding.SUSTAINED_COMPUTE_EFFICIENCY and its leave-one-out errors.

For each published case (docs/engine.md, "Calibration") the analytic step time is evaluated
at two efficiencies e; compute time scales as 1/e and the rest does not, so
T(e) = N + C / e (exact for the additive parts; DualPipe pairs and bubbles are close to it).
One e is fitted by least squares of log(T(e) / T_published) over all cases (grid search),
then once per case with that case left out, to show the error on an unseen case.
Usage: python benchmarks/fit_sustained_efficiency.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moesim.engine import Simulation
from moesim.engine.binding import SUSTAINED_COMPUTE_EFFICIENCY, ScenarioCostProvider
from moesim.results.flops import model_flops_per_step
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
# (scenario, published metric, value): published case ids mcore-mixtral8x7b-h100-64gpu,
# bridge-qwen3-30b-h100-16gpu, automodel-qwen3-30b-8gpu-h100-bf16,
# dsv3-h800-2048gpu-step-breakdown.
CASES = [("mixtral-8x7b-64xh100", "model_tflops_per_device", 468.0),
         ("qwen3-30b-a3b-16xh100", "tokens_per_s_per_device", 8826.0),
         ("qwen3-30b-a3b-8xh100", "step_time_s", 21.773),
         ("deepseek-v3-2048xh800", "step_time_s", 19.926)]
GRID = np.arange(0.30, 1.0001, 0.001)


def published_step_s(name: str, metric: str, value: float) -> float:
    """The published figure as a step time (seconds), with moesim's FLOP convention."""
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    if metric == "step_time_s":
        return value
    if metric == "tokens_per_s_per_device":
        return sc.workload.tokens_per_step / (value * sc.devices)
    flops = model_flops_per_step(sc.model_spec, sc.workload)
    return flops / (value * 1e12 * sc.devices)


def step_at(name: str, efficiency: float) -> float:
    sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    costs = ScenarioCostProvider(sc, fidelity="analytic", sustained_efficiency=efficiency)
    return Simulation(sc, fidelity="analytic", costs=costs, include_memory=False).run().step_time_s


def fit(terms: list[tuple[float, float, float]]) -> float:
    """The e on GRID minimizing sum log(T_i(e) / P_i)^2; terms are (N, C, P)."""
    err = [np.log((n + c / GRID) / p) ** 2 for n, c, p in terms]
    return float(GRID[int(np.argmin(np.sum(err, axis=0)))])


def main() -> None:
    terms = []
    for name, metric, value in CASES:
        t1, t2 = step_at(name, 1.0), step_at(name, 0.5)
        c = t2 - t1
        terms.append((t1 - c, c, published_step_s(name, metric, value)))
    e = fit(terms)
    print(f"fitted sustained efficiency over all cases: {e:.3f} "
          f"(in moesim: {SUSTAINED_COMPUTE_EFFICIENCY})")
    for i, (name, _, _) in enumerate(CASES):
        n, c, p = terms[i]
        e_loo = fit(terms[:i] + terms[i + 1:])
        print(f"{name:24s} published step {p:7.3f} s  at all-case fit {n + c / e:7.3f} s "
              f"({100 * ((n + c / e) / p - 1):+5.1f}%)  left out: e={e_loo:.3f} -> "
              f"{n + c / e_loo:7.3f} s ({100 * ((n + c / e_loo) / p - 1):+5.1f}%)")


if __name__ == "__main__":
    main()
