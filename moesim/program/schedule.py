"""Pipeline schedules: the order in which each stage runs forward and backward chunks.

An action is (phase, micro-batch, virtual chunk) with phase "F" (forward) or "B" (backward:
input gradient then weight gradient). Dependencies are not listed here: the forward of model
chunk c needs chunk c-1's forward of the same micro-batch, the backward needs chunk c+1's
backward, where chunk c = virtual * PP + stage (Megatron's interleaved placement).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from moesim.errors import SpecError

Phase = Literal["F", "B"]


class Action(NamedTuple):
    phase: Phase
    micro_batch: int
    virtual: int


def gpipe(stage: int, pp: int, m: int) -> list[Action]:
    """All forwards, then all backwards (GPipe, Huang et al. 2019)."""
    return [Action("F", i, 0) for i in range(m)] + [Action("B", i, 0) for i in range(m)]


def one_f_one_b(stage: int, pp: int, m: int) -> list[Action]:
    """PipeDream-flush 1F1B: pp - stage - 1 warm-up forwards, steady 1F1B, cool-down."""
    warm = min(pp - stage - 1, m)
    out = [Action("F", i, 0) for i in range(warm)]
    f, b = warm, 0
    while f < m:
        out.append(Action("F", f, 0))
        f += 1
        out.append(Action("B", b, 0))
        b += 1
    out += [Action("B", i, 0) for i in range(b, m)]
    return out


def interleaved(stage: int, pp: int, m: int, v: int) -> list[Action]:
    """Megatron's interleaved 1F1B with ``v`` virtual stages per rank.

    Micro-batches go through the local chunks in groups of ``pp``; warm-up is
    (pp - stage - 1) * 2 + (v - 1) * pp chunk-forwards (Narayanan et al. 2021, as
    Megatron-LM's schedules implement it). Needs m divisible by pp.
    """
    if v == 1:
        return one_f_one_b(stage, pp, m)
    if m % pp:
        raise SpecError(
            f"interleaved_1f1b needs the number of micro-batches ({m}) to be a multiple of "
            f"parallelism.pipeline_parallel_degree={pp}; change global_batch_size or "
            "micro_batch_size, or use kind: 1f1b")
    total = m * v

    def fwd(k: int) -> Action:
        group, pos = divmod(k, pp * v)
        return Action("F", group * pp + pos % pp, (pos // pp) % v)

    def bwd(k: int) -> Action:
        group, pos = divmod(k, pp * v)
        return Action("B", group * pp + pos % pp, v - 1 - (pos // pp) % v)

    warm = min((pp - stage - 1) * 2 + (v - 1) * pp, total)
    out = [fwd(k) for k in range(warm)]
    f, b = warm, 0
    while f < total:
        out.append(fwd(f))
        f += 1
        out.append(bwd(b))
        b += 1
    out += [bwd(k) for k in range(b, total)]
    return out


def dualpipe_pairs(m: int) -> list[Action]:
    """DualPipe's micro-batches on one rank, one F and one B each (the memory model's view).

    The engine does not walk these: it runs DualPipe's own per-rank program
    (moesim.engine.dualpipe.rank_program), pairs and unpaired chunks as DualPipe orders them.
    """
    out: list[Action] = []
    for i in range(m):
        out += [Action("F", i, 0), Action("B", i, 0)]
    return out


def schedule_for(kind: str, stage: int, pp: int, m: int, v: int) -> list[Action]:
    """The action list of ``stage`` for a pipeline schedule ``kind``."""
    if kind == "gpipe":
        return gpipe(stage, pp, m)
    if kind == "1f1b":
        return one_f_one_b(stage, pp, m)
    if kind == "interleaved_1f1b":
        return interleaved(stage, pp, m, v)
    if kind == "dualpipe":
        if pp % 2 or m % 2:
            raise SpecError(
                f"dualpipe needs an even pipeline_parallel_degree (got {pp}) and an even "
                f"number of micro-batches (got {m}); DeepSeek-V3 section 3.2.1")
        if m < 2 * pp:
            raise SpecError(
                f"dualpipe needs at least 2 x pipeline_parallel_degree = {2 * pp} micro-batches "
                f"per step (got {m}): raise workload.global_batch_size or lower "
                "parallelism.micro_batch_size (DualPipe.step asserts num_chunks >= 2 x ranks)")
        return dualpipe_pairs(m)
    raise SpecError(f"parallelism.pipeline_schedule.kind={kind!r} is not supported; valid: "
                    "gpipe, 1f1b, interleaved_1f1b, dualpipe")


def bubble_fraction_1f1b(pp: int, m: int) -> float:
    """Idle fraction of 1F1B (and GPipe) with equal stages: (p - 1) / (m + p - 1)."""
    return (pp - 1) / (m + pp - 1)
