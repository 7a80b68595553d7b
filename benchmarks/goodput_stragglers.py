"""What a 1% straggler rate costs at 1k and 16k devices (docs/goodput.md, Stragglers).

Prints the closed-form expected slowest-of-N factor (moesim.engine.stragglers.expected_max)
beside the mean of seeded draws, for a few straggler models, and the DES step of Qwen3-30B on
16 H100 with the engine's straggler option (one draw per step, 8 steps).

    PYTHONPATH=$PWD python benchmarks/goodput_stragglers.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from moesim.engine import Simulation
from moesim.engine.stragglers import draw_max, expected_max, stream
from moesim.specs.goodput import StragglerSpec
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "1% of ranks, +10% mean (exponential)": StragglerSpec(straggler_probability=0.01,
                                                          straggler_slowdown=0.1),
    "1% of ranks, +50% mean": StragglerSpec(straggler_probability=0.01, straggler_slowdown=0.5),
    "jitter sigma 1%": StragglerSpec(jitter_sigma=0.01),
    "jitter 1% and 1% of ranks +10%": StragglerSpec(jitter_sigma=0.01,
                                                    straggler_probability=0.01,
                                                    straggler_slowdown=0.1),
}


def main() -> None:
    print(f"{'model':40s} {'N':>7s} {'closed form':>12s} {'draws (mean)':>13s}")
    for name, spec in MODELS.items():
        for n in (1024, 16384):
            m = draw_max(spec, n, stream(0, 0), size=1000)
            print(f"{name:40s} {n:7d} {expected_max(spec, n):12.4f} {m.mean():13.4f}")
    s = load_scenario(ROOT / "scenarios" / "qwen3-30b-a3b-16xh100.yaml")
    spec = MODELS["jitter 1% and 1% of ranks +10%"]
    t0 = time.perf_counter()
    plain = Simulation(s, fidelity="des", include_memory=False).run().step_time_s
    steps = [Simulation(s, fidelity="des", include_memory=False, stragglers=spec,
                        straggler_step=k).run().step_time_s for k in range(8)]
    ana = Simulation(s, fidelity="analytic", include_memory=False, stragglers=spec).run()
    base = Simulation(s, fidelity="analytic", include_memory=False).run()
    print(f"\nqwen3-30b-a3b-16xh100 DES step {plain:.4f} s; with stragglers (8 draws) mean "
          f"{np.mean(steps):.4f} s (x{np.mean(steps) / plain:.4f}); analytic expectation "
          f"x{ana.step_time_s / base.step_time_s:.4f}; {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
