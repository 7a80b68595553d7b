"""Stopgap communication costs from the topology's tier bandwidths (alpha-beta, no contention).

Used only while ``moesim.cluster`` / ``moesim.network`` are not importable; every op it prices
is counted under the source ``tier_alpha_beta`` in the result. Ranks are placed in Megatron's
order (TP fastest, then CP, then DP; experts ETP, EP, EDP; PP outermost).
"""

from __future__ import annotations

import numpy as np

from moesim.specs.hardware import DcnSpec, FatTreeSpec, NVSwitchDomainSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.units import US

# Achieved fractions of line rate at large messages (reference hardware.md section 6):
# NVLink4 ring / all-gather / reduce-scatter ~370 of 450 GB/s (NT-i212, MLE-net);
# ConnectX-7 NDR 48 of 50 GB/s per NIC (NT-i267).
NVLINK_ACHIEVED = 370.0 / 450.0
NIC_ACHIEVED = 48.0 / 50.0


class TierNetwork:
    """Two-tier (scale-up, scale-out) alpha-beta costs for groups laid out with a stride."""

    source = "tier_alpha_beta"

    def __init__(self, scenario: ScenarioSpec) -> None:
        topo, par = scenario.topology_spec, scenario.parallelism
        up = topo.scale_up
        self.domain = topo.devices_per_domain
        if isinstance(up, NVSwitchDomainSpec):
            self.bw_up = up.device_bytes_per_s * NVLINK_ACHIEVED
        else:  # torus: one link per direction of a ring
            self.bw_up = up.link_bytes_per_s
        self.lat_up = up.latency_us * US
        self.bw_out, self.lat_out = self.bw_up, self.lat_up
        if len(topo.tiers) > 1:
            out = topo.tiers[1]
            if isinstance(out, FatTreeSpec):
                self.bw_out = out.nic_bytes_per_s * out.nics_per_domain / self.domain * NIC_ACHIEVED
            elif isinstance(out, DcnSpec):
                self.bw_out = out.per_device_gbit_per_s * 1e9 / 8.0
            self.lat_out = out.latency_us * US
        tp, cp, etp, ep = (par.tensor_parallel_degree, par.context_parallel_degree,
                           par.expert_tensor_parallel_degree, par.expert_parallel_degree)
        n = scenario.devices
        self.sizes = {"tp": tp, "cp": cp, "dp": scenario.data_parallel_degree, "etp": etp,
                      "ep": ep, "edp": scenario.expert_data_parallel_degree}
        self.strides = {"tp": 1, "cp": tp, "dp": tp * cp, "etp": 1, "ep": etp, "edp": etp * ep}
        self.pp_stride = n // par.pipeline_parallel_degree

    def _per_domain(self, axis: str) -> int:
        n, st = self.sizes[axis], self.strides[axis]
        return max(1, min(n, self.domain // st)) if st < self.domain else 1

    def collective(self, op: str, axis: str, size_bytes: float, stage: int) -> float:
        """Ring / hierarchical time of ``op`` on ``size_bytes`` (nccl-tests size convention)."""
        n = self.sizes[axis]
        if n <= 1 or size_bytes <= 0:
            return 0.0
        g = self._per_domain(axis)
        nodes = n // g
        t = 0.0
        if g > 1:
            t += size_bytes * (g - 1) / g / self.bw_up + (g - 1) * self.lat_up
        if nodes > 1:
            t += (size_bytes / g) * (nodes - 1) / nodes / self.bw_out + (nodes - 1) * self.lat_out
        return 2.0 * t if op == "all_reduce" else t

    def all_to_all(self, traffic_bytes: np.ndarray, stage: int) -> float:
        """Slowest rank's intra- or inter-domain bytes (send or receive) over that tier's bandwidth."""
        n = traffic_bytes.shape[0]
        if n <= 1:
            return 0.0
        dom = (np.arange(n) * self.strides["ep"]) // self.domain
        same = dom[:, None] == dom[None, :]
        off = traffic_bytes * (1.0 - np.eye(n))
        intra = np.where(same, off, 0.0)
        inter = np.where(same, 0.0, off)
        t_up = max(intra.sum(1).max(), intra.sum(0).max()) / self.bw_up
        t_out = max(inter.sum(1).max(), inter.sum(0).max()) / self.bw_out
        lat = self.lat_out if inter.any() else self.lat_up
        return float(max(t_up, t_out) + lat)

    def send(self, size_bytes: float, stage: int, direction: str) -> float:
        if self.pp_stride >= self.domain:
            return size_bytes / self.bw_out + self.lat_out
        return size_bytes / self.bw_up + self.lat_up
