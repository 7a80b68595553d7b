"""Collectives against published measurements (scenarios/published/).

Tolerance: 10% at 1 GiB and above. Topologies are built from cited numbers
(moesim.cluster.synthetic) so the test does not move when a YAML file is edited. The
efficiency constants are in moesim/network/efficiency.py, the same for every case; docs/network.md
says which of these points each fitted constant was taken from.
"""

from __future__ import annotations

import pytest

from moesim.cluster import build_cluster
from moesim.cluster.synthetic import gpu_cluster
from moesim.network import collective_time
from moesim.network.deepep import deepep_reported_bandwidth
from moesim.units import GB, GIB

TOL = 0.10

# (id, gpu, op, algorithm, size, published busbw GB/s, published case id)
NCCL_CASES = [
    ("h100-ring-ar-1g", "H100", "all_reduce", "ring", GIB, 370.0, "nccl-h100-nvlink-maintainer"),
    ("h100-ring-ar-16g", "H100", "all_reduce", "ring", 16 * GIB, 370.0,
     "nccl-h100-nvlink-maintainer"),
    ("h100-nvls-ar-16g", "H100", "all_reduce", "nvls", 16 * GIB, 480.0,
     "nccl-h100-nvlink-maintainer"),
    ("h200-nvls-ar-1g", "H200", "all_reduce", None, GIB, 463.58, "mleng-h200-8gpu-allreduce-sweep"),
    ("h200-nvls-ar-16g", "H200", "all_reduce", None, 16 * GIB, 482.26,
     "mleng-h200-8gpu-allreduce-sweep"),
    ("h200-ring-ar-16g", "H200", "all_reduce", "ring", 16 * GIB, 367.61,
     "mleng-h200-8gpu-allreduce-sweep"),
    ("h200-ag-16g", "H200", "all_gather", None, 16 * GIB, 361.4, "mleng-h200-8gpu-allreduce-sweep"),
    ("h200-rs-16g", "H200", "reduce_scatter", None, 16 * GIB, 362.9,
     "mleng-h200-8gpu-allreduce-sweep"),
    ("a100-ar-1g", "A100", "all_reduce", None, GIB, 229.04, "mleng-a100-8gpu-allreduce-sweep"),
    ("a100-ar-16g", "A100", "all_reduce", None, 16 * GIB, 234.89, "mleng-a100-8gpu-allreduce-sweep"),
]


@pytest.mark.parametrize(("case", "gpu", "op", "algo", "size", "published", "source"), NCCL_CASES)
def test_single_node_collectives(case: str, gpu: str, op: str, algo: str | None, size: float,
                                 published: float, source: str) -> None:
    c = build_cluster(gpu_cluster(gpu, 1))
    r = collective_time(c, op, [list(range(8))], size, algorithm=algo)
    assert r.busbw_bytes_per_s / GB == pytest.approx(published, rel=TOL), case


@pytest.mark.parametrize("nodes", [2, 4, 16])
def test_ndr400_per_nic_ring_bandwidth(nodes: int) -> None:
    # One GPU per node on one rail (NCCL_ALGO=RING, as the maintainers advise for a NIC-bound
    # measurement): busbw is the per-NIC bandwidth, published 46-49 GB/s
    # (nccl-ndr400-nic-expectation). Eight such rings, one per rail, do not slow each other.
    c = build_cluster(gpu_cluster("H100", nodes))
    rails = [[r + 8 * i for i in range(nodes)] for r in range(8)]
    r = collective_time(c, "all_reduce", rails, GIB, algorithm="ring")
    busbw = r.busbw_bytes_per_s / GB
    assert 46.0 * (1 - TOL) <= busbw <= 49.0 * (1 + TOL)
    assert busbw == pytest.approx(47.5, rel=TOL)


# (EP size, phase, published GB/s) from deepep-v1-normal-h800: EP8 is DeepEP's "NVL" bandwidth,
# EP16-64 its "RDMA bottleneck bandwidth" (accounting in moesim.network.deepep).
DEEPEP_CASES = [
    (8, "dispatch", 153.0), (8, "combine", 158.0),
    (16, "dispatch", 43.0), (16, "combine", 43.0),
    (32, "dispatch", 58.0), (32, "combine", 57.0),
    (64, "dispatch", 51.0), (64, "combine", 50.0),
]


@pytest.mark.parametrize(("ep", "phase", "published"), DEEPEP_CASES)
def test_deepep_normal_kernels_on_h800(ep: int, phase: str, published: float) -> None:
    # DeepSeek-V3 setting: 4096 tokens per rank, hidden 7168, top-8 of 256 experts, at most 4
    # nodes per token; H800 NVLink 160 GB/s, one CX7 400G per GPU (DeepEP-legacy).
    c = build_cluster(gpu_cluster("H800", max(1, ep // 8)))
    bw = deepep_reported_bandwidth(c, ep, phase=phase)
    assert bw / GB == pytest.approx(published, rel=TOL)


def test_one_call_timing_adds_the_call_cost_once() -> None:
    # A point timed one torch.distributed call per trial is the table's time plus
    # TORCH_ONE_CALL_S; busbw = S x 2(n-1)/n / time (nccl-tests' definition). With the cost at 0
    # the point equals the same point timed nccl-tests' way.
    from pathlib import Path

    from moesim.check.cases import load_case
    from moesim.check.evaluate import evaluate_collective
    from moesim.network.efficiency import TORCH_ONE_CALL_S

    path = Path(__file__).parents[2] / "scenarios/published/mleng-h200-8gpu-allreduce-sweep.yaml"
    case = load_case(path)
    bare = {r.label: r.predicted for r in evaluate_collective(str(path), case, one_call_s=0.0)}
    timed = {r.label: r.predicted for r in evaluate_collective(str(path), case)}
    moved = 2**20 * 2 * 7 / 8 / GB  # 1 MiB all-reduce on 8 GPUs, GB over the bus
    t_bare = moved / bare["all_reduce default 1MiB"]
    assert moved / timed["all_reduce default 1MiB"] == pytest.approx(t_bare + TORCH_ONE_CALL_S,
                                                                      rel=1e-9)
    # the nccl-tests points of the same case carry no call cost
    assert timed["nccl-tests all_reduce ring 16GiB"] == bare["nccl-tests all_reduce ring 16GiB"]
    # at 1 MiB the cost is most of the gap to the published 39.93 GB/s (bare +76%)
    assert timed["all_reduce default 1MiB"] == pytest.approx(39.93, rel=0.15)


def test_one_call_fit_recovers_a_known_cost() -> None:
    # The closed form c = sum((p - m) / p^2) / sum(1 / p^2) is exact when p = m + c.
    import importlib.util
    from pathlib import Path

    import numpy as np

    spec = importlib.util.spec_from_file_location(
        "fit_torch_call_overhead",
        Path(__file__).parents[2] / "benchmarks" / "fit_torch_call_overhead.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = np.array([18e-6, 26e-6, 120e-6, 560e-6])
    assert mod.fit(m + 20.4e-6, m) == pytest.approx(20.4e-6, rel=1e-12)
