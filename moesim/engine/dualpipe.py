"""DualPipe (DeepSeek-V3 section 3.2.1): its real per-rank schedule, shared by both fidelities.

Rank ``r`` of ``PP`` holds layer chunk ``r`` for the micro-batches fed from the first rank
(direction 0) and chunk ``PP - 1 - r`` for those fed from the last (direction 1); the m
micro-batches split m/2 per direction. Each rank runs its program
(:func:`moesim.program.schedule.rank_program`, the eight steps of DualPipe's ``step()``,
deepseek-ai/DualPipe dualpipe/dualpipe.py): warm-up forwards (nF0, nF0F1),
zero-bubble backwards with their weight gradients deferred (nB1W1F1), the main loop of
overlapped forward-backward pairs (nF0B1F1B0), and the cool-down (nB1F1B0, nB1B0, nWB0, nW).
In a pair the two chunks' all-to-alls hide under the other chunk's compute, so a pair takes
the larger of its compute and its communication. Communication kernels occupy SMs while they
run (DeepEP on ``num_sms`` of the accelerator's SMs, NCCL on its channels;
:mod:`moesim.engine.overlap`), so compute overlapped with them advances at (1 - f), f = comm
SMs / SMs: a pair of compute W and communication C takes W + f C when W >= (1 - f) C, else
max(C, W / (1 - f)).
Unpaired chunks run their communication exposed.

:func:`simulate_dualpipe` runs every rank's program with its data dependencies (a forward
needs the previous rank's forward of that micro-batch, a backward the next rank's backward)
and NCCL's point-to-point rendezvous (a batch of sends and receives ends when both sides of
each op are posted, plus the transfer): the bubble is each rank's idle time, not a formula.
With equal chunks it stays within DeepSeek-V3 Table 2's closed form (PP/2 - 1)(F&B + B - 3W),
and two more micro-batches add exactly one main-loop iteration, 2 F&B, to every rank
(tests/unit/engine/test_dualpipe_schedule.py). Both fidelities run exactly this arithmetic;
the DES replays it as events and adds the gradient buckets and the optimizer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from moesim.engine.overlap import ep_fraction, overlapped_pair
from moesim.engine.pricing import Pricer
from moesim.engine.timeline import ChunkPlan, Ledger, add_summary, fold_pair, phase_split
from moesim.program.builder import StepProgram
from moesim.program.schedule import rank_program


@dataclass
class RankSchedule:
    """One rank's simulated DualPipe step: intervals and where its time went (seconds)."""

    rank: int
    # (kind, forward (direction, micro-batch of that direction), backward (...), start, end)
    intervals: list[tuple[str, tuple[int, int] | None, tuple[int, int] | None, float, float]] = \
        field(default_factory=list)
    forward_s: float = 0.0      # unpaired forward chunks
    backward_s: float = 0.0     # unpaired backward chunks (input, or input and weight)
    weight_s: float = 0.0       # deferred weight-gradient chunks
    overlapped_s: float = 0.0   # overlapped forward-backward pairs

    @property
    def finish(self) -> float:
        return self.intervals[-1][4] if self.intervals else 0.0

    @property
    def busy(self) -> float:
        return self.forward_s + self.backward_s + self.weight_s + self.overlapped_s

    @property
    def bubble(self) -> float:
        return max(0.0, self.finish - self.busy)


def _chunk_times(plans: dict[tuple[int, int], ChunkPlan], r: int, pp: int,
                 m: int) -> dict[str, np.ndarray]:
    """[2, m/2] arrays per direction and micro-batch of that direction: forward total, input
    and weight backward totals, and each phase's (work, communication) split."""
    half = m // 2
    out = {k: np.zeros((2, half)) for k in ("f", "bi", "w", "fw", "fc", "bw", "bc")}
    for d, c in enumerate((r, pp - 1 - r)):
        p, idx = plans[(r, c)], np.arange(d, m, 2)  # direction d's k-th micro-batch is 2k + d
        if p.forward.steps:
            out["f"][d] = p.forward.summary.total[idx]
            work, comm = phase_split(p.forward)
            out["fw"][d], out["fc"][d] = work[idx], comm[idx]
        for name, ph in (("bi", p.backward_input), ("w", p.backward_weight)):
            if ph.steps:
                out[name][d] = ph.summary.total[idx]
                work, comm = phase_split(ph)
                out["bw"][d] += work[idx]
                out["bc"][d] += comm[idx]
    return out


