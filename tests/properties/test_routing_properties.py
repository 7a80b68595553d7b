"""Conservation of tokens and bytes in routing, for every router and load model (hypothesis).

Plans are built directly (not from files) so that many layouts run fast: EP ranks, experts per
rank, ranks per node, top-k, capacity factor, padding, node limit, replicas and skew vary.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from moesim.routing import place_experts, route_layer
from moesim.routing.layer import RoutingPlan
from moesim.routing.loads import inclusion_probabilities, zipf_popularity

HIDDEN = 1024
BYTES = 2.0  # bf16


@st.composite
def cases(draw: st.DrawFn) -> tuple[RoutingPlan, np.ndarray, int, int]:
    ep = draw(st.sampled_from([1, 2, 4, 8, 16]))
    per_rank = draw(st.sampled_from([1, 2, 4]))
    # Replicas: one extra slot per rank, so E + R = EP x slots and R <= E needs slots >= 2.
    redundant = draw(st.sampled_from([0, 0, ep])) if per_rank >= 2 else 0
    e = ep * per_rank - redundant
    k = draw(st.integers(1, min(e, 8)))
    router = draw(st.sampled_from(["top_k", "top_k", "hash", "expert_choice"]))
    load = draw(st.sampled_from(["balanced", "multinomial", "zipf"]))
    cf = draw(st.sampled_from([None, 0.5, 1.0, 1.25, 2.0]))
    if router == "expert_choice" and cf is None:
        cf = 1.0
    pad = cf is not None and draw(st.booleans())
    rpn = draw(st.sampled_from([1, 2, 4, 8]))
    nodes = np.arange(ep) // min(rpn, ep)
    g = int(nodes.max()) + 1
    m = draw(st.sampled_from([None, 1, 2, 3]))
    if m is not None and (e % g or m * (e // g) < k or redundant):
        m = None
    plan = RoutingPlan(
        num_experts=e, top_k=k, ep=ep, tokens_per_source=draw(st.sampled_from([64, 512, 4096])),
        router=router, load=load, capacity_factor=cf, pad_to_capacity=pad,
        max_nodes_per_token=m, node_of_rank=nodes, bytes_per_token_dispatch=HIDDEN * BYTES,
        bytes_per_token_combine=HIDDEN * BYTES)
    s = draw(st.floats(0.0, 2.0)) if load == "zipf" else 0.0
    pop = zipf_popularity(e, s)[np.random.default_rng(0).permutation(e)]
    return plan, pop, redundant, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(cases())
def test_tokens_and_bytes_are_conserved(case: tuple[RoutingPlan, np.ndarray, int, int]) -> None:
    plan, pop, redundant, seed = case
    placement = place_experts(plan.num_experts, plan.ep, pop, redundant)
    r = route_layer(plan, pop, placement, np.random.default_rng(seed))
    t, k = plan.tokens_per_source, plan.top_k
    routed = int(r.tokens_per_expert.sum())
    if plan.router == "expert_choice":  # every expert takes C of each source's tokens
        assert routed == plan.ep * plan.num_experts * plan.capacity
    else:  # tokens x k = kept + dropped
        assert routed == plan.ep * t * k
    kept = int(r.traffic_tokens.sum()) - r.padded_tokens
    assert kept + r.dropped_tokens == routed
    # Capacity is never exceeded: a rank gets at most sources x slots x C copies.
    if plan.capacity is not None:
        assert (r.recv_tokens <= plan.ep * placement.slots_per_rank * plan.capacity).all()
    else:
        assert r.dropped_tokens == 0 and r.padded_tokens == 0
    # Row sums are what each source sends; column sums what each rank computes, which is
    # what its physical expert slots compute (kept + padding), one slot per local copy.
    assert np.array_equal(r.traffic_tokens.sum(axis=0), r.recv_tokens)
    assert r.slot_tokens.shape == (plan.ep, placement.slots_per_rank)
    assert np.array_equal(r.slot_tokens.sum(axis=1), r.recv_tokens)
    if plan.capacity is not None:  # a slot takes at most C copies from each source
        assert (r.slot_tokens <= plan.ep * plan.capacity).all()
    if not plan.pad_to_capacity and plan.capacity is None and plan.router != "expert_choice":
        assert (r.traffic_tokens.sum(axis=1) == t * k).all()
    # Received bytes are kept copies (+ padding) x hidden x bytes per element.
    recv_bytes = r.traffic_tokens.sum(axis=0) * plan.bytes_per_token_dispatch
    assert np.allclose(recv_bytes, r.recv_tokens * HIDDEN * BYTES)
    # Intra + inter + self = everything sent.
    self_bytes = np.diag(r.traffic_tokens) * plan.bytes_per_token_dispatch
    sent = r.traffic_tokens.sum(axis=1) * plan.bytes_per_token_dispatch
    assert np.allclose(r.intra_node_bytes + r.inter_node_bytes + self_bytes, sent)
    # Distinct tokens never exceed copies, nor the source's tokens.
    assert (r.distinct_tokens <= r.traffic_tokens + 1e-6).all()
    assert (r.distinct_tokens <= t + 1e-6).all() and (r.distinct_node_tokens <= t + 1e-6).all()
    if plan.node_limited:
        assert plan.max_nodes_per_token is not None
        m = min(plan.max_nodes_per_token, k)
        assert (r.distinct_node_tokens.sum(axis=1) <= t * m + 1e-6).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 64), st.integers(1, 8), st.floats(0.0, 3.0))
def test_inclusion_probabilities_are_probabilities(e: int, k: int, s: float) -> None:
    k = min(k, e)
    pi = inclusion_probabilities(zipf_popularity(e, s), k)
    assert math.isclose(pi.sum(), k, rel_tol=1e-9)
    assert (pi <= 1.0 + 1e-12).all() and (pi >= 0).all()
