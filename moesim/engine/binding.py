"""The real cost provider: kernels from ``moesim.compute``, communication from ``moesim.network``.

Each collective is priced with every concurrent group of its axis in the stage at once, so
groups that share links contend in the network model. Until the cluster / network modules
are importable, communication falls back to :mod:`moesim.engine.fallback_network` (a
tier-bandwidth alpha-beta model); ``sources`` records which path priced each op.
"""

from __future__ import annotations

import importlib
from collections import Counter
from typing import Any

import numpy as np

from moesim.engine.fallback_network import TierNetwork
from moesim.program.ops import AttentionShape, CollectiveShape, GemmShape, MemoryShape
from moesim.specs.scenario import ScenarioSpec


def _try_import(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _kernel_model(scenario: ScenarioSpec) -> Any:
    mod = _try_import("moesim.compute") or _try_import("moesim.compute.model")
    cls = getattr(mod, "KernelCostModel", None) if mod else None
    if cls is None:
        mod = _try_import("moesim.compute.model")
        cls = getattr(mod, "KernelCostModel", None) if mod else None
    if cls is None:
        return None
    calibration = None
    if scenario.calibration:
        loader = getattr(mod, "load_calibration", None) or getattr(
            _try_import("moesim.compute.calibration"), "load_calibration", None)
        if loader is not None:
            calibration = loader(scenario.calibration)
    return cls(scenario.topology_spec.accelerator, scenario.workload.dtype, calibration)


class ScenarioCostProvider:
    """Prices ops of one scenario on its topology (see module docstring)."""

    def __init__(self, scenario: ScenarioSpec, *, fidelity: str = "flow") -> None:
        self.scenario = scenario
        self.sources: Counter[str] = Counter()
        self.kernels = _kernel_model(scenario)
        if self.kernels is None:
            raise ImportError("moesim.compute.KernelCostModel is not importable")
        self.fidelity = fidelity
        self.net = _network_binding(scenario, fidelity) or TierNetwork(scenario)
        self.network_source = getattr(self.net, "source", "network")

    # --- compute ---------------------------------------------------------------------------
    def gemm(self, shape: GemmShape) -> float:
        kt = self.kernels.gemm(shape.m, shape.n, shape.k, batch=shape.batch)
        self.sources[kt.source] += 1
        return float(kt.time_s)

    def grouped_gemm(self, tokens: np.ndarray, n: int, k: int) -> np.ndarray:
        self.sources[self.kernels.source] += tokens.shape[0]
        return np.asarray(self.kernels.grouped_gemm_many(tokens, n, k), dtype=np.float64)

    def attention(self, shape: AttentionShape) -> float:
        kt = self.kernels.attention(shape.batch, shape.seq_q, shape.seq_kv, shape.num_heads,
                                    shape.num_kv_heads, shape.head_dim, causal=shape.causal,
                                    backward=shape.backward)
        self.sources[kt.source] += 1
        return float(kt.time_s)

    def memory(self, shape: MemoryShape) -> float:
        kt = self.kernels.memory_op(shape.bytes_moved, kind=shape.kind)
        self.sources[kt.source] += 1
        return float(kt.time_s)

    # --- communication -----------------------------------------------------------------------
    def collective(self, shape: CollectiveShape, stage: int) -> float:
        self.sources[self.network_source] += 1
        return float(self.net.collective(shape.op, shape.axis, shape.size_bytes, stage))

    def all_to_all(self, traffic_bytes: np.ndarray, stage: int) -> float:
        self.sources[self.network_source] += 1
        return float(self.net.all_to_all(traffic_bytes, stage))

    def send(self, size_bytes: float, stage: int, direction: str) -> float:
        self.sources[self.network_source] += 1
        return float(self.net.send(size_bytes, stage, direction))


class _NetworkModule:
    """Adapter over moesim.cluster / moesim.network: groups of one stage, priced together."""

    source = "network"

    def __init__(self, scenario: ScenarioSpec, cluster_mod: Any, net_mod: Any,
                 fidelity: str) -> None:
        par = scenario.parallelism
        self.cluster = cluster_mod.build_cluster(scenario.topology_spec, scenario.devices)
        self.groups = cluster_mod.process_groups(par, scenario.devices)
        self.net = net_mod
        self.fidelity = fidelity
        self.algorithm = par.all_to_all.kind
        pp_groups = self.groups.pp
        self.stage_devices = [{g[s] for g in pp_groups} for s in range(par.pipeline_parallel_degree)]

    def _stage_groups(self, axis: str, stage: int) -> list[list[int]]:
        groups = getattr(self.groups, axis)
        devs = self.stage_devices[stage]
        return [g for g in groups if g and g[0] in devs]

    def collective(self, op: str, axis: str, size_bytes: float, stage: int) -> float:
        groups = self._stage_groups(axis, stage)
        if not groups or len(groups[0]) <= 1 or size_bytes <= 0:
            return 0.0
        res = self.net.collective_time(self.cluster, op, groups, size_bytes,
                                       fidelity=self.fidelity)
        return res.time_s

    def all_to_all(self, traffic_bytes: np.ndarray, stage: int) -> float:
        groups = self._stage_groups("ep", stage)
        if not groups or len(groups[0]) <= 1:
            return 0.0
        traffic = np.broadcast_to(traffic_bytes, (len(groups),) + traffic_bytes.shape)
        res = self.net.all_to_all_v_time(self.cluster, groups, np.ascontiguousarray(traffic),
                                         algorithm=self.algorithm, fidelity=self.fidelity)
        return res.time_s

    def send(self, size_bytes: float, stage: int, direction: str) -> float:
        pp = self.groups.pp[0]
        dst = stage + 1 if direction == "next" else stage - 1
        if not 0 <= dst < len(pp):
            return 0.0
        return float(self.net.send_time(self.cluster, pp[stage], pp[dst], size_bytes))


def _network_binding(scenario: ScenarioSpec, fidelity: str) -> _NetworkModule | None:
    cluster_mod, net_mod = _try_import("moesim.cluster"), _try_import("moesim.network")
    needed = ("build_cluster", "process_groups")
    if cluster_mod is None or net_mod is None or not all(hasattr(cluster_mod, n) for n in needed):
        return None
    if not all(hasattr(net_mod, n) for n in ("collective_time", "all_to_all_v_time", "send_time")):
        return None
    return _NetworkModule(scenario, cluster_mod, net_mod, fidelity)
