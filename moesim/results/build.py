"""Turn stage outcomes into a SimulationResult: throughput, TFLOP/s, MFU, breakdown, memory."""

from __future__ import annotations

from typing import Any

import numpy as np

from moesim.results.flops import model_flops_per_step
from moesim.results.schema import (
    BreakdownResult,
    LinkUsageResult,
    MemoryRankResult,
    RankClassMemoryResult,
    RoutingLayerResult,
    RoutingResult,
    SimulationResult,
)
from moesim.results.trace import TraceBuilder, TraceResult
from moesim.specs.scenario import ScenarioSpec


def _r(x: float) -> float:
    """Round to 12 significant digits so equal runs give byte-identical JSON."""
    return float(f"{x:.12g}")


def build_result(scenario: ScenarioSpec, program: Any, routing: Any, outcomes: list[Any], *,
                 fidelity: str, memory: Any | None, sources: dict[str, int],
                 links: list[Any] | None = None, detail: bool = True) -> SimulationResult:
    """The frozen result of one step. The breakdown is that of the critical (busiest) stage.

    ``detail=False`` leaves out the per-layer routing table (``routing.layers``; the step's
    drop fraction and imbalance stay), for callers that read only the step's numbers.

    ``links``: per-link step loads (``moesim.engine.links.LinkLoad``: link, tier,
    capacity_bytes_per_s, bytes); the busiest :data:`LINKS_PER_TIER` of each tier are kept.
    """
    step = max(o.finish_s for o in outcomes)
    # The critical rank class is the busiest one (the pipeline's bottleneck; its idle time
    # is the bubble), the one finishing last among equals.
    crit = max(outcomes, key=lambda o: (round(_busy(o.ledger), 9), o.finish_s, -o.stage))
    n = scenario.devices
    tokens = scenario.workload.tokens_per_step
    flops = model_flops_per_step(scenario.model_spec, scenario.workload)
    flops -= dropped_expert_flops(scenario, program, routing)
    acc = scenario.topology_spec.accelerator
    per_device = flops / step / n if step > 0 else 0.0
    return SimulationResult(
        scenario=scenario.name, fidelity=fidelity, num_devices=n, step_time_s=_r(step),
        tokens_per_step=tokens, tokens_per_s=_r(tokens / step),
        tokens_per_s_per_device=_r(tokens / step / n), model_flops_per_step=_r(flops),
        model_tflops_per_device=_r(per_device / 1e12),
        # MFU against the dense BF16 peak, as DeepSeek-V3 and NeMo report it (even for FP8).
        mfu=_r(per_device / acc.peak_flops("bf16")),
        breakdown=_breakdown(crit, step), memory=_memory(memory, program),
        fits_memory=bool(getattr(memory, "fits", True)) if memory is not None else True,
        most_loaded_rank_class=str(getattr(memory, "most_loaded", "")) if memory else "",
        routing=_routing(program, routing, detail), trace=_trace(outcomes),
        cost_sources={k: int(v) for k, v in sorted(sources.items())},
        compute_time_by_source_s={k: _r(v) for k, v in sorted(crit.ledger.by_source.items())
                                  if v > 0},
        parallelism=_layout(scenario, program), notes=_notes(routing, memory, sources),
        links=_links(links or [], step))


LINKS_PER_TIER = 10  # busiest links kept per tier (keeps result.json small)


def _links(loads: list[Any], step: float) -> list[LinkUsageResult]:
    """Busiest links per tier; utilization = bytes / (capacity x step time).

    The bytes are one step's, each op's priced with the flow model that never runs a link
    above its capacity, so the ratio stays below 1 unless ops on different streams (an
    all-to-all and a gradient bucket, say) share a link at the same time: the engine prices
    them apart, so such overlap can over-book a link in the model. The clip at 1 reports
    that link as saturated.
    """
    if step <= 0:
        return []
    out: list[LinkUsageResult] = []
    tiers = sorted({x.tier for x in loads})
    for tier in tiers:
        sel = sorted((x for x in loads if x.tier == tier), key=lambda x: (-x.bytes, x.link))
        for x in sel[:LINKS_PER_TIER]:
            util = min(1.0, x.bytes / (x.capacity_bytes_per_s * step))
            out.append(LinkUsageResult(link=x.link, tier=x.tier,
                                       capacity_bytes_per_s=_r(x.capacity_bytes_per_s),
                                       utilization=_r(util), bytes=_r(x.bytes)))
    return out


def dropped_expert_flops(scenario: Any, program: Any, routing: Any) -> float:
    """Model FLOPs a step does not do because capacity dropped token copies (FLOPs).

    A dropped copy skips its expert (the token passes on the residual), so its routed-expert
    FLOPs, 3 x 2 x expert_params per copy (forward and two backward GEMMs), are not the
    model's work. Megatron's report counts every routed copy; with a capacity factor that
    drops, that count overstates the work (capacity 1e-9 drops 99.9% and would report an MFU
    above 1). Padding up to capacity is not model work either: it is never counted."""
    if routing is None or not getattr(program, "moe_layers", None):
        return 0.0
    drop = np.asarray(routing.dropped_fraction, dtype=np.float64)
    if not drop.size or not drop.any():
        return 0.0
    model = scenario.model_spec
    per_copy = 3.0 * 2.0 * model.expert_params
    copies = scenario.workload.tokens_per_step * model.top_k
    return float(per_copy * copies * drop.mean(axis=1).sum())


def _busy(led: Any) -> float:
    """Seconds a rank class spends on work (compute, exposed communication, waits, optimizer)."""
    return (sum(led.compute.values()) + sum(led.exposed.values()) + led.imbalance
            + led.host_wait + led.optimizer)


