"""Closed-form checks of routing on real scenarios (Mixtral 8x7B on 64 H100 with overrides)."""

from __future__ import annotations

import math

import numpy as np

from moesim.routing import (
    dispatch_bytes_per_token,
    draw_step_routing,
    place_experts,
    route_layer,
    routing_plan,
    tokens_per_source_rank,
    zipf_popularity,
)
from moesim.routing.loads import COUNTS, inclusion_probabilities, stream

EP64 = ["model.num_experts=64", "parallelism.expert_parallel_degree=64",
        "parallelism.pipeline_parallel_degree=1", "parallelism.pipeline_schedule={kind: 1f1b}"]


def off_rank_fraction(r) -> tuple[float, float]:
    total = r.recv_tokens.sum() * r.bytes_per_token_dispatch
    return r.intra_node_bytes.sum() / total, r.inter_node_bytes.sum() / total


def test_balanced_top2_ep8_sends_seven_eighths_off_rank(scenario) -> None:
    # EP8 on one 8-GPU node, 8 experts, one per rank, balanced: each source sends T k / 8 to every
    # rank, 1 of 8 shares stays local -> 7/8 off-rank, all intra-node.
    r = draw_step_routing(scenario())
    intra, inter = off_rank_fraction(r)
    assert intra == 7 / 8 and inter == 0.0
    assert (r.traffic_tokens == 4096 * 2 // 8).all()


def test_balanced_ep64_eight_per_node_sends_56_of_64_off_node(scenario) -> None:
    # 64 ranks on 8 nodes of 8: 56 of 64 equal shares go to other nodes, 7 to the own node.
    r = draw_step_routing(scenario(*EP64))
    intra, inter = off_rank_fraction(r)
    assert inter == 56 / 64 and intra == 7 / 64
    assert list(r.node_of_rank[::8]) == list(range(8))


def test_tokens_per_source_rank_and_bytes(scenario) -> None:
    # MBS 1 x seq 4096; SP with TP2 halves it; CP2 halves it.
    assert tokens_per_source_rank(scenario()) == 4096
    tp2 = scenario("parallelism.tensor_parallel_degree=2")
    assert tokens_per_source_rank(tp2) == 2048
    assert tokens_per_source_rank(scenario("parallelism.context_parallel_degree=2")) == 2048
    # bf16: 4096 x 2 bytes; fp8: 4096 x 1 + 4096/128 fp32 scales x 4 bytes = 4224 (DeepEP/DSV3).
    assert dispatch_bytes_per_token(scenario()) == 8192
    assert dispatch_bytes_per_token(scenario("workload.dtype=fp8")) == 4224
    assert draw_step_routing(scenario()).bytes_per_token_combine == 8192


def test_capacity_closed_form_and_padding(scenario) -> None:
    # C = ceil(T k CF / E) = ceil(4096 x 2 x 1.25 / 8) = 1280 per (source, expert).
    s = scenario("routing.capacity_factor=1.25", "routing.pad_to_capacity=true")
    assert routing_plan(s).capacity == 1280
    r = draw_step_routing(s, num_micro_batches=2)
    # Balanced: 1024 routed per (source, expert), none dropped, 256 padding each; every rank
    # computes 8 sources x 1280.
    assert r.dropped_tokens.sum() == 0
    assert (r.padded_tokens == 8 * 8 * 256).all()
    assert (r.recv_tokens == 8 * 1280).all()


def binomial_excess(n: int, p: float, c: int) -> float:
    """E[max(X - c, 0)] for X ~ Binomial(n, p), summed exactly from the pmf."""
    if p >= 1.0:
        return max(n - c, 0)
    ks = np.arange(c + 1, n + 1)
    logpmf = np.array([math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                       for k in ks]) + ks * math.log(p) + (n - ks) * math.log1p(-p)
    return float(((ks - c) * np.exp(logpmf)).sum())


def test_zipf_drop_fraction_matches_closed_form(scenario) -> None:
    # Zipf s=1 over 8 experts, top-2, CF 1.0: C = 1024 per source. A source's copies to expert e
    # are Binomial(T, pi_e) with pi = water-filled 2 p; expected drops sum E[(X - C)+].
    s = scenario("routing.load={kind: zipf, exponent: 1.0}", "routing.capacity_factor=1.0")
    pi = inclusion_probabilities(zipf_popularity(8, 1.0), 2)
    expected = sum(binomial_excess(4096, float(p), 1024) for p in pi) / (4096 * 2)
    r = draw_step_routing(s, num_micro_batches=8)
    assert abs(r.drop_fraction - expected) < 0.002, (r.drop_fraction, expected)
    # Hand check of the dominant terms: pi_1 = 2 x 12/... = 0.7358 -> 3014 routed, 1990 dropped.
    assert 0.29 < expected < 0.31


def test_multinomial_max_load_matches_direct_monte_carlo(scenario) -> None:
    # Ideal router, 8 experts on 8 ranks, top-2, 8 sources x 512 tokens. Direct Monte Carlo: every
    # token draws 2 distinct experts (Gumbel top-2); compare the mean of the max over ranks.
    s = scenario("routing.load={kind: multinomial}", "workload.sequence_length=512")
    n = 1000
    plan, placement, pop = routing_plan(s), place_experts(8, 8), np.full(8, 1 / 8)
    recv = np.array([route_layer(plan, pop, placement, stream(0, COUNTS, 0, d)).recv_tokens
                     for d in range(n)], dtype=float)
    ours = recv.max(axis=1)
    rng = np.random.default_rng(12345)
    mc = np.empty(n)
    for i in range(n):
        pick = np.argpartition(rng.random((8 * 512, 8)), 2, axis=1)[:, :2]
        mc[i] = np.bincount(pick.ravel(), minlength=8).max()
    se = math.sqrt(ours.var() / n + mc.var() / n)
    assert abs(ours.mean() - mc.mean()) < 4 * se, (ours.mean(), mc.mean(), se)
    # The per-rank variance is T S pi (1 - pi) exactly for k distinct picks: 4096 x 1/4 x 3/4.
    var = recv[:, 0].var()
    assert abs(var / (4096 * 0.25 * 0.75) - 1) < 0.1


def test_node_limited_never_reaches_more_than_m_nodes(scenario) -> None:
    # 64 experts top-8 on 8 nodes, at most 2 nodes per token: per source, the node visits sum to
    # T x 2, no node gets more visits than tokens, and no copies go to an unvisited node.
    s = scenario(*EP64, "model.top_k=8", "routing.max_nodes_per_token=2",
                 "routing.load={kind: zipf, exponent: 1.2}")
    r = draw_step_routing(s, num_micro_batches=4)
    visits = r.distinct_node_tokens  # [L, D, EP, nodes]
    assert np.allclose(visits.sum(axis=3), 4096 * 2)
    assert (visits <= 4096).all()
    copies = r.traffic_tokens.reshape(*r.traffic_tokens.shape[:3], 8, 8).sum(axis=4)
    assert ((copies > 0) <= (visits > 0)).all()
    assert (copies <= visits * 8).all()  # a visit takes at most the node's 8 experts
    assert (r.traffic_tokens.sum(axis=3) == 4096 * 8).all()


def test_dense_model_is_empty(scenario) -> None:
    s = scenario("model.num_experts=0", "model.top_k=0", "parallelism.expert_parallel_degree=1")
    r = draw_step_routing(s)
    assert r.moe_layers == [] and r.recv_tokens.shape == (0, s.num_micro_batches, 1)
    assert r.drop_fraction == 0.0


def test_expert_choice_fills_every_expert(scenario) -> None:
    # Each expert takes ceil(4096 x 2 / 8) = 1024 tokens of each of 8 sources.
    s = scenario("routing.router={kind: expert_choice}", "routing.capacity_factor=2.0")
    r = draw_step_routing(s, num_micro_batches=2)
    assert (r.recv_tokens == 8 * 1024).all() and r.drop_fraction == 0.0
