"""Pipeline schedules: the order in which each stage runs forward and backward chunks.

An action is (phase, micro-batch, virtual chunk) with phase "F" (forward) or "B" (backward:
input gradient then weight gradient). Dependencies are not listed here: the forward of model
chunk c needs chunk c-1's forward of the same micro-batch, the backward needs chunk c+1's
backward, where chunk c = virtual * PP + stage (Megatron's interleaved placement).
DualPipe's per-rank order (overlapped pairs, deferred weight gradients, point-to-point
batches) does not fit that shape; :func:`rank_program` gives it as tokens.
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


def one_f_one_b(stage: int, pp: int, m: int, extra_warmup: int = 0) -> list[Action]:
    """PipeDream-flush 1F1B: pp - stage - 1 warm-up forwards, steady 1F1B, cool-down.

    ``extra_warmup`` forwards more (1 with Megatron's overlap_moe_expert_parallel_comm, so
    that every steady forward/backward pair is independent; PP 1 then pairs F_i+1 with B_i).
    """
    warm = min(pp - stage - 1 + extra_warmup, m)
    out = [Action("F", i, 0) for i in range(warm)]
    f, b = warm, 0
    while f < m:
        out.append(Action("F", f, 0))
        f += 1
        out.append(Action("B", b, 0))
        b += 1
    out += [Action("B", i, 0) for i in range(b, m)]
    return out


def interleaved(stage: int, pp: int, m: int, v: int, extra_warmup: int = 0) -> list[Action]:
    """Megatron's interleaved 1F1B with ``v`` virtual stages per rank.

    Micro-batches go through the local chunks in groups of ``pp``; warm-up is
    (pp - stage - 1) * 2 + (v - 1) * pp chunk-forwards (Narayanan et al. 2021, as
    Megatron-LM's schedules implement it), plus ``extra_warmup`` (one with
    overlap_moe_expert_parallel_comm: megatron/core/pipeline_parallel/schedules.py schedules
    "one extra micro-batch forward step before the 1f1b stages"). Needs m divisible by pp.
    """
    if v == 1:
        return one_f_one_b(stage, pp, m, extra_warmup)
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

    warm = min((pp - stage - 1) * 2 + (v - 1) * pp + extra_warmup, total)
    out = [fwd(k) for k in range(warm)]
    f, b = warm, 0
    while f < total:
        out.append(fwd(f))
        f += 1
        out.append(bwd(b))
        b += 1
    out += [bwd(k) for k in range(b, total)]
    return out


# A rank's program: DualPipe.step() as a token list. Communication tokens carry a direction
# (0: micro-batches fed from the first rank, 1: from the last): ("recvF", d), ("sendF", d),
# ("recvB", d), ("sendB", d) queue a point-to-point op; ("commit",) issues the queued ops as
# one batch and waits for all of them (batch_isend_irecv then wait, as _commit_and_wait_comm);
# compute tokens: ("F", d), ("B", d) full backward, ("Bi", d) input backward with the weight
# gradient deferred (zero bubble), ("W",) one deferred weight gradient (FIFO),
# ("FB", df, db) an overlapped forward-backward pair (full backward).
Token = tuple


def rank_program(rank: int, pp: int, m: int) -> list[Token]:
    """DualPipe.step() on ``rank`` of ``pp`` with ``m`` micro-batches, as tokens.

    Follows the eight steps of deepseek-ai/DualPipe dualpipe/dualpipe.py, with its
    _forward_chunk / _backward_chunk / _forward_backward_chunk / _weight_chunk expanded into
    their queue, commit and compute parts, and the first/last-stage skips of its send/recv.
    """
    if pp % 2 or m % 2 or m < 2 * pp:  # specs/checks.py refuses these at load
        raise SpecError(f"DualPipe needs an even PP and an even m >= 2 PP (PP={pp}, m={m}) "
                        "micro-batches", field="parallelism.pipeline_schedule")
    half_ranks, half = pp // 2, min(rank, pp - 1 - rank)
    second = int(rank >= half_ranks)
    middle = rank in (half_ranks - 1, half_ranks)
    first, last = rank == 0, rank == pp - 1
    out: list[Token] = []

    def d(phase: int) -> int:
        return phase ^ second

    def recv_f(phase: int) -> None:  # skipped on the first stage of that direction
        if not ((first and d(phase) == 0) or (last and d(phase) == 1)):
            out.append(("recvF", d(phase)))

    def send_f(phase: int) -> None:  # skipped on the last stage of that direction
        if not ((first and d(phase) == 1) or (last and d(phase) == 0)):
            out.append(("sendF", d(phase)))

    def recv_b(phase: int) -> None:
        if not ((first and d(phase) == 1) or (last and d(phase) == 0)):
            out.append(("recvB", d(phase)))

    def send_b(phase: int) -> None:
        if not ((first and d(phase) == 0) or (last and d(phase) == 1)):
            out.append(("sendB", d(phase)))

    def fwd(phase: int, recv: bool = True, send: bool = True) -> None:
        if recv:
            recv_f(phase)
        out.append(("commit",))
        out.append(("F", d(phase)))
        if send:
            send_f(phase)

    def bwd(phase: int, zb: bool = False, recv: bool = True, send: bool = True) -> None:
        if recv:
            recv_b(phase)
        out.append(("commit",))
        out.append(("Bi" if zb else "B", d(phase)))
        if send:
            send_b(phase)

    def fwd_bwd(p0: int, p1: int, recv0: bool = True) -> None:
        if recv0:
            recv_f(p0)
        recv_b(p1)
        out.append(("commit",))
        out.append(("FB", d(p0), d(p1)))
        send_f(p0)
        send_b(p1)

    def weight() -> None:
        out.append(("commit",))
        out.append(("W",))

    for _ in range((half_ranks - half - 1) * 2):                      # 1: nF0
        fwd(0)
    steps2 = half + 1                                                 # 2: nF0F1
    recv_f(0)
    for i in range(steps2):
        fwd(0, recv=False, send=middle)
        recv_f(0)
        fwd(1, send=(not middle) or (i < steps2 - 1))
        if not middle:
            send_f(0)
    for _ in range(half_ranks - half - 1):                            # 3: nB1W1F1
        bwd(1, zb=True)
        recv_f(1)
        weight()
        fwd(1, recv=False)
    for i in range(m // 2 - pp + half + 1):                           # 4: nF0B1F1B0
        if i == 0:
            if middle:
                fwd(0, recv=False, send=False)
                send_f(1)
                bwd(1, send=False)
                send_f(0)
                send_b(1)
            else:
                fwd_bwd(0, 1, recv0=False)
        else:
            fwd_bwd(0, 1)
        fwd_bwd(1, 0)
    for _ in range(half_ranks - half - 1):                            # 5: nB1F1B0
        bwd(1)
        fwd_bwd(1, 0)
    steps6, zb = half + 1, False                                      # 6: nB1B0
    for i in range(steps6):
        if i == steps6 // 2 and half % 2 == 1:
            zb = True
        bwd(1, zb=zb)
        if i == steps6 // 2 and half % 2 == 0:
            zb = True
        bwd(0, zb=zb)
    for _ in range(half_ranks - half - 1):                            # 7: nWB0
        weight()
        bwd(0, zb=True)
    for _ in range(half + 1):                                         # 8: nW
        weight()
    out.append(("commit",))
    return out


def schedule_for(kind: str, stage: int, pp: int, m: int, v: int,
                 extra_warmup: int = 0) -> list[Action]:
    """The action list of ``stage`` for a pipeline schedule ``kind``."""
    if kind == "gpipe":
        return gpipe(stage, pp, m)
    if kind == "1f1b":
        return one_f_one_b(stage, pp, m, extra_warmup)
    if kind == "interleaved_1f1b":
        return interleaved(stage, pp, m, v, extra_warmup)
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
        return []  # DualPipe's order has pairs and deferred W chunks: see rank_program
    raise SpecError(f"parallelism.pipeline_schedule.kind={kind!r} is not supported; valid: "
                    "gpipe, 1f1b, interleaved_1f1b, dualpipe")


def paired_actions(actions: list[Action] | tuple[Action, ...]
                   ) -> list[tuple[Action, ...]]:
    """The actions grouped as Megatron-Core's combined 1F1B runs them with
    ``overlap_moe_expert_parallel_comm``: each forward next to a backward of another
    micro-batch (or chunk) runs merged with it, one's all-to-all under the other's compute
    (megatron/core/pipeline_parallel/ combined_1f1b; PP 1 pairs B_i with F_i+1); the rest run
    alone."""
    out: list[tuple[Action, ...]] = []
    i = 0
    while i < len(actions):
        a = actions[i]
        b = actions[i + 1] if i + 1 < len(actions) else None
        if (b is not None and {a.phase, b.phase} == {"F", "B"}
                and (a.micro_batch, a.virtual) != (b.micro_batch, b.virtual)):
            out.append((a, b))
            i += 2
        else:
            out.append((a,))
            i += 1
    return out


def bubble_fraction_1f1b(pp: int, m: int) -> float:
    """Idle fraction of 1F1B (and GPipe) with equal stages: (p - 1) / (m + p - 1)."""
    return (pp - 1) / (m + pp - 1)
