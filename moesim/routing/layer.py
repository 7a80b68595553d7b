"""One MoE layer, one micro-batch, one EP group: where tokens go and what they cost to move.

Capacity follows Megatron's token-drop mode (MCore, MoE mechanics reference section 2): every source
EP rank computes ``C = ceil(T k CF / E)`` from its own ``T`` tokens and keeps at most ``C``
copies per expert *before* the all-to-all; with ``pad_to_capacity`` it sends exactly ``C``
per expert (the padding travels and is computed). Dropless (``capacity_factor=None``) keeps
everything.

Dispatcher accounting: ``traffic_tokens[s, r]`` counts token *copies* (one per token-expert
pair), as Megatron's all-to-all dispatcher sends them. DeepEP sends one copy per destination
rank and one per destination node over IB; ``distinct_tokens`` (per rank pair) and
``distinct_node_tokens`` (per source rank and destination node) estimate those counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from moesim.routing.loads import inclusion_probabilities
from moesim.routing.placement import ExpertPlacement, split_to_slots
from moesim.routing.sampling import (
    balanced_counts,
    expert_choice_counts,
    node_limited_counts,
    topk_counts,
)


@dataclass(frozen=True)
class RoutingPlan:
    """What routing needs to know about a scenario, resolved once (see ``routing_plan``)."""

    num_experts: int
    top_k: int
    ep: int
    tokens_per_source: int  # tokens each EP rank routes per micro-batch
    router: str  # "top_k" | "expert_choice" | "hash"
    load: str  # load-model kind: "balanced" samples nothing
    capacity_factor: float | None
    pad_to_capacity: bool
    max_nodes_per_token: int | None
    node_of_rank: np.ndarray  # [EP] node index (0-based within the EP group)
    bytes_per_token_dispatch: float  # bytes
    bytes_per_token_combine: float  # bytes
    contiguous: bool = False  # balanced with contiguous expert order (BalancedLoadSpec)

    @property
    def num_nodes(self) -> int:
        return int(self.node_of_rank.max()) + 1

    @property
    def capacity(self) -> int | None:
        """Copies each source rank may send to one expert (None: dropless)."""
        cf = self.capacity_factor
        if cf is None:
            return None
        t, e = self.tokens_per_source, self.num_experts
        if self.router == "expert_choice":
            return min(t, math.ceil(t * cf / e))
        return math.ceil(t * self.top_k * cf / e)

    @property
    def node_limited(self) -> bool:
        m = self.max_nodes_per_token
        return m is not None and self.router != "expert_choice" and m < self.num_nodes


@dataclass(frozen=True)
class LayerRouting:
    """Routing of one (layer, micro-batch) over one EP group. Counts are token copies."""

    tokens_per_expert: np.ndarray  # [E] copies routed to each expert (after top-k, before capacity)
    dropped_tokens: int  # copies dropped by capacity
    padded_tokens: int  # padding copies sent (pad_to_capacity)
    capacity: int | None  # copies per (source rank, expert); None: dropless
    recv_tokens: np.ndarray  # [EP] copies each rank computes (kept + padding)
    slot_tokens: np.ndarray  # [EP, slots] copies each physical expert slot computes (kept + pad)
    traffic_tokens: np.ndarray  # [EP, EP] copies sent s -> r (kept + padding)
    distinct_tokens: np.ndarray  # [EP, EP] distinct tokens s -> r (DeepEP per-rank copies)
    distinct_node_tokens: np.ndarray  # [EP, nodes] distinct tokens s -> node (DeepEP IB copies)
    intra_node_bytes: np.ndarray  # [EP] dispatch bytes sent to other ranks of the same node
    inter_node_bytes: np.ndarray  # [EP] dispatch bytes sent to other nodes
    routed: np.ndarray | None = None  # [EP, E] per (source, expert), when drawn per expert

    @property
    def drop_fraction(self) -> float:
        total = int(self.tokens_per_expert.sum())
        return self.dropped_tokens / total if total else 0.0


def per_expert_path(plan: RoutingPlan, placement: ExpertPlacement) -> bool:
    """Whether counts must be drawn per (source, expert) rather than per (source, rank).

    Capacity acts per (source, expert), and node groups with replicas are logical; otherwise
    drawing per rank is exact for the urn model (merged colors) and E/EP times cheaper.
    """
    return (plan.capacity_factor is not None or plan.load == "balanced"
            or plan.router == "expert_choice" or (plan.node_limited and placement.num_redundant > 0))


def sample_routed(plan: RoutingPlan, popularity: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Copies per (source, expert) [EP, E] and, when node-limited, visits per (source, node)."""
    s, t, k, e = plan.ep, plan.tokens_per_source, plan.top_k, plan.num_experts
    if plan.router == "expert_choice":
        cap = plan.capacity
        assert cap is not None, "expert choice needs a capacity factor (checks.py enforces)"
        return expert_choice_counts(s, t, e, cap), None
    if plan.load == "balanced":  # node-limited too: T m / G visits per node, T k / E copies
        visits = None
        if plan.node_limited:
            assert plan.max_nodes_per_token is not None
            m = min(plan.max_nodes_per_token, k)
            visits = balanced_counts(s, t, m, plan.num_nodes)
        return balanced_counts(s, t, k, e), visits
    if plan.node_limited:
        assert plan.max_nodes_per_token is not None
        return node_limited_counts(rng, s, t, k, popularity, np.ones(e, dtype=np.int64),
                                   plan.num_nodes, plan.max_nodes_per_token)
    return topk_counts(rng, s, t, inclusion_probabilities(popularity, k)), None


