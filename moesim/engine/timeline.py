"""Priced phases of a chunk and the arithmetic that runs them on one rank's streams.

A phase (forward, or backward = recompute + per-layer input and weight gradients) is a
sequence of steps on the critical path: compute ops and blocking communication. The
all-to-all / expert / all-to-all triple of an MoE layer may instead be pipelined over
``moe_overlap_chunks`` chunks (Tutel adaptive pipelining, Megatron's a2a overlap).
Gradient buckets are issued to the data-parallel stream when their layer's backward ends.

Each step also carries the host's issue time and whether the host synchronizes before it
(:mod:`moesim.engine.host`): a phase runs host h and device d from t0, h += issue, the step
starts at max(d, h) and ends after its duration; at a sync point h = max(h, d) first. The
device's idle time waiting for the host is the phase's ``host_wait``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from moesim.engine.host import HostModel
from moesim.engine.overlap import ep_fraction, nccl_fraction, overlapped_pair
from moesim.engine.pairing import PhaseNodes, phase_nodes
from moesim.engine.pricing import Pricer
from moesim.engine.trace_args import Args, merged_args, op_args
from moesim.program.builder import ChunkProgram
from moesim.program.ops import AllToAllShape, AttentionShape, CollectiveShape, GemmShape, Op

# Op intervals kept in the whole trace (any beyond are counted, not stored, and the result
# says the trace is incomplete): the shipped DeepSeek-V3 step on 2048 H800 runs 575k.
TRACE_CAP = 1_500_000


def stage_ledger(stage: int, num_stages: int, budget: int = TRACE_CAP) -> Ledger:
    """The ledger of one rank class, keeping its share of the step's trace budget of
    ``budget`` op intervals (0: no trace; phases then run from their per-kind totals)."""
    cap = 0 if budget <= 0 else max(1_000, budget // max(1, num_stages))
    return Ledger(f"pp{stage}", cap=cap)


@dataclass
class Step:
    """One critical-path step: ``slow`` [M] is its duration, ``mean`` the mean-rank compute."""

    name: str
    kind: str
    stream: str
    compute: bool
    slow: np.ndarray
    mean: np.ndarray
    exposed: np.ndarray | None = None  # overlapped MoE block: exposed all-to-all part
    comm_kind: str = ""
    host: float = 0.0  # host issue time before the step can start (seconds)
    sync: bool = False  # the host waits for the device before issuing this step
    source: str = ""  # the path that priced its compute (measured, derived, roofline)
    args: Args | None = None  # what the trace says of it (moesim.engine.trace_args)


@dataclass
class PhaseSummary:
    """A phase's per-micro-batch totals [M], precomputed once (the fast path of run_phase)."""

    total: np.ndarray
    compute: dict[str, np.ndarray]
    exposed: dict[str, np.ndarray]
    imbalance: np.ndarray
    ops: int
    host_wait: np.ndarray  # [M] device idle waiting for the host
    by_source: dict[str, np.ndarray]  # [M] mean-rank compute time by pricing path
    # The host's lead (below): the duration with the host unboundedly ahead at the start,
    # the host's total issue time, the lead it ends with from a synced start, and whether
    # the host synchronizes inside the phase.
    free_total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    host_total: float = 0.0
    lead_out: np.ndarray = field(default_factory=lambda: np.zeros(0))
    syncs: bool = False

    def with_lead(self, lead: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """([M] duration, [M] host wait, [M] lead at the end) when the host starts issuing
        ``lead`` seconds before the phase can start on the device.

        The device's waits for the host before the first sync point are the running maximum
        of host issue minus device work, so a head start of L removes min(L, those waits):
        T(L) = max(T(inf), T(0) - L). After a sync the host's lead no longer depends on L;
        without one the host ends H - T(L) - L behind (H its issue time)."""
        total = np.maximum(self.free_total, self.total - lead)
        wait = np.maximum(self.host_wait - (self.total - total), 0.0)
        out = self.lead_out if self.syncs else total + lead - self.host_total
        return total, wait, np.asarray(out, dtype=np.float64)


@dataclass
class PhasePlan:
    steps: list[Step]
    buckets: list[tuple[int, Op]] = field(default_factory=list)  # (issue after step i, op)
    _summary: PhaseSummary | None = None
    label: tuple[str, int] | None = None  # (phase, chunk) its trace records carry
    _nodes: dict[bool, PhaseNodes] = field(default_factory=dict)

    def nodes(self, forward: bool) -> PhaseNodes:
        """The phase cut into Megatron's per-layer nodes for the 1F1B all-to-all overlap
        (:mod:`moesim.engine.pairing`), computed once."""
        if forward not in self._nodes:
            self._nodes[forward] = phase_nodes(self.steps, forward)
        return self._nodes[forward]

    @property
    def summary(self) -> PhaseSummary:
        """Totals per micro-batch by kind, summed over steps with numpy (seconds)."""
        if self._summary is None:
            self._summary = _summarize(self.steps)
        return self._summary


def _summarize(steps: list[Step]) -> PhaseSummary:
    compute: dict[str, np.ndarray] = {}
    exposed: dict[str, np.ndarray] = {}
    m = steps[0].slow.shape[0] if steps else 0
    imbalance = np.zeros(m)

    def add(d: dict[str, np.ndarray], k: str, v: np.ndarray) -> None:
        d[k] = d[k] + v if k in d else v.astype(np.float64, copy=True)

    by_source: dict[str, np.ndarray] = {}
    for s in steps:
        if s.compute:
            add(by_source, s.source or "model", s.mean)
        if s.exposed is not None:
            add(compute, s.kind, s.mean)
            add(exposed, s.comm_kind, s.exposed)
            imbalance = imbalance + s.slow - s.exposed - s.mean
        elif s.compute:
            add(compute, s.kind, s.mean)
            imbalance = imbalance + s.slow - s.mean
        else:
            add(exposed, s.kind, s.slow)
    total, host_wait, pre_wait, h_end = _host_recursion(steps, m)
    host_total = float(sum(st.host for st in steps))
    return PhaseSummary(total, compute, exposed, imbalance, len(steps), host_wait, by_source,
                        free_total=total - pre_wait, host_total=host_total,
                        lead_out=total - h_end, syncs=any(st.sync for st in steps))


def _host_recursion(steps: list[Step], m: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """([M] duration, host wait, host wait before the first sync, host clock at the end)."""
    h, d, wait, pre = np.zeros(m), np.zeros(m), np.zeros(m), None
    for s in steps:
        if s.sync:
            if pre is None:
                pre = wait.copy()
            h = np.maximum(h, d)
        h = h + s.host
        start = np.maximum(d, h)
        wait = wait + (start - d)
        d = start + s.slow
    return d, wait, (wait if pre is None else pre), h


def host_recursion(steps: list[Step], m: int) -> tuple[np.ndarray, np.ndarray]:
    """([M] phase duration, [M] device idle waiting for the host) from t0 = 0.

    h: host clock, d: device clock; h += issue time; start = max(d, h); d = start + duration;
    at a sync point h = max(h, d) before the step's issue (module docstring)."""
    d, wait, _, _ = _host_recursion(steps, m)
    return d, wait


@dataclass
class ChunkPlan:
    forward: PhasePlan
    backward: PhasePlan  # recompute + B and W fused per layer (1F1B, interleaved, GPipe)
    backward_input: PhasePlan  # B only (DualPipe)
    backward_weight: PhasePlan  # W only (DualPipe)
    first_forward_wait: float = 0.0  # the first forward's wait for ZeRO-1/2 param gathers


def _layer_key(name: str) -> str:
    return name.split(".", 1)[0]


def issue_times(host: HostModel, ops: list[Op]) -> list[float]:
    """Host issue time of each op: ``op_s``, except inside a CUDA-graph-captured run, which
    costs one launch (on its first op) for the whole run."""
    out, prev = [], False
    for op in ops:
        cap = host.captured(op)
        out.append(0.0 if cap and prev else host.op_s)
        prev = cap
    return out


def _steps(pricer: Pricer, ops: list[Op], stage: int, chunks: int) -> list[Step]:
    out: list[tuple[Op | None, Step]] = []
    host = pricer.host
    issue = issue_times(host, ops)
    i = 0
    while i < len(ops):
        op = ops[i]
        block = _overlap_block(ops, i) if chunks > 1 else None
        if block is not None:
            step = _overlapped(pricer, ops[i:block + 1], stage, chunks)
            step.host = float(sum(issue[i:block + 1]))
            step.sync = any(host.syncs_before(o) for o in ops[i:block + 1])
            out.append((None, step))
            i = block + 1
            continue
        c = pricer.cost(op, stage)
        src = pricer.source(op) if op.is_compute else ""
        out.append((op, Step(op.name, op.kind, op.stream, op.is_compute, c.slow, c.mean,
                             host=issue[i], sync=host.syncs_before(op), source=src,
                             args=op_args(op, src) if pricer.trace_args else None)))
        i += 1
    return [st for _, st in fuse_overlaps(pricer, out)]


def _merged(comp: Step, comm: Step, f: float) -> Step:
    """One step of compute ``comp`` with communication ``comm`` running beside it."""
    slow = overlapped_pair(comp.slow, comm.slow, f)
    return Step(f"{comp.name}+{comm.name}", comp.kind, "compute", True, slow, comp.mean,
                exposed=slow - comp.slow, comm_kind=comm.kind, host=comp.host + comm.host,
                sync=comp.sync or comm.sync, source=comp.source,
                args=None if comp.args is None else merged_args(comp.args, comm.name, 2))


def _summed(steps: list[Step], kind: str) -> Step:
    """Compute steps as one of ``kind`` (their durations and mean-rank times added)."""
    first = steps[0]
    return Step(first.name, kind, "compute", True, sum(s.slow for s in steps),
                sum(s.mean for s in steps), host=sum(s.host for s in steps),
                sync=any(s.sync for s in steps), source=first.source,
                args=None if first.args is None else merged_args(first.args, steps[-1].name,
                                                                 len(steps)))


def _plain_compute(item: tuple[Op | None, Step]) -> bool:
    op, st = item
    return op is not None and st.compute and st.exposed is None


def fuse_overlaps(pricer: Pricer, items: list[tuple[Op | None, Step]]
                  ) -> list[tuple[Op | None, Step]]:
    """Merge the communication the layout overlaps into the compute beside it:

    - ``cp_comm_type: p2p``: the ring's K/V exchange runs under the attention core (the
      exchange of the next chunk while the current one computes);
    - ``tp_comm_overlap``: a TP all-gather under the GEMM after it, a reduce-scatter under
      the GEMM before it (Transformer Engine userbuffers);
    - ``moe_shared_expert_overlap``: a layer's shared-expert FFN beside its first all-to-all
      of the phase (dispatch in the forward, the combine's transpose in the backward).
    The communication kernels take their SMs from the compute (moesim.engine.overlap)."""
    par = pricer.program.context.parallelism
    f_nccl = nccl_fraction(pricer.num_sms)
    f_ep = ep_fraction(par, pricer.num_sms)
    out = list(items)
    if par.context_parallel_degree > 1 and par.cp_comm_type == "p2p":
        out = _fuse_adjacent(out, lambda o: ".cp_kv" in o.name,
                             lambda o: isinstance(o.shape, AttentionShape), f_nccl, "either")
    if par.tp_comm_overlap and par.tensor_parallel_degree > 1:
        out = _fuse_adjacent(out, _is_tp_gather, _is_gemm, f_nccl, "next")
        out = _fuse_adjacent(out, _is_tp_scatter, _is_gemm, f_nccl, "prev")
    if par.moe_shared_expert_overlap:
        out = _fuse_shared(out, f_ep)
    return out


def _is_gemm(op: Op) -> bool:
    return isinstance(op.shape, GemmShape)


def _is_tp_gather(op: Op) -> bool:
    s = op.shape
    return isinstance(s, CollectiveShape) and s.axis == "tp" and s.op == "all_gather"


def _is_tp_scatter(op: Op) -> bool:
    s = op.shape
    return isinstance(s, CollectiveShape) and s.axis == "tp" and s.op == "reduce_scatter"


def _fuse_adjacent(items: list[tuple[Op | None, Step]], is_comm, is_comp,  # noqa: ANN001
                   f: float, side: str) -> list[tuple[Op | None, Step]]:
    """Merge each communication step matching ``is_comm`` with the plain compute step next
    to it that matches ``is_comp`` (``side``: the next one, the previous one, or either)."""
    out: list[tuple[Op | None, Step]] = []
    i = 0
    while i < len(items):
        op, st = items[i]
        if op is None or st.compute or not is_comm(op):
            out.append(items[i])
            i += 1
            continue
        nxt = items[i + 1] if i + 1 < len(items) else None
        prev = out[-1] if out else None
        if side in ("next", "either") and nxt and _plain_compute(nxt) and is_comp(nxt[0]):
            out.append((None, _merged(nxt[1], st, f)))
            i += 2
        elif side in ("prev", "either") and prev and _plain_compute(prev) and is_comp(prev[0]):
            out[-1] = (None, _merged(prev[1], st, f))
            i += 1
        else:
            out.append(items[i])
            i += 1
    return out


def _fuse_shared(items: list[tuple[Op | None, Step]], f: float) -> list[tuple[Op | None, Step]]:
    """Each layer's shared-expert steps merged beside its first all-to-all step."""
    shared: dict[str, list[Step]] = defaultdict(list)
    for op, st in items:
        if op is not None and ".moe.shared" in op.name and _plain_compute((op, st)):
            shared[_layer_key(op.name)].append(st)
    if not shared:
        return items
    out: list[tuple[Op | None, Step]] = []
    for op, st in items:
        if op is not None and ".moe.shared" in op.name and _plain_compute((op, st)):
            continue
        key = _layer_key(op.name) if op is not None else ""
        if op is not None and isinstance(op.shape, AllToAllShape) and shared.get(key):
            out.append((None, _merged(_summed(shared.pop(key), "shared_experts"), st, f)))
        else:
            out.append((op, st))
    for steps in shared.values():  # no all-to-all in this phase: keep them where they were
        out += [(None, s) for s in steps]
    return out


def _overlap_block(ops: list[Op], i: int) -> int | None:
    """End index of an all-to-all, compute..., all-to-all run of one MoE layer starting at i."""
    if not isinstance(ops[i].shape, AllToAllShape):
        return None
    j = i + 1
    while j < len(ops) and ops[j].is_compute:
        j += 1
    if j < len(ops) and j > i + 1 and isinstance(ops[j].shape, AllToAllShape):
        return j
    return None


def overlap_pipeline(first: np.ndarray, work: np.ndarray, last: np.ndarray,
                     chunks: int) -> np.ndarray:
    """Makespan of a2a -> compute -> a2a split into ``chunks`` equal chunks on two streams.

    Both all-to-alls share one FIFO communication stream: the first exchange's chunks are
    queued at once, the second's as each compute chunk ends.
    """
    d, e, c = first / chunks, work / chunks, last / chunks
    comp_free = np.zeros_like(first)
    comm_free = first.copy()  # all first-exchange chunks, back to back
    for i in range(chunks):
        start = np.maximum((i + 1) * d, comp_free)
        comp_free = start + e
        comm_free = np.maximum(comm_free, comp_free) + c
    return comm_free


def _overlapped(pricer: Pricer, ops: list[Op], stage: int, chunks: int) -> Step:
    costs = [pricer.cost(o, stage) for o in ops]
    work_slow = sum(c.slow for c in costs[1:-1])
    work_mean = sum(c.mean for c in costs[1:-1])
    comm = costs[0].slow + costs[-1].slow
    total = overlap_pipeline(costs[0].slow, work_slow, costs[-1].slow, chunks)
    # The all-to-all chunks that run under compute take their kernels' SMs from it.
    hidden = np.maximum(comm - (total - work_slow), 0.0)
    total = total + ep_fraction(pricer.program.context.parallelism, pricer.num_sms) * hidden
    src = pricer.source(ops[1])
    return Step(f"{ops[0].name}+overlap", "experts", "compute", True, total, work_mean,
                exposed=total - work_slow, comm_kind=ops[0].kind, source=src,
                args=merged_args(op_args(ops[1], src), ops[-1].name, len(ops))
                | {"moe_overlap_chunks": chunks} if pricer.trace_args else None)


def _fused_backward(chunk: ChunkProgram) -> list[Op]:
    """Input-gradient ops with each layer's weight-gradient ops right after them."""
    w_by_layer: dict[str, list[Op]] = defaultdict(list)
    for op in chunk.backward_weight:
        w_by_layer[_layer_key(op.name)].append(op)
    out: list[Op] = []
    ops = list(chunk.backward_input)
    for i, op in enumerate(ops):
        out.append(op)
        key = _layer_key(op.name)
        if i + 1 == len(ops) or _layer_key(ops[i + 1].name) != key:
            out += w_by_layer.pop(key, [])
    for rest in w_by_layer.values():
        out += rest
    return out


def _bucket_points(steps: list[Step], buckets: tuple[Op, ...]) -> list[tuple[int, Op]]:
    last: dict[str, int] = {}
    for i, s in enumerate(steps):
        last[_layer_key(s.name)] = i
    end = len(steps) - 1
    return sorted(((last.get(_layer_key(b.name), end), b) for b in buckets),
                  key=lambda x: x[0])


def fsdp_exposure(gathers: list[float], work: list[np.ndarray]) -> np.ndarray:
    """[M] seconds a phase waits for per-use parameter all-gathers (ZeRO-3 / FSDP2).

    Units run in order; unit j's all-gather is issued when unit j-1 starts (FSDP2 prefetches
    one unit ahead) and the gathers queue on one stream; unit j starts when its gather and
    unit j-1 are done. ``gathers[j]`` seconds, ``work[j]`` [M] seconds of unit j.
    """
    comm_free, prev_start = 0.0, np.zeros_like(work[0])
    t = np.zeros_like(work[0])
    for g, c in zip(gathers, work, strict=True):
        g_end = np.maximum(comm_free, prev_start) + g
        comm_free = g_end
        prev_start = np.maximum(t, g_end)
        t = prev_start + c
    return t - sum(work)


def gather_exposure(pricer: Pricer, steps: list[Step], gathers: tuple[Op, ...],
                    stage: int) -> np.ndarray:
    """[M] seconds ``steps`` wait for parameter all-gathers prefetched one unit ahead.

    A unit starts at the first step of a layer key that has a gather (a layer, the
    embedding, the LM head) and takes the following steps of keys without one (the final
    norm, the loss); steps before the first such key form a unit with nothing to gather. A
    key is gathered once per phase (a recomputed layer's backward reuses its gather).
    """
    g_of: dict[str, float] = defaultdict(float)
    for op in gathers:
        g_of[_layer_key(op.name)] += pricer.fixed(op, stage)
    g: list[float] = [0.0]
    work: list[np.ndarray] = [np.zeros_like(steps[0].slow, dtype=np.float64)]
    current, seen = "", set()
    for st in steps:
        k = _layer_key(st.name)
        if k in g_of and k != current:
            g.append(0.0 if k in seen else g_of[k])
            work.append(np.zeros_like(work[0]))
            seen.add(k)
            current = k
        work[-1] = work[-1] + st.slow
    return fsdp_exposure(g, work)


def _with_regather(pricer: Pricer, steps: list[Step], gathers: tuple[Op, ...],
                   stage: int) -> list[Step]:
    """``steps`` preceded by the exposed part of their ZeRO-3 / FSDP per-use gathers, plus
    the SMs the hidden part's NCCL kernels take from the compute (moesim.engine.overlap)."""
    if not gathers or not steps:
        return steps
    exposed = gather_exposure(pricer, steps, gathers, stage)
    total = sum(pricer.fixed(op, stage) for op in gathers)
    wait = exposed + nccl_fraction(pricer.num_sms) * np.maximum(total - exposed, 0.0)
    args: Args = {"source": "network", "collective": "all_gather", "group": "dp",
                  "ops": len(gathers), "bytes": sum(getattr(o.shape, "size_bytes", 0.0)
                                                    for o in gathers)}
    return [Step("fsdp.param_ag", "dp_param", "comm_dp", False, wait, wait, args=args)] + steps


def plan_chunk(pricer: Pricer, chunk: ChunkProgram, stage: int, *,
               split: bool = True) -> ChunkPlan:
    """Priced phases of ``chunk`` on ``stage``; ``split=False`` leaves the B-only and W-only
    phases empty (only DualPipe runs them)."""
    c = pricer.program.context.parallelism.moe_overlap_chunks
    regather = chunk.param_regather
    fwd = _with_regather(pricer, _steps(pricer, list(chunk.forward), stage, c), regather, stage)
    rec = _steps(pricer, list(chunk.recompute), stage, c)
    bwd = _with_regather(pricer, rec + _steps(pricer, _fused_backward(chunk), stage, c),
                         regather, stage)
    b_only = w_only = []
    if split:
        b_only = _with_regather(pricer, rec + _steps(pricer, list(chunk.backward_input), stage, c),
                                regather, stage)
        w_only = _steps(pricer, list(chunk.backward_weight), stage, 1)
    # ZeRO-1/2 (distributed optimizer) with overlap_param_gather: the updated parameters are
    # all-gathered bucket by bucket in the first forward, each bucket's forward pre-hook
    # waiting for its gather and dispatching the next one (Megatron-Core
    # param_and_grad_buffer.py, finish_param_sync); later micro-batches find them gathered.
    first_wait = 0.0
    if chunk.param_gather and fwd and pricer.program.context.parallelism.overlap_param_gather:
        first_wait = float(gather_exposure(pricer, fwd, chunk.param_gather, stage)[0])
    k = chunk.chunk
    return ChunkPlan(
        forward=PhasePlan(fwd, label=("forward", k)),
        backward=PhasePlan(bwd, _bucket_points(bwd, chunk.grad_sync), label=("backward", k)),
        backward_input=PhasePlan(b_only, label=("backward", k)),
        backward_weight=PhasePlan(w_only, _bucket_points(w_only, chunk.grad_sync),
                                  label=("weight", k)),
        first_forward_wait=first_wait)


TraceRecord = tuple[str, str, str, str, float, float, "Args | None", int,
                    "tuple[str, int] | None"]


@dataclass
class Ledger:
    """What one rank class spent its time on, plus the trace of op intervals."""

    rank_class: str
    compute: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    exposed: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    imbalance: float = 0.0
    host_wait: float = 0.0  # device idle waiting for the host to issue ops
    # mean-rank compute time by the path that priced it (measured, derived, roofline)
    by_source: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    optimizer: float = 0.0
    ops: int = 0
    # schedule phases of a rank (DualPipe: unpaired forward / backward, deferred weight
    # gradients, overlapped pairs), seconds; empty for the other schedules
    phases: dict[str, float] = field(default_factory=dict)
    # (rank class, stream, name, kind, start, duration, args, micro-batch or -1,
    # (phase, chunk) or None)
    trace: list[TraceRecord] = field(default_factory=list)
    cap: int = TRACE_CAP  # op intervals this ledger keeps

    def record(self, stream: str, name: str, kind: str, start: float, dur: float,
               args: Args | None = None, mb: int = -1,
               label: tuple[str, int] | None = None) -> None:
        self.ops += 1
        if len(self.trace) < self.cap:
            self.trace.append((self.rank_class, stream, name, kind, start, dur, args, mb, label))


def run_phase(plan: PhasePlan, mb: int, t0: float, ledger: Ledger,
              on_step: list[float] | None = None, host: list[float] | None = None) -> float:
    """Run ``plan`` for micro-batch ``mb`` from ``t0``; returns the end time (seconds).

    ``on_step`` receives each step's end time (for bucket issue times). ``host`` (one
    element: the host clock, updated) lets the host start issuing before ``t0`` where it ran
    ahead; without it the phase starts synced. Once the trace is full, phases without
    ``on_step`` take the precomputed per-kind totals (no op loop).
    """
    if not plan.steps:
        return t0
    if on_step is None and len(ledger.trace) >= ledger.cap:
        add_summary(plan, ledger, mb)
        lead = t0 - host[0] if host is not None else 0.0
        total, wait, out = plan.summary.with_lead(lead)
        ledger.host_wait += float(wait[mb]) - float(plan.summary.host_wait[mb])
        end = t0 + float(total[mb])
        if host is not None:
            host[0] = end - float(out[mb])
        return end
    t = t0
    h = host[0] if host is not None else t0
    for s in plan.steps:
        if s.sync:
            h = max(h, t)
        h += s.host
        if h > t:
            ledger.host_wait += h - t
            t = h
        d = float(s.slow[mb])
        if s.compute:
            ledger.by_source[s.source or "model"] += float(s.mean[mb])
        if s.exposed is not None:
            mean = float(s.mean[mb])
            ledger.compute[s.kind] += mean
            ledger.exposed[s.comm_kind] += float(s.exposed[mb])
            ledger.imbalance += d - float(s.exposed[mb]) - mean
        elif s.compute:
            mean = float(s.mean[mb])
            ledger.compute[s.kind] += mean
            ledger.imbalance += d - mean
        else:
            ledger.exposed[s.kind] += d
        ledger.record(s.stream, s.name, s.kind, t, d, s.args, mb, plan.label)
        t += d
        if on_step is not None:
            on_step.append(t)
    if host is not None:
        host[0] = h
    return t


def add_summary(plan: PhasePlan, ledger: Ledger, mb: int | slice) -> None:
    """Add micro-batch ``mb``'s (or a slice's summed) totals of ``plan`` to ``ledger``."""
    if not plan.steps:
        return
    sm = plan.summary
    if isinstance(mb, slice):
        n = len(range(*mb.indices(sm.total.shape[0])))
        def pick(v: np.ndarray) -> float:
            return float(v[mb].sum())
    else:
        n = 1
        def pick(v: np.ndarray) -> float:
            return float(v[mb])
    for k, v in sm.compute.items():
        ledger.compute[k] += pick(v)
    for k, v in sm.exposed.items():
        ledger.exposed[k] += pick(v)
    ledger.imbalance += pick(sm.imbalance)
    ledger.host_wait += pick(sm.host_wait)
    for k, v in sm.by_source.items():
        ledger.by_source[k] += pick(v)
    ledger.ops += sm.ops * n


def phase_split(plan: PhasePlan) -> tuple[np.ndarray, np.ndarray]:
    """(compute-stream work, exposed communication) of a phase per micro-batch (seconds)."""
    sm = plan.summary
    comm = np.zeros_like(sm.total)
    for v in sm.exposed.values():
        comm = comm + v
    return sm.total - comm, comm


def fold_pair(scratch: Ledger, ledger: Ledger, busy: float) -> None:
    """Add overlapped work summed in ``scratch`` to ``ledger`` when it took ``busy`` seconds:
    its compute, imbalance and host waits as they are; what the overlap took beyond them is
    exposed communication, shared over the kinds by their share of the communication (the
    SM-contention slowdown counts as exposed too)."""
    for k, v in scratch.compute.items():
        ledger.compute[k] += v
    ledger.imbalance += scratch.imbalance
    ledger.host_wait += scratch.host_wait
    for k, v in scratch.by_source.items():
        ledger.by_source[k] += v
    comm = sum(scratch.exposed.values())
    exposed = max(0.0, busy - sum(scratch.compute.values()) - scratch.imbalance
                  - scratch.host_wait)
    for k, v in scratch.exposed.items():
        ledger.exposed[k] += exposed * v / comm if comm > 0 else 0.0
    if comm <= 0 and exposed > 0:
        ledger.exposed["sm_contention"] += exposed
    ledger.ops += scratch.ops


def phase_time(plan: PhasePlan) -> np.ndarray:
    """Duration of ``plan`` in every micro-batch [M] (seconds)."""
    if not plan.steps:
        return np.zeros(0)
    return plan.summary.total
