"""Price every op of a step program once: scalars for fixed shapes, [M] arrays for routed ones.

The same GEMM shape recurs in every layer and micro-batch, so fixed shapes are cached by
value; routed shapes (expert grouped GEMMs, all-to-alls) are priced for all MoE layers and
micro-batches at once, vectorized over EP ranks; their duration is the slowest rank's and
the gap to the mean rank is the imbalance wait.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moesim.engine.costs import CostProvider
from moesim.engine.routing_view import RoutingView
from moesim.program.builder import StepProgram
from moesim.program.ops import (
    AllToAllShape,
    AttentionShape,
    CollectiveShape,
    GemmShape,
    GroupedGemmShape,
    MemoryShape,
    Op,
    SendShape,
)

# Above this many distinct (layer, micro-batch) traffic matrices per stage, all-to-alls are
# priced once per layer on the mean matrix and scaled per micro-batch by the slowest rank's
# bytes (keeps the network solver off the hot path for skewed, many-micro-batch steps).
MAX_A2A_CALLS = 256


@dataclass(frozen=True)
class OpCost:
    """Duration of one op in every micro-batch: ``slow`` (critical) and ``mean`` over EP ranks."""

    slow: np.ndarray  # [M]
    mean: np.ndarray  # [M]


class Pricer:
    """Durations of a program's ops for one stage (seconds)."""

    def __init__(self, program: StepProgram, costs: CostProvider, routing: RoutingView) -> None:
        self.program = program
        self.costs = costs
        self.routing = routing
        self.m = program.num_micro_batches
        self._fixed: dict[tuple[object, int], float] = {}
        self._grouped: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._a2a: dict[tuple[int, str, int], np.ndarray] = {}

    def cost(self, op: Op, stage: int) -> OpCost:
        """The op's duration per micro-batch on ``stage``."""
        shape = op.shape
        if isinstance(shape, GroupedGemmShape):
            slow, mean = self._grouped_times(shape)
            return OpCost(slow[shape.moe_layer], mean[shape.moe_layer])
        if isinstance(shape, AllToAllShape):
            t = self._a2a_times(shape.direction, stage)[shape.moe_layer]
            return OpCost(t, t)
        t = np.full(self.m, self.fixed(op, stage))
        return OpCost(t, t)

    def fixed(self, op: Op, stage: int) -> float:
        """Seconds of a shape that does not depend on routing (cached by shape)."""
        shape = op.shape
        key = (shape, stage if isinstance(shape, (CollectiveShape, SendShape)) else -1)
        hit = self._fixed.get(key)
        if hit is not None:
            return hit
        if isinstance(shape, GemmShape):
            t = self.costs.gemm(shape)
        elif isinstance(shape, AttentionShape):
            t = self.costs.attention(shape)
        elif isinstance(shape, MemoryShape):
            t = self.costs.memory(shape)
        elif isinstance(shape, CollectiveShape):
            t = self.costs.collective(shape, stage)
        elif isinstance(shape, SendShape):
            t = self.costs.send(shape.size_bytes, stage, shape.direction)
        else:  # pragma: no cover - every shape is handled above
            raise AssertionError(f"unpriced shape {shape!r}")
        self._fixed[key] = float(t)
        return float(t)

    def _grouped_times(self, shape: GroupedGemmShape) -> tuple[np.ndarray, np.ndarray]:
        key = (shape.n, shape.k, int(shape.transpose))
        hit = self._grouped.get(key)
        if hit is None:
            tok = self.routing.tokens  # [L, M, EP, E_local]
            layers, m, ep, el = tok.shape
            per_rank = self.costs.grouped_gemm(tok.reshape(layers * m * ep, el), shape.n, shape.k)
            per_rank = np.asarray(per_rank, dtype=np.float64).reshape(layers, m, ep)
            hit = (per_rank.max(axis=-1), per_rank.mean(axis=-1))
            self._grouped[key] = hit
        return hit

    def _a2a_times(self, direction: str, stage: int) -> np.ndarray:
        key = (0, direction, stage)
        hit = self._a2a.get(key)
        if hit is not None:
            return hit
        r = self.routing
        traffic = r.traffic_tokens  # [L, M, EP, EP] token copies i -> j
        if direction == "dispatch":
            nbytes = traffic * r.bytes_per_token_dispatch
        else:
            nbytes = np.swapaxes(traffic, -1, -2) * r.bytes_per_token_combine
        layers, m = nbytes.shape[:2]
        out = np.zeros((layers, m))
        if nbytes.shape[-1] > 1:
            out = self._price_matrices(nbytes, stage)
        out = out[:, r.traffic_index(self.m)]
        self._a2a[key] = out
        return out

    def _price_matrices(self, nbytes: np.ndarray, stage: int) -> np.ndarray:
        layers, m = nbytes.shape[:2]
        flat = nbytes.reshape(layers * m, *nbytes.shape[2:])
        seen: dict[bytes, float] = {}
        keys = [np.ascontiguousarray(x).tobytes() for x in flat]
        if len(set(keys)) <= MAX_A2A_CALLS:
            vals = []
            for key, mat in zip(keys, flat, strict=True):
                if key not in seen:
                    seen[key] = self.costs.all_to_all(mat, stage)
                vals.append(seen[key])
            return np.asarray(vals).reshape(layers, m)
        worst = np.maximum(flat.sum(-1).max(-1), flat.sum(-2).max(-1)).reshape(layers, m)
        out = np.zeros((layers, m))
        for layer in range(layers):
            mean = nbytes[layer].mean(axis=0)
            base = self.costs.all_to_all(mean, stage)
            ref = max(float(mean.sum(-1).max()), float(mean.sum(-2).max()), 1e-30)
            out[layer] = base * worst[layer] / ref
        return out
