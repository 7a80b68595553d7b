"""The engine's view of the cost models: a small protocol, so tests can inject a fake.

The real binding (``moesim.engine.binding``) forwards to ``moesim.compute`` and
``moesim.network``; :class:`LinearCostProvider` is a transparent fake with closed-form
times (FLOPs / rate, bytes / bandwidth) that hand-checkable tests are written against.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol, runtime_checkable

import numpy as np

from moesim.compute.attention import attended_fraction
from moesim.program.ops import AttentionShape, CollectiveShape, GemmShape, MemoryShape


@runtime_checkable
class CostProvider(Protocol):
    """Seconds for each kind of op of one scenario. ``stage`` selects the stage's groups."""

    sources: Counter[str]

    def gemm(self, shape: GemmShape) -> float: ...

    def grouped_gemm(self, tokens: np.ndarray, n: int, k: int, *,
                     wgrad: bool = False) -> np.ndarray:
        """tokens [R, E] (per EP rank, per local expert) -> seconds [R]; ``wgrad``: the weight
        gradient, whose reduction dimension is the tokens."""
        ...

    def attention(self, shape: AttentionShape) -> float: ...

    def memory(self, shape: MemoryShape) -> float: ...

    def memory_many(self, bytes_moved: np.ndarray, kind: str) -> np.ndarray:
        """Seconds of one bandwidth-bound kernel of each size in ``bytes_moved`` [R]."""
        ...

    def collective(self, shape: CollectiveShape, stage: int) -> float: ...

    def all_to_all(self, traffic_bytes: np.ndarray, stage: int,
                   node_traffic_bytes: np.ndarray | None = None) -> float:
        """traffic_bytes [EP, EP] (i sends to j), every EP group of the stage at once.

        ``node_traffic_bytes`` [EP, domains]: deduplicated bytes each rank sends to each
        scale-up domain (DeepEP sends a token once per destination node); may be ignored.
        """
        ...

    def send(self, size_bytes: float, stage: int, direction: str) -> float: ...


def attention_flops(shape: AttentionShape) -> float:
    """FLOPs the attention kernel executes: QK^T and PV, halved when causal, x2.5 backward.

    Forward 4 * b * sq * skv * heads * d (two matmuls); the backward runs five matmuls of
    the same size (dQ, dK, dV, dP and the recomputed P), i.e. 2.5x (FlashAttention-2 paper,
    Dao 2023, section 3.1 FLOP count).
    """
    dv = shape.head_dim if shape.head_dim_v is None else shape.head_dim_v
    f = 2.0 * shape.batch * shape.seq_q * shape.seq_kv * shape.num_heads * (shape.head_dim + dv)
    if shape.causal:
        f *= 0.5
    if shape.window is not None and shape.window < shape.seq_kv:
        f *= attended_fraction(shape.seq_kv, shape.window)
    return f * (2.5 if shape.backward else 1.0)


class LinearCostProvider:
    """A fake with closed-form costs for tests: rate-bound compute, bandwidth-bound comm.

    gemm = flops / flops_per_s; memory = bytes / mem_bytes_per_s; a collective of S bytes
    moves S (n-1)/n per rank (x2 for all-reduce) at comm_bytes_per_s; an all-to-all takes
    the largest per-rank sent or received off-diagonal bytes / comm_bytes_per_s.
    """

    def __init__(self, *, flops_per_s: float = 1e12, mem_bytes_per_s: float = 1e12,
                 comm_bytes_per_s: float = 1e11, group_sizes: dict[str, int] | None = None,
                 send_bytes_per_s: float | None = None) -> None:
        self.flops_per_s = flops_per_s
        self.mem_bytes_per_s = mem_bytes_per_s
        self.comm_bytes_per_s = comm_bytes_per_s
        self.send_bytes_per_s = send_bytes_per_s or comm_bytes_per_s
        self.group_sizes = group_sizes or {}
        self.sources: Counter[str] = Counter()

    def gemm(self, shape: GemmShape) -> float:
        self.sources["linear"] += 1
        return shape.flops / self.flops_per_s

    def grouped_gemm(self, tokens: np.ndarray, n: int, k: int, *,
                     wgrad: bool = False) -> np.ndarray:
        return 2.0 * tokens.sum(axis=-1) * n * k / self.flops_per_s

    def attention(self, shape: AttentionShape) -> float:
        return attention_flops(shape) / self.flops_per_s

    def memory(self, shape: MemoryShape) -> float:
        return shape.bytes_moved / self.mem_bytes_per_s

    def memory_many(self, bytes_moved: np.ndarray, kind: str) -> np.ndarray:
        return np.asarray(bytes_moved, dtype=np.float64) / self.mem_bytes_per_s

    def collective(self, shape: CollectiveShape, stage: int) -> float:
        n = self.group_sizes.get(shape.axis, 1)
        if n <= 1:
            return 0.0
        factor = 2.0 * (n - 1) / n if shape.op == "all_reduce" else (n - 1) / n
        return shape.size_bytes * factor / self.comm_bytes_per_s

    def all_to_all(self, traffic_bytes: np.ndarray, stage: int,
                   node_traffic_bytes: np.ndarray | None = None) -> float:
        off = traffic_bytes - np.diag(np.diag(traffic_bytes))
        worst = max(float(off.sum(axis=1).max()), float(off.sum(axis=0).max()))
        return worst / self.comm_bytes_per_s

    def send(self, size_bytes: float, stage: int, direction: str) -> float:
        return size_bytes / self.send_bytes_per_s
