"""The routing draws the engine needs, as numpy arrays indexed [MoE layer, micro-batch, ...].

Uses ``moesim.routing.draw_step_routing`` when importable; otherwise (and for dense models)
perfectly balanced routing computed in closed form, recorded in ``source``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from moesim.program.builder import StepProgram
from moesim.specs.scenario import ScenarioSpec
from moesim.units import dtype_bytes


@dataclass(frozen=True)
class RoutingView:
    """tokens [L, M, EP, E_local] per local expert; traffic [L, M, EP, EP] token copies i -> j."""

    tokens: np.ndarray
    traffic_tokens: np.ndarray
    bytes_per_token_dispatch: float
    bytes_per_token_combine: float
    dropped_fraction: np.ndarray  # [L, M]
    source: str
    raw: object | None = None
    draw_of_micro_batch: np.ndarray | None = None  # traffic row used by each micro-batch
    node_tokens: np.ndarray | None = None  # [L, D, EP, domains] distinct tokens i -> domain
    distinct_tokens: np.ndarray | None = None  # [L, D, EP, EP] distinct tokens i -> j (DeepEP)

    def traffic_index(self, m: int) -> np.ndarray:
        """Index into traffic_tokens' second axis for each of ``m`` micro-batches."""
        if self.draw_of_micro_batch is not None:
            return self.draw_of_micro_batch
        return np.arange(m) % self.traffic_tokens.shape[1]

    @property
    def num_layers(self) -> int:
        return int(self.tokens.shape[0])


def balanced_routing(program: StepProgram, num_micro_batches: int | None = None) -> RoutingView:
    """Every expert gets T * k / E tokens from every source rank equally (closed form)."""
    ctx = program.context
    model = ctx.model
    layers = max(1, len(program.moe_layers))
    m = num_micro_batches or ctx.num_micro_batches
    ep = ctx.ep
    e_local = max(1, model.num_experts // ep) if model.num_experts else 1
    t = ctx.tokens_sp
    per_pair = t * max(model.top_k, 1) / ep
    tokens = np.full((layers, m, ep, e_local), t * ep * max(model.top_k, 1) / (ep * e_local))
    traffic = np.full((layers, m, ep, ep), per_pair)
    b = ctx.hidden * ctx.act_bytes
    return RoutingView(tokens, traffic, b, b, np.zeros((layers, m)), "balanced_closed_form")


def draw_routing(scenario: ScenarioSpec, program: StepProgram, *,
                 expected: bool = False) -> RoutingView:
    """The step's routing draws from moesim.routing, or balanced routing if it is absent.

    ``expected=True`` (the analytic fidelity): expected loads instead of the step's draws.
    Balanced token-choice routing without drops is the closed form :func:`expected_balanced`;
    any other load model is drawn once per layer for one micro-batch and that draw stands for
    every micro-batch (moesim.routing's ``num_draws_per_layer=1``).
    """
    if not program.moe_layers:
        return balanced_routing(program)
    try:
        mod = importlib.import_module("moesim.routing")
        draw = mod.draw_step_routing
    except (ImportError, AttributeError):
        return balanced_routing(program)
    m = program.num_micro_batches
    if expected and _closed_form_applies(scenario):
        return expected_balanced(scenario, program)
    if expected:
        r = draw(scenario, num_micro_batches=1, num_draws_per_layer=1)
        return _view(r, program, np.zeros(m, dtype=np.int64), "moesim.routing (one draw)")
    r = draw(scenario, num_micro_batches=m)
    return _view(r, program, None, "moesim.routing")


def _view(r: object, program: StepProgram, tile: np.ndarray | None, source: str) -> RoutingView:
    """A RoutingView over a StepRouting; ``tile`` maps each micro-batch to a drawn one."""
    tpe = np.asarray(r.tokens_per_expert, dtype=np.float64)  # type: ignore[attr-defined]
    dropped = np.asarray(r.dropped_tokens, dtype=np.float64)  # type: ignore[attr-defined]
    draw_of = np.asarray(r.micro_batch_draw, dtype=np.int64)  # type: ignore[attr-defined]
    if tile is not None:
        tpe, dropped, draw_of = tpe[:, tile], dropped[:, tile], draw_of[tile]
    ep = program.context.ep
    layers, m, e = tpe.shape
    return RoutingView(
        tokens=tpe.reshape(layers, m, ep, e // ep),
        traffic_tokens=np.asarray(r.traffic_tokens, dtype=np.float64),  # type: ignore[attr-defined]
        bytes_per_token_dispatch=float(r.bytes_per_token_dispatch),  # type: ignore[attr-defined]
        bytes_per_token_combine=float(r.bytes_per_token_combine),  # type: ignore[attr-defined]
        dropped_fraction=dropped / max(1.0, float(tpe.sum(axis=-1).mean())),
        source=source, raw=r, draw_of_micro_batch=draw_of,
        node_tokens=np.asarray(r.distinct_node_tokens, dtype=np.float64),  # type: ignore[attr-defined]
        distinct_tokens=np.asarray(r.distinct_tokens, dtype=np.float64))  # type: ignore[attr-defined]


def _closed_form_applies(scenario: ScenarioSpec) -> bool:
    """Balanced token choice that drops and pads nothing and limits no nodes."""
    rt = scenario.routing
    return (rt.load.kind == "balanced" and rt.router.kind == "top_k"
            and (rt.capacity_factor is None or rt.capacity_factor >= 1.0)
            and not rt.pad_to_capacity and rt.max_nodes_per_token is None
            and rt.num_redundant_experts == 0)


def expected_balanced(scenario: ScenarioSpec, program: StepProgram) -> RoutingView:
    """Expected balanced routing in closed form, with moesim.routing's byte and node rules.

    Every source rank sends T k / E copies to each expert (T tokens per rank, top-k of E);
    distinct tokens use moesim.routing's occupancy estimate with x = k / E: a rank holding
    s experts gets T (1 - (1 - k/E)^s) distinct tokens from each source, a node of n such
    ranks T (1 - (1 - k/E)^(n s)). Capacity with CF >= 1 keeps every balanced copy.
    """
    from moesim.routing.step import (
        dispatch_bytes_per_token,
        node_of_ep_rank,
        tokens_per_source_rank,
    )
    model, ctx = scenario.model_spec, program.context
    layers, m, ep = len(program.moe_layers), ctx.num_micro_batches, ctx.ep
    e, k = model.num_experts, model.top_k
    slots = e // ep
    t = float(tokens_per_source_rank(scenario))
    nodes = node_of_ep_rank(scenario)
    num_nodes = int(nodes.max()) + 1
    per_node = slots * int(np.bincount(nodes).max())
    miss = 1.0 - k / e
    tokens = np.full((layers, m, ep, slots), t * k * ep / e)
    traffic = np.full((layers, 1, ep, ep), t * k * slots / e)
    distinct = np.full((layers, 1, ep, ep), t * (1.0 - miss ** slots))
    node = np.full((layers, 1, ep, num_nodes), t * (1.0 - miss ** per_node))
    return RoutingView(
        tokens, traffic, float(dispatch_bytes_per_token(scenario)),
        float(model.hidden_size * dtype_bytes("bf16")),  # combine in BF16, as moesim.routing
        np.zeros((layers, m)), "expected balanced (closed form)",
        draw_of_micro_batch=np.zeros(m, dtype=np.int64), node_tokens=node,
        distinct_tokens=distinct)
