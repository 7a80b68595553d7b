"""Flow phases of a collective on a ClusterPlan, solved with the max-min fluid model.

A phase is a set of (source device, destination device, bytes) transfers that run at the
same time; a collective is a sequence of phases. Inside a collective the flows share links
in proportion to their remaining bytes (weighted max-min, re-weighted at every event): a
collective paces its chunks so that all of a rank's peers progress together, as NCCL's
channels do. With this weighting flows that share a path merge exactly into one, and a
phase whose flows start together ends at max over links of bytes / effective capacity, found
by one progressive filling (see ``solve_max_min``) or straight from the link loads
(``phase_from_loads``: the direct all-to-all-v, which sums them from its matrix).

Units: bytes, seconds, bytes/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moesim.cluster.plan import ClusterPlan
from moesim.cluster.routing import route_pairs
from moesim.network.efficiency import tier_efficiency
from moesim.network.maxmin import FlowSet, solve_max_min

# Events closer than this (relative) are merged: bounds the error of a collective's time to
# 0.1% while keeping the event count at the number of distinct bottleneck levels.
COLLECTIVE_REL_TOL = 1e-3


@dataclass(frozen=True)
class PhaseResult:
    time_s: float
    link_bytes: np.ndarray


def effective_capacity(cluster: ClusterPlan, kind: str) -> np.ndarray:
    """Link capacities (bytes/s) scaled by the protocol efficiency of each link's tier."""
    eff = np.asarray(tier_efficiency(kind))
    return cluster.capacity_bytes_per_s * eff[cluster.link_tier]


def flows_from_pairs(cluster: ClusterPlan, src: np.ndarray, dst: np.ndarray,
                     size_bytes: np.ndarray) -> FlowSet:
    """One aggregated flow per distinct (src, dst) device pair, over its route (routed for all
    pairs at once, ``moesim.cluster.routing.route_pairs``)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    size = np.asarray(size_bytes, dtype=float)
    keep = (size > 0) & (src != dst)
    key = src[keep] * cluster.num_devices + dst[keep]
    uniq, inv = np.unique(key, return_inverse=True)
    sizes = np.bincount(inv, weights=size[keep], minlength=uniq.shape[0])
    indptr, links, coeff = route_pairs(cluster, uniq // cluster.num_devices,
                                       uniq % cluster.num_devices)
    return FlowSet(indptr, links, coeff, sizes, np.zeros_like(sizes), sizes.copy())


def flows_from_paths(paths: list[tuple[np.ndarray, np.ndarray]], sizes: np.ndarray) -> FlowSet:
    """A size-weighted FlowSet from (links, coefficients) per flow."""
    lens = np.array([p[0].shape[0] for p in paths], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    if lens.sum():
        links = np.concatenate([p[0] for p in paths])
        coeff = np.concatenate([p[1] for p in paths])
    else:
        links, coeff = np.zeros(0, dtype=np.int64), np.zeros(0)
    sizes = np.asarray(sizes, dtype=float)
    return FlowSet(indptr, links, coeff, sizes, np.zeros_like(sizes), sizes.copy())


def concat_flows(parts: list[FlowSet]) -> FlowSet:
    """Flows of several FlowSets over the same link table, run together."""
    parts = [p for p in parts if p.num_flows]
    if not parts:
        z = np.zeros(0)
        return FlowSet(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64), z, z, z, z)
    offs = np.cumsum([0] + [p.links.shape[0] for p in parts[:-1]])
    indptr = np.concatenate([parts[0].indptr[:1]] + [p.indptr[1:] + o for p, o in
                                                    zip(parts, offs, strict=True)])
    cat = np.concatenate
    return FlowSet(indptr, cat([p.links for p in parts]), cat([p.coeff for p in parts]),
                   cat([p.size_bytes for p in parts]), cat([p.start_s for p in parts]),
                   cat([p.weight for p in parts]))


def solve_phase(cluster: ClusterPlan, flows: FlowSet, kind: str) -> PhaseResult:
    """Makespan (s) of one phase of concurrent flows, and bytes per link."""
    if flows.num_flows == 0:
        return PhaseResult(0.0, np.zeros(cluster.num_links))
    res = solve_max_min(flows, effective_capacity(cluster, kind), rel_tol=COLLECTIVE_REL_TOL,
                        weighting="remaining")
    return PhaseResult(res.makespan_s, res.link_bytes)


def phase_from_loads(cluster: ClusterPlan, link_bytes: np.ndarray, kind: str) -> PhaseResult:
    """``solve_phase`` of a phase whose flows all start together, from its link loads alone.

    Under remaining-bytes sharing such a phase ends at max over links of bytes / effective
    capacity, exactly (``solve_max_min``): the flows' routes matter only through the bytes
    they put on each link, so a caller that can sum those bytes directly (the direct
    all-to-all-v, moesim.network.direct) needs no flow set. Staggered starts need
    ``solve_phase``.
    """
    load = np.asarray(link_bytes, dtype=float)
    return PhaseResult(float((load / effective_capacity(cluster, kind)).max()), load)


def link_bytes_by_name(cluster: ClusterPlan, link_bytes: np.ndarray) -> dict[str, float]:
    """Non-zero link loads (bytes) keyed by link name."""
    names = cluster.link_names
    idx = np.flatnonzero(link_bytes > 0)
    return {names[i]: float(link_bytes[i]) for i in idx}
