"""Request streams: arrival processes and length distributions against their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.serving.requests import _rng, arrivals, generate_requests, lengths
from moesim.specs.serving import (
    BurstArrivalSpec,
    GammaArrivalSpec,
    LogNormalLengthSpec,
    MMPPArrivalSpec,
    PoissonArrivalSpec,
    UniformLengthSpec,
)


def test_poisson_gaps_have_mean_one_over_rate_and_cv_one():
    t = arrivals(PoissonArrivalSpec(rate_per_s=20.0), 20000, _rng(0, 0))
    gaps = np.diff(t)
    assert t[0] == 0.0 and gaps.mean() == pytest.approx(1 / 20, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)


def test_gamma_gaps_have_the_asked_cv():
    t = arrivals(GammaArrivalSpec(rate_per_s=5.0, cv=3.0), 40000, _rng(0, 0))
    gaps = np.diff(t)
    assert gaps.mean() == pytest.approx(0.2, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.1)


def test_mmpp_mean_rate_is_the_dwell_weighted_rate():
    spec = MMPPArrivalSpec(rates_per_s=(50.0, 5.0), mean_dwell_s=(1.0, 3.0))
    t = arrivals(spec, 30000, _rng(0, 0))
    assert (len(t) - 1) / t[-1] == pytest.approx(spec.mean_rate_per_s, rel=0.1)
    assert spec.mean_rate_per_s == pytest.approx((50 + 15) / 4)


def test_burst_and_lengths():
    assert (arrivals(BurstArrivalSpec(at_s=2.0), 5, _rng(0, 0)) == 2.0).all()
    u = lengths(UniformLengthSpec(min_tokens=10, max_tokens=12), 3000, _rng(0, 1))
    assert set(u.tolist()) == {10, 11, 12}
    ln = lengths(LogNormalLengthSpec(mean_tokens=500, cv=0.5, max_tokens=100000), 40000,
                 _rng(0, 1))
    assert ln.mean() == pytest.approx(500, rel=0.02)
    assert ln.std() / ln.mean() == pytest.approx(0.5, rel=0.05)


def test_streams_are_named_and_deterministic(root):
    from moesim.specs.loader import load_scenario

    s = load_scenario(root / "scenarios/serving/qwen3-30b-a3b-8xh100-aggregated.yaml")
    a, b = generate_requests(s.workload, 0), generate_requests(s.workload, 0)
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert np.array_equal(a.input_tokens, b.input_tokens)
    # Changing the output distribution leaves arrivals and inputs alone.
    wl = s.workload.model_copy(update={"output_length": UniformLengthSpec(min_tokens=1,
                                                                          max_tokens=2)})
    c = generate_requests(wl, 0)
    assert np.array_equal(a.arrival_s, c.arrival_s)
    assert np.array_equal(a.input_tokens, c.input_tokens)
    assert not np.array_equal(a.input_tokens, generate_requests(s.workload, 1).input_tokens)
