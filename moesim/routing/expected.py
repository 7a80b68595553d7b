"""Expected routing in closed form, for the analytic fidelity.

Balanced token choice that drops, pads and node-limits nothing has no randomness worth
drawing: every source rank sends T k / E copies to each expert (T tokens per rank, top-k of
E). Distinct tokens use the same occupancy estimate as :mod:`moesim.routing.layer` with
x = k / E: a rank holding s experts gets T (1 - (1 - k/E)^s) distinct tokens from each
source, a node of n such ranks T (1 - (1 - k/E)^(n s)). A capacity factor >= 1 keeps every
balanced copy. With ``expert_order: contiguous`` (token t takes experts (t k + j) mod E) the
distinct counts are exact instead (:func:`moesim.routing.layer.contiguous_reach`). Byte rules
are those of :mod:`moesim.routing.step`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moesim.routing.layer import contiguous_reach
from moesim.routing.step import (
    combine_bytes_per_token,
    dispatch_bytes_per_token,
    node_of_ep_rank,
    tokens_per_source_rank,
)
from moesim.specs.scenario import ScenarioSpec


@dataclass(frozen=True)
class ExpectedRouting:
    """One micro-batch of one EP group, the same for every micro-batch; token counts."""

    recv_tokens_per_expert: np.ndarray  # [L, EP, experts per rank]
    traffic_tokens: np.ndarray  # [L, EP, EP] copies i -> j
    distinct_tokens: np.ndarray  # [L, EP, EP] distinct tokens i -> j
    distinct_node_tokens: np.ndarray  # [L, EP, nodes] distinct tokens i -> node
    bytes_per_token_dispatch: float
    bytes_per_token_combine: float


def closed_form_applies(scenario: ScenarioSpec) -> bool:
    """Balanced token choice that drops and pads nothing and limits no nodes."""
    rt = scenario.routing
    return (rt.load.kind == "balanced" and rt.router.kind == "top_k"
            and (rt.capacity_factor is None or rt.capacity_factor >= 1.0)
            and not rt.pad_to_capacity and rt.max_nodes_per_token is None
            and rt.num_redundant_experts == 0)


def expected_balanced_routing(scenario: ScenarioSpec) -> ExpectedRouting:
    """The closed form above for every MoE layer of the scenario's model."""
    assert closed_form_applies(scenario), "expected routing needs balanced, dropless top-k"
    model, ep = scenario.model_spec, scenario.parallelism.expert_parallel_degree
    layers, e, k = model.num_moe_layers, model.num_experts, model.top_k
    slots = e // ep
    t = float(tokens_per_source_rank(scenario))
    nodes = node_of_ep_rank(scenario)
    per_node = slots * int(np.bincount(nodes).max())
    miss = 1.0 - k / e
    n_nodes = int(nodes.max()) + 1
    distinct = np.full((layers, ep, ep), t * (1.0 - miss ** slots))
    distinct_node = np.full((layers, ep, n_nodes), t * (1.0 - miss ** per_node))
    if getattr(scenario.routing.load, "expert_order", "random") == "contiguous":
        rank_f, node_f = contiguous_reach(e, k, nodes)  # exact, the same for every source
        distinct = np.broadcast_to(t * rank_f, (layers, ep, ep)).copy()
        distinct_node = np.broadcast_to(t * node_f, (layers, ep, n_nodes)).copy()
    return ExpectedRouting(
        recv_tokens_per_expert=np.full((layers, ep, slots), t * k * ep / e),
        traffic_tokens=np.full((layers, ep, ep), t * k * slots / e),
        distinct_tokens=distinct,
        distinct_node_tokens=distinct_node,
        bytes_per_token_dispatch=float(dispatch_bytes_per_token(scenario)),
        bytes_per_token_combine=float(combine_bytes_per_token(scenario)),
    )
