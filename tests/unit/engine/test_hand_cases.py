"""Hand-checkable engine cases against the closed-form LinearCostProvider."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.engine import LinearCostProvider, Simulation
from moesim.engine.costs import attention_flops
from moesim.engine.routing_view import balanced_routing
from moesim.program import build_program
from moesim.program.ops import (
    AttentionShape,
    GemmShape,
    GroupedGemmShape,
    GroupedMemoryShape,
    MemoryShape,
)

ONE_DEVICE = ("num_devices=1", "topology_overrides={}", "parallelism.pipeline_parallel_degree=1",
              "parallelism.pipeline_schedule={kind: 1f1b}", "parallelism.expert_parallel_degree=1",
              "workload.global_batch_size=2", "model.num_layers=2")


def _kernel_sum(program, fake: LinearCostProvider, tokens_per_expert: float) -> float:
    """Sum of every kernel of every micro-batch, priced by the fake's formulas directly."""
    total = 0.0
    for ch in program.chunks:
        for op in ch.forward + ch.backward_input + ch.backward_weight:
            s = op.shape
            if isinstance(s, GemmShape):
                total += s.flops / fake.flops_per_s
            elif isinstance(s, GroupedGemmShape):
                e = program.context.model.num_experts
                total += 2.0 * tokens_per_expert * e * s.n * s.k / fake.flops_per_s
            elif isinstance(s, AttentionShape):
                total += attention_flops(s) / fake.flops_per_s
            elif isinstance(s, MemoryShape):
                total += s.bytes_moved / fake.mem_bytes_per_s
            elif isinstance(s, GroupedMemoryShape):  # one device computes every expert (EP 1)
                e = program.context.model.num_experts
                total += s.bytes_per_row * tokens_per_expert * e / fake.mem_bytes_per_s
    return total * program.num_micro_batches


def test_one_device_step_is_sum_of_kernels(make_scenario) -> None:
    sc = make_scenario(*ONE_DEVICE)
    fake = LinearCostProvider()
    sim = Simulation(sc, costs=fake, include_memory=False)
    res = sim.run()
    # Balanced top-2 of 8 experts on 4096 tokens: every expert gets 4096 * 2 / 8 tokens.
    kernels = _kernel_sum(sim.program, fake, 4096 * 2 / 8)
    optimizer = sim.program.stages[0].optimizer[0].shape.bytes_moved / fake.mem_bytes_per_s
    assert res.step_time_s == pytest.approx(kernels + optimizer, rel=1e-9)
    assert res.breakdown.pipeline_bubble_s == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("pp,m", [(4, 8), (2, 6)])
def test_1f1b_bubble_fraction(make_scenario, pp: int, m: int) -> None:
    sc = make_scenario(f"num_devices={pp}", "topology_overrides={}",
                       f"parallelism.pipeline_parallel_degree={pp}",
                       "parallelism.pipeline_schedule={kind: 1f1b}",
                       "parallelism.expert_parallel_degree=1", f"workload.global_batch_size={m}",
                       f"model.num_layers={2 * pp}", "model.vocab_size=8")
    # Memory-bound ops (embedding, norms, optimizer) and sends cost ~nothing, so the stages are
    # equal: 1F1B takes (m + p - 1) t while each stage is busy m t.
    fake = LinearCostProvider(mem_bytes_per_s=1e30, send_bytes_per_s=1e30)
    res = Simulation(sc, costs=fake, include_memory=False).run()
    b = res.breakdown
    busy = sum(b.compute_s.values()) + sum(b.exposed_communication_s.values())
    assert (res.step_time_s - busy) / res.step_time_s == pytest.approx(
        (pp - 1) / (m + pp - 1), rel=2e-3)


