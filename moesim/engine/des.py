"""The discrete-event run: one simpy process per rank class (pipeline stage).

Each stage walks its schedule. A chunk's phase is one timed segment on the compute stream
(its ops' intervals go to the trace); pipeline sends and data-parallel buckets run on their
own FIFO streams and wake the ops that wait for them through simpy events. Collectives
inside a stage need no rendezvous (the peers are the same rank class); between stages the
activation / gradient arrival is the rendezvous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from moesim.engine.pricing import Pricer
from moesim.engine.timeline import ChunkPlan, Ledger, phase_time, plan_chunk, run_phase
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
            out[(st.stage, c)] = plan_chunk(pricer, program.chunks[c], st.stage)
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
    ledger, streams = Ledger(f"pp{s}"), _Streams()
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


def dualpipe_terms(plans: dict[tuple[int, int], ChunkPlan], s: int, pp: int,
                   m: int) -> tuple[np.ndarray, float, float, float]:
    """Per-pair overlapped times [m] and the mean F&B, B and W chunk times (seconds).

    A pair overlaps one forward chunk with one backward chunk: compute runs back to back
    while each one's all-to-all hides under the other's compute (DeepSeek-V3 section 3.2.1),
    so a pair takes max(compute_F + compute_B, communication_F + communication_B).
    """
    chunks = [s, pp - 1 - s]
    pairs = np.zeros(m)
    b_t, w_t = [], []
    for i in range(m):
        p = plans[(s, chunks[i % 2])]
        comp = comm = 0.0
        for ph in (p.forward, p.backward_input, p.backward_weight):
            for st in ph.steps:
                if st.compute:
                    comp += float(st.slow[i] - (st.exposed[i] if st.exposed is not None else 0))
                    comm += float(st.exposed[i]) if st.exposed is not None else 0.0
                else:
                    comm += float(st.slow[i])
        pairs[i] = max(comp, comm)
        b_t.append(float(phase_time(p.backward_input)[i]) if p.backward_input.steps else 0.0)
        w_t.append(float(phase_time(p.backward_weight)[i]) if p.backward_weight.steps else 0.0)
    w = float(np.mean(w_t))
    b = float(np.mean(b_t)) + w  # DeepSeek's "B" is the full backward (input + weight)
    return pairs, float(pairs.mean()), b, w


def dualpipe_bubble(pp: int, f_and_b: float, b: float, w: float) -> float:
    """DualPipe bubble (PP/2 - 1)(F&B + B - 3W), DeepSeek-V3 Table 2 (seconds)."""
    return max(0.0, (pp / 2 - 1) * (f_and_b + b - 3 * w))


def _dualpipe_stage(env, program, pricer, plans, s, outcomes):  # noqa: ANN001, ANN202
    """A DualPipe rank: the closed-form bubble, then its overlapped F&B pairs as events."""
    ctx = program.context
    ledger, streams = Ledger(f"pp{s}"), _Streams()
    m, pp = ctx.num_micro_batches, ctx.pp
    pairs, fb, b, w = dualpipe_terms(plans, s, pp, m)
    bubble = dualpipe_bubble(pp, fb, b, w)
    yield env.timeout(bubble)
    chunks = [s, pp - 1 - s]
    ends: list[float] = []
    for i in range(m):
        p, t0 = plans[(s, chunks[i % 2])], env.now
        scratch = Ledger(ledger.rank_class)
        tail: list[float] = []
        for ph in (p.forward, p.backward_input, p.backward_weight):
            run_phase(ph, i, t0, scratch, tail if ph is p.backward_weight else None)
        _merge_pair(ledger, scratch, float(pairs[i]))
        if i >= m - 2:  # each chunk's last backward issues its gradient buckets
            scale = pairs[i] / max(tail[-1] - t0, 1e-30) if tail else 1.0
            ends = [t0 + (t - t0) * scale for t in tail]
            _issue_ops(streams, ledger, pricer, s,
                       [(ends[j], op) for j, op in p.backward_weight.buckets])
        yield env.timeout(float(pairs[i]))
    yield from _finish(env, program, pricer, s, streams, ledger, [])
    outcomes.append(StageOutcome(s, env.now, ledger))


def _merge_pair(ledger: Ledger, scratch: Ledger, pair_s: float) -> None:
    """Fold a pair's ops into the ledger: comm beyond the compute is the exposed part."""
    comp = sum(scratch.compute.values()) + scratch.imbalance
    for k, v in scratch.compute.items():
        ledger.compute[k] += v
    ledger.imbalance += scratch.imbalance
    comm = sum(scratch.exposed.values())
    exposed = max(0.0, pair_s - comp)
    for k, v in scratch.exposed.items():
        ledger.exposed[k] += exposed * v / comm if comm > 0 else 0.0
    ledger.ops += scratch.ops
    ledger.trace += scratch.trace[: max(0, 50_000 - len(ledger.trace))]
