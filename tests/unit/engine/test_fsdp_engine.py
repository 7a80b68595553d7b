"""FSDP2 per-use gathers in the engine: the prefetch recurrence and a hand-priced step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moesim.engine import LinearCostProvider, Simulation
from moesim.engine.timeline import fsdp_exposure
from moesim.program.context import layer_param_shards

FSDP4 = ("num_devices=4", "topology_overrides={}", "parallelism.tensor_parallel_degree=1",
         "parallelism.pipeline_parallel_degree=1", "parallelism.pipeline_schedule={kind: 1f1b}",
         "parallelism.expert_parallel_degree=1", "parallelism.fsdp=true",
         "workload.global_batch_size=8", "model.num_layers=2")


def test_exposure_hidden_when_compute_is_longer() -> None:
    # Unit j's gather is issued when unit j-1 starts: with c >= g only the first is exposed.
    out = fsdp_exposure([2.0] * 5, [np.array([3.0])] * 5)
    assert out[0] == pytest.approx(2.0)


def test_exposure_when_gathers_are_longer() -> None:
    # g > c: gathers run back to back, unit j starts at (j+1) g; the phase ends at n g + c,
    # so the exposure is n g + c - n c = n g - (n - 1) c.
    out = fsdp_exposure([3.0] * 4, [np.array([1.0])] * 4)
    assert out[0] == pytest.approx(4 * 3.0 - 3 * 1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10)), min_size=1, max_size=8))
def test_exposure_bounds(units: list[tuple[float, float]]) -> None:
    g = [u[0] for u in units]
    c = [np.array([u[1]]) for u in units]
    out = float(fsdp_exposure(g, c)[0])
    # At least the first gather, at most every gather in series.
    assert g[0] - 1e-9 <= out <= sum(g) + 1e-9


def test_fsdp_step_exposes_first_gathers(make_scenario) -> None:
    sc = make_scenario(*FSDP4)
    # Memory ops free, GEMMs slow: every layer gather hides under the previous unit except
    # at the phase starts. Forward: embedding gather, then L0's queued behind it (the
    # embedding unit computes ~nothing). Backward: the LM head's gather (loss ~free first).
    fake = LinearCostProvider(mem_bytes_per_s=1e30, comm_bytes_per_s=1e11,
                              group_sizes={"dp": 4, "edp": 4})
    sim = Simulation(sc, costs=fake, include_memory=False)
    res = sim.run()
    ctx = sim.program.context
    per_rank = 3 / 4 / fake.comm_bytes_per_s * 2.0  # all-gather (n-1)/n of BF16 bytes
    emb = ctx.model.vocab_size * ctx.hidden * per_rank
    dense, expert = layer_param_shards(ctx, 0)
    g_l0 = (dense + expert) * per_rank
    expected = ctx.num_micro_batches * (emb + g_l0 + emb)
    assert res.breakdown.exposed_communication_s["dp_param"] == pytest.approx(expected, rel=1e-6)
    ana = Simulation(sc, fidelity="analytic", costs=fake, include_memory=False).run()
    assert ana.breakdown.exposed_communication_s["dp_param"] == pytest.approx(expected, rel=1e-6)
