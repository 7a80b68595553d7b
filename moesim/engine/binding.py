"""The real cost provider: kernels from ``moesim.compute``, communication from ``moesim.network``.

Each collective is priced with every concurrent group of its axis in the stage at once, so
groups that share links contend in the network model (``fidelity="flow"`` for the DES, the
network's closed-form bottleneck ``"analytic"`` for the analytic fidelity).

FP8 runs: only the linear layers' GEMMs run in FP8 (Transformer Engine's FP8 recipes and
DeepSeek-V3 section 3.3.1 keep the attention core, norms and other element-wise kernels in
BF16), so attention and memory-bound kernels are priced by a BF16 kernel model, and every
FP8 GEMM operand is cast first (see :mod:`moesim.engine.physics`).

Pipeline stages are symmetric in the topologies moesim builds (a stage's EP groups span the
same number of scale-up domains at the same local positions), so an all-to-all is priced once
per stage *layout signature* and shared by every stage with that signature.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from moesim.cluster import TIER_NAMES, build_cluster, process_groups
from moesim.compute import KernelCostModel
from moesim.compute.calibration import CalibrationTable
from moesim.compute.tables import (
    DEFAULT_TABLES,
    TableCache,
    measured_collective,
    table_path_for,
)
from moesim.engine.session import EngineSession
from moesim.network import all_to_all_v_time, collective_time, send_time
from moesim.program.ops import (
    AttentionShape,
    CollectiveShape,
    GemmShape,
    GroupedGemmShape,
    GroupedMemoryShape,
    MemoryShape,
)
from moesim.specs.scenario import ScenarioSpec

# Sustained fraction of the isolated-kernel speed that whole training steps reach: every
# compute-stream kernel time (GEMM, grouped GEMM, attention, memory-bound op) is divided by
# it. It stands for what the kernel models leave out and no datasheet gives: clocks under
# sustained power draw, kernels running beside communication kernels. FITTED, not measured:
# a least-squares fit in log space of the step time over the published training cases,
# jointly with moesim.engine.host.HOST_OP_S (docs/engine.md, "Calibration";
# benchmarks/fit_sustained_efficiency.py re-derives both and prints leave-one-out errors).
SUSTAINED_COMPUTE_EFFICIENCY = 0.768
# The same for the linear layers' GEMMs of an FP8 recipe (it replaces the one above for those
# kernels): FP8 tensor cores draw more power per second of work, and the training recipes
# scale and quantize around every GEMM (amax reductions, scale updates) in ways the isolated
# kernel tables do not hold. FITTED jointly with the two others over the same cases.
SUSTAINED_FP8_GEMM_EFFICIENCY = 0.668



def scenario_table(scenario: ScenarioSpec, tables: TableCache | None = None
                   ) -> CalibrationTable | None:
    """The measured table a scenario prices with (docs/compute.md): its ``calibration``, the
    accelerator's shipped table by default, or none (``calibration: none``)."""
    path = table_path_for(scenario.topology_spec.accelerator, scenario.calibration)
    if path is None:
        return None
    return (tables or DEFAULT_TABLES).load(path)


def kernel_models(scenario: ScenarioSpec, tables: TableCache | None = None,
                  session: EngineSession | None = None
                  ) -> tuple[KernelCostModel, KernelCostModel]:
    """(GEMM model in the linear layers' kernel dtype, BF16 model for attention and memory
    ops: FP8 recipes keep those in BF16); shared through ``session`` when one is given."""
    acc, wl = scenario.topology_spec.accelerator, scenario.workload
    table = scenario_table(scenario, tables)

    def model(dtype: str, tab: CalibrationTable | None) -> KernelCostModel:
        if session is None:
            return KernelCostModel(acc, dtype, tab)
        return session.kernel_model(acc, dtype, tab)

    gemm = model(wl.gemm_kernel_dtype, table)
    if wl.dtype != "fp8":
        return gemm, gemm
    bf16 = table if table is not None and "bf16" in table.gemm_dtypes() else None
    return gemm, model("bf16", bf16)


