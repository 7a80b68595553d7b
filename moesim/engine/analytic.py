"""The analytic fidelity: the same priced ops in closed form, no event loop.

Per stage, a micro-batch costs the sum of its chunks' forward and backward phases (compute
plus blocking communication, MoE layers at their slowest rank). The pipeline formula turns
that into the step: GPipe / 1F1B (m - 1) max_s t_s + sum_s t_s; interleaved
m max_s t_s + (p - 1) max_s t_s / v; DualPipe its simulated schedule. Data-parallel
buckets expose what outlasts the last backward; the optimizer adds its pass.
"""

from __future__ import annotations

import numpy as np

from moesim.engine.des import StageOutcome, _Streams
from moesim.engine.dualpipe import dualpipe_ledger, dualpipe_schedules
from moesim.engine.overlap import ep_fraction, nccl_fraction, overlapped_pair
from moesim.engine.pricing import Pricer
from moesim.engine.timeline import (
    ChunkPlan,
    Ledger,
    add_summary,
    phase_split,
    phase_time,
    run_phase,
)
from moesim.program.builder import StepProgram


def _mean(plan_steps_time: np.ndarray) -> float:
    return float(plan_steps_time.mean()) if plan_steps_time.size else 0.0


def run_analytic(program: StepProgram, pricer: Pricer,
                 plans: dict[tuple[int, int], ChunkPlan]) -> list[StageOutcome]:
    """Closed-form step per stage; the critical stage's finish is the step time."""
    ctx = program.context
    m, pp, v = ctx.num_micro_batches, ctx.pp, ctx.num_virtual
    per_mb: list[float] = []
    paired: list[float] = []  # per micro-batch with the 1F1B all-to-all overlap
    ledgers: list[Ledger] = []
    send = 0.0
    overlap = ctx.parallelism.overlap_moe_expert_parallel_comm
    f = ep_fraction(ctx.parallelism, pricer.num_sms) if program.moe_layers else 0.0
    for st in program.stages:
        ledger = Ledger(f"pp{st.stage}")
        total = pair = 0.0
        for c in st.chunks:
            p = plans[(st.stage, c)]
            add_summary(p.forward, ledger, slice(None))  # ledger sums over micro-batches
            add_summary(p.backward, ledger, slice(None))
            total += _mean(phase_time(p.forward)) + _mean(phase_time(p.backward))
            if overlap:
                (wf, cf), (wb, cb) = phase_split(p.forward), phase_split(p.backward)
                pair += _mean(overlapped_pair(wf + wb, cf + cb, f))
            ch = program.chunks[c]
            if ch.send_forward is not None:
                send = max(send, pricer.fixed(ch.send_forward, st.stage))
        per_mb.append(total)
        paired.append(pair if overlap else total)
        ledgers.append(ledger)
    t, tp = np.asarray(per_mb), np.asarray(paired)
    if program.schedule == "dualpipe":
        return _dualpipe(program, pricer, plans)
    if overlap:  # the communication the pairs hid is no longer exposed
        steady = m if program.schedule == "interleaved_1f1b" and v > 1 else m - 1
        for ledger, full, pair in zip(ledgers, t, tp, strict=True):
            _hide(ledger, steady * float(full - pair))
    # Steady micro-batches take the paired time (the same as the plain one without overlap);
    # warm-up and cool-down run unpaired.
    if program.schedule == "interleaved_1f1b" and v > 1:
        pipe = m * tp.max() + (pp - 1) * t.max() / v + 2 * (pp - 1) * send
    else:
        pipe = (m - 1) * tp.max() + t.sum() + 2 * (pp - 1) * send
    return [_finish_stage(program, pricer, plans, st, ledger, pipe)
            for st, ledger in zip(program.stages, ledgers, strict=True)]


def _hide(ledger: Ledger, seconds: float) -> None:
    """Take ``seconds`` of exposed communication off ``ledger``, shared by kind."""
    total = sum(ledger.exposed.values())
    if total <= 0 or seconds <= 0:
        return
    keep = max(0.0, 1.0 - seconds / total)
    for k in list(ledger.exposed):
        ledger.exposed[k] *= keep


