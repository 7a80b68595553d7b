"""Monte Carlo of a run against Daly's closed form; determinism by seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moesim.goodput import daly
from moesim.goodput.montecarlo import simulate_walls, simulated_best_interval

CASES = [  # (solve, interval, delta, restart, mtbf): short and long MTBF, a remainder segment
    (30 * 86400.0, 3600.0, 60.0, 600.0, 86400.0),
    (10 * 86400.0, 240.0, 3.0, 600.0, 10000.0),
    (5 * 86400.0 + 1234.0, 900.0, 20.0, 300.0, 7200.0),
]


@pytest.mark.parametrize("solve,tau,delta,restart,mtbf", CASES)
def test_monte_carlo_mean_matches_the_closed_form(solve: float, tau: float, delta: float,
                                                  restart: float, mtbf: float) -> None:
    walls = simulate_walls(solve, tau, delta, restart, mtbf, runs=4000, seed=7)
    sem = walls.std(ddof=1) / math.sqrt(len(walls))
    assert abs(walls.mean() - daly.expected_wall_s(solve, tau, delta, restart, mtbf)) < 4 * sem
    assert np.all(walls >= solve)


def test_same_seed_same_runs_other_seed_other_runs() -> None:
    a = simulate_walls(*CASES[1], runs=500, seed=3)
    b = simulate_walls(*CASES[1], runs=500, seed=3)
    c = simulate_walls(*CASES[1], runs=500, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_no_failures_every_run_is_the_ideal_time() -> None:
    walls = simulate_walls(1e6, math.inf, 60, 600, math.inf, runs=50, seed=0)
    assert np.all(walls == 1e6)


def test_the_simulated_best_interval_is_near_daly() -> None:
    solve, delta, restart, mtbf = 20 * 86400.0, 60.0, 600.0, 20000.0
    best = daly.daly_interval_s(delta, mtbf)
    sim, curve = simulated_best_interval(solve, best, delta, restart, mtbf, runs=400, seed=1)
    assert len(curve) == 17 and best / 2 <= sim <= best * 2  # the curve is flat near the optimum
    worst = max(m for _, m in curve)
    assert min(m for _, m in curve) < worst


def test_many_losses_per_run_use_the_normal_limit() -> None:
    # ~35,000 interruptions per run: sums drawn from the normal limit still match the closed form.
    case = (100 * 86400.0, 60.0, 1.0, 120.0, 250.0)
    walls = simulate_walls(*case, runs=400, seed=2)
    sem = walls.std(ddof=1) / math.sqrt(len(walls))
    assert abs(walls.mean() - daly.expected_wall_s(*case)) < 4 * sem
    assert daly.expected_failures(*case) > 10_000


def test_restarts_that_outpace_progress_are_infeasible() -> None:
    from pathlib import Path

    from moesim.errors import InfeasibleError
    from moesim.goodput import estimate_goodput, goodput_for
    from moesim.specs.loader import load_scenario

    s = load_scenario(Path(__file__).resolve().parents[3] / "scenarios"
                      / "qwen3-30b-a3b-8xh100.yaml")
    spec = goodput_for(s)
    # 10,000x Llama 3's rates on 8 GPUs: an interruption every ~33 min, a day to recover.
    sources = tuple(x.model_copy(update={"failures_per_unit_hour": x.failures_per_unit_hour * 1e4})
                    for x in spec.reliability.sources)
    rel = spec.reliability.model_copy(update={"sources": sources, "restart_s": 86400.0})
    with pytest.raises(InfeasibleError, match="restart about"):
        estimate_goodput(s, spec.model_copy(update={"reliability": rel}), 1e12, 1e5)
