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

from moesim.engine.dualpipe import (
    comm_sm_fraction,
    dualpipe_bubble,
    dualpipe_ledger,
    dualpipe_terms,
)
from moesim.engine.pricing import Pricer
from moesim.engine.timeline import ChunkPlan, Ledger, plan_chunk, run_phase, stage_ledger
from moesim.program.builder import StepProgram
from moesim.program.ops import Op


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
    """FIFO communication streams of one stage, timed arithmetically."""

    def __init__(self) -> None:
        self.free = {"comm_dp": 0.0, "comm_pp": 0.0}

    def issue(self, stream: str, at: float, dur: float) -> tuple[float, float]:
        start = max(at, self.free[stream])
        self.free[stream] = start + dur
        return start, start + dur


def run_des(program: StepProgram, pricer: Pricer,
            plans: dict[tuple[int, int], ChunkPlan]) -> list[StageOutcome]:
    """Simulate the step; returns one outcome per stage."""
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

    for st in program.stages:
        if program.schedule == "dualpipe":
            proc = _dualpipe_stage(env, program, pricer, plans, st.stage, outcomes)
        else:
            proc = _stage(env, program, pricer, plans, st.stage, event, fire_at, outcomes)
        env.process(proc)
    env.run()
    return sorted(outcomes, key=lambda o: o.stage)


def _issue_ops(streams: _Streams, ledger: Ledger, pricer: Pricer, stage: int,
               items: list[tuple[float, Op]]) -> None:
    for at, op in items:
        d = pricer.fixed(op, stage)
        start, _ = streams.issue(op.stream, at, d)
        ledger.record(op.stream, op.name, op.kind, start, d)


def _stage(env, program, pricer, plans, s, event, fire_at, outcomes):  # noqa: ANN001, ANN202
    """The generator of one stage's process (1F1B, interleaved, GPipe)."""
    ctx, st = program.context, program.stages[s]
    ledger, streams = stage_ledger(s, ctx.pp), _Streams()
    last_chunk, m = ctx.num_chunks - 1, ctx.num_micro_batches
    par = ctx.parallelism
    ready = _param_gathers(program, pricer, s, streams, ledger)
    remaining = {c: m for c in st.chunks}
    pending: list[tuple[float, Op]] = []
    for action in st.actions:
        c = action.virtual * ctx.pp + s
        chunk, plan, mb = program.chunks[c], plans[(s, c)], action.micro_batch
        if action.phase == "F":
            if c > 0:
                yield event(("F", mb, c - 1))
            if ready.get(c, 0.0) > env.now:
                ledger.exposed["dp_param"] += ready[c] - env.now
                yield env.timeout(ready[c] - env.now)
            end = run_phase(plan.forward, mb, env.now, ledger)
            yield env.timeout(end - env.now)
            fire_at(("F", mb, c), _send(streams, ledger, pricer, s, chunk.send_forward, env.now))
        else:
            if c < last_chunk:
                yield event(("B", mb, c + 1))
            ends: list[float] = []
            end = run_phase(plan.backward, mb, env.now, ledger, ends)
            remaining[c] -= 1
            if remaining[c] == 0:
                items = [(ends[i], op) for i, op in plan.backward.buckets]
                if par.overlap_grad_reduce:
                    _issue_ops(streams, ledger, pricer, s, items)
                else:
                    pending += items
            yield env.timeout(end - env.now)
            fire_at(("B", mb, c), _send(streams, ledger, pricer, s, chunk.send_backward, env.now))
    yield from _finish(env, program, pricer, s, streams, ledger, pending)
    outcomes.append(StageOutcome(s, env.now, ledger))


def _send(streams: _Streams, ledger: Ledger, pricer: Pricer, s: int, op: Op | None,
          now: float) -> float:
    """Arrival time of a pipeline send issued now (now itself when there is none)."""
    if op is None:
        return now
    d = pricer.fixed(op, s)
    start, end = streams.issue("comm_pp", now, d)
    ledger.record("comm_pp", op.name, op.kind, start, d)
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
            ledger.record("comm_dp", op.name, op.kind, start, d)
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
        ledger.record("compute", op.name, op.kind, env.now, d)
        yield env.timeout(d)
    if not program.context.parallelism.overlap_param_gather:
        for c in program.stages[s].chunks:
            for op in program.chunks[c].param_gather:
                d = pricer.fixed(op, s)
                ledger.exposed["dp_param"] += d
                ledger.record("comm_dp", op.name, op.kind, env.now, d)
                yield env.timeout(d)


def _dualpipe_stage(env, program, pricer, plans, s, outcomes):  # noqa: ANN001, ANN202
    """A DualPipe rank: the closed-form bubble, then its overlapped F&B pairs as events."""
    ctx = program.context
    ledger, streams = stage_ledger(s, ctx.pp), _Streams()
    m, pp = ctx.num_micro_batches, ctx.pp
    terms = dualpipe_terms(plans, s, pp, m, comm_sm_fraction(program, pricer.num_sms))
    dualpipe_ledger(plans, s, pp, terms, ledger)
    yield env.timeout(dualpipe_bubble(pp, terms.f_and_b, terms.b, terms.w))
    chunks = [s, pp - 1 - s]
    for i in range(m):
        p, t0, pair = plans[(s, chunks[i % 2])], env.now, float(terms.pairs[i])
        if len(ledger.trace) < ledger.cap:
            _trace_pair(p, i, t0, pair, ledger)
        if i >= m - 2:  # each chunk's last backward issues its gradient buckets
            tail: list[float] = []
            run_phase(p.backward_weight, i, t0, Ledger("scratch"), tail)
            span = max(tail[-1] - t0, 1e-30) if tail else 1.0
            _issue_ops(streams, ledger, pricer, s, [
                (t0 + (tail[j] - t0) * pair / span, op) for j, op in p.backward_weight.buckets])
        yield env.timeout(pair)
    yield from _finish(env, program, pricer, s, streams, ledger, [])
    outcomes.append(StageOutcome(s, env.now, ledger))


def _trace_pair(p: ChunkPlan, i: int, t0: float, pair: float, ledger: Ledger) -> None:
    """Trace a pair's ops, compressed onto the pair's interval (times only; no ledger sums)."""
    scratch = Ledger(ledger.rank_class)
    t = t0
    for ph in (p.forward, p.backward_input, p.backward_weight):
        t = run_phase(ph, i, t, scratch)
    scale = pair / max(t - t0, 1e-30)
    for rc, stream, name, kind, start, dur in scratch.trace:
        ledger.trace.append((rc, stream, name, kind, t0 + (start - t0) * scale, dur * scale))
