"""DualPipe's simulated schedule (moesim.engine.dualpipe) on hand-checkable chunk times.

Chunks are uniform: forward F, input backward Bi, weight backward W (full backward
B = Bi + W), communication cf / cb of the forward / backward exposed when a chunk runs alone
and hidden in a pair, so a pair takes P = (F - cf) + (Bi - cb) + W when that exceeds cf + cb.
"""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from moesim.engine.dualpipe import simulate_dualpipe
from moesim.program.schedule import rank_program

F, BI, W, CF, CB = 1.0, 1.5, 0.5, 0.4, 0.5


def deepseek_bubble(pp: int, f_and_b: float, b: float, w: float) -> float:
    """DualPipe's bubble in DeepSeek-V3 Table 2: (PP/2 - 1)(F&B + B - 3W)."""
    return (pp / 2 - 1) * (f_and_b + b - 3 * w)
P = (F - CF) + (BI - CB) + W  # 2.1 > cf + cb = 0.9


def _phase(total: float, comm: float, m: int) -> NS:
    return NS(steps=[None], summary=NS(total=np.full(m, total), exposed={"ep": np.full(m, comm)}))


def _plans(pp: int, m: int) -> dict:
    return {(r, c): NS(forward=_phase(F, CF, m), backward_input=_phase(BI, CB, m),
                       backward_weight=_phase(W, 0.0, m))
            for r in range(pp) for c in (r, pp - 1 - r)}


def test_two_ranks_by_hand() -> None:
    # PP=2, m=4. Rank 0 runs F(d0,0) [0,1], F(d1,0) [1,2] (rank 1's F(d1,0) ends at 1),
    # F(d0,1) [2,3], B(d1,0) [3,5] (last stage of direction 1: its own forward), the pair
    # F(d1,1)+B(d0,0) [5,5+P] (rank 1's B(d0,0) ends at 5), B(d1,1) [5+P,7+P],
    # Bi(d0,1) [7+P,8.5+P] (after rank 1's B(d0,1) [5+P,7+P]), W [8.5+P,9+P]. Rank 1 mirrors
    # it. Both end at 9 + P with no idle time; the closed form gives (PP/2 - 1)(...) = 0.
    sched = simulate_dualpipe(_plans(2, 4), 2, 4, 0.0, 0.0)
    for rank in sched:
        assert rank.finish == pytest.approx(9.0 + P)
        assert rank.bubble == pytest.approx(0.0, abs=1e-12)
        assert rank.forward_s == pytest.approx(3 * F)
        assert rank.overlapped_s == pytest.approx(P)
        assert rank.backward_s == pytest.approx(2 * (BI + W) + BI)
        assert rank.weight_s == pytest.approx(W)


@pytest.mark.parametrize("pp", [2, 4, 8, 16])
@pytest.mark.parametrize("extra", [0, 2, 10])
def test_every_micro_batch_runs_once_on_every_rank(pp: int, extra: int) -> None:
    m = 2 * pp + extra
    for r in range(pp):
        prog = rank_program(r, pp, m)
        fwd = sum(1 for t in prog if t[0] in ("F", "FB"))
        bwd = sum(1 for t in prog if t[0] in ("B", "Bi", "FB"))
        deferred = sum(1 for t in prog if t[0] == "Bi")
        assert (fwd, bwd) == (m, m)
        assert sum(1 for t in prog if t[0] == "W") == deferred
    sched = simulate_dualpipe(_plans(pp, m), pp, m, 0.0, 0.0)  # completes: no deadlock
    for rank in sched:
        assert rank.finish >= rank.busy - 1e-9


@pytest.mark.parametrize("pp", [4, 8, 16])
def test_two_more_micro_batches_add_one_main_loop_iteration(pp: int) -> None:
    # Step 4 runs m/2 - PP + half_rank + 1 times with two pairs each; the other steps do not
    # depend on m, so m + 2 adds exactly 2 P to every rank.
    m = 2 * pp
    a = simulate_dualpipe(_plans(pp, m), pp, m, 0.0, 0.0)
    b = simulate_dualpipe(_plans(pp, m + 2), pp, m + 2, 0.0, 0.0)
    for x, y in zip(a, b, strict=True):
        assert y.finish - x.finish == pytest.approx(2 * P)
        assert y.bubble == pytest.approx(x.bubble)


@pytest.mark.parametrize("pp", [4, 8, 16])
def test_idle_time_within_deepseek_closed_form(pp: int) -> None:
    m = 4 * pp
    bound = deepseek_bubble(pp, P, BI + W, W)
    sched = simulate_dualpipe(_plans(pp, m), pp, m, 0.0, 0.0)
    assert max(r.bubble for r in sched) <= bound + 1e-9
    assert min(r.bubble for r in sched) > 0.0  # more than two ranks: warm-up idles someone


def test_point_to_point_time_lengthens_the_step() -> None:
    pp, m = 8, 16
    fast = simulate_dualpipe(_plans(pp, m), pp, m, 0.0, 0.0)
    slow = simulate_dualpipe(_plans(pp, m), pp, m, 0.0, 0.05)
    assert max(r.finish for r in slow) > max(r.finish for r in fast)
    assert [r.busy for r in slow] == pytest.approx([r.busy for r in fast])


def test_too_few_micro_batches_is_refused() -> None:
    with pytest.raises(ValueError, match="m >= 2 PP"):
        rank_program(0, 8, 14)
