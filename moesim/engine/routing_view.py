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


def draw_routing(scenario: ScenarioSpec, program: StepProgram) -> RoutingView:
    """The step's routing draws from moesim.routing, or balanced routing if it is absent."""
    if not program.moe_layers:
        return balanced_routing(program)
    try:
        mod = importlib.import_module("moesim.routing")
        draw = mod.draw_step_routing
    except (ImportError, AttributeError):
        return balanced_routing(program)
    r = draw(scenario, num_micro_batches=program.num_micro_batches)
    tpe = np.asarray(r.tokens_per_expert, dtype=np.float64)  # [L, M, E]
    ep = program.context.ep
    layers, m, e = tpe.shape
    tokens = tpe.reshape(layers, m, ep, e // ep)
    return RoutingView(
        tokens=tokens, traffic_tokens=np.asarray(r.traffic_tokens, dtype=np.float64),
        bytes_per_token_dispatch=float(r.bytes_per_token_dispatch),
        bytes_per_token_combine=float(r.bytes_per_token_combine),
        dropped_fraction=np.asarray(r.dropped_tokens, dtype=np.float64) / max(
            1.0, float(tpe.sum(axis=-1).mean())),
        source="moesim.routing", raw=r,
        draw_of_micro_batch=np.asarray(r.micro_batch_draw, dtype=np.int64),
        node_tokens=np.asarray(r.distinct_node_tokens, dtype=np.float64),
        distinct_tokens=np.asarray(r.distinct_tokens, dtype=np.float64))
