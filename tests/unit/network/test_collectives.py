"""Collectives: flow model against closed forms, nccl-tests definitions, selection, errors."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.cluster import build_cluster
from moesim.cluster.synthetic import gpu_cluster, tpu_slice
from moesim.errors import InfeasibleError, SpecError
from moesim.network import all_to_all_v_time, collective_time, send_time
from moesim.network import efficiency as eff
from moesim.units import GIB, MIB

H100_4N = build_cluster(gpu_cluster("H100", 4))
H100_16N = build_cluster(gpu_cluster("H100", 16))

CASES = [
    ("all_reduce", [list(range(8))], "ring"),
    ("all_gather", [list(range(8))], "ring"),
    ("reduce_scatter", [list(range(8))], "ring"),
    ("all_reduce", [list(range(8))], "nvls"),
    ("all_reduce", [[8 * i for i in range(16)]], "ring"),
    ("all_reduce", [list(range(32))], "ring"),
    ("all_gather", [list(range(32))], "hierarchical"),
]


@pytest.mark.parametrize(("op", "groups", "algo"), CASES)
def test_flow_matches_closed_form_uncontended(op: str, groups: list[list[int]], algo: str) -> None:
    c = H100_16N
    flow = collective_time(c, op, groups, GIB, algorithm=algo)
    ana = collective_time(c, op, groups, GIB, algorithm=algo, fidelity="analytic")
    assert flow.time_s == pytest.approx(ana.time_s, rel=0.02)


@pytest.mark.parametrize("ranks", [8, 32, 128])
def test_all_to_all_flow_matches_closed_form(ranks: int) -> None:
    for algo in ("direct", "hierarchical"):
        flow = collective_time(H100_16N, "all_to_all", [list(range(ranks))], GIB, algorithm=algo)
        ana = collective_time(H100_16N, "all_to_all", [list(range(ranks))], GIB, algorithm=algo,
                              fidelity="analytic")
        assert flow.time_s == pytest.approx(ana.time_s, rel=0.02)


def test_ring_all_reduce_closed_form_by_hand() -> None:
    # 8 GPUs, 1 GiB: 2(n-1)/n S = 1.75 GiB over 450 GB/s x 0.8085, plus NCCL latency
    # 8.4 us + 14 steps x 3.4 us (NCCL-tune).
    t = collective_time(H100_4N, "all_reduce", [list(range(8))], GIB, algorithm="ring").time_s
    expect = 8.4e-6 + 14 * 3.4e-6 + 1.75 * GIB / (450e9 * eff.NVLINK_RING_EFF)
    assert t == pytest.approx(expect, rel=1e-6)


def test_bus_bandwidth_definitions() -> None:
    r = collective_time(H100_4N, "all_reduce", [list(range(8))], GIB, algorithm="ring")
    assert r.busbw_bytes_per_s == pytest.approx(r.algbw_bytes_per_s * 2 * 7 / 8)
    r = collective_time(H100_4N, "all_gather", [list(range(8))], GIB)
    assert r.busbw_bytes_per_s == pytest.approx(r.algbw_bytes_per_s * 7 / 8)
    assert r.algbw_bytes_per_s == pytest.approx(GIB / r.time_s)


def test_nccl_choice_nvls_only_from_six_gpus() -> None:
    assert collective_time(H100_4N, "all_reduce", [list(range(8))], GIB).algorithm == "nvls"
    assert collective_time(H100_4N, "all_reduce", [list(range(4))], GIB).algorithm == "ring"


def test_concurrent_groups_on_separate_rails_do_not_contend() -> None:
    # 8 DP groups, one per rail (same local index across 4 nodes): each keeps its NIC rate.
    one = collective_time(H100_4N, "all_reduce", [[0, 8, 16, 24]], GIB, algorithm="ring")
    rails = [[r + 8 * i for i in range(4)] for r in range(8)]
    all8 = collective_time(H100_4N, "all_reduce", rails, GIB, algorithm="ring")
    assert all8.time_s == pytest.approx(one.time_s, rel=1e-6)


def test_contending_groups_share_a_nic() -> None:
    # Two rings that both cross node 0 -> node 1 on rail 0 take twice as long on the wire.
    one = collective_time(H100_4N, "all_gather", [[0, 8]], GIB, algorithm="ring")
    two = collective_time(H100_4N, "send", [[0, 8], [1, 8]], 0.0)
    assert two.time_s == 0.0
    both = all_to_all_v_time(H100_4N, [[0, 8], [0, 8]], np.array([[0, GIB], [GIB, 0]]))
    assert both.time_s > one.time_s


def test_send_time_is_latency_plus_bytes_over_the_narrowest_link() -> None:
    # Node 0 GPU 0 to node 1 GPU 0: NIC at 50 GB/s x 0.97, latency 5 us (NIC + switch budget).
    t = send_time(H100_4N, 0, 8, GIB)
    assert t == pytest.approx(5e-6 + GIB / (50e9 * eff.NIC_EFF), rel=1e-9)
    assert send_time(H100_4N, 3, 3, GIB) == 0.0


def test_torus_ring_per_axis() -> None:
    c = build_cluster(tpu_slice((4, 4)))
    # All-gather over one wrapping axis of 4: (n-1)/n S split over both directions of one link
    # each: 0.75 S / 2 / (45 GB/s x ICI_EFF), plus ceil(3/2) = 2 hops of 1 us.
    r = collective_time(c, "all_gather", [[0, 1, 2, 3]], 64 * MIB)
    assert r.algorithm == "torus_ring"
    expect = 2e-6 + 0.75 * 64 * MIB / 2 / (45e9 * eff.ICI_EFF)
    assert r.time_s == pytest.approx(expect, rel=1e-6)
    whole = collective_time(c, "all_reduce", [list(range(16))], 64 * MIB)
    ana = collective_time(c, "all_reduce", [list(range(16))], 64 * MIB, fidelity="analytic")
    assert whole.time_s == pytest.approx(ana.time_s, rel=0.02)


def test_user_errors() -> None:
    with pytest.raises(SpecError):
        collective_time(H100_4N, "broadcast", [[0, 1]], GIB)
    with pytest.raises(InfeasibleError):
        collective_time(H100_4N, "all_reduce", [[0, 1]], GIB, algorithm="tree")
    with pytest.raises(InfeasibleError):
        collective_time(H100_4N, "all_reduce", [[0, 99]], GIB)
    with pytest.raises(SpecError):
        all_to_all_v_time(H100_4N, [[0, 1]], np.ones((3, 3)))


def test_link_bytes_reports_the_busiest_tier() -> None:
    r = collective_time(H100_4N, "all_to_all", [list(range(16))], GIB)
    assert r.link_bytes is not None
    nic = max(v for k, v in r.link_bytes.items() if k.startswith("nic:up"))
    # Each node sends 8 ranks x (8/16) GiB off-node, spread over its 8 rails: 0.5 GiB per NIC.
    assert nic == pytest.approx(0.5 * GIB)
