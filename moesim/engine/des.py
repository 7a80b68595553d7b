"""The discrete-event run: one simpy process per rank class (pipeline stage).

Each stage walks its schedule. A chunk's phase is one timed segment on the compute stream
(its ops' intervals go to the trace); pipeline sends and data-parallel buckets run on their
own FIFO streams and wake the ops that wait for them through simpy events. Collectives
inside a stage need no rendezvous (the peers are the same rank class); between stages the
activation / gradient arrival is the rendezvous.
"""

from __future__ import annotations

from dataclasses import dataclass

import simpy

from moesim.engine.dualpipe import RankSchedule, dualpipe_ledger, dualpipe_schedules
from moesim.engine.host import host_runs_ahead
from moesim.engine.overlap import busy_overlap, ep_fraction, nccl_fraction
from moesim.engine.pairing import pair_time
from moesim.engine.pricing import Pricer
from moesim.engine.timeline import (
    TRACE_CAP,
    ChunkPlan,
    Ledger,
    PhasePlan,
    add_summary,
    fold_pair,
    phase_time,
    plan_chunk,
    run_phase,
    stage_ledger,
)
from moesim.engine.trace_args import op_args
from moesim.program.builder import StepProgram
from moesim.program.ops import Op
from moesim.program.schedule import Action, paired_actions


@dataclass
class StageOutcome:
    """One rank class's finish time (seconds) and ledger."""

    stage: int
    finish_s: float
    ledger: Ledger


def chunk_plans(program: StepProgram, pricer: Pricer) -> dict[tuple[int, int], ChunkPlan]:
    """Priced plans keyed by (stage, chunk); DualPipe ranks also run the mirrored chunk."""
    out = {}
    pp = program.context.pp
    for st in program.stages:
        own = set(st.chunks)
        if program.schedule == "dualpipe":
            own.add(pp - 1 - st.stage)
        for c in sorted(own):
            out[(st.stage, c)] = plan_chunk(pricer, program.chunks[c], st.stage,
                                            split=program.schedule == "dualpipe")
    return out


class _Streams:
    """FIFO communication streams of one stage, timed arithmetically, with their busy
    intervals (the SM share their NCCL kernels take from overlapping compute)."""

    def __init__(self) -> None:
        self.free = {"comm_dp": 0.0, "comm_pp": 0.0}
        self.busy: list[tuple[float, float]] = []

    def issue(self, stream: str, at: float, dur: float) -> tuple[float, float]:
        start = max(at, self.free[stream])
        self.free[stream] = start + dur
        if dur > 0:
            self.busy.append((start, start + dur))
        return start, start + dur

    def overlap(self, t0: float, t1: float) -> float:
        """Seconds of communication kernels running during [t0, t1] (both streams summed);
        intervals that ended before t0 are dropped (phases run forward in time)."""
        self.busy = [iv for iv in self.busy if iv[1] > t0]
        return busy_overlap(self.busy, t0, t1)


def _sm_tax(streams: _Streams, ledger: Ledger, f: float, t0: float, t1: float) -> float:
    """Extra compute time of a phase on [t0, t1] whose SMs NCCL kernels shared (seconds)."""
    if f <= 0:
        return 0.0
    tax = f * streams.overlap(t0, t1)
    ledger.exposed["sm_contention"] += tax
    return tax


def run_des(program: StepProgram, pricer: Pricer,
            plans: dict[tuple[int, int], ChunkPlan], *,
            trace_cap: int = TRACE_CAP) -> list[StageOutcome]:
    """Simulate the step; returns one outcome per stage. ``trace_cap``: op intervals the
    trace keeps in all (0: none, for callers that only read the numbers)."""
    env = simpy.Environment()
    events: dict[tuple[str, int, int], simpy.Event] = {}
    outcomes: list[StageOutcome] = []

    def event(key: tuple[str, int, int]) -> simpy.Event:
        ev = events.get(key)
        if ev is None:
            ev = events[key] = env.event()
        return ev

    def fire_at(key: tuple[str, int, int], at: float) -> None:
        ev = event(key)
        if at <= env.now:
            ev.succeed()
        else:
            env.timeout(at - env.now).callbacks.append(lambda _e: ev.succeed())

    scheds = dualpipe_schedules(program, pricer, plans) if program.schedule == "dualpipe" else []
    for st in program.stages:
        if program.schedule == "dualpipe":
            proc = _dualpipe_stage(env, program, pricer, plans, scheds[st.stage], outcomes,
                                   trace_cap)
        else:
            proc = _stage(env, program, pricer, plans, st.stage, event, fire_at, outcomes,
                          trace_cap)
        env.process(proc)
    env.run()
    return sorted(outcomes, key=lambda o: o.stage)