def _breakdown(crit: Any, step: float) -> BreakdownResult:
    led = crit.ledger
    compute = {k: _r(v) for k, v in sorted(led.compute.items()) if v}
    exposed = {k: _r(v) for k, v in sorted(led.exposed.items()) if v}
    busy = _busy(led)
    return BreakdownResult(compute_s=compute, exposed_communication_s=exposed,
                           pipeline_bubble_s=_r(max(0.0, step - busy)),
                           pipeline_phases_s={k: _r(v) for k, v in sorted(led.phases.items())},
                           imbalance_wait_s=_r(led.imbalance), host_wait_s=_r(led.host_wait),
                           optimizer_s=_r(led.optimizer),
                           other_s=_r(_residue(step - busy, step)))


def _residue(x: float, step: float) -> float:
    """What the ledger over-counts (step - busy when negative); float residue is 0."""
    return min(0.0, x) if x < -1e-9 * max(step, 1e-30) else 0.0


def _trace(outcomes: list[Any]) -> TraceResult:
    """Every traced interval of every stage; ``complete`` when none was left out (the
    engine's TRACE_CAP). Times are kept as the engine computed them (float64)."""
    b = TraceBuilder()
    for o in outcomes:
        b.add_records(o.ledger.trace)
    return b.build(sum(o.ledger.ops for o in outcomes))  # the analytic fidelity traces nothing: 0 of its ops


def _routing(program: Any, routing: Any, per_layer: bool = True) -> RoutingResult:
    if not program.moe_layers:
        return RoutingResult()
    tok = routing.tokens  # [L, M, EP, slots], what each rank computes (after capacity)
    per_rank = tok.sum(axis=-1)
    ratio = float((per_rank.max(axis=-1) / np.maximum(per_rank.mean(axis=-1), 1e-30)).mean())
    if not per_layer:
        return RoutingResult(drop_fraction=_r(float(routing.dropped_fraction.mean())),
                             imbalance_max_over_mean=_r(ratio))
    b = routing.bytes_per_token_dispatch
    tr = routing.traffic_tokens
    ep = tr.shape[-1]
    same = _same_domain(program, ep)
    rows = tr * b  # [L, D, EP, EP]
    diag = np.diagonal(rows, 0, -2, -1).mean(axis=(1, 2))
    intra = np.where(same, rows, 0.0).sum(-1).mean(axis=(1, 2)) - diag
    inter = np.where(same, 0.0, rows).sum(-1).mean(axis=(1, 2))
    logical = routing.expert_tokens if routing.expert_tokens is not None else tok
    per_expert = logical.mean(axis=1).reshape(tok.shape[0], -1)
    max_rank = per_rank.max(axis=-1).mean(axis=-1)
    mean_rank = per_rank.mean(axis=(1, 2))
    drop = routing.dropped_fraction.mean(axis=1)
    layers = [RoutingLayerResult(
        layer=layer, tokens_per_expert=[_r(x) for x in per_expert[i].tolist()],
        max_tokens_per_rank=_r(float(max_rank[i])), mean_tokens_per_rank=_r(float(mean_rank[i])),
        drop_fraction=_r(float(drop[i])), intra_node_bytes_per_rank=_r(max(0.0, float(intra[i]))),
        inter_node_bytes_per_rank=_r(float(inter[i])))
        for i, layer in enumerate(program.moe_layers)]
    return RoutingResult(layers=layers, drop_fraction=_r(float(routing.dropped_fraction.mean())),
                         imbalance_max_over_mean=_r(ratio),
                         dispatch_traffic_bytes=[[_r(x) for x in row] for row in tr[0, 0] * b])


def _same_domain(program: Any, ep: int) -> np.ndarray:
    # EP ranks are contiguous after ETP (Megatron order); a domain is the scale-up tier.
    ctx = program.context
    dom = (np.arange(ep) * ctx.etp) // max(1, _domain_size(program))
    return dom[:, None] == dom[None, :]


def _domain_size(program: Any) -> int:
    return int(getattr(program, "devices_per_domain", 8))


def _memory(memory: Any | None, program: Any) -> list[RankClassMemoryResult]:
    if memory is None:
        return []
    out = []
    for rc in getattr(memory, "rank_classes", []):
        if isinstance(rc, RankClassMemoryResult):
            out.append(rc)
            continue
        mem = rc.memory
        out.append(RankClassMemoryResult(rank_class=rc.rank_class, multiplicity=rc.multiplicity,
                                         memory=MemoryRankResult.model_validate(
                                             mem.model_dump() if hasattr(mem, "model_dump")
                                             else mem)))
    return out


def _layout(scenario: ScenarioSpec, program: Any) -> dict[str, int | str | bool]:
    p, ctx = scenario.parallelism, program.context
    return {"tp": ctx.tp, "cp": ctx.cp, "pp": ctx.pp, "vpp": ctx.num_virtual, "ep": ctx.ep,
            "etp": ctx.etp, "dp": ctx.dp, "edp": ctx.edp, "schedule": program.schedule,
            "zero_stage": p.effective_zero_stage, "micro_batches": ctx.num_micro_batches,
            "recompute": p.recompute, "moe_overlap_chunks": p.moe_overlap_chunks}


def _notes(routing: Any, memory: Any | None, sources: dict[str, int]) -> list[str]:
    notes = [f"routing: {routing.source}"]
    if memory is not None and getattr(memory, "routing_load", ""):
        notes.append(f"memory assumes {memory.routing_load}")
    if memory is None:
        notes.append("memory: moesim.memory not available; fits_memory assumed true")
    return notes
