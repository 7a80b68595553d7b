"""Per-link step bytes and utilization in SimulationResult.links (moesim.engine.links)."""

from __future__ import annotations

import pytest
from engine_scenarios import ROOT, scenario

from moesim.engine.links import LinkLoad, _op_link_bytes, step_op_counts
from moesim.engine.simulation import Simulation
from moesim.program.ops import AllToAllShape, CollectiveShape
from moesim.report import fig_links
from moesim.results.build import LINKS_PER_TIER, _links
from moesim.specs.loader import load_scenario

# Hand count for Mixtral 8x7B on 64 H100 (TP1 EP8 PP4 VPP8, MBS 1, GBS 256, seq 4096):
#   tokens per micro-batch per rank = MBS x seq = 4096; top_k = 2; hidden = 4096; BF16 = 2 B
#   one exchange per rank: 4096 x 2 x 4096 x 2 B x 7/8 off-rank (balanced over EP8) = 58,720,256 B
#   per layer and micro-batch: dispatch + combine, forward + backward = 4 exchanges
#   stage 0 holds 32 / PP4 = 8 MoE layers; micro-batches = 256 / (MBS 1 x DP 16) = 16
#   => 58,720,256 x 4 x 8 x 16 = 30,064,771,072 B leave each EP rank per step.
HAND_A2A_BYTES_PER_RANK = 4096 * 2 * 4096 * 2 * 7 / 8 * 4 * 8 * 16


@pytest.fixture(scope="module")
def mixtral_sim() -> Simulation:
    sim = Simulation(scenario())
    sim.result = sim.run()  # type: ignore[attr-defined]
    return sim


def test_hand_count_matches_the_scenario() -> None:
    s = scenario()
    m = s.model_spec
    tokens = s.parallelism.micro_batch_size * s.workload.sequence_length
    one = tokens * 2 * m.hidden_size * 2 * 7 / 8
    layers = m.num_layers // s.parallelism.pipeline_parallel_degree
    assert one * 4 * layers * s.num_micro_batches == HAND_A2A_BYTES_PER_RANK


def test_all_to_all_bytes_land_on_nvlink(mixtral_sim: Simulation) -> None:
    totals: dict[str, float] = {}
    for op, n in step_op_counts(mixtral_sim.program, 0).items():
        if isinstance(op.shape, AllToAllShape):
            for link, b in _op_link_bytes(mixtral_sim.pricer, op, 0).items():
                totals[link] = totals.get(link, 0.0) + n * b
    # EP8 lives inside one DGX node: no all-to-all byte leaves NVLink.
    assert totals and all(link.startswith("nvlink:") for link in totals)
    # Stage 0 = devices 0..15, each with an up and a down NVLink port.
    assert len(totals) == 32
    # Every rank sends (up) and receives (down) the hand count; balanced routing spreads
    # each token's copies evenly, so the draws' mean matrix is within 1 % of uniform.
    for link, b in totals.items():
        assert b == pytest.approx(HAND_A2A_BYTES_PER_RANK, rel=0.01), link


def test_busiest_nvlink_carries_at_least_the_exchange(mixtral_sim: Simulation) -> None:
    result = mixtral_sim.result  # type: ignore[attr-defined]
    nvl = [x for x in result.links if x.tier == "nvlink"]
    assert nvl and max(x.bytes for x in nvl) >= HAND_A2A_BYTES_PER_RANK * 0.99
    # The rest of a rank's NVLink bytes is its data-parallel gradient reduce-scatters and
    # parameter all-gathers: a rank sends (n-1)/n of each buffer through its port, so their
    # buffer sizes bound the extra (ring / tree algorithms inside the node).
    st = mixtral_sim.program.stages[0]
    dp_bytes = sum(op.shape.size_bytes for c in st.chunks
                   for op in mixtral_sim.program.chunks[c].grad_sync
                   + mixtral_sim.program.chunks[c].param_gather
                   if isinstance(op.shape, CollectiveShape))
    assert max(x.bytes for x in nvl) <= HAND_A2A_BYTES_PER_RANK + dp_bytes


def test_links_per_tier_and_utilization(mixtral_sim: Simulation) -> None:
    result = mixtral_sim.result  # type: ignore[attr-defined]
    tiers = {x.tier for x in result.links}
    assert "nvlink" in tiers and "nic" in tiers  # DP groups span two nodes: NICs carry bytes
    for tier in tiers:
        assert sum(x.tier == tier for x in result.links) <= LINKS_PER_TIER
    for x in result.links:
        assert 0.0 <= x.utilization <= 1.0
        # The unclipped ratio: one step's bytes never book a link beyond the step.
        assert x.bytes / (x.capacity_bytes_per_s * result.step_time_s) <= 1.0 + 1e-9
        # utilization is the bytes over capacity x step time (12 significant digits kept).
        assert x.utilization == pytest.approx(
            x.bytes / (x.capacity_bytes_per_s * result.step_time_s), rel=1e-9)


@pytest.mark.parametrize("sets", [
    ("parallelism.all_to_all.kind=hierarchical",),
    ("parallelism.all_to_all.kind=deepep",),
])
def test_utilization_never_exceeds_one(sets: tuple[str, ...]) -> None:
    result = Simulation(scenario(*sets)).run()
    assert result.links
    for x in result.links:
        assert 0.0 <= x.bytes / (x.capacity_bytes_per_s * result.step_time_s) <= 1.0 + 1e-9


@pytest.mark.parametrize("name,tiers", [
    ("qwen3-30b-a3b-16xh100", {"nvlink", "nic"}),  # EP across two nodes
    ("switch-base-128-16xtpuv3", {"ici"}),  # a torus: links are ICI ports
    ("deepseek-v3-2048xh800", {"nvlink", "nic"}),  # DualPipe, EP64 over 8 nodes, DeepEP
])
def test_shipped_scenarios_fill_links(name: str, tiers: set[str]) -> None:
    result = Simulation(load_scenario(ROOT / "scenarios" / f"{name}.yaml")).run()
    assert {x.tier for x in result.links} >= tiers
    for x in result.links:
        assert 0.0 < x.bytes / (x.capacity_bytes_per_s * result.step_time_s) <= 1.0 + 1e-9


def test_default_report_figure_has_bars() -> None:
    result = Simulation(load_scenario(ROOT / "scenarios" / "default.yaml")).run()
    fig = fig_links(result)
    bars = [t for t in fig.data if t.type == "bar"]
    assert bars and {t.name for t in bars} >= {"nvlink", "nic"}
    assert "no link usage" not in str(fig.layout.annotations)


def test_analytic_fidelity_has_no_link_loads() -> None:
    # The analytic network model gives no per-link bytes (moesim.network, fidelity="analytic").
    assert Simulation(scenario(), fidelity="analytic").run().links == []


def test_build_keeps_busiest_and_clips() -> None:
    # 12 links of 100 GB/s over a 1 s step: link i carries i x 10 GB -> utilization i / 10.
    loads = [LinkLoad(f"l{i:02d}", "nvlink", 100e9, i * 10e9) for i in range(12)]
    out = _links(loads, 1.0)
    assert [x.link for x in out] == [f"l{i:02d}" for i in range(11, 1, -1)]
    assert [x.utilization for x in out[:3]] == [1.0, 1.0, 0.9]  # 1.1 and 1.0, clipped at 1
    assert _links(loads, 0.0) == []
