"""A small fixed SimulationResult that every report test builds on (no engine needed).

Imported by file name (this folder is on sys.path under pytest's default import mode).

The shape mimics Mixtral-8x7B on 64 H100 with PP2 x EP8: two rank classes of 32 ranks,
8 experts over 8 EP ranks, 4 MoE layers, two fabric tiers. Numbers are chosen so that the
expected values in the tests follow by hand.
"""

from __future__ import annotations

from moesim.results.schema import (
    BreakdownResult,
    LinkUsageResult,
    MemoryRankResult,
    RankClassMemoryResult,
    RoutingLayerResult,
    RoutingResult,
    SimulationResult,
    TraceEventResult,
)
from moesim.units import GIB, MB

HBM_BYTES = 80.0 * GIB  # a round test capacity (H100 SXM lists 80 GB); only the arithmetic matters


def _memory(rank_class: str, weights_gib: float, act_gib: float) -> RankClassMemoryResult:
    peak = (weights_gib + 10.0 + act_gib) * GIB
    return RankClassMemoryResult(rank_class=rank_class, multiplicity=32, memory=MemoryRankResult(
        breakdown_bytes={"weights": weights_gib * GIB, "optimizer": 10.0 * GIB,
                         "activations": act_gib * GIB},
        peak_bytes=peak, capacity_bytes=HBM_BYTES, headroom_bytes=HBM_BYTES - peak,
        fits=peak <= HBM_BYTES))


def _routing() -> RoutingResult:
    # layer k sends 100 tokens to every expert except expert 0, which gets 100 + 50*k.
    layers = [RoutingLayerResult(
        layer=k, tokens_per_expert=[100.0 + 50.0 * k] + [100.0] * 7,
        max_tokens_per_rank=100.0 + 50.0 * k, mean_tokens_per_rank=100.0 + 50.0 * k / 8,
        drop_fraction=0.0, intra_node_bytes_per_rank=1e6, inter_node_bytes_per_rank=0.0)
        for k in range(4)]
    # 8 x 8 matrix: rank i sends (i + j) MB to rank j.
    matrix = [[(i + j) * MB for j in range(8)] for i in range(8)]
    return RoutingResult(layers=layers, drop_fraction=0.01, imbalance_max_over_mean=1.3,
                         dispatch_traffic_bytes=matrix)


def _links() -> list[LinkUsageResult]:
    nvl = [LinkUsageResult(link=f"gpu{i}-nvswitch", tier="nvlink", capacity_bytes_per_s=450e9,
                           utilization=0.05 * i, bytes=1e9 * i) for i in range(12)]
    ib = [LinkUsageResult(link=f"node{i}-leaf", tier="infiniband", capacity_bytes_per_s=50e9,
                          utilization=0.2 + 0.1 * i, bytes=2e9) for i in range(3)]
    return nvl + ib


def _ev(rc: str, stream: str, name: str, kind: str, start_ms: float, dur_ms: float,
        **args: float | int | str) -> TraceEventResult:
    return TraceEventResult(rank_class=rc, stream=stream, name=name, kind=kind,
                            start_s=start_ms * 1e-3, duration_s=dur_ms * 1e-3, args=args)


def _trace() -> list[TraceEventResult]:
    ev = []
    for rc, offset in (("pp0", 0.0), ("pp1", 100.0)):
        for mb in range(2):
            t = offset + 150.0 * mb
            ev.append(_ev(rc, "compute", f"attn mb{mb}", "attention", t, 40.0, shape="4096x4096"))
            ev.append(_ev(rc, "comm_ep", f"dispatch mb{mb}", "ep_dispatch", t + 40.0, 20.0,
                          bytes=8e6, group="ep"))
            ev.append(_ev(rc, "compute", f"experts mb{mb}", "experts", t + 60.0, 50.0))
            ev.append(_ev(rc, "comm_ep", f"combine mb{mb}", "ep_combine", t + 110.0, 20.0,
                          bytes=8e6, group="ep"))
        ev.append(_ev(rc, "comm_dp", "grad all-reduce", "dp", 400.0, 60.0, bytes=1e9, group="dp"))
    # pp1 -> pp0 handoff on the pp stream; pp1's comm_pp has two overlapping sends (the
    # exporter must split them onto two threads).
    ev.append(_ev("pp0", "comm_pp", "send act mb0", "pp", 110.0, 5.0, bytes=3e7, group="pp"))
    ev.append(_ev("pp1", "comm_pp", "send grad mb0", "pp", 300.0, 30.0, bytes=3e7, group="pp"))
    ev.append(_ev("pp1", "comm_pp", "send grad mb1", "pp", 310.0, 30.0, bytes=3e7, group="pp"))
    return ev


def make_result(trace: list[TraceEventResult] | None = None) -> SimulationResult:
    """The fixed result; ``trace`` replaces the fixed trace when given."""
    return SimulationResult(
        scenario="fixture-mixtral-64xh100", fidelity="des", num_devices=64,
        step_time_s=0.5, tokens_per_step=262_144, tokens_per_s=524_288.0,
        tokens_per_s_per_device=8192.0, model_flops_per_step=1.28e16,
        model_tflops_per_device=400.0, mfu=0.4,
        breakdown=BreakdownResult(
            compute_s={"attention": 0.16, "experts": 0.2},
            exposed_communication_s={"ep_dispatch": 0.04, "ep_combine": 0.04, "dp": 0.0},
            pipeline_bubble_s=0.05, imbalance_wait_s=0.01),
        memory=[_memory("pp0", 40.0, 20.0), _memory("pp1", 40.0, 12.0)],
        fits_memory=True, most_loaded_rank_class="pp0", routing=_routing(), links=_links(),
        trace=_trace() if trace is None else trace,
        cost_sources={"roofline": 20}, parallelism={"expert_parallel_degree": 8,
                                                    "pipeline_parallel_degree": 2},
        notes=["fixture"])
