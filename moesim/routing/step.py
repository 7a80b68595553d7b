"""Routing draws for a whole training step: every MoE layer, every micro-batch, one EP group.

All EP groups of a step are statistically alike, so one group is drawn. Per MoE layer the
popularity (and, with redundant experts, the placement) is fixed; per (layer, micro-batch)
the counts are a fresh draw, so the max over ranks is a random variable, not a mean.

Representative subset: each layer gets ``D = min(M, num_draws_per_layer)`` independent draws;
micro-batch ``m`` uses draw ``m % D`` (``micro_batch_draw``). Every micro-batch row is thus a
real draw of the max over ranks, and its expectation over the step is unbiased; only the
variance of the step total is understated when D < M. Per-rank arrays are stored for all M
(cheap); the EP x EP matrices only per draw ([L, D, EP, EP]) to bound memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moesim.constants import DEFAULT_DRAWS_PER_LAYER  # draws per layer by default
from moesim.errors import SpecError
from moesim.routing.layer import LayerRouting, RoutingPlan, route_layer
from moesim.routing.loads import COUNTS, layer_popularity, read_histogram, stream
from moesim.routing.placement import ExpertPlacement, place_experts
from moesim.specs.routing import HistogramLoadSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.units import dtype_bytes

# FP8 dispatch carries one fp32 scale per 1x128 tile of the hidden vector (DSV3 section 3.3
# fine-grained quantization; DeepEP config message size D + 4 D / 128 bytes).
FP8_SCALE_TILE = 128
FP8_SCALE_BYTES = 4.0


def tokens_per_source_rank(scenario: ScenarioSpec) -> int:
    """Tokens one EP rank routes per micro-batch: MBS x seq / CP, and / TP with SP (TP > 1)."""
    par, wl = scenario.parallelism, scenario.workload
    tokens = par.micro_batch_size * wl.sequence_length // par.context_parallel_degree
    if par.sequence_parallel and par.tensor_parallel_degree > 1:
        tokens //= par.tensor_parallel_degree
    return tokens


def dispatch_bytes_per_token(scenario: ScenarioSpec) -> float:
    """Bytes of one dispatched token: FP8 + per-128 fp32 scales when the workload is fp8, else bf16."""
    d = scenario.model_spec.hidden_size
    if scenario.workload.dtype == "fp8":
        return d * dtype_bytes("fp8") + math.ceil(d / FP8_SCALE_TILE) * FP8_SCALE_BYTES
    return d * dtype_bytes("bf16")


def combine_bytes_per_token(scenario: ScenarioSpec) -> float:
    """Bytes of one combined token: combine always moves bf16 (DSV3 section 3.3; DeepEP)."""
    return scenario.model_spec.hidden_size * dtype_bytes("bf16")


def node_of_ep_rank(scenario: ScenarioSpec) -> np.ndarray:
    """Node of each EP rank: rank e sits on device e x ETP (folding order etp-ep-edp-pp)."""
    par = scenario.parallelism
    ranks = np.arange(par.expert_parallel_degree, dtype=np.int64)
    return (ranks * par.expert_tensor_parallel_degree) // scenario.topology_spec.devices_per_domain


def routing_plan(scenario: ScenarioSpec) -> RoutingPlan:
    """Resolve what routing needs from a (MoE) scenario; SpecError if node limiting cannot work."""
    m, rt, par = scenario.model_spec, scenario.routing, scenario.parallelism
    plan = RoutingPlan(
        num_experts=m.num_experts, top_k=m.top_k, ep=par.expert_parallel_degree,
        tokens_per_source=tokens_per_source_rank(scenario), router=rt.router.kind,
        load=rt.load.kind, capacity_factor=rt.capacity_factor,
        pad_to_capacity=rt.pad_to_capacity, max_nodes_per_token=rt.max_nodes_per_token,
        node_of_rank=node_of_ep_rank(scenario),
        bytes_per_token_dispatch=dispatch_bytes_per_token(scenario),
        bytes_per_token_combine=combine_bytes_per_token(scenario),
        contiguous=getattr(rt.load, "expert_order", "random") == "contiguous",
    )
    if plan.node_limited:
        g = plan.num_nodes
        sizes = np.bincount(plan.node_of_rank)
        if m.num_experts % g or (sizes != sizes[0]).any():
            raise SpecError(f"routing.max_nodes_per_token: the EP group spans {g} nodes unevenly; "
                            "node-limited routing needs the same number of EP ranks per node",
                            field="routing.max_nodes_per_token")
        if rt.max_nodes_per_token * (m.num_experts // g) < m.top_k:
            raise SpecError(f"routing.max_nodes_per_token={rt.max_nodes_per_token} reaches only "
                            f"{rt.max_nodes_per_token * (m.num_experts // g)} experts, fewer than "
                            f"model.top_k={m.top_k}", field="routing.max_nodes_per_token")
    return plan


@dataclass(frozen=True)
class StepRouting:
    """Routing of one training step for one EP group. L MoE layers, M micro-batches, D draws.

    Per-rank arrays are [L, M, ...]; the EP x EP matrices are [L, D, EP, EP]: micro-batch m of
    layer l uses ``traffic_tokens[l, micro_batch_draw[m]]`` (see :meth:`traffic`). Dispatch
    bytes = copies x ``bytes_per_token_dispatch``; combine moves the transpose in bf16.
    """

    moe_layers: list[int]
    ep: int
    tokens_per_source_rank: int
    bytes_per_token_dispatch: float  # bytes
    bytes_per_token_combine: float  # bytes
    top_k: int
    capacity: int | None  # copies per (source rank, expert); None: dropless
    shared_expert_tokens_per_rank: int  # tokens x shared experts, on the TP path (no all-to-all)
    node_of_rank: np.ndarray  # [EP]
    micro_batch_draw: np.ndarray  # [M] draw index of each micro-batch
    recv_tokens: np.ndarray  # [L, M, EP] int32, kept + padding
    slot_tokens: np.ndarray  # [L, M, EP, slots] int32 per physical expert slot, kept + padding
    tokens_per_expert: np.ndarray  # [L, M, E] int32, after top-k, before capacity
    dropped_tokens: np.ndarray  # [L, M] int64 copies dropped
    padded_tokens: np.ndarray  # [L, M] int64 padding copies
    traffic_tokens: np.ndarray  # [L, D, EP, EP] int32 copies i -> j
    distinct_tokens: np.ndarray  # [L, D, EP, EP] float32 distinct tokens i -> j
    distinct_node_tokens: np.ndarray  # [L, D, EP, nodes] float32 distinct tokens i -> node
    intra_node_bytes: np.ndarray  # [L, M, EP] dispatch bytes to other ranks of the same node
    inter_node_bytes: np.ndarray  # [L, M, EP] dispatch bytes to other nodes
    placements: list[ExpertPlacement] = field(default_factory=list)  # one per MoE layer

    @property
    def drop_fraction(self) -> float:
        """Dropped copies / routed copies over the whole step (0 when dropless)."""
        total = float(self.tokens_per_expert.sum(dtype=np.int64))
        return float(self.dropped_tokens.sum()) / total if total else 0.0

    def max_over_mean(self) -> float:
        """Mean over (layer, micro-batch) of max-over-ranks / mean-over-ranks received tokens."""
        if self.recv_tokens.size == 0:
            return 1.0
        r = self.recv_tokens.astype(np.float64)
        mean = r.mean(axis=2)
        ratio = np.divide(r.max(axis=2), mean, out=np.ones_like(mean), where=mean > 0)
        return float(ratio.mean())

    def traffic(self, layer: int, micro_batch: int) -> np.ndarray:
        """[EP, EP] dispatch copies of MoE layer number ``layer`` (0-based) and a micro-batch."""
        return self.traffic_tokens[layer, self.micro_batch_draw[micro_batch]]


def empty_step(scenario: ScenarioSpec, num_micro_batches: int) -> StepRouting:
    """A dense model's routing: no MoE layers (L = 0)."""
    ep = scenario.parallelism.expert_parallel_degree
    z = np.zeros
    return StepRouting(
        moe_layers=[], ep=ep, tokens_per_source_rank=tokens_per_source_rank(scenario),
        bytes_per_token_dispatch=dispatch_bytes_per_token(scenario),
        bytes_per_token_combine=combine_bytes_per_token(scenario),
        top_k=0, capacity=None, shared_expert_tokens_per_rank=0,
        node_of_rank=node_of_ep_rank(scenario),
        micro_batch_draw=np.zeros(num_micro_batches, dtype=np.int64),
        recv_tokens=z((0, num_micro_batches, ep), np.int32),
        slot_tokens=z((0, num_micro_batches, ep, 1), np.int32),
        tokens_per_expert=z((0, num_micro_batches, 0), np.int32),
        dropped_tokens=z((0, num_micro_batches), np.int64),
        padded_tokens=z((0, num_micro_batches), np.int64),
        traffic_tokens=z((0, 0, ep, ep), np.int32), distinct_tokens=z((0, 0, ep, ep), np.float32),
        distinct_node_tokens=z((0, 0, ep, 1), np.float32),
        intra_node_bytes=z((0, num_micro_batches, ep)), inter_node_bytes=z((0, num_micro_batches, ep)))


