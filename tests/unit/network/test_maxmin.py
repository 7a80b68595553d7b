"""Hand-solved max-min fair sharing cases (progressive filling, by hand in each comment)."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.network.maxmin import make_flow_set, max_min_rates, solve_max_min


def test_two_flows_on_one_link_get_half_each() -> None:
    # One link of 10 B/s, two flows of 10 B: 5 B/s each, both done at 10 / 5 = 2 s.
    flows = make_flow_set([[0], [0]], [10.0, 10.0])
    assert max_min_rates(flows, np.array([10.0])) == pytest.approx([5.0, 5.0])
    res = solve_max_min(flows, np.array([10.0]))
    assert res.completion_s == pytest.approx([2.0, 2.0])


def test_parking_lot_three_links() -> None:
    # Links 0, 1, 2 of capacity 1; the long flow crosses all three, one short flow per link.
    # Every link carries two flows and saturates at level 1/2: all four flows get 1/2.
    flows = make_flow_set([[0, 1, 2], [0], [1], [2]], [1.0] * 4)
    assert max_min_rates(flows, np.ones(3)) == pytest.approx([0.5] * 4)


def test_parking_lot_unequal_capacities() -> None:
    # Link 0 (capacity 1) carries long flow A and B; link 1 (capacity 2) carries A and C.
    # Link 0 saturates first at 1/2 (A = B = 0.5); C takes the rest of link 1: 2 - 0.5 = 1.5.
    flows = make_flow_set([[0, 1], [0], [1]], [1.0] * 3)
    assert max_min_rates(flows, np.array([1.0, 2.0])) == pytest.approx([0.5, 0.5, 1.5])


def test_finished_flow_frees_bandwidth_at_the_right_time() -> None:
    # Capacity 1, sizes 1 and 3: both at 0.5 until the first ends at 1 / 0.5 = 2 s; the second
    # has 3 - 1 = 2 B left at rate 1 and ends at 2 + 2 = 4 s.
    res = solve_max_min(make_flow_set([[0], [0]], [1.0, 3.0]), np.array([1.0]))
    assert res.completion_s == pytest.approx([2.0, 4.0])
    assert res.num_events == 2


def test_late_start_shares_from_its_start() -> None:
    # A (2 B) alone at rate 1 until B starts at t=1 with 1 B of A left; then 0.5 each: A ends at
    # 1 + 1 / 0.5 = 3 s, B has 2 - 1 = 1 B left, alone at rate 1: ends at 4 s.
    flows = make_flow_set([[0], [0]], [2.0, 2.0], start_s=[0.0, 1.0])
    res = solve_max_min(flows, np.array([1.0]))
    assert res.completion_s == pytest.approx([3.0, 4.0])
    assert res.first_rate_bytes_per_s == pytest.approx([1.0, 0.5])


def test_weighted_sharing_is_proportional() -> None:
    # Weights 1 and 3 on a link of 4 B/s: normalized level 1, rates 1 and 3.
    flows = make_flow_set([[0], [0]], [1.0, 1.0], weight=[1.0, 3.0])
    assert max_min_rates(flows, np.array([4.0])) == pytest.approx([1.0, 3.0])


def test_split_flow_uses_both_paths() -> None:
    # A flow split half-half over two links of 1 B/s reaches 2 B/s (0.5 x 2 = 1 on each).
    flows = make_flow_set([[0, 1]], [4.0], coeffs=[np.array([0.5, 0.5])])
    res = solve_max_min(flows, np.ones(2))
    assert res.first_rate_bytes_per_s == pytest.approx([2.0])
    assert res.completion_s == pytest.approx([2.0])
    assert res.link_bytes == pytest.approx([2.0, 2.0])


def test_local_flow_finishes_at_its_start() -> None:
    res = solve_max_min(make_flow_set([[], [0]], [5.0, 1.0], start_s=[0.5, 0.0]), np.ones(1))
    assert res.completion_s == pytest.approx([0.5, 1.0])
