"""The analytic fidelity's expected routing: the closed form equals moesim.routing's balanced
draws, and skewed loads use one draw for every micro-batch."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.engine import Simulation
from moesim.engine.routing_view import draw_routing, expected_balanced
from moesim.program import build_program

# 16 devices on two 8-GPU domains, EP 16: dispatch crosses domains, so node counts matter.
EP16 = ("num_devices=16", "topology_overrides={tiers.1.num_domains: 2}",
        "parallelism.tensor_parallel_degree=1", "parallelism.pipeline_parallel_degree=1",
        "parallelism.pipeline_schedule={kind: 1f1b}", "parallelism.expert_parallel_degree=16",
        "model.num_experts=32", "workload.global_batch_size=16", "model.num_layers=2")


def test_closed_form_equals_balanced_draws(make_scenario) -> None:
    sc = make_scenario(*EP16)
    prog = build_program(sc)
    drawn = draw_routing(sc, prog)
    closed = expected_balanced(sc, prog)
    # T k / E is an integer here (4096 * 2 / 32), so the draws are exactly balanced too.
    np.testing.assert_allclose(closed.tokens, drawn.tokens, rtol=1e-12)
    for name in ("traffic_tokens", "distinct_tokens", "node_tokens"):
        a, b = getattr(closed, name), getattr(drawn, name)
        np.testing.assert_allclose(a[:, 0], b[:, 0], rtol=1e-6, err_msg=name)
    assert closed.bytes_per_token_dispatch == drawn.bytes_per_token_dispatch
    assert closed.bytes_per_token_combine == drawn.bytes_per_token_combine


def test_distinct_tokens_closed_form(make_scenario) -> None:
    sc = make_scenario(*EP16)
    r = expected_balanced(sc, build_program(sc))
    # Occupancy with x = k / E = 2 / 32 over a rank's 2 experts: T (1 - (15/16)^2); a node
    # of 8 such ranks (16 experts): T (1 - (15/16)^16).
    assert r.distinct_tokens[0, 0, 0, 1] == pytest.approx(4096 * (1 - (15 / 16) ** 2))
    assert r.node_tokens[0, 0, 0, 1] == pytest.approx(4096 * (1 - (15 / 16) ** 16))


def test_analytic_sources(make_scenario) -> None:
    bal = Simulation(make_scenario(*EP16), fidelity="analytic", include_memory=False)
    assert bal.routing.source == "expected balanced (closed form)"
    skew = make_scenario(*EP16, "routing.load={kind: zipf, exponent: 1.0}")
    sim = Simulation(skew, fidelity="analytic", include_memory=False)
    assert sim.routing.source == "moesim.routing (one draw)"
    tok = sim.routing.tokens  # one draw stands for every micro-batch
    assert tok.shape[1] == sim.program.num_micro_batches
    assert np.array_equal(tok[:, 0], tok[:, -1])
