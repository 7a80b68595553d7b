"""Direct all-to-all-v from link loads (moesim.network.direct) against per-pair routes, the
general flow solver, hand-derived loads, and row-block input against dense input."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.cluster import build_cluster
from moesim.cluster.synthetic import gpu_cluster
from moesim.errors import SpecError
from moesim.network import all_to_all_v_time
from moesim.network.alltoall import _latency, direct_flows
from moesim.network.direct import DirectLoads
from moesim.network.flows import (
    effective_capacity,
    flows_from_pairs,
    link_bytes_by_name,
    phase_from_loads,
    solve_phase,
)
from moesim.network.maxmin import FlowSet, make_flow_set, max_min_rates

H100_2N = build_cluster(gpu_cluster("H100", 2))
# 8 nodes in scalable units of 2: traffic inside a node, inside a unit and across the spine.
H100_8N = build_cluster(gpu_cluster("H100", 8, nodes_per_su=2))
H100_8N_FLAT = build_cluster(gpu_cluster("H100", 8, nodes_per_su=2, rail_optimized=False,
                                         oversubscription=2.0))
CLUSTERS = [H100_2N, H100_8N, H100_8N_FLAT]


def _route_loads(cluster, groups, traffic) -> np.ndarray:
    """Brute force: every pair's bytes over its own route (ClusterPlan.path)."""
    load = np.zeros(cluster.num_links)
    t = np.broadcast_to(traffic, (len(groups),) + traffic.shape[-2:])
    for gi, g in enumerate(groups):
        for i, s in enumerate(g):
            for j, d in enumerate(g):
                if i != j and s != d:
                    links, coeff = cluster.path(s, d)
                    np.add.at(load, links, coeff * t[gi, i, j])
    return load


def _groups(cluster, kind: str) -> list[list[int]]:
    n = cluster.num_devices
    if kind == "all":
        return [list(range(n))]
    if kind == "strided":  # two EP groups, every other GPU
        return [list(range(0, n, 2)), list(range(1, n, 2))]
    return [np.random.default_rng(n).permutation(n).tolist()]  # ranks in no device order