def draw_step_routing(scenario: ScenarioSpec, *, num_micro_batches: int | None = None,
                      num_draws_per_layer: int | None = None) -> StepRouting:
    """Draw routing for every MoE layer and micro-batch of one step (one EP group).

    ``num_micro_batches``: default the scenario's (per pipeline per step).
    ``num_draws_per_layer``: independent draws per layer, default ``DEFAULT_DRAWS_PER_LAYER``;
    micro-batches cycle through them. Same scenario and seed give identical arrays.
    """
    m_count = scenario.num_micro_batches if num_micro_batches is None else num_micro_batches
    if m_count < 1:
        raise SpecError(f"num_micro_batches={m_count} must be >= 1")
    model = scenario.model_spec
    if not model.is_moe:
        return empty_step(scenario, m_count)
    draws = min(m_count, num_draws_per_layer or DEFAULT_DRAWS_PER_LAYER)
    plan = routing_plan(scenario)
    rt = scenario.routing
    seed = scenario.seed if rt.seed is None else rt.seed
    hist = (read_histogram(rt.load.path, model.num_experts)
            if isinstance(rt.load, HistogramLoadSpec) else None)
    layers: list[list[LayerRouting]] = []
    placements: list[ExpertPlacement] = []
    for li in range(model.num_moe_layers):
        pop = layer_popularity(rt.load, model.num_experts, li, seed, hist)
        placement = place_experts(model.num_experts, plan.ep, pop, rt.num_redundant_experts)
        placements.append(placement)
        layers.append([route_layer(plan, pop, placement, stream(seed, COUNTS, li, d))
                       for d in range(draws)])
    return _assemble(scenario, plan, layers, placements, m_count)


