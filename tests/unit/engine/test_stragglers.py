"""Stragglers: the slowest-of-N closed form, its draws, and the engine option (off by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moesim.engine import Simulation
from moesim.engine.stragglers import draw_max, expected_max, stream, survival
from moesim.specs.goodput import StragglerSpec
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"
ONE_PERCENT = StragglerSpec(straggler_probability=0.01, straggler_slowdown=0.1)
JITTER = StragglerSpec(jitter_sigma=0.01)
BOTH = StragglerSpec(jitter_sigma=0.01, straggler_probability=0.01, straggler_slowdown=0.1)


def test_off_is_exactly_one() -> None:
    assert expected_max(StragglerSpec(), 16384) == 1.0
    assert not StragglerSpec(straggler_probability=0.5).active  # no slowdown: nothing happens


def test_one_rank_is_the_mean_factor() -> None:
    # E[exp(sigma Z)] = exp(sigma^2 / 2); E[1 + B S] = 1 + p s.
    assert expected_max(JITTER, 1) == pytest.approx(np.exp(0.01**2 / 2), abs=2e-5)
    assert expected_max(ONE_PERCENT, 1) == pytest.approx(1.001, abs=2e-5)


def test_no_jitter_closed_form_by_hand() -> None:
    # Only stragglers, p = 1, s = 0.1: max of n Exp(0.1) has mean 0.1 x H_n (harmonic number).
    spec = StragglerSpec(straggler_probability=1.0, straggler_slowdown=0.1)
    for n in (1, 4, 100):
        harmonic = sum(1.0 / k for k in range(1, n + 1))
        assert expected_max(spec, n) == pytest.approx(1.0 + 0.1 * harmonic, rel=1e-5)


@pytest.mark.parametrize("spec", [ONE_PERCENT, JITTER, BOTH])
def test_expected_max_grows_with_n(spec: StragglerSpec) -> None:
    values = [expected_max(spec, n) for n in (1, 8, 64, 1024, 16384, 131072)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("spec", [ONE_PERCENT, JITTER, BOTH])
@pytest.mark.parametrize("n", [8, 1024])
def test_draws_match_the_closed_form(spec: StragglerSpec, n: int) -> None:
    m = draw_max(spec, n, stream(5, 0), size=3000)
    sem = m.std(ddof=1) / np.sqrt(len(m))
    assert abs(m.mean() - expected_max(spec, n)) < 4 * sem + 1e-4


def test_survival_is_a_distribution() -> None:
    x = np.linspace(0.5, 3.0, 200)
    s = survival(BOTH, x)
    assert np.all(np.diff(s) <= 1e-12) and s[0] > 0.99 and s[-1] < 1e-4


def test_a_one_percent_straggler_rate_at_1k_and_16k() -> None:
    # docs/goodput.md: with 1% of ranks 10% slower on average (exponential), a 1,024-device
    # step's compute waits 29.0% longer and a 16,384-device one 56.8%: at that scale almost
    # every step has stragglers, and the slowest of more of them is slower.
    assert expected_max(ONE_PERCENT, 1024) == pytest.approx(1.290, abs=2e-3)
    assert expected_max(ONE_PERCENT, 16384) == pytest.approx(1.568, abs=2e-3)


@pytest.fixture(scope="module")
def mixtral():  # noqa: ANN201
    return load_scenario(MIXTRAL)


@pytest.mark.parametrize("fidelity", ["analytic", "des"])
def test_the_engine_option_defaults_off(mixtral, fidelity: str) -> None:  # noqa: ANN001
    plain = Simulation(mixtral, fidelity=fidelity, include_memory=False).run()
    off = Simulation(mixtral, fidelity=fidelity, include_memory=False,
                     stragglers=StragglerSpec()).run()
    assert off.to_json(include_trace=False) == plain.to_json(include_trace=False)


def test_analytic_scales_compute_by_the_expectation(mixtral) -> None:  # noqa: ANN001
    plain = Simulation(mixtral, fidelity="analytic", include_memory=False).run()
    sim = Simulation(mixtral, fidelity="analytic", include_memory=False, stragglers=BOTH)
    slow = sim.run()
    f = expected_max(BOTH, mixtral.devices // mixtral.parallelism.pipeline_parallel_degree)
    assert sim.straggler_factors == [pytest.approx(f)] * 4
    assert plain.step_time_s < slow.step_time_s <= plain.step_time_s * f * (1 + 1e-9)


def test_des_draws_are_seeded(mixtral) -> None:  # noqa: ANN001
    runs = [Simulation(mixtral, fidelity="des", include_memory=False, stragglers=BOTH,
                       straggler_step=k) for k in (0, 0, 1)]
    steps = [r.run().step_time_s for r in runs]
    assert steps[0] == steps[1] != steps[2]
    assert runs[0].straggler_factors != runs[2].straggler_factors
    plain = Simulation(mixtral, fidelity="des", include_memory=False).run().step_time_s
    assert min(steps) > plain