def _issue_ops(streams: _Streams, ledger: Ledger, pricer: Pricer, stage: int,
               items: list[tuple[float, Op]]) -> None:
    for at, op in items:
        d = pricer.fixed(op, stage)
        start, _ = streams.issue(op.stream, at, d)
        ledger.record(op.stream, op.name, op.kind, start, d, op_args(op))


def _stage(env, program, pricer, plans, s, event, fire_at, outcomes,  # noqa: ANN001, ANN202
           trace_cap=TRACE_CAP):
    """The generator of one stage's process (1F1B, interleaved, GPipe).

    With ``overlap_moe_expert_parallel_comm`` the schedule's adjacent forward / backward
    actions of different micro-batches run merged (``paired_actions``): one segment of
    ``overlapped_pair`` length that starts when both inputs have arrived."""
    ctx, st = program.context, program.stages[s]
    ledger, streams = stage_ledger(s, ctx.pp, trace_cap), _Streams()
    last_chunk, m = ctx.num_chunks - 1, ctx.num_micro_batches
    par = ctx.parallelism
    ready = _param_gathers(program, pricer, s, streams, ledger)
    f_nccl = nccl_fraction(pricer.num_sms)
    f_ep = ep_fraction(par, pricer.num_sms) if program.moe_layers else f_nccl
    first_chunk = st.chunks[0] if st.chunks else -1
    remaining = {c: m for c in st.chunks}
    started: set[int] = set()
    pending: list[tuple[float, Op]] = []
    groups = (paired_actions(st.actions) if par.overlap_moe_expert_parallel_comm
              else [(a,) for a in st.actions])
    # The host clock, carried across phases where the schedule lets the host run ahead.
    host = ([0.0] if host_runs_ahead(program.schedule, ctx.pp, ctx.num_virtual) else None)
    for group in groups:
        for action in group:  # inputs: the previous chunk's forward, the next one's backward
            c = action.virtual * ctx.pp + s
            if action.phase == "F" and c > 0:
                yield event(("F", action.micro_batch, c - 1))
            if action.phase == "B" and c < last_chunk:
                yield event(("B", action.micro_batch, c + 1))
        for action in group:
            c = action.virtual * ctx.pp + s
            if action.phase == "F" and c not in started:
                # The first forward of the first chunk gathers its parameters bucket by
                # bucket (the plan's first_forward_wait); later chunks' gathers were issued at
                # the step start and are waited for if still running.
                started.add(c)
                wait = (plans[(s, c)].first_forward_wait if c == first_chunk
                        else max(0.0, ready.get(c, 0.0) - env.now))
                if wait > 0:
                    ledger.exposed["dp_param"] += wait
                    yield env.timeout(wait)
        t0 = env.now
        last_b = [a for a in group if a.phase == "B"
                  and remaining[a.virtual * ctx.pp + s] == 1]
        if len(group) == 1:
            action = group[0]
            c = action.virtual * ctx.pp + s
            plan = plans[(s, c)]
            phase = plan.forward if action.phase == "F" else plan.backward
            ends: list[float] = []
            end = run_phase(phase, action.micro_batch, t0, ledger, ends if last_b else None,
                            host)
            if last_b:
                _grad_buckets(streams, ledger, pricer, s, par, pending,
                              [(ends[i], op) for i, op in plan.backward.buckets])
        else:
            end = t0 + _pair(plans, s, ctx.pp, group, f_ep, ledger, host, t0)
            parts = [(_phase_of(plans, s, ctx.pp, a), a.micro_batch)
                     for a in sorted(group, key=lambda a: a.phase == "B")]
            _segment(parts, t0, end - t0, ledger, streams, pricer, s, bool(last_b),
                     sink=None if par.overlap_grad_reduce else pending)
        for action in group:
            if action.phase == "B":
                remaining[action.virtual * ctx.pp + s] -= 1
        end += _sm_tax(streams, ledger, f_nccl, t0, end)
        yield env.timeout(end - env.now)
        for action in group:
            c = action.virtual * ctx.pp + s
            chunk = program.chunks[c]
            send = chunk.send_forward if action.phase == "F" else chunk.send_backward
            label = ("forward" if action.phase == "F" else "backward", c)
            fire_at((action.phase, action.micro_batch, c),
                    _send(streams, ledger, pricer, s, send, env.now, action.micro_batch, label))
    yield from _finish(env, program, pricer, s, streams, ledger, pending)
    outcomes.append(StageOutcome(s, env.now, ledger))


