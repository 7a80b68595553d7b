"""Protocol efficiencies and per-step latencies of the collectives, each with its source.

An efficiency multiplies a link's line rate (per direction) for one protocol; the same
constant serves every topology and size. Source keys resolve in
``docs/sources.md`` (sections 2, 5, 6); docs/network.md lists which
measurements each constant was taken from and which it is validated against.
"""

from __future__ import annotations

from moesim.units import US

# NVLink, NCCL ring / all-gather / reduce-scatter (Simple protocol): the mean of the 8x H200
# busbw at 16 GiB (AG 361.4, RS 362.9, ring AR 367.2 GB/s; MLE-net, NT-i212) over the 450 GB/s
# per-direction line rate = 0.8085 ("protocol overhead ~20%", NT-i212). One fitted constant for
# ring AR, AG and RS on every NVLink generation.
NVLINK_RING_EFF = (361.4 + 362.9 + 367.2) / 3.0 / 450.0

# NVLink SHARP (NVLS) all-reduce: algbw over line rate, the mean over 5..8 GPUs of the 8 GiB
# NVLS sweep on 8x H200 (busbw 414.2, 435.6, 460.0, 473.1 GB/s; mleng-h200-8gpu-allreduce-sweep)
# converted to algbw by busbw / (2(n-1)/n). Fitted once; NCCL's own model uses 0.85 on top of
# its ring bandwidth (NCCL-tune), i.e. 0.85 x 0.81 = 0.69, which overshoots the measurement.
NVLS_EFF = (414.2 / 1.6 + 435.6 / (10 / 6) + 460.0 / (12 / 7) + 473.1 / 1.75) / 4.0 / 450.0

# NVLink point-to-point copies (all-to-all, send/recv, DeepEP NVLink legs): H100 376 of 450 GB/s
# (NCCL-i1264; MLE-net p2p table).
NVLINK_P2P_EFF = 376.0 / 450.0

# InfiniBand / RoCE NIC under NCCL, CX7 NDR 400G (50 GB/s): FITTED to the NCCL maintainers' two
# per-NIC figures for a ring over 2 nodes (nccl-ndr400-nic-expectation): "46-48 GB/s per NIC"
# (nccl-tests #290, midpoint 47) and "48-49" (#267, midpoint 48.5); the least-squares fit in log
# space of two points is their geometric mean, sqrt(47 x 48.5) = 47.74 GB/s, 0.955 of the line
# rate. Also applied to leaf/spine groups.
NIC_EFF = (47.0 * 48.5) ** 0.5 / 50.0

# DeepEP normal-mode RDMA legs (20-SM kernels): fitted jointly to the EP32 and EP64 internode
# dispatch and combine points (58/57, 51/50 GB/s; deepep-v1-normal-h800) under the accounting of
# moesim.network.deepep: the value at which the mean published/predicted ratio of the four is 1.
# One constant for dispatch, combine and every EP size (EP16 is NVLink-bound and not fitted).
DEEPEP_RDMA_EFF = 0.880

# TPU ICI: measured v5e all-gather 680 us against the 560 us one-way ring model (SB-sharding).
ICI_EFF = 560.0 / 680.0

# DCN: "400 Gb/s -> ~320 Gb/s usable" rule of thumb (MLE-net).
DCN_EFF = 320.0 / 400.0

# NCCL tree bandwidth cap for the Simple protocol: 0.92 x bus bandwidth (NCCL-tune).
TREE_EFF = 0.92

# NCCL default latencies, Simple protocol (NCCL-tune, hardware reference section 5), seconds.
# Host cost of one timed torch.distributed collective on an idle device (barrier, CUDA event,
# one call, CUDA event: the PyTorch sweeps of stas00/ml-engineering's all_reduce_bench.py,
# 2026-08): the call's Python and process-group path and the ranks' skew leaving the barrier,
# which back-to-back calls (nccl-tests, a training step) overlap with the previous kernel.
# FITTED: least squares over the 6 intra-node points so timed inside the tables' sizes
# (8x H200 32 KiB, 1, 16, 128 MiB; 8x B200 1, 64 MiB; in-sample), leave-one-out mean 2.6%,
# worst 6.2% busbw (python benchmarks/fit_torch_call_overhead.py). The later version of
# that benchmark puts the per-call host overhead at 20-30 us. Only comparisons against
# sweeps timed that way (case ``timing: torch-one-call``) add it.
TORCH_ONE_CALL_S = 20.4 * US
NCCL_BASE_LAT_S = 8.4 * US          # per collective launch, ring and tree
RING_NVLINK_STEP_S = 3.4 * US       # hwLatencies NVLink ring Simple, per step
RING_NET_STEP_S = 14.0 * US         # hwLatencies NET ring Simple, per inter-node step
TREE_NVLINK_STEP_S = 4.0 * US       # hwLatencies NVLink tree Simple
TREE_NET_STEP_S = 14.0 * US         # hwLatencies NET tree Simple
NVLS_LAT_S = 25.0 * US              # hwLatencies NVLS Simple (intra-node)
NVLS_MIN_GPUS = 6                   # NCCL uses NVLS only at >= 6 GPUs (SB-gpus; MLE-net)

# NCCL's per-step latencies above hold for the hop latencies of the shipped GPU tiers
# (NVSwitch 2 us, InfiniBand fat tree 5 us per direction, topologies/*.yaml): a tier whose
# ``latency_us`` differs moves every NCCL step over it by the difference (never below 0), so
# a slower switch or NIC lengthens collectives and all-to-alls as it does point-to-point
# sends (moesim.cluster.plan link latencies).
NVLINK_REF_HOP_S = 2.0 * US
NET_REF_HOP_S = 5.0 * US


def step_extra(topology: object) -> tuple[float, float]:
    """(NVLink, network) seconds each NCCL step over ``topology``'s tiers takes beyond
    NCCL's own step latency: the tier's hop latency minus the reference one."""
    nvl = net = 0.0
    for t in getattr(topology, "tiers", ()):
        kind = getattr(t, "kind", "")
        if kind == "nvswitch":
            nvl = t.latency_us * US - NVLINK_REF_HOP_S
        elif kind == "fat_tree":
            net = t.latency_us * US - NET_REF_HOP_S
    return nvl, net


def step(base_s: float, extra_s: float) -> float:
    """One NCCL step: its hwLatencies value plus the tier's excess hop latency, at least 0."""
    return max(0.0, base_s + extra_s)


def tier_efficiency(kind: str) -> tuple[float, float, float, float, float]:
    """Efficiency per link tier (nvlink, nic, fabric, ici, dcn) for a protocol ``kind``.

    ``kind``: ``ring`` (NCCL ring collectives), ``tree``, ``nvls``, ``p2p`` (all-to-all, send),
    ``deepep``.
    """
    nvl = {"ring": NVLINK_RING_EFF, "tree": NVLINK_RING_EFF * TREE_EFF, "nvls": NVLS_EFF,
           "p2p": NVLINK_P2P_EFF, "deepep": NVLINK_P2P_EFF}[kind]
    nic = {"deepep": DEEPEP_RDMA_EFF, "tree": NIC_EFF * TREE_EFF}.get(kind, NIC_EFF)
    return (nvl, nic, nic, ICI_EFF, DCN_EFF)
