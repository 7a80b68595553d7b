"""Closed forms (alpha-beta) of the ring, NVLS, tree, hierarchical and torus collectives.

The same latency terms as the flow model (NCCL-tune) plus a bandwidth term: the bytes each
rank moves over the narrowest effective per-rank bandwidth (hardware reference section 7). Used by
the analytic fidelity and by algorithm selection. Units: bytes, seconds, bytes/s.
"""

from __future__ import annotations

import math

from moesim.cluster.plan import ClusterPlan
from moesim.network import efficiency as eff
from moesim.network.rings import BUILDERS, by_domain, ring_latency, ring_volume
from moesim.specs.hardware import NVSwitchDomainSpec


def _nvlink_bw(cluster: ClusterPlan, efficiency: float) -> float:
    tier = cluster.topology.tiers[0]
    assert isinstance(tier, NVSwitchDomainSpec)
    return tier.device_bytes_per_s * efficiency


def _inter_bw(cluster: ClusterPlan, channels: int, efficiency: float) -> float:
    """Per-rank inter-domain bandwidth of ``channels`` rings, one NIC each."""
    ft = cluster.fat_tree
    if ft is None:
        dcn = cluster.dcn
        assert dcn is not None
        return dcn.per_device_gbit_per_s * 1e9 / 8.0 * eff.DCN_EFF * channels
    nics = min(channels, ft.nics_per_domain)
    return nics * ft.nic_bytes_per_s * efficiency


def ring_time(cluster: ClusterPlan, op: str, group: list[int], size: float) -> float:
    """Ring: (steps) alpha + V(n) S / min(NVLink, channels x NIC) (hardware reference 7.1, 7.3)."""
    n = len(group)
    doms = by_domain(cluster, group)
    bw = _nvlink_bw(cluster, eff.NVLINK_RING_EFF) if len(doms[0]) > 1 else math.inf
    if len(doms) > 1:
        uniform = len({len(d) for d in doms}) == 1
        channels = len(doms[0]) if uniform else 1
        bw = min(bw, _inter_bw(cluster, channels, eff.NIC_EFF))
    return (ring_latency(op, n, len(doms), eff.step_extra(cluster.topology))
            + ring_volume(op, n) * size / bw)


def nvls_time(cluster: ClusterPlan, op: str, group: list[int], size: float) -> float:
    """NVLS all-reduce: alpha + S / (NVLS efficiency x NVLink) (SB-gpus: T = bytes / W)."""
    lat = eff.NCCL_BASE_LAT_S + eff.step(eff.NVLS_LAT_S, eff.step_extra(cluster.topology)[0])
    return lat + size / _nvlink_bw(cluster, eff.NVLS_EFF)


def tree_time(cluster: ClusterPlan, op: str, group: list[int], size: float) -> float:
    """Tree all-reduce: chain 2S per GPU on NVLink, about 2S/u per NIC across the trees."""
    doms = by_domain(cluster, group)
    u, k = len(doms[0]), len(doms)
    nvl, net = eff.step_extra(cluster.topology)
    lat = eff.NCCL_BASE_LAT_S + 2 * ((u - 1) * eff.step(eff.TREE_NVLINK_STEP_S, nvl)
                                     + math.log2(k) * eff.step(eff.TREE_NET_STEP_S, net))
    t_nvl = 2 * size / _nvlink_bw(cluster, eff.NVLINK_RING_EFF) if u > 1 else 0.0
    t_net = 2 * size / _inter_bw(cluster, u, eff.NIC_EFF)
    return lat + max(t_nvl, t_net) / eff.TREE_EFF


def hierarchical_time(cluster: ClusterPlan, op: str, group: list[int], size: float) -> float:
    """Intra RS + inter collective of the S/u shard + intra AG (hardware reference 7.4)."""
    doms = by_domain(cluster, group)
    intra, inter = doms[0], [d[0] for d in doms]
    shard = size / len(intra)
    if op == "all_reduce":
        return (ring_time(cluster, "reduce_scatter", intra, size)
                + ring_time(cluster, "all_reduce", inter, shard)
                + ring_time(cluster, "all_gather", intra, size))
    return ring_time(cluster, op, intra, size) + ring_time(cluster, op, inter, shard)


def torus_time(cluster: ClusterPlan, op: str, group: list[int], size: float) -> float:
    """Ring per axis on a torus: each phase's bytes over one (or two, bidirectional) ICI links."""
    phases, lat = BUILDERS["torus_ring"](cluster, op, [group], size)
    t = cluster.torus
    assert t is not None
    total = lat
    for _src, _dst, vol, _p in phases:
        per_rank = vol.sum() / len(group)
        total += float(per_rank) / (t.direction_bytes_per_s * eff.ICI_EFF * _directions(vol, group))
    return total


def _directions(vol, group: list[int]) -> float:  # type: ignore[no-untyped-def]
    return 2.0 if len(vol) == 2 * len(group) else 1.0


_FORMS = {"ring": ring_time, "nvls": nvls_time, "tree": tree_time,
          "hierarchical": hierarchical_time, "torus_ring": torus_time}


def analytic_time(cluster: ClusterPlan, op: str, groups: list[list[int]], size: float,
                  algorithm: str) -> float:
    """Closed-form time (s) of ``op`` with ``algorithm``; groups are assumed not to contend."""
    return max(_FORMS[algorithm](cluster, op, g, size) for g in groups)