def _phase_of(plans: dict[tuple[int, int], ChunkPlan], s: int, pp: int,
              action: Action) -> PhasePlan:
    plan = plans[(s, action.virtual * pp + s)]
    return plan.forward if action.phase == "F" else plan.backward


def _pair(plans: dict[tuple[int, int], ChunkPlan], s: int, pp: int,
          group: tuple[Action, ...], f: float, ledger: Ledger, host: list[float] | None = None,
          t0: float = 0.0) -> float:
    """Seconds of a merged forward/backward pair (the layer-by-layer two-stream schedule of
    :mod:`moesim.engine.pairing`) starting at ``t0``, the host clock ``host`` carried where it
    runs ahead; its compute and exposed communication go to ``ledger`` the way DualPipe's
    pairs do (the rest of the pair is exposed, shared by kind)."""
    scratch = Ledger(ledger.rank_class)
    fa = next(a for a in group if a.phase == "F")
    ba = next(a for a in group if a.phase == "B")
    fp, bp = _phase_of(plans, s, pp, fa), _phase_of(plans, s, pp, ba)
    for a, ph in ((fa, fp), (ba, bp)):
        add_summary(ph, scratch, a.micro_batch)
    if fp.steps and bp.steps:
        lead = t0 - host[0] if host is not None else 0.0
        d, stall, h_end = pair_time(fp.nodes(True), bp.nodes(False), fa.micro_batch,
                                    ba.micro_batch, f, lead)
        dur = float(d)
        scratch.host_wait = float(stall)  # the pair's own waits for the host
        if host is not None:
            host[0] = t0 + float(h_end)
    else:
        dur = sum(float(phase_time(ph)[a.micro_batch]) if ph.steps else 0.0
                  for a, ph in ((fa, fp), (ba, bp)))
    fold_pair(scratch, ledger, dur)
    return dur


def _grad_buckets(streams: _Streams, ledger: Ledger, pricer: Pricer, s: int, par,  # noqa: ANN001
                  pending: list[tuple[float, Op]], items: list[tuple[float, Op]]) -> None:
    """A chunk's last backward issues its gradient buckets (or defers them to the end)."""
    if par.overlap_grad_reduce:
        _issue_ops(streams, ledger, pricer, s, items)
    else:
        pending += items


def _send(streams: _Streams, ledger: Ledger, pricer: Pricer, s: int, op: Op | None,
          now: float, mb: int = -1, label: tuple[str, int] | None = None) -> float:
    """Arrival time of a pipeline send issued now (now itself when there is none); its trace
    record carries the micro-batch and the (phase, chunk) it sends from."""
    if op is None:
        return now
    d = pricer.fixed(op, s)
    start, end = streams.issue("comm_pp", now, d)
    ledger.record("comm_pp", op.name, op.kind, start, d, op_args(op), mb, label)
    return end


def _param_gathers(program, pricer, s, streams, ledger) -> dict[int, float]:  # noqa: ANN001
    """ZeRO/FSDP parameter all-gathers issued at step start (overlapped with the forward)."""
    par = program.context.parallelism
    ready: dict[int, float] = {}
    if not par.overlap_param_gather:
        return ready
    for c in program.stages[s].chunks:
        for op in program.chunks[c].param_gather:
            d = pricer.fixed(op, s)
            start, end = streams.issue("comm_dp", 0.0, d)
            ledger.record("comm_dp", op.name, op.kind, start, d, op_args(op))
            ready[c] = end
    return ready


