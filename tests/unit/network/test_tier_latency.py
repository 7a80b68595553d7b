"""A tier's ``latency_us`` moves every NCCL step over it (moesim.network.efficiency.step_extra).

NCCL's per-step latencies (hwLatencies) hold at the shipped hop latencies, NVSwitch 2 us and
the InfiniBand fat tree 5 us; a tier whose latency is higher by d adds d to every step over
it. Ring all-reduce on n GPUs has 2(n - 1) steps, all-gather n - 1 (NCCL-tune), so by hand:
8 GPUs of one node, NVSwitch latency 2 -> 12 us: all-reduce +14 x 10 us, all-gather +7 x 10 us.
"""

from __future__ import annotations

import pytest

from moesim.cluster import build_cluster
from moesim.cluster.synthetic import gpu_cluster
from moesim.network import collective_time
from moesim.network.efficiency import step_extra
from moesim.units import MIB, US


def _cluster(nodes: int, nvl_us: float = 2.0, net_us: float = 5.0):  # noqa: ANN202
    topo = gpu_cluster("H100", nodes)
    tiers = [topo.tiers[0].model_copy(update={"latency_us": nvl_us})]
    if nodes > 1:
        tiers.append(topo.tiers[1].model_copy(update={"latency_us": net_us}))
    return build_cluster(topo.model_copy(update={"tiers": tuple(tiers)}))


def test_the_shipped_latencies_add_nothing() -> None:
    assert step_extra(_cluster(2).topology) == (0.0, 0.0)


@pytest.mark.parametrize(("op", "steps"), [("all_reduce", 14), ("all_gather", 7)])
def test_nvswitch_latency_adds_per_ring_step(op: str, steps: int) -> None:
    base = collective_time(_cluster(1), op, [list(range(8))], MIB, algorithm="ring").time_s
    slow = collective_time(_cluster(1, nvl_us=12.0), op, [list(range(8))], MIB,
                           algorithm="ring").time_s
    assert slow - base == pytest.approx(steps * 10 * US, rel=1e-9)


def test_fat_tree_latency_adds_per_inter_node_step() -> None:
    # 2 nodes x 8 GPUs, ring all-reduce: 2 x (2 - 1) = 2 of its 30 steps cross the network.
    g = [list(range(16))]
    base = collective_time(_cluster(2), "all_reduce", g, MIB, algorithm="ring").time_s
    slow = collective_time(_cluster(2, net_us=105.0), "all_reduce", g, MIB,
                           algorithm="ring").time_s
    assert slow - base == pytest.approx(2 * 100 * US, rel=1e-9)


def test_lower_latency_never_makes_a_step_negative() -> None:
    fast = collective_time(_cluster(1, nvl_us=0.0), "all_reduce", [list(range(8))], 1.0,
                           algorithm="ring")
    assert fast.time_s > 0
