"""The price of one serving iteration on one role, through the training cost providers.

``RolePricer(scenario, name, role).price(load)`` answers how long one iteration of an
instance takes: the forward program of moesim.program.serving priced op by op by the role's
:class:`~moesim.engine.binding.ScenarioCostProvider` (measured kernels where the
accelerator's table has them, the roofline elsewhere; flows on the cluster for collectives
and DeepEP's normal all-to-all) and the engine's :class:`~moesim.engine.pricing.Pricer` (expert
GEMMs and all-to-alls from the routing draws: the iteration ends with the busiest EP rank).
The role is a training-shaped scenario (moesim.specs.serving_view): the cost layer does not
learn that a server asked.

What is priced where:

- body (every op that depends on the token count T): memoized per T bucket; MoE layers are
  averaged over drawn layers (each the busiest rank's time);
- attention core (depends on the batch's contexts): memoized per (rows, context) bucket and
  per (chunk, attended) bucket;
- DeepEP low-latency dispatch and combine (decode): the accelerator table's measured
  low-latency series at this node count and tokens per rank where present, else
  moesim.network.deepep.deepep_low_latency (validated against DeepEP's published latencies);
  DeepEP normal kernels likewise from the table's normal series, else the flow model;
- the iteration: the ops of each micro-batch form a chain on two resources, the compute
  stream and the communication engine; a shared expert needs only the router's output, so it
  runs while its own dispatch is in flight. One micro-batch, or two (two-batch overlap, each
  half the tokens and half the attention work), are list-scheduled over the chain; the
  makespan is the device time. DeepEP's normal kernels take their SMs from the compute they
  overlap (moesim.engine.overlap's share) for their duration;
- the host: a CUDA-graph iteration costs one launch; otherwise the host issues every op at
  the role's host cost per op (default: the accelerator's kernel launch floor) and the
  iteration takes the longer of host and device (the device starting after the first issue).

Bucketing: token counts and contexts are exact up to 32 and rounded to the nearest of 16
points per octave above (at most 2.2% off); the memo is this object's (a sweep worker, a
test and a notebook each see their own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from moesim.engine.binding import ScenarioCostProvider
from moesim.engine.host import host_model
from moesim.engine.overlap import ep_fraction
from moesim.engine.pricing import Pricer
from moesim.engine.routing_view import RoutingView, draw_routing
from moesim.network.deepep import deepep_low_latency
from moesim.program.builder import StepProgram
from moesim.program.ops import AllToAllShape, AttentionShape, GemmShape, MemoryShape, Op
from moesim.program.serving import (
    AttentionWork,
    attention_core,
    class_layer,
    embedding_ops,
    head_ops,
    iteration_context,
    layer_body,
    layer_classes,
    mtp_pre_ops,
)
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.serving import RoleSpec, ServingWorkloadSpec
from moesim.specs.serving_view import role_scenario, with_tokens
from moesim.units import US

GRID = 16  # bucket points per octave above EXACT_UP_TO
EXACT_UP_TO = 32
ROUTING_GRID = 1  # routing is drawn at powers of two of T and scaled in between
SAMPLED_MOE_LAYERS = 8  # MoE layers drawn per routing grid point (their mean stands for all)
COMPUTE, COMM = 0, 1


def bucket(x: float) -> int:
    """``x`` rounded to the pricing grid (exact up to 32, then 16 points per octave)."""
    n = int(round(x))
    if n <= EXACT_UP_TO:
        return max(n, 0)
    return int(round(2.0 ** (round(math.log2(n) * GRID) / GRID)))


@dataclass(frozen=True)
class RankLoad:
    """One iteration of an instance, on its busiest DP-attention rank: ``tokens`` new tokens
    (prompt chunks plus decode tokens), the attention work, and the rows that sample."""

    tokens: int
    attention: AttentionWork
    logits_rows: int
    draft_batch: int = 0  # decoding sequences that also run the draft steps
    draft_context: int = 0


@dataclass(frozen=True)
class IterationPrice:
    """Seconds of one iteration and its ops' seconds by kind (before overlap)."""

    time_s: float
    by_kind_s: dict[str, float]