def _dualpipe(program: StepProgram, pricer: Pricer,
              plans: dict[tuple[int, int], ChunkPlan]) -> list[StageOutcome]:
    """Every DualPipe rank from its simulated schedule (the same one the DES replays)."""
    ctx = program.context
    scheds = dualpipe_schedules(program, pricer, plans)
    outcomes = []
    for st in program.stages:
        ledger = Ledger(f"pp{st.stage}")
        sched = scheds[st.stage]
        dualpipe_ledger(plans, st.stage, ctx.pp, sched, ledger)
        outcomes.append(_finish_stage(program, pricer, plans, st, ledger, sched.finish))
    return outcomes


def _finish_stage(program: StepProgram, pricer: Pricer, plans: dict[tuple[int, int], ChunkPlan],
                  st, ledger: Ledger, pipe: float) -> StageOutcome:
    """A stage's step: its pipeline time plus the exposed DP tail, optimizer and FSDP gathers."""
    tail = _dp_tail(program, pricer, plans, st.stage, ledger)
    opt = sum(pricer.fixed(op, st.stage) for op in st.optimizer)
    ledger.optimizer += opt
    gather = _param_exposure(program, pricer, plans, st.stage, ledger)
    tax = _sm_tax(program, pricer, st.stage, tail, gather, ledger)
    return StageOutcome(st.stage, pipe + tail + opt + gather + tax, ledger)


def _sm_tax(program: StepProgram, pricer: Pricer, s: int, dp_tail: float, gather: float,
            ledger: Ledger) -> float:
    """Compute time lost to the SMs of the NCCL kernels that run hidden behind it: the
    gradient buckets and parameter gathers that are not exposed, and the pipeline sends
    (moesim.engine.overlap; the DES charges the same per phase)."""
    f = nccl_fraction(pricer.num_sms)
    if f <= 0:
        return 0.0
    par, m = program.context.parallelism, program.context.num_micro_batches
    chunks = [program.chunks[c] for c in program.stages[s].chunks]
    dp = sum(pricer.fixed(op, s) for ch in chunks for op in ch.grad_sync)
    gathers = sum(pricer.fixed(op, s) for ch in chunks for op in ch.param_gather)
    sends = sum(pricer.fixed(op, s) for ch in chunks
                for op in (ch.send_forward, ch.send_backward) if op is not None)
    hidden = (max(0.0, dp - dp_tail) if par.overlap_grad_reduce else 0.0) + m * sends
    if par.overlap_param_gather:
        hidden += max(0.0, gathers - gather)
    tax = f * hidden
    ledger.exposed["sm_contention"] += tax
    return tax


def _dp_tail(program: StepProgram, pricer: Pricer, plans: dict[tuple[int, int], ChunkPlan],
             s: int, ledger: Ledger) -> float:
    """Gradient-bucket time that outlasts the stage's final backward (seconds)."""
    ctx, streams = program.context, _Streams()
    chunks = sorted(program.stages[s].chunks, reverse=True)  # cool-down order: last chunk first
    if program.schedule == "dualpipe":
        chunks = [s, ctx.pp - 1 - s]
    t, scratch = 0.0, Ledger("scratch")
    pending: list[tuple[float, object]] = []
    deferred = False
    for c in chunks:
        p = plans[(s, c)]
        phase = p.backward_weight if program.schedule == "dualpipe" else p.backward
        ends: list[float] = []
        t = run_phase(phase, ctx.num_micro_batches - 1, t, scratch, ends)
        deferred = not ctx.parallelism.overlap_grad_reduce
        for i, op in phase.buckets:
            pending.append((ends[i], op))
    for when, op in pending:
        streams.issue("comm_dp", t if deferred else when, pricer.fixed(op, s))
    tail = max(0.0, streams.free["comm_dp"] - t)
    ledger.exposed["dp"] += tail
    return tail


def _param_exposure(program: StepProgram, pricer: Pricer,
                    plans: dict[tuple[int, int], ChunkPlan], s: int, ledger: Ledger) -> float:
    """Parameter all-gathers the first forward waits for: overlapped bucket by bucket with
    it (the first chunk's plan), or all of them after the optimizer when not overlapped."""
    par = program.context.parallelism
    chunks = program.stages[s].chunks
    if not chunks:
        return 0.0
    if par.overlap_param_gather:
        t = plans[(s, chunks[0])].first_forward_wait
    else:
        ops = tuple(op for c in chunks for op in program.chunks[c].param_gather)
        t = sum(pricer.fixed(op, s) for op in ops)
    ledger.exposed["dp_param"] += t
    return t
