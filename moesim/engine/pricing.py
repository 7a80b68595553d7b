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
from moesim.engine.host import HostModel
from moesim.engine.routing_view import RoutingView
from moesim.program.builder import StepProgram
from moesim.program.ops import (
    AllToAllShape,
    AttentionShape,
    CollectiveShape,
    GemmShape,
    GroupedGemmShape,
    GroupedMemoryShape,
    MemoryShape,
    Op,
    SendShape,
)


@dataclass(frozen=True)
class OpCost:
    """Duration of one op in every micro-batch: ``slow`` (critical) and ``mean`` over EP ranks."""

    slow: np.ndarray  # [M]
    mean: np.ndarray  # [M]


class Pricer:
    """Durations of a program's ops for one stage (seconds)."""

    def __init__(self, program: StepProgram, costs: CostProvider, routing: RoutingView,
                 host: HostModel | None = None, *, trace_args: bool = True) -> None:
        self.program = program
        self.costs = costs
        self.routing = routing
        self.host = host if host is not None else HostModel(op_s=0.0)  # issue time per op
        self.m = program.num_micro_batches
        # SMs of the accelerator (for communication-kernel SM contention); None for fakes.
        self.num_sms: int | None = getattr(costs, "num_sms", None)
        self.deepep = program.context.parallelism.all_to_all.kind == "deepep"
        # Whether steps carry what the trace says of them (off when nothing is traced).
        self.trace_args = trace_args
        self._fixed: dict[tuple[object, int], float] = {}
        self._costs: dict[tuple[object, int], OpCost] = {}
        self._grouped: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._rows: np.ndarray | None = None
        self._rank_rows: np.ndarray | None = None
        self._classes: tuple[np.ndarray, np.ndarray] | None = None
        self._a2a: dict[tuple[int, str, int], np.ndarray] = {}
        self._a2a_parts: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray]] = {}

    def cost(self, op: Op, stage: int) -> OpCost:
        """The op's duration per micro-batch on ``stage`` (cached by shape; read-only arrays)."""
        key = (op.shape, stage)
        hit = self._costs.get(key)
        if hit is None:
            hit = self._costs[key] = self._cost(op, stage)
        return hit

    def _cost(self, op: Op, stage: int) -> OpCost:
        shape = op.shape
        if isinstance(shape, GroupedGemmShape):
            slow, mean = self._grouped_times(shape)
            return OpCost(self._per_mb(slow[shape.moe_layer]), self._per_mb(mean[shape.moe_layer]))
        if isinstance(shape, GroupedMemoryShape):
            rows = self.rank_rows()[shape.moe_layer]  # [C, EP]
            t = np.asarray(self.costs.memory_many(rows.ravel() * shape.bytes_per_row,
                                                  shape.kind), dtype=np.float64)
            t = t.reshape(rows.shape)
            return OpCost(self._per_mb(t.max(axis=-1)), self._per_mb(t.mean(axis=-1)))
        if isinstance(shape, AllToAllShape):
            t = self._a2a_times(shape.direction, stage)[shape.moe_layer]
            return OpCost(t, t)
        t = np.full(self.m, self.fixed(op, stage))
        return OpCost(t, t)

    def source(self, op: Op) -> str:
        """The path that priced ``op`` (measured, derived, roofline, network; "model" for a
        cost provider that does not say)."""
        if not op.is_compute:
            return "network"
        of = getattr(self.costs, "source_of", None)
        return of(op.shape) if of is not None else "model"

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

    def _draw_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """(first micro-batch of each distinct routing draw, class of every micro-batch).

        Micro-batches that use the same draw (``draw_of_micro_batch``; moesim.routing tiles
        its per-rank arrays by draw) compute the same rows, so routed shapes are priced once
        per draw and indexed back to the micro-batches; without a map every micro-batch is
        its own class."""
        if self._classes is None:
            draw_of = self.routing.draw_of_micro_batch
            m = self.routing.tokens.shape[1]
            if draw_of is None or len(draw_of) != m:
                self._classes = (np.arange(m), np.arange(m))
            else:
                _, first, inverse = np.unique(draw_of, return_index=True, return_inverse=True)
                self._classes = (first, inverse.reshape(-1))
        return self._classes

    def _per_mb(self, per_class: np.ndarray) -> np.ndarray:
        """[M] from [C] values per draw class (a read-only broadcast when there is one)."""
        first, inverse = self._draw_classes()
        if first.shape[0] == inverse.shape[0]:
            return per_class
        if first.shape[0] == 1:
            return np.broadcast_to(per_class, inverse.shape)
        return per_class[inverse]

    def slot_rows(self) -> np.ndarray:
        """[L, C, EP, slots] rows each expert slot's GEMMs multiply on one device, per routing
        draw class (:meth:`_draw_classes`; C = M when every micro-batch has its own draw).

        Routing gives the copies each EP rank's slots compute (after capacity, with padding,
        replicas split). With expert tensor parallelism the ETP peers all-gather their
        received copies before the GEMM (and reduce-scatter after), so each device
        multiplies ETP x as many rows by a 1/ETP slice of the weights: the FLOPs per device
        do not change with ETP (Megatron-Core MoE parallel folding, arXiv:2504.14960). The
        peers' receipts are draws of one distribution; ETP x one draw stands for their sum.
        """
        if self._rows is None:
            first, inverse = self._draw_classes()
            tok = self.routing.tokens
            if first.shape[0] != inverse.shape[0]:
                tok = tok[:, first]
            etp = self.program.context.etp
            self._rows = tok * etp if etp != 1 else tok
        return self._rows

    def rank_rows(self) -> np.ndarray:
        """[L, C, EP] rows one device's experts compute in each MoE layer and draw class."""
        if self._rank_rows is None:
            self._rank_rows = self.slot_rows().sum(axis=-1)
        return self._rank_rows

    def _grouped_times(self, shape: GroupedGemmShape) -> tuple[np.ndarray, np.ndarray]:
        key = (shape.n, shape.k, int(shape.transpose))
        hit = self._grouped.get(key)
        if hit is None:
            tok = self.slot_rows()
            layers, m, ep, el = tok.shape
            flat = tok.reshape(layers * m * ep, el)
            if flat.shape[0] > 1 and bool((flat == flat[0]).all()):
                # Every rank, layer and micro-batch alike (expected balanced routing): once.
                one = self.costs.grouped_gemm(flat[:1], shape.n, shape.k, wgrad=shape.transpose)
                per_rank = np.full((layers, m, ep), float(np.asarray(one)[0]))
            else:
                per_rank = np.asarray(self.costs.grouped_gemm(flat, shape.n, shape.k,
                                                              wgrad=shape.transpose),
                                      dtype=np.float64).reshape(layers, m, ep)
            hit = (per_rank.max(axis=-1), per_rank.mean(axis=-1))
            self._grouped[key] = hit
        return hit

    def a2a_traffic(self, direction: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The (mean [EP, EP] bytes, mean node bytes or None) matrix priced for ``direction``."""
        mean, node, _ = self._a2a_terms(direction)
        return mean, node

    def _a2a_terms(self, direction: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Stage-independent parts: mean bytes [EP, EP], mean node bytes, scale [L, D]."""
        hit = self._a2a_parts.get(direction)
        if hit is None:
            r = self.routing
            per_token = (r.bytes_per_token_dispatch if direction == "dispatch"
                         else r.bytes_per_token_combine)
            traffic = r.traffic_tokens  # [L, D, EP, EP] token copies i -> j
            if self.deepep and r.distinct_tokens is not None:
                # DeepEP sends a token once per destination rank, however many of that rank's
                # experts it picked, and combine reduces on the expert rank before sending
                # back (deepseek-ai/DeepEP README, normal kernels; DeepSeek-V3 section 3.2.2).
                traffic = r.distinct_tokens
            if direction == "combine":
                traffic = np.swapaxes(traffic, -1, -2)
            mean, scale = _a2a_scaling(traffic * per_token)
            # One copy per destination domain (DeepEP); combine returns the same copies.
            node = (None if r.node_tokens is None
                    else r.node_tokens.mean(axis=(0, 1)) * per_token)
            hit = self._a2a_parts[direction] = (mean, node, scale)
        return hit

    def _a2a_times(self, direction: str, stage: int) -> np.ndarray:
        """[L, M] seconds of one direction's all-to-all on ``stage``.

        The network prices the step's mean traffic matrix once (every EP group of the stage
        at once); each (layer, micro-batch) then scales it by its busiest rank's bytes over
        the mean matrix's (an all-to-all ends when its busiest rank's bytes are through;
        exact when the matrices are equal, as under balanced routing).
        """
        key = (0, direction, stage)
        hit = self._a2a.get(key)
        if hit is not None:
            return hit
        r = self.routing
        mean, node, scale = self._a2a_terms(direction)
        out = np.zeros_like(scale)
        if mean.shape[-1] > 1:
            out = self.costs.all_to_all(mean, stage, node) * scale
        out = out[:, r.traffic_index(self.m)]
        self._a2a[key] = out
        return out


def _a2a_scaling(nbytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean matrix over layers and draws, [L, D] busiest-rank bytes over the mean's)."""
    mean = nbytes.mean(axis=(0, 1))
    ref = max(float(_busiest(mean[None, None])[0, 0]), 1e-30)
    return mean, _busiest(nbytes) / ref


def _busiest(nbytes: np.ndarray) -> np.ndarray:
    """[L, D] largest off-diagonal bytes one rank sends or receives."""
    diag = np.diagonal(nbytes, 0, -2, -1)
    sent = nbytes.sum(-1) - diag
    recv = nbytes.sum(-2) - diag
    return np.maximum(sent.max(-1), recv.max(-1))
