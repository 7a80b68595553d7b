"""Properties of the max-min fluid model and of the collectives built on it (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from moesim.cluster import build_cluster
from moesim.cluster.synthetic import gpu_cluster
from moesim.network import all_to_all_v_time, make_flow_set, max_min_rates, solve_max_min

NUM_LINKS = 5


@st.composite
def flow_problems(draw: st.DrawFn) -> tuple:
    nflow = draw(st.integers(1, 8))
    paths = [sorted(draw(st.sets(st.integers(0, NUM_LINKS - 1), min_size=1, max_size=3)))
             for _ in range(nflow)]
    sizes = draw(st.lists(st.floats(0.1, 100.0), min_size=nflow, max_size=nflow))
    starts = draw(st.lists(st.sampled_from([0.0, 0.0, 0.5, 2.0]), min_size=nflow,
                           max_size=nflow))
    caps = np.array(draw(st.lists(st.floats(0.5, 20.0), min_size=NUM_LINKS,
                                  max_size=NUM_LINKS)))
    return make_flow_set(paths, sizes, start_s=starts), caps


def _link_load(flows, rates: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.bincount(flows.links, weights=flows.coeff * rates[flows.entry_flow],
                       minlength=NUM_LINKS)


@settings(max_examples=60, deadline=None)
@given(flow_problems())
def test_no_link_above_capacity(problem: tuple) -> None:
    flows, caps = problem
    rates = max_min_rates(flows, caps)
    assert np.all(_link_load(flows, rates) <= caps * (1 + 1e-9))


@settings(max_examples=60, deadline=None)
@given(flow_problems())
def test_every_flow_has_a_saturated_bottleneck_where_it_is_largest(problem: tuple) -> None:
    # Max-min fairness: each flow crosses a saturated link on which no flow has a higher rate.
    flows, caps = problem
    rates = max_min_rates(flows, caps)
    load = _link_load(flows, rates)
    ent = flows.entry_flow
    for f in range(flows.num_flows):
        links = flows.links[flows.indptr[f]:flows.indptr[f + 1]]
        ok = False
        for link in links:
            saturated = load[link] >= caps[link] * (1 - 1e-9)
            on_link = ent[flows.links == link]
            if saturated and rates[on_link].max() <= rates[f] * (1 + 1e-9):
                ok = True
        assert ok, f"flow {f} has no bottleneck"


@settings(max_examples=60, deadline=None)
@given(flow_problems())
def test_bytes_delivered_equal_bytes_sent(problem: tuple) -> None:
    flows, caps = problem
    res = solve_max_min(flows, caps)
    assert np.all(np.isfinite(res.completion_s))
    assert np.all(res.completion_s >= flows.start_s)
    # Each flow ran at most at its path's narrowest capacity, so it cannot finish earlier.
    for f in range(flows.num_flows):
        links = flows.links[flows.indptr[f]:flows.indptr[f + 1]]
        fastest = flows.size_bytes[f] / caps[links].min()
        assert res.completion_s[f] - flows.start_s[f] >= fastest * (1 - 1e-9)
    expect = np.bincount(flows.links, weights=flows.size_bytes[flows.entry_flow],
                         minlength=NUM_LINKS)
    assert np.allclose(res.link_bytes, expect)


@settings(max_examples=60, deadline=None)
@given(flow_problems(), st.integers(0, NUM_LINKS - 1), st.floats(1.0, 10.0))
def test_raising_one_capacity_never_lowers_the_smallest_rate(problem: tuple, link: int,
                                                             factor: float) -> None:
    flows, caps = problem
    before = max_min_rates(flows, caps).min()
    caps2 = caps.copy()
    caps2[link] *= factor
    assert max_min_rates(flows, caps2).min() >= before * (1 - 1e-9)


@settings(max_examples=60, deadline=None)
@given(flow_problems(), st.floats(1.01, 8.0))
def test_scaling_every_capacity_shortens_every_completion(problem: tuple, c: float) -> None:
    flows, caps = problem
    slow = solve_max_min(flows, caps).completion_s - flows.start_s
    fast = solve_max_min(flows, caps * c).completion_s - flows.start_s
    assert np.all(fast < slow * (1 + 1e-9))


CLUSTER = build_cluster(gpu_cluster("H100", 4))


@settings(max_examples=15, deadline=None)
@given(st.permutations(list(range(8))), st.integers(0, 2**31 - 1))
def test_all_to_all_invariant_under_relabeling_within_nodes(perm: list[int], seed: int) -> None:
    # Relabel the GPUs of node 0 and node 1 by the same permutation of local indices: the
    # rail-optimized 2-node cluster is symmetric under it, so the time cannot change.
    rng = np.random.default_rng(seed)
    traffic = rng.lognormal(17.0, 1.0, size=(16, 16))
    group = list(range(16))
    relabeled = [8 * (r // 8) + perm[r % 8] for r in group]
    a = all_to_all_v_time(CLUSTER, [group], traffic).time_s
    b = all_to_all_v_time(CLUSTER, [relabeled], traffic).time_s
    assert abs(a - b) <= 1e-9 * a
