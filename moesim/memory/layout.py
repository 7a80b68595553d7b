"""Which layers each pipeline rank holds, and how many micro-batches each chunk keeps alive.

A *chunk* is one contiguous run of layers (a pipeline stage, or a virtual stage of the
interleaved schedule). Chunk ``c`` of ``p * v`` lives on pipeline rank ``c % p`` (Megatron's
interleaved assignment: rank ``r`` holds virtual stages ``r, r + p, r + 2p, ...``). Chunk 0
also holds the input embedding; the last chunk holds the final norm, the LM head and the
multi-token-prediction modules (DeepSeek-V3 places MTP after the main model).

DualPipe (DeepSeek-V3, arXiv:2412.19437 §3.2.1) runs the pipeline from both ends: rank ``i``
holds stage ``i`` and stage ``p - 1 - i`` of a ``p``-stage split, which is the "2x parameters"
of DSV3 Table 2.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from moesim.specs.parallelism import (
    DualPipeScheduleSpec,
    GPipeScheduleSpec,
    InterleavedScheduleSpec,
    ParallelismSpec,
)
from moesim.specs.scenario import ScenarioSpec


@dataclass(frozen=True)
class ChunkSpan:
    """One chunk: layers ``[first, first + count)``, and whether it has embedding / head."""

    index: int
    first: int
    count: int
    has_embedding: bool
    has_head: bool

    @property
    def layers(self) -> range:
        return range(self.first, self.first + self.count)


def _chunk_sizes(num_layers: int, par: ParallelismSpec) -> list[int]:
    n = par.pipeline_parallel_degree * par.num_virtual_stages
    if par.pipeline_layer_split is not None:
        return list(par.pipeline_layer_split)
    sizes = [num_layers // n] * n
    for i in range(num_layers - sum(sizes)):  # only reached for unchecked specs
        sizes[i] += 1
    return sizes


def chunk_spans(num_layers: int, par: ParallelismSpec) -> list[ChunkSpan]:
    """Split the layers into ``pipeline x virtual`` chunks (the explicit split, or even)."""
    sizes = _chunk_sizes(num_layers, par)
    n = len(sizes)
    spans, first = [], 0
    for i, count in enumerate(sizes):
        spans.append(ChunkSpan(i, first, count, i == 0, i == n - 1))
        first += count
    return spans


def rank_chunks(num_layers: int, par: ParallelismSpec, rank: int) -> list[ChunkSpan]:
    """The chunks pipeline rank ``rank`` holds, in its local order (only those are built)."""
    p = par.pipeline_parallel_degree
    sizes = _chunk_sizes(num_layers, par)
    n = len(sizes)
    starts = [0, *itertools.accumulate(sizes)]

    def span(i: int) -> ChunkSpan:
        return ChunkSpan(i, starts[i], sizes[i], i == 0, i == n - 1)

    if isinstance(par.pipeline_schedule, DualPipeScheduleSpec) and p > 1:
        # Both directions' stages; for odd p the middle rank holds two copies of one stage.
        return [span(rank), span(p - 1 - rank)]
    return [span(i) for i in range(rank, n, p)]


def interleaved_in_flight(p: int, v: int, m: int, rank: int) -> list[int]:
    """Micro-batch chunks alive on ``rank`` at its peak, per local chunk (interleaved 1F1B).

    Megatron's interleaved schedule runs ``(p - rank - 1) * 2 + (v - 1) * p`` warm-up
    forwards, then one more forward before its first backward (Narayanan et al. 2021,
    arXiv:2104.04473 §2.2; Megatron-LM ``get_num_warmup_microbatches`` in
    ``schedules.py``), so ``(p - rank - 1) * 2 + (v - 1) * p + 1`` chunk forwards are alive,
    capped at all ``m * v``. Forward ``k`` on a rank runs local chunk ``(k // p) % v``
    (micro-batches advance in groups of ``p`` per chunk).
    """
    alive = min((p - rank - 1) * 2 + (v - 1) * p + 1, m * v)
    counts = [0] * v
    for k in range(alive):
        counts[(k // p) % v] += 1
    return counts


def in_flight(s: ScenarioSpec, rank: int) -> list[float]:
    """Micro-batches of activations alive at the peak, per chunk of :func:`rank_chunks`.

    GPipe: all ``m`` forwards run before any backward (Huang et al. 2019). 1F1B: stage ``i``
    holds ``p - i`` (Narayanan et al. 2021). Interleaved: :func:`interleaved_in_flight`.
    DualPipe: ``p + 1`` stage-sized micro-batch activations per rank (DSV3 Table 2), which is
    1F1B's count for each of the rank's two stages: ``p - i`` for stage ``i`` of the forward
    direction plus ``i + 1`` for stage ``p - 1 - i`` of the reverse direction. All are capped at ``m``.
    """
    par = s.parallelism
    p, v, m = par.pipeline_parallel_degree, par.num_virtual_stages, s.num_micro_batches
    sched = par.pipeline_schedule
    if isinstance(sched, GPipeScheduleSpec):
        return [float(m)] * len(rank_chunks(s.model_spec.num_layers, par, rank))
    if isinstance(sched, InterleavedScheduleSpec):
        return [float(c) for c in interleaved_in_flight(p, v, m, rank)]
    if isinstance(sched, DualPipeScheduleSpec) and p > 1:
        return [float(min(p - rank, m)), float(min(rank + 1, m))]
    return [float(min(p - rank, m))]


def head_in_flight(s: ScenarioSpec, chunk_count: float) -> float:
    """Micro-batches whose LM-head logits are alive: the loss's backward starts right after the
    last stage's forward in every schedule but GPipe, so one (GPipe: all of the chunk's)."""
    if isinstance(s.parallelism.pipeline_schedule, GPipeScheduleSpec):
        return chunk_count
    return min(chunk_count, 1.0)
