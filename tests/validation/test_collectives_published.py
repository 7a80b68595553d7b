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