class ScenarioCostProvider:
    """Prices ops of one scenario on its topology (see module docstring)."""

    def __init__(self, scenario: ScenarioSpec, *, fidelity: str = "flow",
                 sustained_efficiency: float | None = None,
                 fp8_gemm_efficiency: float | None = None,
                 tables: TableCache | None = None,
                 session: EngineSession | None = None) -> None:
        self.scenario = scenario
        self.session = session = session if session is not None else EngineSession(tables)
        self.sources: Counter[str] = Counter()
        self.kernels, self.kernels_bf16 = kernel_models(scenario, tables or session.tables,
                                                        session)
        self.table = self.kernels.calibration
        if sustained_efficiency is None:
            sustained_efficiency = SUSTAINED_COMPUTE_EFFICIENCY
        if fp8_gemm_efficiency is None:
            fp8_gemm_efficiency = SUSTAINED_FP8_GEMM_EFFICIENCY
        self.scale = 1.0 / sustained_efficiency  # compute-kernel time multiplier
        # ... and that of the linear layers' GEMMs (their own under an FP8 recipe)
        self.gemm_scale = (1.0 / fp8_gemm_efficiency if scenario.workload.dtype == "fp8"
                           else self.scale)
        self.fidelity = fidelity
        self.net = NetworkBinding(scenario, fidelity, self.table, session)
        self._memory_sources: dict[str, str] = {}  # memory-op kind -> pricing path
        self.num_sms = scenario.topology_spec.accelerator.num_sms
        acc = scenario.topology_spec.accelerator
        self._kernel_id = session.intern((acc, scenario.workload.gemm_kernel_dtype,
                                   self.table.source_path if self.table else None, self.scale,
                                   self.gemm_scale))
        self._net_id = session.intern((scenario.topology_spec, scenario.devices, scenario.parallelism,
                                fidelity, self.table.source_path if self.table else None))

    def _memo(self, key: tuple[object, ...], price: Callable[[], tuple[float, str]]) -> float:
        """Seconds of ``key``, priced once per session (equal inputs, equal price)."""
        hit = self.session.price(key, price)
        self.sources[hit[1]] += 1
        return hit[0]

    def source_of(self, shape: object) -> str:
        """Which path priced ``shape`` (measured, derived, roofline, network); compute shapes
        are priced first, so this reads what that pricing found."""
        if isinstance(shape, (GemmShape, AttentionShape, MemoryShape)):
            key = (self._kernel_id, shape)
            hit = self.session.prices.get(key)
            return hit[1] if hit is not None else self.kernels.source
        if isinstance(shape, GroupedGemmShape):
            return "derived" if self.kernels.source != "roofline" else "roofline"
        if isinstance(shape, GroupedMemoryShape):
            src = self._memory_sources.get(shape.kind)
            if src is None:
                src = self._memory_sources[shape.kind] = self.kernels_bf16.memory_op(
                    1e6, kind=shape.kind).source
            return src
        return "network"

    # --- compute ---------------------------------------------------------------------------
    def gemm(self, shape: GemmShape) -> float:
        def price() -> tuple[float, str]:
            kt = self.kernels.gemm(shape.m, shape.n, shape.k, batch=shape.batch)
            return float(kt.time_s) * self.gemm_scale, kt.source
        return self._memo((self._kernel_id, shape), price)

    def grouped_gemm(self, tokens: np.ndarray, n: int, k: int, *,
                     wgrad: bool = False) -> np.ndarray:
        src = self.kernels.source
        self.sources["derived" if src == "measured" else src] += tokens.shape[0]
        t = np.asarray(self.kernels.grouped_gemm_many(tokens, n, k, wgrad=wgrad),
                       dtype=np.float64)
        return t * self.gemm_scale

    def attention(self, shape: AttentionShape) -> float:
        def price() -> tuple[float, str]:
            kt = self.kernels_bf16.attention(
                shape.batch, shape.seq_q, shape.seq_kv, shape.num_heads, shape.num_kv_heads,
                shape.head_dim, causal=shape.causal, backward=shape.backward,
                window=shape.window, head_dim_v=shape.head_dim_v,
                kv_cache_dtype=shape.kv_cache_dtype)
            return float(kt.time_s) * self.scale, kt.source
        return self._memo((self._kernel_id, shape), price)

    def memory(self, shape: MemoryShape) -> float:
        def price() -> tuple[float, str]:
            kt = self.kernels_bf16.memory_op(shape.bytes_moved, kind=shape.kind)
            return float(kt.time_s) * self.scale, kt.source
        return self._memo((self._kernel_id, shape), price)

    def memory_many(self, bytes_moved: np.ndarray, kind: str) -> np.ndarray:
        """Each distinct size priced once through ``memory`` (routed sizes repeat a lot)."""
        sizes = np.asarray(bytes_moved, dtype=np.float64)
        uniq, inverse = np.unique(sizes, return_inverse=True)
        pos = uniq > 0
        many = self.kernels_bf16.memory_op_many(uniq[pos], kind) if pos.any() else None
        if many is not None:  # one vectorized pass; counted as one pricing per size
            times = np.zeros(uniq.shape)
            times[pos] = many[0] * self.scale
            self.sources[many[1]] += int(pos.sum())
        else:
            times = np.array([self.memory(MemoryShape(float(b), kind)) if b > 0 else 0.0
                              for b in uniq])
        return times[inverse].reshape(sizes.shape)

    # --- communication -----------------------------------------------------------------------
    def collective(self, shape: CollectiveShape, stage: int) -> float:
        key = (self._net_id, shape, stage)

        def price() -> tuple[float, str]:
            t, links = self.net.collective_priced(shape.op, shape.axis, shape.size_bytes, stage)
            if links:
                self.session.links[key] = links
            return float(t), "network"
        return self._memo(key, price)

    def collective_link_bytes(self, shape: CollectiveShape, stage: int) -> dict[str, float]:
        """Bytes per named link of one run of ``shape`` on ``stage`` (empty if not flow-priced)."""
        return self.session.links.get((self._net_id, shape, stage), {})

    def all_to_all_link_bytes(self, traffic_bytes: np.ndarray, stage: int,
                              node_traffic_bytes: np.ndarray | None = None) -> dict[str, float]:
        """Bytes per named link of one all-to-all on ``stage``'s own links (empty if unknown)."""
        return self.net.all_to_all_link_bytes(traffic_bytes, stage, node_traffic_bytes)

    def link_table(self) -> tuple[list[str], list[str], np.ndarray]:
        """(link names, tier name per link, capacity per link in bytes/s) of the cluster."""
        c = self.net.cluster
        return c.link_names, [TIER_NAMES[int(t)] for t in c.link_tier], c.capacity_bytes_per_s

    def all_to_all(self, traffic_bytes: np.ndarray, stage: int,
                   node_traffic_bytes: np.ndarray | None = None) -> float:
        self.sources["network"] += 1
        return float(self.net.all_to_all(traffic_bytes, stage, node_traffic_bytes))

    def send(self, size_bytes: float, stage: int, direction: str) -> float:
        self.sources["network"] += 1
        return float(self.net.send(size_bytes, stage, direction))


