"""The vocabulary of a step program: ops with kernel shapes or communication sizes, no costs.

An op says *what* runs (a GEMM of shape m x n x k, an all-to-all of one MoE layer's
traffic, a reduce-scatter of so many bytes over the data-parallel group) and *where*
(the compute stream or one communication stream). How long it takes is the engine's
question, answered by the cost models. Shapes are frozen and hashable so the engine can
price each distinct shape once per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stream = Literal["compute", "comm_tp", "comm_cp", "comm_ep", "comm_dp", "comm_pp"]
Axis = Literal["tp", "cp", "ep", "etp", "dp", "edp"]
CollectiveOp = Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all"]


@dataclass(frozen=True, slots=True)
class GemmShape:
    """C[m, n] = A[m, k] @ B[k, n], ``batch`` times."""

    m: int
    n: int
    k: int
    batch: int = 1

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.n * self.k * self.batch


@dataclass(frozen=True, slots=True)
class GroupedGemmShape:
    """One grouped GEMM over the local experts of every EP rank of MoE layer ``moe_layer``.

    Token counts come from the routing draw of that layer and micro-batch; ``n`` and ``k``
    are the per-expert weight dims. ``transpose`` marks the weight-gradient GEMM (tokens
    are the reduction dim), which has the same FLOPs.
    """

    moe_layer: int
    n: int
    k: int
    transpose: bool = False


@dataclass(frozen=True, slots=True)
class AttentionShape:
    """The attention kernel (FlashAttention-style) of one micro-batch on one rank."""

    batch: int
    seq_q: int
    seq_kv: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    causal: bool = True
    backward: bool = False
    head_dim_v: int | None = None  # value head dim when it differs (MLA: qk 192, v 128)
    window: int | None = None  # sliding-window attention: keys per query at most
    kv_cache_dtype: str | None = None  # decode reads a KV cache in this dtype (None: bf16)


@dataclass(frozen=True, slots=True)
class MemoryShape:
    """A bandwidth-bound kernel (norm, activation, permute, optimizer) moving ``bytes_moved``."""

    bytes_moved: float
    kind: str = "elementwise"


@dataclass(frozen=True, slots=True)
class GroupedMemoryShape:
    """A bandwidth-bound kernel over the routed copies an EP rank computes in MoE layer
    ``moe_layer`` (the experts' activation, their FP8 casts): ``bytes_per_row`` bytes per
    copy, so its size follows the routing draw (after capacity, with padding) like the
    grouped GEMMs it sits between."""

    moe_layer: int
    bytes_per_row: float
    kind: str = "elementwise"


@dataclass(frozen=True, slots=True)
class CollectiveShape:
    """A collective over every group of ``axis`` at once (they run concurrently and contend).

    ``size_bytes`` follows the nccl-tests convention: the full (gathered / unreduced)
    buffer for all_gather, reduce_scatter and all_reduce; bytes each rank sends for all_to_all.
    """

    op: CollectiveOp
    axis: Axis
    size_bytes: float


@dataclass(frozen=True, slots=True)
class AllToAllShape:
    """The EP token exchange of MoE layer ``moe_layer``; ``combine`` sends the transpose."""

    moe_layer: int
    direction: Literal["dispatch", "combine"]


@dataclass(frozen=True, slots=True)
class SendShape:
    """A pipeline point-to-point transfer of ``size_bytes`` to the next or previous stage."""

    size_bytes: float
    direction: Literal["next", "prev"]


Shape = (GemmShape | GroupedGemmShape | AttentionShape | MemoryShape | GroupedMemoryShape
         | CollectiveShape | AllToAllShape | SendShape)

# Shapes whose duration depends on the micro-batch (through the routing draws).
ROUTED_SHAPES = (GroupedGemmShape, GroupedMemoryShape, AllToAllShape)


@dataclass(frozen=True, slots=True)
class Op:
    """One op of a chunk: ``kind`` is the breakdown bucket, ``stream`` where it runs.

    A ``blocking`` communication op holds the compute stream until it ends (its time is
    exposed); a non-blocking one runs on its stream while compute goes on.
    """

    name: str
    kind: str
    stream: Stream
    shape: Shape
    blocking: bool = True

    @property
    def is_compute(self) -> bool:
        return self.stream == "compute"

    @property
    def routed(self) -> bool:
        return isinstance(self.shape, ROUTED_SHAPES)


def compute(name: str, kind: str, shape: Shape) -> Op:
    """A compute-stream op."""
    return Op(name=name, kind=kind, stream="compute", shape=shape)


def comm(name: str, kind: str, stream: Stream, shape: Shape, *, blocking: bool = True) -> Op:
    """A communication op on ``stream``."""
    return Op(name=name, kind=kind, stream=stream, shape=shape, blocking=blocking)


def op_module(op: Op) -> str:
    """The framework module an op belongs to, read from its name (the builder's convention
    ``L<layer>.<block>.<op>[.dgrad|.wgrad|.bwd|.recompute]``): "attn", "mlp", "moe_router"
    (norm, router and shared experts), "moe_preprocess" (permute), "moe" (dispatch,
    experts, combine), "embedding", "head" (final norm, LM head, loss), "optimizer"."""
    parts = op.name.split(".")
    first = parts[0]
    if first.startswith("L") and first[1:].isdigit() and len(parts) > 1:
        block = parts[1]
        if block != "moe":
            return block
        part = parts[2] if len(parts) > 2 else ""
        if part in ("norm", "router") or part.startswith("shared"):
            return "moe_router"
        return "moe_preprocess" if part == "permute" else "moe"
    if first.startswith("embedding"):
        return "embedding"
    if first in ("final_norm", "lm_head", "loss"):
        return "head"
    return "optimizer" if first.startswith("optimizer") else first
