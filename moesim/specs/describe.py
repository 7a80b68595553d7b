"""Closed-form facts about a topology for humans: devices, tiers, bandwidth, bisection."""

from __future__ import annotations

import math
from dataclasses import dataclass

from moesim.specs.hardware import (
    DcnSpec,
    FatTreeSpec,
    NVSwitchDomainSpec,
    TopologySpec,
    TorusSpec,
)
from moesim.units import GBIT_PER_S, GBYTE_PER_S, US


@dataclass(frozen=True)
class TierSummary:
    name: str
    kind: str
    shape: str
    devices_spanned: int
    per_device_bytes_per_s: float  # one direction, what one device can push into this tier
    bisection_bytes_per_s: float  # one direction across the worst halving of the whole tier
    latency_s: float


def tier_summaries(topo: TopologySpec) -> list[TierSummary]:
    out: list[TierSummary] = []
    spanned = 1
    for tier in topo.tiers:
        spanned *= tier.size
        out.append(_summary(tier, spanned, topo))
    return out


def _summary(tier, spanned: int, topo: TopologySpec) -> TierSummary:
    if isinstance(tier, NVSwitchDomainSpec):
        bw = tier.device_bytes_per_s
        return TierSummary(tier.name, tier.kind, f"{tier.num_devices} GPUs on NVSwitch",
                           spanned, bw, bw * tier.num_devices / 2, tier.latency_us * US)
    if isinstance(tier, TorusSpec):
        dims = "x".join(str(d) for d in tier.dims)
        wrap = "".join("T" if w else "M" for w in tier.wraps)
        # A chip drives two links per axis (both directions of the ring), or one at a mesh edge.
        per_dev = sum(2 if w and d > 2 else (1 if d > 1 else 0)
                      for d, w in zip(tier.dims, tier.wraps, strict=True))
        per_dev_bw = per_dev * tier.direction_bytes_per_s
        # Bisection: cut the longest axis in half; the links crossing are the other axes' product,
        # doubled where that axis wraps.
        axis = max(range(len(tier.dims)), key=lambda i: tier.dims[i])
        others = math.prod(d for i, d in enumerate(tier.dims) if i != axis)
        crossing = others * (2 if tier.wraps[axis] and tier.dims[axis] > 2 else 1)
        kind = "torus" if all(tier.wraps) else ("mesh" if not any(tier.wraps) else "torus/mesh")
        shape = f"{len(tier.dims)}D {kind} {dims} (per axis {wrap}: T wraps, M mesh)"
        if tier.cube_dims:
            shape += f", {'x'.join(str(c) for c in tier.cube_dims)} cubes"
        return TierSummary(tier.name, tier.kind, shape, spanned, per_dev_bw,
                           crossing * tier.direction_bytes_per_s, tier.latency_us * US)
    if isinstance(tier, FatTreeSpec):
        per_domain = tier.nics_per_domain * tier.nic_bytes_per_s
        per_dev = per_domain / topo.devices_per_domain
        bis = tier.num_domains / 2 * per_domain / tier.oversubscription
        rail = "rail-optimized " if tier.rail_optimized else ""
        shape = (f"{rail}fat tree, {tier.num_domains} domains x {tier.nics_per_domain} NICs x "
                 f"{tier.nic_gbit_per_s:g} Gb/s per direction")
        return TierSummary(tier.name, tier.kind, shape, spanned, per_dev, bis,
                           tier.latency_us * US)
    assert isinstance(tier, DcnSpec)
    per_dev = tier.per_device_gbit_per_s * GBIT_PER_S
    return TierSummary(tier.name, tier.kind, f"DCN joining {tier.num_slices} slices", spanned,
                       per_dev, per_dev * spanned / 2, tier.latency_us * US)


def as_gbyte_per_s(bytes_per_s: float) -> float:
    return bytes_per_s / GBYTE_PER_S