@dataclass(frozen=True)
class _Seg:
    res: int
    dur: float
    kind: str
    skip: bool = False  # depends on the segment before the previous one (overlaps it)


@dataclass(frozen=True)
class _ClassBody:
    """One layer class's body at one token count: merged segments (the core's kept apart),
    their total, the part the shared experts hide under the dispatch in one chain, and the
    seconds by op kind."""

    segs: tuple[_Seg, ...]
    total: float
    overlap: float
    kinds: dict[str, float]

    @classmethod
    def of(cls, segs: list[_Seg]) -> _ClassBody:
        kinds: dict[str, float] = {}
        overlap = 0.0
        for i, x in enumerate(segs):
            if x.kind != "core":
                kinds[x.kind] = kinds.get(x.kind, 0.0) + x.dur
            if x.skip and i and segs[i - 1].res == COMM:
                overlap += min(x.dur, segs[i - 1].dur)
        return cls(tuple(merge(segs)), sum(x.dur for x in segs), overlap, kinds)

    def filled(self, core: float) -> list[_Seg]:
        """The segments with the core's seconds in place, compute runs merged."""
        return merge([_Seg(COMPUTE, core, "attention") if x.kind == "core" else x
                      for x in self.segs])


def _add_kinds(kinds: dict[str, float], segs: list[_Seg], times: int) -> None:
    for x in segs:
        kinds[x.kind] = kinds.get(x.kind, 0.0) + x.dur * times


