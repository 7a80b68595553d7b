"""The peak of one rank: resident model states plus the larger of two phases.

Phase "backward" (the activation peak): a rank's stored activations peak after its last
warm-up forward, just before its first backward, when ``in_flight`` micro-batches of every
chunk are alive; one MoE layer's dispatch/combine buffers are live at that moment (the forward
of the last warm-up micro-batch is running), and under full recompute one layer's recomputed
activations are rematerialized at a time. Phase "optimizer step": activations are gone; the
optimizer's temporaries are live. Peak = max of the two (never the sum of both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from moesim.constants import TERMS  # defined there so the CLI needs no numpy for it
from moesim.memory.activations import (
    ActivationContext,
    a2a_transient_bytes,
    balanced_recv_copies,
    expert_bytes_per_copy,
    head_bytes,
    layer_fixed_bytes,
)
from moesim.memory.layout import head_in_flight, in_flight, rank_chunks
from moesim.memory.overheads import (
    comm_bucket_bytes,
    fragmentation_bytes,
    framework_reserve_bytes,
    optimizer_step_temporaries,
)
from moesim.memory.params import (
    bytes_per_param,
    layer_params_per_rank,
    model_state_bytes,
    rank_params,
    shard_groups,
)
from moesim.specs.scenario import ScenarioSpec


@dataclass(frozen=True)
class RecvModel:
    """Routed copies an EP rank's experts process, per MoE layer and micro-batch.

    ``recv``: [L_moe, M, EP] token copies (routing's ``recv_tokens``), or None for balanced
    routing; ``ep_rank`` picks the rank (None: the mean over EP ranks).
    """

    scenario: ScenarioSpec
    ctx: ActivationContext
    recv: np.ndarray | None = None
    ep_rank: int | None = None
    # The balanced share after capacity, computed on first use (frozen: set once).
    _balanced: np.ndarray | None = field(default=None, init=False, compare=False, repr=False)

    def capacity(self) -> float | None:
        """Per-rank capacity: local experts x sources x ceil(source tokens x k x CF / E)."""
        rt, m = self.scenario.routing, self.scenario.model_spec
        if rt.capacity_factor is None:
            return None
        per_expert = math.ceil(self.ctx.source_tokens * m.top_k * rt.capacity_factor
                               / m.num_experts)
        sources = self.scenario.parallelism.expert_parallel_degree * self.ctx.etp
        return float(self.scenario.experts_per_rank * sources * per_expert)

    def _clip(self, copies: np.ndarray) -> np.ndarray:
        cap = self.capacity()
        if cap is None:
            return copies
        if self.scenario.routing.pad_to_capacity:
            return np.full_like(copies, cap)
        return np.minimum(copies, cap)

    def copies_all(self, layer: int, window: float) -> tuple[np.ndarray, np.ndarray]:
        """Per EP rank: (mean over the worst window of ``window`` micro-batches, max) copies
        at ``layer``; one entry (the balanced share) without routing data."""
        model = self.scenario.model_spec
        if self.recv is None or layer not in model.moe_layer_set:
            if self._balanced is None:
                object.__setattr__(self, "_balanced", self._clip(
                    np.array([balanced_recv_copies(model, self.ctx)])))
            return self._balanced, self._balanced
        row = self._clip(self.recv[model.moe_layer_position[layer]])  # [M, EP]
        k = max(1, min(row.shape[0], math.ceil(window)))
        csum = np.concatenate([np.zeros((1, row.shape[1])), np.cumsum(row, axis=0)])
        worst = (csum[k:] - csum[:-k]).max(axis=0) / k
        return worst, row.max(axis=0)

    def copies(self, layer: int, window: float) -> tuple[float, float]:
        """(mean over the worst window of ``window`` micro-batches, max) copies at ``layer``
        for this model's EP rank (``ep_rank``; None: the mean EP rank)."""
        worst, peak = self.copies_all(layer, window)
        if self.recv is None or worst.size == 1 or layer not in (
                self.scenario.model_spec.moe_layer_set):
            return float(worst[0]) if worst.size == 1 else float(worst.mean()), float(peak.max())
        if self.ep_rank is None:
            return float(worst.mean()), float(peak.mean())
        return float(worst[self.ep_rank]), float(peak[self.ep_rank])


def hottest_ep_rank(s: ScenarioSpec, rank: int, recv: RecvModel) -> int:
    """The EP rank of pipeline rank ``rank`` whose routed activations and buffers are largest."""
    model, ctx = s.model_spec, recv.ctx
    per_copy = expert_bytes_per_copy(model, ctx)
    dispatch_bytes = 1.0 if s.workload.dtype == "fp8" else 2.0
    act = a2a = np.zeros(s.parallelism.expert_parallel_degree)
    for chunk, n in zip(rank_chunks(model.num_layers, s.parallelism, rank), in_flight(s, rank),
                        strict=True):
        for i in chunk.layers:
            if model.is_moe_layer(i):
                worst, peak = recv.copies_all(i, n)
                act = act + n * per_copy * worst
                a2a = np.maximum(a2a, a2a_transient_bytes(model, ctx, peak, dispatch_bytes))
    return int(np.argmax(act + a2a))


def _activation_terms(s: ScenarioSpec, rank: int, recv: RecvModel) -> dict[str, float]:
    """Stored activations, the recompute working set and the a2a buffers of one rank.

    A layer's routing-independent bytes depend on the layer only through whether it is an MoE
    layer (``layer_fixed_bytes``), so they are computed once per kind; the routed part is its
    copies times ``expert_bytes_per_copy`` (``layer_bytes``)."""
    model, ctx = s.model_spec, recv.ctx
    none_ctx = replace(ctx, recompute="none")
    dispatch_bytes = 1.0 if s.workload.dtype == "fp8" else 2.0  # DSV3 §3.3.3: FP8 dispatch
    moe_set = model.moe_layer_set
    per_copy = expert_bytes_per_copy(model, ctx)
    per_copy_none = expert_bytes_per_copy(model, none_ctx)
    kinds: dict[bool, tuple[float, float]] = {}

    def fixed(i: int) -> tuple[float, float]:
        """(fixed bytes, fixed bytes without recomputation) of layer ``i``'s kind."""
        moe = i in moe_set
        hit = kinds.get(moe)
        if hit is None:
            hit = kinds[moe] = (layer_fixed_bytes(model, i, ctx),
                                layer_fixed_bytes(model, i, none_ctx))
        return hit

    act = working = a2a = 0.0
    chunks = rank_chunks(model.num_layers, s.parallelism, rank)
    for chunk, n in zip(chunks, in_flight(s, rank), strict=True):
        layers = list(chunk.layers)
        if chunk.has_head:
            layers += [model.num_layers - 1] * model.num_mtp_layers  # MTP: a last-layer copy
            act += head_in_flight(s, n) * head_bytes(model, ctx)
        balanced: dict[bool, tuple[float, float, float]] = {}  # recv None: one per kind
        for i in layers:
            moe = i in moe_set
            hit = balanced.get(moe)
            if hit is None:
                mean, peak = recv.copies(i, n)
                fixed_b, fixed_none = fixed(i)
                hit = (n * (fixed_b + (mean * per_copy if moe else 0.0)),
                       a2a_transient_bytes(model, ctx, peak, dispatch_bytes) if moe else 0.0,
                       fixed_none + (peak * per_copy_none if moe else 0.0) - fixed_b)
                if recv.recv is None:
                    balanced[moe] = hit
            layer_act, layer_a2a, redo = hit
            act += layer_act
            if moe:
                a2a = max(a2a, layer_a2a)
            if ctx.recompute == "full":
                working = max(working, redo)
    return {"activations": act, "recompute_working_set": working, "a2a_buffers": a2a}


def _largest_layer_params(s: ScenarioSpec, rank: int) -> float:
    # A layer's parameters depend on it only through whether it is an MoE layer: one layer
    # of each kind the rank holds.
    moe_set = s.model_spec.moe_layer_set
    first: dict[bool, int] = {}
    for c in rank_chunks(s.model_spec.num_layers, s.parallelism, rank):
        for i in c.layers:
            first.setdefault(i in moe_set, i)
            if len(first) == 2:
                break
    return max((layer_params_per_rank(s, i).total for i in first.values()), default=0.0)


def rank_breakdown(s: ScenarioSpec, rank: int, recv: RecvModel) -> dict[str, float]:
    """Bytes of every term in :data:`TERMS` at the peak of pipeline rank ``rank``."""
    params = rank_params(s, rank)
    per = bytes_per_param(s)
    resident = model_state_bytes(s, params)
    reserve = framework_reserve_bytes(s)
    dynamic = _activation_terms(s, rank, recv)
    churn = sum(dynamic.values())
    buckets = comm_bucket_bytes(s, per, params.total, _largest_layer_params(s, rank))
    backward = {**dynamic, "comm_buckets": buckets,
                "allocator_fragmentation": fragmentation_bytes(churn)}
    g_dense, g_expert = shard_groups(s)
    sharded = params.dense / g_dense + params.expert / g_expert
    if s.parallelism.effective_zero_stage == 0:
        sharded = params.total
    step = {"optimizer_step_temporaries": optimizer_step_temporaries(per, sharded)}
    phase = backward if sum(backward.values()) >= sum(step.values()) else step
    out = dict.fromkeys(TERMS, 0.0)
    out.update(resident)
    out.update(phase)
    out["framework_reserve"] = reserve
    return out
