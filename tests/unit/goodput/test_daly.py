"""Young/Daly closed forms against hand arithmetic and Daly's published examples."""

from __future__ import annotations

import math

import pytest

from moesim.goodput import daly


def test_young_and_daly_by_hand() -> None:
    # delta = 60 s, M = 1 day = 86,400 s: Young sqrt(2 x 60 x 86,400) = sqrt(10,368,000)
    # = 3,219.94 s. Daly: x = sqrt(60 / 172,800) = 0.018634; 1 + x/3 + x^2/9 = 1.0062499;
    # 3,219.94 x 1.0062499 - 60 = 3,180.06 s.
    assert daly.young_interval_s(60, 86400) == pytest.approx(3219.94, abs=0.01)
    assert daly.daly_interval_s(60, 86400) == pytest.approx(3180.06, abs=0.01)
    # Efficiency with R = 600 s at that interval: e^(600/86,400) = 1.0069686;
    # expm1(3,240.06 / 86,400) = 0.0382127; segment = 86,400 x 1.0069686 x 0.0382127
    # = 3,324.6 s of wall per 3,180.06 s of work: 95.65%.
    eff = daly.steady_efficiency(3180.06, 60, 600, 86400)
    assert eff == pytest.approx(3180.06 / 3324.6, rel=1e-4)
    assert eff == pytest.approx(0.9565, abs=1e-4)


@pytest.mark.parametrize("mtbf_h,minutes", [(24, 117), (6, 57), (0.25, 9.1)])
def test_daly_figures_3_to_5(mtbf_h: float, minutes: float) -> None:
    # Daly (FGCS 22(3), 2006), Figs. 3-5: R = 10 min, delta = 5 min; "the new model predicts
    # tau_opt = 117 min" for M = 24 h, 57 min for M = 6 h, 9.1 min for M = 15 min.
    tau = daly.daly_interval_s(300, mtbf_h * 3600) / 60
    assert tau == pytest.approx(minutes, abs=0.5 if minutes > 10 else 0.05)


def test_daly_interval_when_checkpoints_are_slower_than_failures() -> None:
    assert daly.daly_interval_s(500, 200) == 200  # delta >= 2M: checkpoint every M


def test_no_failures_is_the_ideal_time() -> None:
    assert daly.expected_wall_s(1e6, math.inf, 30, 600, math.inf) == 1e6
    assert daly.young_interval_s(30, math.inf) == math.inf
    assert daly.expected_failures(1e6, 1000, 30, 600, math.inf) == 0.0
    assert daly.steady_efficiency(1000, 30, 600, math.inf) == 1.0


def test_wall_time_sums_segments() -> None:
    # 10.5 intervals: 10 full segments and one of half the work.
    seg = daly.segment_wall_s(1000, 20, 300, 50000)
    half = daly.segment_wall_s(500, 20, 300, 50000)
    assert daly.expected_wall_s(10500, 1000, 20, 300, 50000) == pytest.approx(10 * seg + half)
    assert daly.segments(10500, 1000) == (10, pytest.approx(500))


def test_loss_per_failure_is_about_half_a_segment() -> None:
    # L << M: E[X | X < L] -> L/2; restart phase -> R.
    assert daly.lost_work_per_failure_s(1000, 0, 1e7) == pytest.approx(500, rel=1e-3)
    assert daly.restart_per_failure_s(600, 1e7) == pytest.approx(600, rel=1e-3)


def test_daly_minimizes_the_wall_time_among_nearby_intervals() -> None:
    delta, restart, mtbf = 30.0, 600.0, 20000.0
    best = daly.daly_interval_s(delta, mtbf)
    at = [daly.steady_efficiency(best * f, delta, restart, mtbf) for f in (0.5, 0.8, 1.0, 1.25, 2)]
    assert max(at) == pytest.approx(at[2], rel=2e-4)