def _dp_case(make_scenario, comm_bytes_per_s: float):
    sc = make_scenario("num_devices=2", "topology_overrides={}",
                       "parallelism.pipeline_parallel_degree=1",
                       "parallelism.pipeline_schedule={kind: 1f1b}",
                       "parallelism.expert_parallel_degree=1", "workload.global_batch_size=2",
                       "model.num_layers=1")
    fake = LinearCostProvider(comm_bytes_per_s=comm_bytes_per_s,
                              group_sizes={"dp": 2, "edp": 2})
    sim = Simulation(sc, costs=fake, include_memory=False)
    return sim, sim.run()


def _bucket_times(sim) -> dict[str, float]:
    ch = sim.program.chunks[0]
    return {op.name: sim.pricer.fixed(op, 0) for op in ch.grad_sync}


@pytest.mark.parametrize("bw", [1e13, 1e7])
def test_dp_reduce_scatter_hidden_or_exposed(make_scenario, bw: float) -> None:
    """One layer: the LM-head bucket is issued when its weight gradient is done, the layer's and
    the embedding's buckets only at the end. Exposed = max(0, d_head - R) + the rest, where R is
    the backward left after the LM-head weight gradient (Megatron bucketed overlap)."""
    sim, res = _dp_case(make_scenario, bw)
    d = _bucket_times(sim)
    from moesim.engine.des import chunk_plans

    bwd = chunk_plans(sim.program, sim.pricer)[(0, 0)].backward
    times = np.array([float(s.slow[0]) for s in bwd.steps])
    ends = np.cumsum(times)
    head_end = [i for i, s in enumerate(bwd.steps) if s.name == "lm_head.wgrad"][0]
    l0_end = max(i for i, s in enumerate(bwd.steps) if s.name.startswith("L0."))
    rest = float(ends[-1] - ends[head_end])
    # FIFO on the DP stream: head bucket, then L0's dense and expert buckets, then embedding.
    free = ends[head_end] + d["lm_head.dp_grad"]
    free = max(free, ends[l0_end]) + d["L0.dp_grad"] + d["L0.edp_grad"]
    free = max(free, ends[-1]) + d["embedding.dp_grad"]
    expected = free - ends[-1]
    assert res.breakdown.exposed_communication_s.get("dp", 0.0) == pytest.approx(expected, rel=1e-6)
    if bw == 1e13:
        assert d["lm_head.dp_grad"] < rest  # fully hidden case
    else:
        assert d["lm_head.dp_grad"] > rest  # exposed by d_head - rest


def test_doubling_imbalance_adds_slowest_rank_work(make_scenario) -> None:
    sc = make_scenario("num_devices=8", "topology_overrides={}",
                       "parallelism.pipeline_parallel_degree=1",
                       "parallelism.pipeline_schedule={kind: 1f1b}",
                       "parallelism.expert_parallel_degree=8", "workload.global_batch_size=8",
                       "model.num_layers=1")
    prog = build_program(sc)
    fake = LinearCostProvider(group_sizes={"ep": 8})
    base = balanced_routing(prog)
    steps = []
    for extra in (512.0, 1024.0):
        tok = base.tokens.copy()
        tok[:, :, 0, :] += extra  # rank 0 gets `extra` more tokens per micro-batch
        r = type(base)(tok, base.traffic_tokens, base.bytes_per_token_dispatch,
                       base.bytes_per_token_combine, base.dropped_fraction, "test")
        steps.append(Simulation(sc, costs=fake, routing=r, include_memory=False).run().step_time_s)
    m = sc.model_spec
    # fc1 (h -> 2F) and fc2 (F -> h): forward, dgrad, wgrad each 2 * tokens * n * k FLOPs.
    per_token = 3 * (2 * m.hidden_size * 2 * m.expert_ffn_hidden_size
                     + 2 * m.expert_ffn_hidden_size * m.hidden_size)
    # The experts' SwiGLU reads gate and up and writes the product (3 F bf16 values per
    # copy), forward and again in the backward.
    act = 2 * 3 * m.expert_ffn_hidden_size * 2.0
    m_batches = sc.num_micro_batches
    extra = 512.0 * (per_token / fake.flops_per_s + act / fake.mem_bytes_per_s) * m_batches
    assert steps[1] - steps[0] == pytest.approx(extra, rel=1e-9)