def _assemble(scenario: ScenarioSpec, plan: RoutingPlan, layers: list[list[LayerRouting]],
              placements: list[ExpertPlacement], m_count: int) -> StepRouting:
    """Stack per-draw results and tile the per-rank ones over the micro-batches."""
    idx = np.arange(m_count) % len(layers[0])

    def stack(get: Callable[[LayerRouting], Any], dtype: type, tile: bool) -> np.ndarray:
        arr = np.stack([np.stack([np.asarray(get(r)) for r in draws]) for draws in layers])
        arr = arr.astype(dtype, copy=False)
        return arr[:, idx] if tile else arr

    model = scenario.model_spec
    return StepRouting(
        moe_layers=model.moe_layer_indices, ep=plan.ep,
        tokens_per_source_rank=plan.tokens_per_source,
        bytes_per_token_dispatch=plan.bytes_per_token_dispatch,
        bytes_per_token_combine=plan.bytes_per_token_combine, top_k=plan.top_k,
        capacity=plan.capacity,
        shared_expert_tokens_per_rank=plan.tokens_per_source * model.num_shared_experts,
        node_of_rank=plan.node_of_rank, micro_batch_draw=idx,
        recv_tokens=stack(lambda r: r.recv_tokens, np.int32, True),
        slot_tokens=stack(lambda r: r.slot_tokens, np.int32, True),
        tokens_per_expert=stack(lambda r: r.tokens_per_expert, np.int32, True),
        dropped_tokens=stack(lambda r: r.dropped_tokens, np.int64, True),
        padded_tokens=stack(lambda r: r.padded_tokens, np.int64, True),
        traffic_tokens=stack(lambda r: r.traffic_tokens, np.int32, False),
        distinct_tokens=stack(lambda r: r.distinct_tokens, np.float32, False),
        distinct_node_tokens=stack(lambda r: r.distinct_node_tokens, np.float32, False),
        intra_node_bytes=stack(lambda r: r.intra_node_bytes, np.float64, True),
        inter_node_bytes=stack(lambda r: r.inter_node_bytes, np.float64, True),
        placements=placements,
    )
