"""Balanced routing with contiguous expert order (NeMo Automodel's FakeBalancedGate).

Token t takes experts (t k + j) mod E, j < k, experts placed E / EP per rank in order. Hand
counts: with E = 128, k = 8, EP = 8 (16 experts per rank) a token's 8 experts start at a
multiple of 8, so they sit on one rank, the rank cycling with t: each rank gets T / 8 distinct
tokens from every source, against T (1 - (1 - 8/128)^16) = 0.644 T for random order. With
Mixtral's E = 8, k = 2, EP = 8 a token reaches 2 ranks: 2T / 8 each, against the random order's
T (1 - (1 - 2/8)^1) = T / 4: the same, since one expert per rank leaves nothing to share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moesim.engine import Simulation
from moesim.routing import draw_step_routing, expected_balanced_routing, tokens_per_source_rank
from moesim.routing.layer import contiguous_reach
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
AUTOMODEL = ROOT / "scenarios" / "published" / "automodel-qwen3-30b-8gpu-h100-bf16.yaml"
MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"


def test_reach_by_hand():
    one_node = np.zeros(8, dtype=np.int64)
    rank, node = contiguous_reach(128, 8, one_node)
    np.testing.assert_allclose(rank, 1 / 8)  # one rank per token, cycling over the 8
    np.testing.assert_allclose(node, 1.0)
    rank, node = contiguous_reach(64, 8, np.repeat([0, 1], 8))  # 4 per rank: 2 ranks, 1 node
    np.testing.assert_allclose(rank, 2 / 16)
    np.testing.assert_allclose(node, 0.5)
    rank, _ = contiguous_reach(8, 3, np.zeros(8, dtype=np.int64))  # 3 of 8 ranks, period 8
    np.testing.assert_allclose(rank, 3 / 8)


@pytest.mark.parametrize("order", ["contiguous", "random"])
def test_expected_and_drawn_distinct_counts(order: str):
    s = load_scenario(AUTOMODEL, [f"routing.load.expert_order={order}"])
    t = tokens_per_source_rank(s)  # 4 x 4096 tokens per rank and micro-batch
    want = t / 8 if order == "contiguous" else t * (1 - (1 - 8 / 128) ** 16)
    np.testing.assert_allclose(expected_balanced_routing(s).distinct_tokens, want, rtol=1e-12)
    drawn = draw_step_routing(s, num_micro_batches=1, num_draws_per_layer=1)
    np.testing.assert_allclose(np.asarray(drawn.distinct_tokens), want, rtol=1e-6)  # float32
    # the copies do not change with the order: T k / EP per rank pair
    np.testing.assert_allclose(expected_balanced_routing(s).traffic_tokens, t * 8 / 8)


def test_one_expert_per_rank_makes_the_order_irrelevant():
    a = expected_balanced_routing(load_scenario(MIXTRAL))
    b = expected_balanced_routing(load_scenario(MIXTRAL, ["routing.load.expert_order=contiguous"]))
    np.testing.assert_allclose(a.distinct_tokens, b.distinct_tokens)


def test_fewer_ranks_per_token_never_slow_a_deepep_step():
    steps = {o: Simulation(load_scenario(AUTOMODEL, [f"routing.load.expert_order={o}"]),
                           fidelity="analytic", include_memory=False).run()
             for o in ("random", "contiguous")}
    fast, slow = steps["contiguous"], steps["random"]
    assert fast.step_time_s < slow.step_time_s
    ep = lambda r: r.breakdown.exposed_communication_s.get("ep_dispatch", 0.0)  # noqa: E731
    assert ep(fast) < 0.5 * ep(slow)  # 1 rank per token instead of 5.15 (4.5 of them remote)