def simulate_dualpipe(plans: dict[tuple[int, int], ChunkPlan], pp: int, m: int, f: float,
                      send_s: float) -> list[RankSchedule]:
    """Run every rank's DualPipe program with point-to-point rendezvous (module docstring).

    A commit posts the rank's queued sends and receives at its clock and ends when each op
    is through: a send or receive completes ``send_s`` after both it and its peer's matching
    op are posted (NCCL point-to-point is a rendezvous), so a rank also waits for its
    receivers to reach the chunk that consumes its output. Deterministic: ranks are visited
    in order, each advancing until it waits on a peer that has not posted yet.
    """
    programs = [rank_program(r, pp, m) for r in range(pp)]
    times = [_chunk_times(plans, r, pp, m) for r in range(pp)]
    out = [RankSchedule(r) for r in range(pp)]
    posted: dict[tuple[str, int, int, int], float] = {}  # (op, rank, direction, k) -> time
    ptr, clock = [0] * pp, [0.0] * pp
    # per rank and token kind: how many of each direction it has issued so far
    count = [{k: [0, 0] for k in ("recvF", "sendF", "recvB", "sendB", "F", "B")}
             for _ in range(pp)]
    queued: list[list[tuple[str, int, int]]] = [[] for _ in range(pp)]
    in_commit = [False] * pp
    w_queue: list[deque[tuple[float, tuple[int, int]]]] = [deque() for _ in range(pp)]
    peer_op = {"recvF": "sendF", "sendF": "recvF", "recvB": "sendB", "sendB": "recvB"}

    def peer(op: str, r: int, direction: int) -> int:
        # forward data flows r -> r + 1 in direction 0 and r -> r - 1 in direction 1
        step = 1 if direction == 0 else -1
        return r - step if op in ("recvF", "sendB") else r + step

    progress = True
    while progress:
        progress = False
        for r in range(pp):
            t, sch, cnt = times[r], out[r], count[r]
            while ptr[r] < len(programs[r]):
                tok = programs[r][ptr[r]]
                kind = tok[0]
                if kind in peer_op:
                    direction = tok[1]
                    k = cnt[kind][direction]
                    cnt[kind][direction] += 1
                    queued[r].append((kind, direction, k))
                elif kind == "commit":
                    if not in_commit[r]:
                        for op, direction, k in queued[r]:
                            posted[(op, r, direction, k)] = clock[r]
                        in_commit[r] = True
                    done = clock[r]
                    for op, direction, k in queued[r]:
                        other = posted.get((peer_op[op], peer(op, r, direction), direction, k))
                        if other is None:
                            done = -1.0
                            break
                        done = max(done, max(clock[r], other) + send_s)
                    if done < 0:
                        break  # a peer has not posted its side yet
                    queued[r], in_commit[r] = [], False
                    clock[r] = done
                else:
                    start = clock[r]
                    fwd = bwd = None
                    if kind == "F":
                        fwd = (tok[1], cnt["F"][tok[1]])
                        dur = float(t["f"][fwd])
                        sch.forward_s += dur
                    elif kind in ("B", "Bi"):
                        bwd = (tok[1], cnt["B"][tok[1]])
                        dur = float(t["bi"][bwd])
                        if kind == "Bi":
                            w_queue[r].append((float(t["w"][bwd]), bwd))
                        else:
                            dur += float(t["w"][bwd])
                        sch.backward_s += dur
                    elif kind == "W":
                        dur, bwd = w_queue[r].popleft()
                        sch.weight_s += dur
                    else:  # FB
                        fwd, bwd = (tok[1], cnt["F"][tok[1]]), (tok[2], cnt["B"][tok[2]])
                        work = float(t["fw"][fwd] + t["bw"][bwd])
                        comm = float(t["fc"][fwd] + t["bc"][bwd])
                        dur = float(overlapped_pair(np.array([work]), np.array([comm]), f)[0])
                        sch.overlapped_s += dur
                    if fwd is not None:
                        cnt["F"][fwd[0]] += 1
                    if bwd is not None and kind != "W":
                        cnt["B"][bwd[0]] += 1
                    sch.intervals.append((kind, fwd, bwd, start, start + dur))
                    clock[r] = start + dur
                ptr[r] += 1
                progress = True
    if any(ptr[r] < len(programs[r]) for r in range(pp)):
        raise RuntimeError("DualPipe schedule did not complete (a point-to-point op never met "
                           "its peer)")
    return out


def dualpipe_ledger(plans: dict[tuple[int, int], ChunkPlan], s: int, pp: int,
                    sched: RankSchedule, ledger: Ledger) -> None:
    """Fold rank ``s``'s schedule into ``ledger``: compute by kind, the exposed rest by kind.

    Every chunk phase of every micro-batch runs once, so compute sums over all of them; what
    the actions took beyond that compute is exposed communication, shared over the kinds by
    their share of the communication (SM-contention slowdown counts as exposed too).
    """
    scratch = Ledger(ledger.rank_class)
    for j, c in enumerate((s, pp - 1 - s)):
        p = plans[(s, c)]
        for ph in (p.forward, p.backward_input, p.backward_weight):
            add_summary(ph, scratch, slice(j, None, 2))
    fold_pair(scratch, ledger, sched.busy)
    ledger.phases.update(forward=sched.forward_s, backward=sched.backward_s,
                         weight=sched.weight_s, overlapped=sched.overlapped_s)


def dualpipe_schedules(program: StepProgram, pricer: Pricer,
                       plans: dict[tuple[int, int], ChunkPlan]) -> list[RankSchedule]:
    """The simulated DualPipe schedule of every rank (moesim.engine.dualpipe)."""
    ctx = program.context
    send = 0.0
    for st in program.stages:
        for c in st.chunks:
            op = program.chunks[c].send_forward
            if op is not None:
                send = max(send, pricer.fixed(op, st.stage))
    return simulate_dualpipe(plans, ctx.pp, ctx.num_micro_batches,
                             ep_fraction(ctx.parallelism, pricer.num_sms) if program.moe_layers else 0.0, send)