class RolePricer:
    """Prices iterations of one role's instance (module docstring)."""

    def __init__(self, scenario: ScenarioSpec, name: str, role: RoleSpec,
                 costs: ScenarioCostProvider | None = None) -> None:
        wl = scenario.workload
        assert isinstance(wl, ServingWorkloadSpec)
        self.name, self.role, self.workload = name, role, wl
        self.model = scenario.model_spec
        self.base = role_scenario(scenario, role, 1)
        self.costs = costs or ScenarioCostProvider(self.base, fidelity="flow")
        self.table = self.costs.table
        acc = self.base.topology_spec.accelerator
        self.launch_s = acc.kernel_launch_us * US
        # Host issue time per op outside CUDA graphs: the role's host_op_us, else the
        # accelerator's launch floor. Training's fitted HOST_OP_S (moesim.engine.host) holds
        # autograd and Megatron's module overhead, which an inference forward does not run;
        # no published inference measurement gives the per-op Python cost, so the default
        # is the launch floor alone (docs/serving.md, "Host").
        self.host_op_s = (host_model(self.base).op_s if role.host_op_us is not None
                          else self.launch_s)
        self.per_node = self.base.topology_spec.devices_per_domain
        self.sm_share = (ep_fraction(self.base.parallelism, acc.num_sms)
                         if role.dispatcher == "deepep_normal" and role.two_batch_overlap else 0.0)
        self.classes = layer_classes(self.model)
        self.order = [next(j for j, (moe, w, _) in enumerate(self.classes)
                           if moe == self.model.is_moe_layer(i)
                           and w == self.model.attention_window(i))
                      for i in range(self.model.num_layers)]
        self.sources: dict[str, int] = {}
        self._body: dict[int, tuple[list[_ClassBody], list[_Seg], int]] = {}
        self._head: dict[int, list[_Seg]] = {}
        self._core: dict[tuple[object, ...], float] = {}
        self._iter: dict[tuple[object, ...], IterationPrice] = {}
        self._routing: dict[int, RoutingView] = {}
        self._draft: dict[tuple[int, int], IterationPrice] = {}
        m = self.model
        self._sampled = None
        if m.num_moe_layers > SAMPLED_MOE_LAYERS:
            # Validated afresh, not model_copy'd: a copy would carry the full model's cached
            # moe_layer_indices.
            layers = m.num_dense_layers + SAMPLED_MOE_LAYERS * m.moe_layer_frequency
            self._sampled = type(m).model_validate(m.model_dump() | {"num_layers": layers})

    # --- routing ---------------------------------------------------------------------------
    def _sampled_scenario(self, tokens: int) -> ScenarioSpec:
        """The role at ``tokens`` with at most SAMPLED_MOE_LAYERS MoE layers (routing only)."""
        scn = with_tokens(self.base, tokens)
        return scn if self._sampled is None else scn.model_copy(update={"model": self._sampled})

    def _program(self, tokens: int, scn: ScenarioSpec) -> StepProgram:
        par = self.base.parallelism
        ctx = iteration_context(scn.model_spec, par, tokens, gemm_dtype=self.workload.dtype,
                                experts_per_rank=self.base.experts_per_rank)
        return StepProgram(context=ctx, schedule="serving", chunks=(), stages=(),
                           moe_layers=tuple(scn.model_spec.moe_layer_indices),
                           num_devices=self.base.devices)

    def routing_at(self, tokens: int) -> tuple[StepProgram, RoutingView]:
        """The routing of ``tokens`` per DP-attention rank: drawn at the power of two at or
        above it (expected in closed form for balanced dropless routing) and scaled."""
        grid = 1 << max(0, math.ceil(math.log2(max(1, tokens))))
        hit = self._routing.get(grid)
        scn = self._sampled_scenario(grid)
        if hit is None:
            program = self._program(grid, scn)
            hit = self._routing[grid] = draw_routing(scn, program, expected=_closed_form(scn))
        f = tokens / grid
        view = replace(hit, tokens=hit.tokens * f, traffic_tokens=hit.traffic_tokens * f,
                       node_tokens=None if hit.node_tokens is None else hit.node_tokens * f,
                       distinct_tokens=(None if hit.distinct_tokens is None
                                        else hit.distinct_tokens * f))
        return self._program(tokens, self._sampled_scenario(tokens)), view

    # --- the body --------------------------------------------------------------------------
    def _count(self, source: str, n: int = 1) -> None:
        self.sources[source] = self.sources.get(source, 0) + n

    def body(self, tokens: int) -> tuple[list[_ClassBody], list[_Seg], int]:
        """(each layer class's segments with the core marked, embedding segments, ops per
        iteration) at ``tokens`` (a bucket)."""
        hit = self._body.get(tokens)
        if hit is not None:
            return hit
        program, routing = self.routing_at(tokens)
        pricer = Pricer(program, self.costs, routing)
        ctx = program.context
        layers_moe = len(program.moe_layers)
        out, n_ops = [], 0
        for moe, window, count in self.classes:
            body = layer_body(ctx, class_layer(self.model, moe, window), 0 if moe else None)
            segs = []
            for i, op in enumerate(body.ops):
                if i == body.core_at:
                    segs.append(_Seg(COMPUTE, 0.0, "core"))
                t = self._op_time(pricer, op, tokens, layers_moe)
                segs.append(_Seg(COMM if not op.is_compute else COMPUTE, t, op.kind,
                                 skip=_independent_of_dispatch(op)))
            out.append(_ClassBody.of(_reorder_shared(segs)))
            n_ops += count * len(body.ops)
        emb = [_Seg(COMPUTE if o.is_compute else COMM, self._op_time(pricer, o, tokens, 1),
                    o.kind) for o in embedding_ops(ctx)]
        hit = self._body[tokens] = (out, emb, n_ops + len(emb))
        return hit

    def _op_time(self, pricer: Pricer, op: Op, tokens: int, layers: int) -> float:
        shape = op.shape
        if isinstance(shape, AllToAllShape):
            t = self._all_to_all(pricer, shape, tokens, layers)
            return t
        if op.routed:  # mean over the drawn MoE layers of the busiest rank's time
            ts = [float(pricer.cost(replace(op, shape=replace(shape, moe_layer=i)), 0).slow[0])
                  for i in range(layers)]
            self._count(pricer.source(op))
            return float(np.mean(ts))
        t = float(pricer.fixed(op, 0))
        self._count(pricer.source(op))
        return t

    def _all_to_all(self, pricer: Pricer, shape: AllToAllShape, tokens: int,
                    layers: int) -> float:
        role, m = self.role, self.model
        if role.ep == 1:
            return 0.0
        per_rank = max(1, tokens // role.attention_tp_degree)
        nodes = max(1, role.ep * self.base.parallelism.expert_tensor_parallel_degree
                    // self.per_node)
        kind = {"deepep_low_latency": "low_latency", "deepep_normal": "normal"}.get(
            role.dispatcher)
        # The table's DeepEP series time its accelerator's own fabric: an accelerator priced
        # with another's kernels (H800 with the H100's, kernels_measured_as) does not use them.
        acc = self.base.topology_spec.accelerator.name
        if kind is not None and self.table is not None and self.table.accelerator == acc:
            sms = role.dispatcher_num_sms if kind == "normal" else None
            for experts in (m.num_experts + role.num_redundant_experts, m.num_experts):
                hit = self.table.deepep_time(kind, nodes, m.hidden_size, per_rank, m.top_k,
                                             experts, num_sms=sms)
                if hit is None and sms is not None:
                    hit = self.table.deepep_time(kind, nodes, m.hidden_size, per_rank,
                                                 m.top_k, experts)
                if hit is not None:
                    self._count("measured")
                    return hit[0] if shape.direction == "dispatch" else hit[1]
        if kind == "low_latency":
            self._count("network")
            dtype = "fp8" if (self.workload.dtype == "fp8"
                              and shape.direction == "dispatch") else "bf16"
            ll = deepep_low_latency(self.costs.net.cluster, role.ep, phase=shape.direction,
                                    ranks_per_node=self.per_node, num_tokens=per_rank,
                                    hidden=m.hidden_size, num_topk=m.top_k, dtype=dtype)
            return ll.time_s
        self._count("network")
        ts = [float(pricer.cost(_op_of(shape, i), 0).slow[0]) for i in range(layers)]
        return float(np.mean(ts))

    def all_to_all_time(self, direction: str, tokens: int) -> float:
        """Seconds of one MoE layer's dispatch or combine at ``tokens`` per DP-attention rank
        (the path a decode or prefill iteration prices it by)."""
        program, routing = self.routing_at(tokens)
        pricer = Pricer(program, self.costs, routing)
        return self._all_to_all(pricer, AllToAllShape(0, direction),  # type: ignore[arg-type]
                                tokens, len(program.moe_layers))

    # --- the core --------------------------------------------------------------------------
    def core(self, work: AttentionWork, window: int | None, layer: int) -> float:
        """Seconds of one layer's attention core for ``work`` (bucketed)."""
        w = normalized(work)
        key = (w, window)
        hit = self._core.get(key)
        if hit is None:
            ctx = self._program(1, self.base).context
            total = 0.0
            for op in attention_core(ctx, layer, w, self.workload.kv_cache_dtype):
                total += self._fixed_compute(op)
            hit = self._core[key] = total
        return hit

    def _fixed_compute(self, op: Op) -> float:
        s = op.shape
        if isinstance(s, GemmShape):
            t = self.costs.gemm(s)
        elif isinstance(s, AttentionShape):
            t = self.costs.attention(s)
        else:
            assert isinstance(s, MemoryShape)
            t = self.costs.memory(s)
        self._count(self.costs.source_of(s))
        return float(t)

    def head(self, rows: int) -> list[_Seg]:
        rows = bucket(rows)
        hit = self._head.get(rows)
        if hit is None:
            program, routing = self.routing_at(1)
            pricer = Pricer(program, self.costs, routing)
            ctx = program.context
            hit = self._head[rows] = [
                _Seg(COMPUTE if o.is_compute else COMM, self._op_time(pricer, o, 1, 1), o.kind)
                for o in head_ops(ctx, rows)]
        return hit

    # --- one iteration ---------------------------------------------------------------------
    def price(self, load: RankLoad) -> IterationPrice:
        """Seconds of one iteration of the instance whose busiest rank carries ``load``."""
        tbo = self.role.two_batch_overlap and load.tokens >= 2
        work = normalized(load.attention)
        key = (bucket(load.tokens), work, bucket(load.logits_rows), tbo,
               bucket(load.draft_batch), bucket(load.draft_context))
        hit = self._iter.get(key)
        if hit is None:
            hit = self._iter[key] = self._price(replace(load, attention=work), tbo)
        return hit

    def _price(self, load: RankLoad, tbo: bool) -> IterationPrice:
        mbs = 2 if tbo else 1
        tokens = bucket(max(1, math.ceil(load.tokens / mbs)))
        layers, emb, n_ops = self.body(tokens)
        cores = [self.core(load.attention, w, class_layer(self.model, moe, w)) / mbs
                 for moe, w, _ in self.classes]
        head = self.head(max(1, math.ceil(load.logits_rows / mbs)))
        kinds: dict[str, float] = {}
        _add_kinds(kinds, emb, mbs)
        _add_kinds(kinds, head, mbs)
        for c, (_, _, count) in enumerate(self.classes):
            for k, v in layers[c].kinds.items():
                kinds[k] = kinds.get(k, 0.0) + v * count * mbs
            kinds["attention"] = kinds.get("attention", 0.0) + cores[c] * count * mbs
        if mbs == 1:  # one chain: sequential but for the shared experts beside the dispatch
            device = (sum(x.dur for x in emb) + sum(x.dur for x in head)
                      + sum(count * (layers[c].total - layers[c].overlap + cores[c])
                            for c, (_, _, count) in enumerate(self.classes)))
        else:
            filled = [b.filled(cores[c]) for c, b in enumerate(layers)]
            chain = merge([*emb, *(x for i in range(self.model.num_layers)
                                   for x in filled[self.order[i]]), *head])
            device = schedule([chain, chain], self.sm_share)
        if load.draft_batch and self.role.speculative is not None:
            draft = self.draft(load.draft_batch, load.draft_context)
            device += draft.time_s
            for k, v in draft.by_kind_s.items():
                kinds[k] = kinds.get(k, 0.0) + v
        ops = mbs * (n_ops + len(head))
        # The device starts when the first op is issued; eager, the host then issues the rest
        # while the device runs, so the iteration is the longer of the two.
        if self.role.cuda_graph:
            total = device + self.launch_s
        else:
            total = max(device + self.host_op_s, ops * self.host_op_s)
        kinds["host"] = total - device
        return IterationPrice(total, kinds)

    def draft(self, batch: int, context: int) -> IterationPrice:
        """The draft steps of one speculative iteration: each runs the MTP module (its
        projection, a layer of the last layer's kind, the shared head) over the batch."""
        spec = self.role.speculative
        assert spec is not None
        key = (bucket(batch), bucket(context))
        hit = self._draft.get(key)
        if hit is not None:
            return hit
        b = key[0]
        program, routing = self.routing_at(b)
        pricer = Pricer(program, self.costs, routing)
        ctx = program.context
        last = self.model.num_layers - 1
        moe, w = self.model.is_moe_layer(last), self.model.attention_window(last)
        body = layer_body(ctx, class_layer(self.model, moe, w), 0 if moe else None)
        core = self.core(AttentionWork(b, 1, key[1]), w, class_layer(self.model, moe, w))
        kinds: dict[str, float] = {"attention": core}
        total = core
        for op in [*mtp_pre_ops(ctx), *body.ops]:
            t = self._op_time(pricer, op, b, len(program.moe_layers))
            kinds[op.kind] = kinds.get(op.kind, 0.0) + t
            total += t
        for s in self.head(b):
            kinds[s.kind] = kinds.get(s.kind, 0.0) + s.dur
            total += s.dur
        k = spec.num_draft_tokens
        hit = self._draft[key] = IterationPrice(total * k, {n: v * k for n, v in kinds.items()})
        return hit


def normalized(work: AttentionWork) -> AttentionWork:
    """``work`` on the pricing grid, equal chunk shapes merged (sorted, so equal work is one
    memo key)."""
    groups: dict[tuple[int, int], int] = {}
    for c, q, a in work.chunks:
        k = (bucket(q), bucket(a))
        groups[k] = groups.get(k, 0) + c
    chunks = tuple(sorted((c, q, a) for (q, a), c in groups.items() if c > 0))
    batch = bucket(work.decode_batch)
    return AttentionWork(batch, work.decode_queries if batch else 1,
                         bucket(work.decode_context) if batch else 0, chunks)


def _closed_form(scn: ScenarioSpec) -> bool:
    from moesim.routing import closed_form_applies

    return closed_form_applies(scn)


def _op_of(shape: AllToAllShape, layer: int) -> Op:
    from moesim.program.ops import comm

    return comm(f"a2a{layer}", "ep_" + shape.direction, "comm_ep", replace(shape, moe_layer=layer))


def _independent_of_dispatch(op: Op) -> bool:
    """A shared-expert op: it needs the router's input, not the dispatched tokens."""
    return ".moe.shared" in op.name


def _reorder_shared(segs: list[_Seg]) -> list[_Seg]:
    """The shared-expert ops as one segment right after the dispatch (it overlaps it)."""
    shared = [s for s in segs if s.skip]
    rest = [replace(s, skip=False) for s in segs if not s.skip]
    if not shared:
        return rest
    one = _Seg(COMPUTE, sum(s.dur for s in shared), "shared_experts", skip=True)
    try:
        d = next(i for i, s in enumerate(rest) if s.kind == "ep_dispatch")
    except StopIteration:  # no dispatch (EP 1): the shared experts run in line
        return rest + [replace(one, skip=False)]
    return rest[: d + 1] + [one] + rest[d + 1:]


def merge(chain: list[_Seg]) -> list[_Seg]:
    """Consecutive segments on one resource as one: a micro-batch runs its compute from one
    communication to the next without yielding (SGLang's two-batch overlap switches
    micro-batches at yield points around dispatch and combine). An overlapped segment and
    the unfilled core stay apart."""
    out: list[_Seg] = []
    for s in chain:
        if out:
            last = out[-1]
            if (last.res == s.res and not last.skip and not s.skip
                    and last.kind != "core" and s.kind != "core"):
                out[-1] = _Seg(last.res, last.dur + s.dur, last.kind)
                continue
        out.append(s)
    return out


def schedule(chains: list[list[_Seg]], sm_share: float = 0.0) -> float:
    """Makespan of micro-batch chains on a compute and a communication resource.

    Each chain runs in order; a segment starts when the one before it ends (a ``skip``
    segment: the one before that, so it overlaps a communication) and its resource is free;
    of the chains' next segments the one that can start first goes first (ties: the first
    chain). A communication segment with ``sm_share`` > 0 takes that share of the compute
    resource for its duration."""
    free = [0.0, 0.0]
    ends: list[list[float]] = [[0.0] * len(c) for c in chains]
    ptr = [0] * len(chains)
    pending = sum(len(c) for c in chains)
    while pending:
        best_j, best_start = -1, math.inf
        for j, c in enumerate(chains):
            i = ptr[j]
            if i >= len(c):
                continue
            s = c[i]
            if s.skip and i >= 2:
                ready = ends[j][i - 2]
            else:
                ready = ends[j][i - 1] if i else 0.0
                if i >= 2 and c[i - 1].skip:  # after an overlapped segment: wait for both
                    ready = max(ready, ends[j][i - 2])
            start = max(ready, free[s.res])
            if start < best_start:
                best_j, best_start = j, start
        s = chains[best_j][ptr[best_j]]
        end = best_start + s.dur
        ends[best_j][ptr[best_j]] = end
        free[s.res] = end
        if s.res == COMM and sm_share > 0 and s.dur > 0:
            free[COMPUTE] = max(free[COMPUTE], best_start) + sm_share * s.dur
        ptr[best_j] += 1
        pending -= 1
    return max(max(e[-1] for e in ends if e), free[COMPUTE], free[COMM]) if chains else 0.0
