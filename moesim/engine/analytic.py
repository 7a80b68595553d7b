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
from moesim.engine.host import host_runs_ahead
from moesim.engine.overlap import ep_fraction, nccl_fraction
from moesim.engine.pairing import pair_time
from moesim.engine.pricing import Pricer
from moesim.engine.timeline import (
    ChunkPlan,
    Ledger,
    PhasePlan,
    add_summary,
    phase_time,
    run_phase,
)
from moesim.program.builder import StepProgram
from moesim.program.schedule import paired_actions, schedule_for


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
    ahead = host_runs_ahead(program.schedule, pp, v)
    for st in program.stages:
        ledger = Ledger(f"pp{st.stage}")
        total = pair = 0.0
        for c in st.chunks:
            p = plans[(st.stage, c)]
            add_summary(p.forward, ledger, slice(None))  # ledger sums over micro-batches
            add_summary(p.backward, ledger, slice(None))
            tf, tb = _led(p.forward, p.backward, ledger) if ahead else (
                _mean(phase_time(p.forward)), _mean(phase_time(p.backward)))
            total += tf + tb
            if overlap and p.forward.steps and p.backward.steps:
                pair += _pair_mean(p.forward, p.backward, m, f, ahead)
            elif overlap:
                pair += tf + tb
            ch = program.chunks[c]
            if ch.send_forward is not None:
                send = max(send, pricer.fixed(ch.send_forward, st.stage))
        per_mb.append(total)
        paired.append(pair if overlap else total)
        ledgers.append(ledger)
    t, tp = np.asarray(per_mb), np.asarray(paired)
    if program.schedule == "dualpipe":
        return _dualpipe(program, pricer, plans)
    # With the 1F1B all-to-all overlap each stage runs the forward/backward pairs its schedule
    # forms (paired_actions: the steady state; warm-up and cool-down run alone); a chunk pair
    # saves (t - tp) / v of the stage's per-micro-batch time.
    interleaved = program.schedule == "interleaved_1f1b" and v > 1
    vv = v if interleaved else 1
    pairs = np.array([_pairs(program, st.stage) for st in program.stages]) if overlap \
        else np.zeros(len(t))
    saved = pairs * (t - tp) / vv
    for ledger, hid in zip(ledgers, saved, strict=True):
        _hide(ledger, float(hid))
    if interleaved:
        pipe = (m * t - saved).max() + (pp - 1) * t.max() / v + 2 * (pp - 1) * send
    else:
        pipe = ((m - 1) * t - saved).max() + t.sum() + 2 * (pp - 1) * send
    return [_finish_stage(program, pricer, plans, st, ledger, pipe)
            for st, ledger in zip(program.stages, ledgers, strict=True)]


def _led(fwd: PhasePlan, bwd: PhasePlan, ledger: Ledger) -> tuple[float, float]:
    """Mean forward and backward phase times with the host running ahead across phases
    (moesim.engine.host.host_runs_ahead): forward and backward alternate, each starting with
    the lead the other ended with (a fixed point, three rounds); ``ledger``'s host waits drop
    by what the lead saves."""
    if not fwd.steps or not bwd.steps:
        return _mean(phase_time(fwd)), _mean(phase_time(bwd))
    sf, sb = fwd.summary, bwd.summary
    lead = np.zeros_like(sf.total)
    for _ in range(3):
        tf, wf, out_f = sf.with_lead(lead)
        tb, wb, lead = sb.with_lead(out_f)
    ledger.host_wait -= float((sf.host_wait - wf).sum() + (sb.host_wait - wb).sum())
    return float(tf.mean()), float(tb.mean())


def _pair_mean(fwd: PhasePlan, bwd: PhasePlan, m: int, f: float, ahead: bool) -> float:
    """Mean seconds of a chunk's forward beside its backward (moesim.engine.pairing; forward i
    beside backward i: equal chunks, equal loads), the host's lead carried between pairs."""
    idx = np.arange(m)
    lead = np.zeros(m)
    for _ in range(3 if ahead else 1):
        dur, _, h_end = pair_time(fwd.nodes(True), bwd.nodes(False), idx, idx, f, lead)
        lead = dur - h_end
    return _mean(dur)


def _pairs(program: StepProgram, s: int) -> int:
    """Merged forward/backward pairs in stage ``s``'s schedule with the all-to-all overlap
    (its extra warm-up forward included; the same order the DES runs)."""
    ctx = program.context
    actions = program.stages[s].actions or schedule_for(
        program.schedule, s, ctx.pp, ctx.num_micro_batches, ctx.num_virtual, 1)
    return sum(1 for g in paired_actions(actions) if len(g) == 2)


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