def _traffic(n: int, g: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.lognormal(16.0, 1.5, size=(g, n, n)) * (rng.random((g, n, n)) < 0.7)
    return t[0] if g == 1 else t


@pytest.mark.parametrize("cluster", CLUSTERS, ids=["2n", "8n-su2", "8n-su2-flat"])
@pytest.mark.parametrize("kind", ["all", "strided", "permuted"])
def test_loads_equal_per_pair_routes(cluster, kind) -> None:
    groups = _groups(cluster, kind)
    n = len(groups[0])
    t = _traffic(n, len(groups))
    acc = DirectLoads(cluster, np.array(groups))
    acc.add_rows(t)
    expected = _route_loads(cluster, groups, t)
    got = acc.link_bytes()
    np.testing.assert_array_equal(got > 0, expected > 0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert acc.max_row_sum == pytest.approx(float(t.sum(axis=-1).max()), rel=1e-12)


@pytest.mark.parametrize("cluster", CLUSTERS, ids=["2n", "8n-su2", "8n-su2-flat"])
def test_time_equals_flow_solver_and_busiest_link(cluster) -> None:
    # The general solver on one flow per pair (solve_max_min, remaining-bytes weighting) and
    # the busiest link's drain time from the loads alone give the same phase.
    groups = _groups(cluster, "all")
    n = len(groups[0])
    t = _traffic(n, 1, seed=3)
    res = all_to_all_v_time(cluster, groups, t)
    phase = solve_phase(cluster, direct_flows(cluster, np.array(groups), t[None]), "p2p")
    lat = _latency(cluster, groups[0], "direct")
    assert res.time_s == pytest.approx(phase.time_s + lat, rel=1e-12)
    load = _route_loads(cluster, groups, t)
    busiest = float((load / effective_capacity(cluster, "p2p")).max())
    assert res.time_s == pytest.approx(busiest + lat, rel=1e-12)
    assert res.link_bytes == pytest.approx(link_bytes_by_name(cluster, phase.link_bytes),
                                           rel=1e-12)
    assert all_to_all_v_time(cluster, groups, t, fidelity="analytic").time_s == res.time_s


def _event_driven_makespan(flows: FlowSet, cap: np.ndarray) -> float:
    """Remaining-bytes-weighted max-min, re-solved at every completion (no shortcut)."""
    remaining = flows.size_bytes.copy()
    t = 0.0
    while (remaining > 0).any():
        active = remaining > 0
        weighted = FlowSet(flows.indptr, flows.links, flows.coeff, flows.size_bytes,
                           flows.start_s, remaining.copy())
        rate = max_min_rates(weighted, cap, active)
        dt = float((remaining[active] / rate[active]).min())
        remaining[active] -= rate[active] * dt
        remaining[active & (remaining <= 1e-9 * flows.size_bytes)] = 0.0
        t += dt
    return t


@pytest.mark.parametrize("seed", range(5))
def test_common_start_phase_ends_at_busiest_link(seed) -> None:
    # What lets the loads replace the flows: a common-start phase under remaining-bytes
    # sharing ends exactly at max over links of bytes / capacity.
    rng = np.random.default_rng(seed)
    num_links, num_flows = 12, 40
    paths = [rng.choice(num_links, size=rng.integers(1, 5), replace=False)
             for _ in range(num_flows)]
    flows = make_flow_set(paths, rng.lognormal(0.0, 1.0, num_flows))
    cap = rng.uniform(1.0, 4.0, num_links)
    load = np.bincount(flows.links, flows.size_bytes[flows.entry_flow], minlength=num_links)
    assert _event_driven_makespan(flows, cap) == pytest.approx(float((load / cap).max()),
                                                               rel=1e-9)


def test_hand_derived_two_nodes_uniform() -> None:
    # 16 GPUs, b bytes per pair: each GPU sends 7b over NVLink inside its node and 7b to its
    # same-rail proxy (PXN); each NIC carries the 8 GPUs' bytes to one GPU of the other node.
    b = 1e6
    t = np.full((16, 16), b)
    res = all_to_all_v_time(H100_2N, [list(range(16))], t)
    lb = res.link_bytes
    assert lb["nvlink:up:d0"] == pytest.approx(14 * b) and lb["nvlink:down:d9"] == pytest.approx(14 * b)
    assert lb["nic:up:n0.3"] == pytest.approx(8 * b) and lb["nic:down:n1.5"] == pytest.approx(8 * b)
    assert not any(k.startswith("fabric") for k in lb)
    cap = effective_capacity(H100_2N, "p2p")
    o = H100_2N.offsets
    drain = max(14 * b / cap[o["nvl_up"]], 8 * b / cap[o["nic_up"]])
    assert res.time_s == pytest.approx(drain + _latency(H100_2N, list(range(16)), "direct"))


def test_hand_derived_64_gpus_four_units() -> None:
    # 8 nodes, units of 2 nodes: a leaf group (unit, rail) sends its 16 GPUs' b to each of the
    # 6 same-rail GPUs outside the unit; a NIC carries 8 GPUs x 7 nodes x b.
    b = 2e6
    t = np.full((64, 64), b)
    lb = all_to_all_v_time(H100_8N, [list(range(64))], t).link_bytes
    assert lb["nvlink:up:d17"] == pytest.approx((7 + 49) * b)
    assert lb["nvlink:down:d42"] == pytest.approx((7 + 49) * b)
    assert lb["nic:up:n2.4"] == pytest.approx(56 * b) and lb["nic:down:n7.0"] == pytest.approx(56 * b)
    assert lb["fabric:leaf-to-spine:g9"] == pytest.approx(96 * b)
    assert lb["fabric:spine-to-leaf:g30"] == pytest.approx(96 * b)


@pytest.mark.parametrize("cluster", [H100_8N, H100_8N_FLAT], ids=["ro", "flat"])
def test_row_blocks_equal_dense(cluster) -> None:
    groups = _groups(cluster, "strided")
    n = len(groups[0])
    shared = _traffic(n, 1, seed=5).astype(np.float32)
    dense = all_to_all_v_time(cluster, groups, shared)
    as64 = all_to_all_v_time(cluster, groups, shared.astype(np.float64))
    rows = all_to_all_v_time(cluster, groups, lambda s, e: shared[s:e])
    cuts = [0, 1, 7, 20, n]
    blocks = [shared[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    it = all_to_all_v_time(cluster, groups, iter(blocks))
    for r in (as64, rows, it):
        assert r.time_s == pytest.approx(dense.time_s, rel=1e-12)
        assert r.algbw_bytes_per_s == pytest.approx(dense.algbw_bytes_per_s, rel=1e-12)
        assert r.link_bytes == pytest.approx(dense.link_bytes, rel=1e-12)
    # one matrix per group, as (groups, rows, n) blocks
    stack = _traffic(n, 2, seed=6)
    ref = all_to_all_v_time(cluster, groups, stack)
    got = all_to_all_v_time(cluster, groups, lambda s, e: stack[:, s:e])
    assert got.time_s == pytest.approx(ref.time_s, rel=1e-12)
    assert got.link_bytes == pytest.approx(ref.link_bytes, rel=1e-12)
    # algorithms that need the whole matrix assemble it from the blocks
    hier = all_to_all_v_time(cluster, groups, shared.astype(np.float64), algorithm="hierarchical")
    hier_rows = all_to_all_v_time(cluster, groups, lambda s, e: shared[s:e].astype(np.float64),
                                  algorithm="hierarchical")
    assert hier_rows.time_s == hier.time_s


def test_row_block_errors() -> None:
    g = [list(range(16))]
    t = np.ones((16, 16))
    with pytest.raises(SpecError, match="hold 8 rows"):
        all_to_all_v_time(H100_2N, g, iter([t[:8]]))
    with pytest.raises(SpecError, match="more than 16 rows"):
        all_to_all_v_time(H100_2N, g, iter([t, t[:1]]))
    with pytest.raises(SpecError, match="row block"):
        all_to_all_v_time(H100_2N, g, iter([t[:, :8]]))
    bad = t.copy()
    bad[12, 3] = -1.0
    with pytest.raises(SpecError, match=">= 0"):
        all_to_all_v_time(H100_2N, g, lambda s, e: bad[s:e])


def test_flow_solver_still_used_off_fat_trees() -> None:
    # A torus has no DirectLoads path: its direct all-to-all is one flow per pair.
    from moesim.cluster.synthetic import tpu_slice

    c = build_cluster(tpu_slice((4, 4)))
    t = _traffic(16, 1, seed=2)
    res = all_to_all_v_time(c, [list(range(16))], t)
    flows = flows_from_pairs(c, *np.nonzero(np.ones((16, 16)))[:2], t.ravel())
    phase = solve_phase(c, flows, "p2p")
    assert res.time_s == pytest.approx(phase.time_s + _latency(c, list(range(16)), "direct"))
    assert phase_from_loads(c, phase.link_bytes, "p2p").time_s == pytest.approx(phase.time_s)
