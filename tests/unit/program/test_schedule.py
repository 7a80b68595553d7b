"""Pipeline schedules: every micro-batch once forward and once backward, dependencies order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from moesim.program.schedule import interleaved, one_f_one_b


@given(st.integers(1, 8), st.integers(1, 32))
def test_1f1b_runs_each_micro_batch_once(pp: int, m: int) -> None:
    for s in range(pp):
        acts = one_f_one_b(s, pp, m)
        assert sorted(a.micro_batch for a in acts if a.phase == "F") == list(range(m))
        assert sorted(a.micro_batch for a in acts if a.phase == "B") == list(range(m))
        for a in acts:  # a backward never precedes its own forward
            if a.phase == "B":
                assert acts.index(a) > acts.index(a._replace(phase="F"))
        # in flight at most pp - s micro-batches (1F1B's memory bound)
        live = peak = 0
        for a in acts:
            live += 1 if a.phase == "F" else -1
            peak = max(peak, live)
        assert peak <= max(1, min(m, pp - s))


@given(st.integers(2, 4), st.integers(1, 4), st.integers(2, 4))
def test_interleaved_covers_all_chunks(pp: int, groups: int, v: int) -> None:
    m = pp * groups
    for s in range(pp):
        acts = interleaved(s, pp, m, v)
        assert len(acts) == 2 * m * v
        assert len(set(acts)) == 2 * m * v