def _cluster_and_groups(scenario: ScenarioSpec, session: EngineSession) -> tuple[Any, Any]:
    """build_cluster and process_groups, memoized by value in ``session`` (read-only here)."""
    key = session.intern((scenario.topology_spec, scenario.devices, scenario.parallelism))
    return session.clusters.get_or_make(key, lambda: (
        build_cluster(scenario.topology_spec, scenario.devices),
        process_groups(scenario.parallelism, scenario.devices)))


class NetworkBinding:
    """Adapter over moesim.cluster / moesim.network: one stage's groups, priced together."""

    def __init__(self, scenario: ScenarioSpec, fidelity: str,
                 table: CalibrationTable | None = None,
                 session: EngineSession | None = None) -> None:
        par = scenario.parallelism
        self.table = table
        self.accelerator = scenario.topology_spec.accelerator
        self.cluster, self.groups = _cluster_and_groups(
            scenario, session if session is not None else EngineSession())
        self.fidelity = fidelity
        self.algorithm = par.all_to_all.kind
        # DeepEP's kernels move tokens at num_sms x the per-SM rate of the accelerator's table
        # (moesim.network.deepep.sm_rates): inside one scale-up domain, and across domains.
        self.deepep_sm_bytes_per_s: tuple[float, float] | None = None
        if self.algorithm == "deepep" and par.all_to_all.backend == "deepep":
            from moesim.network.deepep import sm_rates

            rates = sm_rates(table)
            sms = par.all_to_all.num_sms
            self.deepep_sm_bytes_per_s = (sms * rates.intra, sms * rates.inter)
        pp_groups = self.groups.pp
        self.stage_devices = [{g[s] for g in pp_groups} for s in range(par.pipeline_parallel_degree)]
        self._a2a: dict[tuple[object, bytes, bytes], float] = {}
        # Link bytes of each priced all-to-all and the stage whose groups they were priced on.
        self._a2a_links: dict[tuple[object, bytes, bytes], tuple[int, dict[str, float]]] = {}

    def stage_groups(self, axis: str, stage: int) -> list[list[int]]:
        """Every group of ``axis`` whose ranks belong to pipeline stage ``stage``."""
        groups = getattr(self.groups, axis)
        devs = self.stage_devices[stage]
        return [g for g in groups if g and g[0] in devs]

    def signature(self, groups: list[list[int]]) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Groups as (domain relative to the stage's first, local index) pairs."""
        per = self.cluster.devices_per_domain
        base = min(d for g in groups for d in g) // per
        return tuple(tuple((d // per - base, d % per) for d in g) for g in groups)

    def collective(self, op: str, axis: str, size_bytes: float, stage: int) -> float:
        return self.collective_priced(op, axis, size_bytes, stage)[0]

    def collective_priced(self, op: str, axis: str, size_bytes: float,
                          stage: int) -> tuple[float, dict[str, float] | None]:
        """(seconds, bytes per named link or None) of ``op`` over the stage's groups.

        Groups inside one scale-up domain take the accelerator's measured NCCL curve where
        the table has it (NVSwitch domains give every group its own links, so a group's time
        is the measured one); the flow model still gives the link bytes."""
        groups = self.stage_groups(axis, stage)
        if not groups or len(groups[0]) <= 1 or size_bytes <= 0:
            return 0.0, None
        res = collective_time(self.cluster, op, groups, size_bytes, fidelity=self.fidelity)
        per = self.cluster.devices_per_domain
        if self.table is not None and all(len({d // per for d in g}) == 1 for g in groups):
            hit = measured_collective(self.table, self.accelerator, op, len(groups[0]),
                                      size_bytes, res.time_s)
            if hit is not None:
                return hit[0], res.link_bytes
        return res.time_s, res.link_bytes

    def _a2a_key(self, traffic_bytes: np.ndarray, stage: int,
                 node_traffic_bytes: np.ndarray | None) -> tuple[Any, ...] | None:
        groups = self.stage_groups("ep", stage)
        if not groups or len(groups[0]) <= 1:
            return None
        mat = np.ascontiguousarray(traffic_bytes, dtype=np.float64)
        node = (np.ascontiguousarray(node_traffic_bytes, dtype=np.float64)
                if node_traffic_bytes is not None and self.algorithm == "deepep" else None)
        key = (self.signature(groups), mat.tobytes(), b"" if node is None else node.tobytes())
        return key, groups, mat, node

    def all_to_all(self, traffic_bytes: np.ndarray, stage: int,
                   node_traffic_bytes: np.ndarray | None = None) -> float:
        found = self._a2a_key(traffic_bytes, stage, node_traffic_bytes)
        if found is None:
            return 0.0
        key, groups, mat, node = found
        hit = self._a2a.get(key)
        if hit is None:
            traffic = np.broadcast_to(mat, (len(groups),) + mat.shape)
            sm = None
            if self.deepep_sm_bytes_per_s is not None:
                per = self.cluster.devices_per_domain
                inside = all(len({d // per for d in g}) == 1 for g in groups)
                sm = self.deepep_sm_bytes_per_s[0 if inside else 1]
            res = all_to_all_v_time(self.cluster, groups, np.ascontiguousarray(traffic),
                                    algorithm=self.algorithm, fidelity=self.fidelity,
                                    node_traffic_bytes=node, sm_bytes_per_s=sm)
            hit = self._a2a[key] = res.time_s
            self._a2a_links[key] = (stage, res.link_bytes or {})
        return hit

    def all_to_all_link_bytes(self, traffic_bytes: np.ndarray, stage: int,
                              node_traffic_bytes: np.ndarray | None = None) -> dict[str, float]:
        """Link bytes of the all-to-all last priced for ``stage``; empty when it was priced on
        another stage with the same layout signature (its link names are that stage's)."""
        found = self._a2a_key(traffic_bytes, stage, node_traffic_bytes)
        hit = self._a2a_links.get(found[0]) if found is not None else None
        return hit[1] if hit is not None and hit[0] == stage else {}

    def send(self, size_bytes: float, stage: int, direction: str) -> float:
        pp = self.groups.pp[0]
        dst = stage + 1 if direction == "next" else stage - 1
        if not 0 <= dst < len(pp):
            return 0.0
        return float(send_time(self.cluster, pp[stage], pp[dst], size_bytes))