def _finish(env, program, pricer, s, streams, ledger, pending):  # noqa: ANN001, ANN202
    """Drain the gradient stream, run the optimizer, gather parameters if not overlapped."""
    if pending:
        _issue_ops(streams, ledger, pricer, s, [(env.now, op) for _, op in pending])
    drain = streams.free["comm_dp"] - env.now
    if drain > 0:
        ledger.exposed["dp"] += drain
        yield env.timeout(drain)
    for op in program.stages[s].optimizer:
        d = pricer.fixed(op, s)
        ledger.optimizer += d
        ledger.record("compute", op.name, op.kind, env.now, d, op_args(op, pricer.source(op)))
        yield env.timeout(d)
    if not program.context.parallelism.overlap_param_gather:
        for c in program.stages[s].chunks:
            for op in program.chunks[c].param_gather:
                d = pricer.fixed(op, s)
                ledger.exposed["dp_param"] += d
                ledger.record("comm_dp", op.name, op.kind, env.now, d, op_args(op))
                yield env.timeout(d)


def _dualpipe_stage(env, program, pricer, plans, sched: RankSchedule,  # noqa: ANN001, ANN202
                    outcomes, trace_cap=TRACE_CAP):
    """A DualPipe rank replaying its simulated schedule (moesim.engine.dualpipe) as events.

    Each action is one timed segment; its ops are traced compressed onto the segment. The
    action that computes a chunk's last weight gradient issues that chunk's buckets.
    """
    ctx = program.context
    s, pp, half = sched.rank, ctx.pp, ctx.num_micro_batches // 2
    ledger, streams = stage_ledger(s, pp, trace_cap), _Streams()
    dualpipe_ledger(plans, s, pp, sched, ledger)
    chunks = (s, pp - 1 - s)
    for kind, fwd, bwd, start, end in sched.intervals:
        if start > env.now:
            yield env.timeout(start - env.now)
        parts = []
        if fwd is not None:
            parts.append((plans[(s, chunks[fwd[0]])].forward, 2 * fwd[1] + fwd[0]))
        if bwd is not None:
            p, mb = plans[(s, chunks[bwd[0]])], 2 * bwd[1] + bwd[0]
            if kind != "W":
                parts.append((p.backward_input, mb))
            if kind != "Bi":
                parts.append((p.backward_weight, mb))
        last_w = bwd is not None and kind != "Bi" and bwd[1] == half - 1
        _segment(parts, start, end - start, ledger, streams, pricer, s, last_w)
        yield env.timeout(end - env.now)
    yield from _finish(env, program, pricer, s, streams, ledger, [])
    outcomes.append(StageOutcome(s, env.now, ledger))


def _segment(parts, t0: float, span: float, ledger: Ledger, streams: _Streams,  # noqa: ANN001
             pricer: Pricer, s: int, issue_buckets: bool,
             sink: list[tuple[float, Op]] | None = None) -> None:
    """Trace ``parts`` (phase, micro-batch) compressed onto [t0, t0 + span]; when
    ``issue_buckets``, issue the last part's gradient buckets at their scaled step ends (or
    append them to ``sink`` when gradient reduction is not overlapped)."""
    tracing = len(ledger.trace) < ledger.cap
    if not tracing and not issue_buckets:
        return
    scratch, t, ends = Ledger(ledger.rank_class), t0, []
    for i, (ph, mb) in enumerate(parts):
        last = i == len(parts) - 1
        ends = [] if issue_buckets and last else None
        t = run_phase(ph, mb, t, scratch, ends)
    scale = span / max(t - t0, 1e-30)
    if tracing:
        for rc, stream, name, kind, start, dur, *rest in scratch.trace:
            ledger.trace.append((rc, stream, name, kind, t0 + (start - t0) * scale, dur * scale,
                                 *rest))
    if issue_buckets and parts:
        items = [(t0 + (ends[j] - t0) * scale, op) for j, op in parts[-1][0].buckets]  # type: ignore[index]
        if sink is None:
            _issue_ops(streams, ledger, pricer, s, items)
        else:
            sink += items


