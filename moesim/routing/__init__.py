"""Where tokens go in an MoE layer, what is dropped, and the all-to-all traffic it makes.

Public API: :func:`draw_step_routing` (a whole step, one EP group), :func:`route_layer`
(one layer and micro-batch), :func:`place_experts` (expert placement with EPLB-style replicas).
"""

from moesim.routing.expected import (
    ExpectedRouting,
    closed_form_applies,
    expected_balanced_routing,
)
from moesim.routing.layer import LayerRouting, RoutingPlan, route_layer
from moesim.routing.loads import inclusion_probabilities, layer_popularity, zipf_popularity
from moesim.routing.placement import ExpertPlacement, place_experts
from moesim.routing.step import (
    StepRouting,
    combine_bytes_per_token,
    dispatch_bytes_per_token,
    draw_step_routing,
    routing_plan,
    tokens_per_source_rank,
)

__all__ = [
    "ExpertPlacement",
    "LayerRouting",
    "RoutingPlan",
    "StepRouting",
    "ExpectedRouting",
    "closed_form_applies",
    "combine_bytes_per_token",
    "dispatch_bytes_per_token",
    "expected_balanced_routing",
    "draw_step_routing",
    "inclusion_probabilities",
    "layer_popularity",
    "place_experts",
    "route_layer",
    "routing_plan",
    "tokens_per_source_rank",
    "zipf_popularity",
]
