"""Serving knobs move the answer the way queueing says (metamorphic tests, DESIGN.md).

Each test runs the small Qwen3-30B-A3B serving example (2 layers, H100 nodes) twice or more,
changing one input, and asserts the direction: more decode instances never raise TPOT at
equal load; a higher arrival rate never lowers the TTFT p90; more KV cache never lowers
throughput; more prefill chunk budget never raises TTFT at low load; faster NICs never slow
the KV transfer. Equal seeds: the request streams are equal draws, only rescaled in time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moesim.serving import simulate_serving
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]
QWEN = ROOT / "scenarios" / "serving" / "qwen3-30b-a3b-8xh100-aggregated.yaml"
SMALL = ("model.num_layers=2", "workload.num_requests=80",
         "workload.input_length={kind: uniform, min_tokens: 200, max_tokens: 800}",
         "workload.output_length={kind: uniform, min_tokens: 10, max_tokens: 40}")


def pd(decode_instances: int, *sets: str):  # noqa: ANN201
    """Prefill one node (DP8), decode ``decode_instances`` instances of 4 GPUs (DP4, EP4)."""
    dep = ("deployment={kind: disaggregated, prefill: {attention_dp_degree: 8}, decode: "
           f"{{num_instances: {decode_instances}, attention_dp_degree: 4, cuda_graph: true, "
           "dispatcher: deepep_low_latency, max_batch_requests: 64}}")
    return simulate_serving(load_scenario(QWEN, (*SMALL, "num_devices=16", dep, *sets)))


def agg(*sets: str):  # noqa: ANN201
    return simulate_serving(load_scenario(QWEN, (*SMALL, *sets)))


@pytest.mark.parametrize("rate", [20.0, 80.0])
def test_more_decode_instances_never_raise_tpot(rate):
    one, two = (pd(n, f"workload.arrival.rate_per_s={rate}") for n in (1, 2))
    assert two.tpot.mean_s <= one.tpot.mean_s + 1e-12
    assert two.tpot.p90_s <= one.tpot.p90_s + 1e-12


def test_higher_arrival_rate_never_lowers_ttft_p90():
    p90 = [agg(f"workload.arrival.rate_per_s={r}").ttft.p90_s for r in (5.0, 40.0, 160.0)]
    assert p90 == sorted(p90)


def test_more_kv_cache_never_lowers_throughput():
    sets = ("deployment.role.attention_dp_degree=1", "workload.arrival={kind: burst}")
    out = [agg(*sets, f"deployment.role.kv_cache_tokens={kv}").output_tokens_per_s
           for kv in (1000, 4000, 20000)]
    assert out == sorted(out)


def test_a_larger_prefill_budget_never_raises_ttft_at_low_load():
    ttft = [agg("workload.arrival.rate_per_s=4", f"deployment.role.max_batch_tokens={b}",
                "deployment.role.chunked_prefill_tokens=null").ttft.mean_s
            for b in (128, 512, 4096)]
    assert ttft == sorted(ttft, reverse=True)


def test_faster_nics_never_slow_the_kv_transfer():
    slow = pd(1, "workload.arrival.rate_per_s=40")
    fast = pd(1, "workload.arrival.rate_per_s=40", "topology.tiers.1.nic_gbit_per_s=800")
    assert fast.e2e.mean_s <= slow.e2e.mean_s + 1e-12


def test_higher_mtp_acceptance_never_raises_tpot():
    sets = ("model.num_mtp_layers=1", "workload.arrival.rate_per_s=20")
    tpot = [agg(*sets, f"deployment.role.speculative={{num_draft_tokens: 2, acceptance_rate: {a}}}"
                ).tpot.mean_s for a in (0.2, 0.6, 0.9)]
    assert tpot == sorted(tpot, reverse=True)


def test_cuda_graphs_never_slow_an_iteration():
    from moesim.program.serving import AttentionWork
    from moesim.serving import RankLoad, RolePricer

    s = load_scenario(QWEN, (*SMALL, "deployment.role.host_op_us=30"))
    role = s.deployment.role
    eager, graph = (RolePricer(s, "aggregated", role.model_copy(update={"cuda_graph": g}))
                    for g in (False, True))
    for batch in (1, 16, 128):
        load = RankLoad(batch, AttentionWork(batch, 1, 1000), batch)
        assert graph.price(load).time_s <= eager.price(load).time_s + 1e-12