def sample_per_rank(plan: RoutingPlan, popularity: np.ndarray, placement: ExpertPlacement,
                    rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Dropless: (copies per (source, rank) [EP, EP], copies per logical expert [E], visits
    or None, copies per physical slot [EP, slots])."""
    s, t, k = plan.ep, plan.tokens_per_source, plan.top_k
    merge = placement.merge
    visits = None
    if plan.node_limited:
        assert plan.max_nodes_per_token is not None
        slots = np.full(plan.ep, placement.slots_per_rank, dtype=np.int64)
        traffic, visits = node_limited_counts(rng, s, t, k, merge @ popularity, slots,
                                              plan.num_nodes, plan.max_nodes_per_token)
    else:
        traffic = topk_counts(rng, s, t, inclusion_probabilities(popularity, k), merge)
    # Split each rank's received copies over its slots by popularity per copy.
    ex = placement.slot_expert
    w = popularity[ex] / placement.num_replicas[ex]
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    per_slot = rng.multinomial(traffic.sum(axis=0), w)
    per_expert = np.bincount(ex.ravel(), weights=per_slot.ravel(),
                             minlength=plan.num_experts).astype(np.int64)
    return traffic, per_expert, visits, per_slot


def apply_capacity(routed: np.ndarray, capacity: int | None,
                   pad: bool) -> tuple[np.ndarray, np.ndarray]:
    """(kept, padded) copies per (source, expert) under a per-source capacity."""
    if capacity is None:
        return routed, np.zeros_like(routed)
    kept = np.minimum(routed, capacity)
    padded = capacity - kept if pad else np.zeros_like(routed)
    return kept, padded


def occupied(copies: np.ndarray, tokens: np.ndarray | float, slots: int) -> np.ndarray:
    """Expected distinct tokens among ``copies`` spread uniformly over tokens x ``slots`` cells.

    A token holds at most one copy per expert, so the copies to a rank with ``slots`` experts
    are balls in ``tokens`` bins of ``slots`` places each: P(bin empty) = (1 - x)^slots with
    x = copies / (tokens slots) (occupancy, sampling with replacement over places).
    """
    tok = np.broadcast_to(np.asarray(tokens, dtype=np.float64), copies.shape)
    safe = np.maximum(tok, 1.0)
    x = np.clip(copies / (safe * slots), 0.0, 1.0)
    return np.where(tok > 0, tok * (1.0 - (1.0 - x) ** slots), 0.0)


def route_layer(plan: RoutingPlan, popularity: np.ndarray, placement: ExpertPlacement,
                rng: np.random.Generator) -> LayerRouting:
    """Route one micro-batch of one MoE layer: counts, capacity, traffic, intra/inter bytes.

    ``popularity`` [E]: the layer's expert shares (sums to 1); ``rng``: this draw's stream.
    """
    routed = None
    if per_expert_path(plan, placement):
        routed, visits = sample_routed(plan, popularity, rng)
        kept, padded = apply_capacity(routed, plan.capacity, plan.pad_to_capacity)
        kept_slots = split_to_slots(kept, placement)  # [S, EP, slots]
        pad_slots = split_to_slots(padded, placement)
        kept_rank = kept_slots.sum(axis=2)
        traffic = kept_rank + pad_slots.sum(axis=2)
        slot_tokens = (kept_slots + pad_slots).sum(axis=0)
        per_expert, dropped, pad = routed.sum(axis=0), int((routed - kept).sum()), int(padded.sum())
    else:
        traffic, per_expert, visits, slot_tokens = sample_per_rank(plan, popularity, placement, rng)
        kept_rank, dropped, pad = traffic, 0, 0
    distinct, distinct_node = distinct_estimates(plan, placement, kept_rank, visits)
    nodes = plan.node_of_rank
    same = nodes[:, None] == nodes[None, :]
    off = ~np.eye(plan.ep, dtype=bool)
    b = plan.bytes_per_token_dispatch
    return LayerRouting(
        tokens_per_expert=per_expert, dropped_tokens=dropped, padded_tokens=pad,
        capacity=plan.capacity, recv_tokens=traffic.sum(axis=0), slot_tokens=slot_tokens,
        traffic_tokens=traffic,
        distinct_tokens=distinct, distinct_node_tokens=distinct_node,
        intra_node_bytes=(traffic * (same & off)).sum(axis=1) * b,
        inter_node_bytes=(traffic * ~same).sum(axis=1) * b, routed=routed,
    )


def contiguous_reach(num_experts: int, top_k: int,
                     node_of_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of a source's tokens that reach each EP rank [EP] and each node [nodes] when
    token t takes experts (t k + j) mod E, j < k, the experts placed contiguously (E / EP per
    rank). Exact over one period of E / gcd(E, k) tokens: the pattern repeats with it."""
    ep = len(node_of_rank)
    slots = num_experts // ep
    period = num_experts // math.gcd(num_experts, top_k)
    t = np.arange(period)[:, None] * top_k + np.arange(top_k)[None, :]  # [P, k] experts
    ranks = (t % num_experts) // slots
    hit = np.zeros((period, ep), dtype=bool)
    np.put_along_axis(hit, ranks, True, axis=1)
    nodes = int(node_of_rank.max()) + 1
    node_hit = hit @ (node_of_rank[:, None] == np.arange(nodes)[None, :])
    return hit.mean(axis=0), (node_hit > 0).mean(axis=0)


def distinct_estimates(plan: RoutingPlan, placement: ExpertPlacement, kept_rank: np.ndarray,
                       visits: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct tokens per (source, rank) [EP, EP] and per (source, node) [EP, nodes].

    Node-limited without replicas: a node's tokens are the sampled visits, exactly; otherwise
    the occupancy estimate of :func:`occupied` over the source's T tokens.
    """
    nodes = plan.node_of_rank
    if plan.load == "balanced" and plan.contiguous and placement.num_redundant == 0:
        rank_f, node_f = contiguous_reach(plan.num_experts, plan.top_k, nodes)
        t = float(plan.tokens_per_source)
        ones = np.ones((plan.ep, 1))
        return ones * (t * rank_f)[None, :], ones * (t * node_f)[None, :]
    exact = visits is not None and placement.num_redundant == 0
    if exact:
        assert visits is not None
        rank_tokens: np.ndarray | float = visits[:, nodes].astype(np.float64)
    else:
        rank_tokens = float(plan.tokens_per_source)
    distinct = occupied(kept_rank, rank_tokens, placement.slots_per_rank)
    node_copies = kept_rank @ (nodes[:, None] == np.arange(plan.num_nodes)[None, :])
    if exact:
        assert visits is not None
        return distinct, np.minimum(visits.astype(np.float64), node_copies)
    per_node = placement.slots_per_rank * int(np.bincount(nodes).max())
    return distinct, occupied(node_copies, float(plan.tokens_per_source), per_node)
