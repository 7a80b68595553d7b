"""The routing draws the engine needs, as numpy arrays indexed [MoE layer, micro-batch, ...].

Uses ``moesim.routing``: the step's draws (``draw_step_routing``) or, for the analytic
fidelity, expected routing (``expected_balanced_routing`` where it applies). Dense models get
a placeholder balanced view (they have no MoE layers to read it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moesim.program.builder import StepProgram
from moesim.routing import closed_form_applies, draw_step_routing, expected_balanced_routing
from moesim.specs.scenario import ScenarioSpec


@dataclass(frozen=True)
class RoutingView:
    """What routing decided, as the engine prices it.

    ``tokens`` [L, M, EP, slots]: token copies each physical expert slot of each EP rank
    computes, after capacity (dropped copies do no expert work; padding copies do) and split
    over replicas; ``traffic_tokens`` [L, D, EP, EP]: copies sent i -> j; ``expert_tokens``
    [L, M, E]: copies routed to each logical expert before capacity (for reports).
    Micro-batches with the same ``draw_of_micro_batch`` have the same per-rank rows (the
    engine prices routed shapes once per draw and relies on it)."""

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
    expert_tokens: np.ndarray | None = None  # [L, M, E] per logical expert, before capacity

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
    """The step's routing draws from moesim.routing (balanced placeholder for dense models).

    ``expected=True`` (the analytic fidelity): expected loads instead of the step's draws.
    Balanced token-choice routing without drops is routing's closed form
    (:func:`expected_balanced`); any other load model is drawn once per layer for one
    micro-batch and that draw stands for every micro-batch (``num_draws_per_layer=1``).
    """
    if not program.moe_layers:
        return balanced_routing(program)
    m = program.num_micro_batches
    if expected and closed_form_applies(scenario):
        return expected_balanced(scenario, program)
    if expected:
        r = draw_step_routing(scenario, num_micro_batches=1, num_draws_per_layer=1)
        return _view(r, program, np.zeros(m, dtype=np.int64), "moesim.routing (one draw)")
    r = draw_step_routing(scenario, num_micro_batches=m)
    return _view(r, program, None, "moesim.routing")


def _view(r: object, program: StepProgram, tile: np.ndarray | None, source: str) -> RoutingView:
    """A RoutingView over a StepRouting; ``tile`` maps each micro-batch to a drawn one."""
    tpe = np.asarray(r.tokens_per_expert, dtype=np.float64)  # type: ignore[attr-defined]
    slots = np.asarray(r.slot_tokens, dtype=np.float64)  # type: ignore[attr-defined]
    dropped = np.asarray(r.dropped_tokens, dtype=np.float64)  # type: ignore[attr-defined]
    draw_of = np.asarray(r.micro_batch_draw, dtype=np.int64)  # type: ignore[attr-defined]
    if tile is not None:
        tpe, slots, dropped, draw_of = tpe[:, tile], slots[:, tile], dropped[:, tile], draw_of[tile]
    return RoutingView(
        tokens=slots, expert_tokens=tpe,
        traffic_tokens=np.asarray(r.traffic_tokens, dtype=np.float64),  # type: ignore[attr-defined]
        bytes_per_token_dispatch=float(r.bytes_per_token_dispatch),  # type: ignore[attr-defined]
        bytes_per_token_combine=float(r.bytes_per_token_combine),  # type: ignore[attr-defined]
        dropped_fraction=dropped / max(1.0, float(tpe.sum(axis=-1).mean())),
        source=source, raw=r, draw_of_micro_batch=draw_of,
        node_tokens=np.asarray(r.distinct_node_tokens, dtype=np.float64),  # type: ignore[attr-defined]
        distinct_tokens=np.asarray(r.distinct_tokens, dtype=np.float64))  # type: ignore[attr-defined]


def expected_balanced(scenario: ScenarioSpec, program: StepProgram) -> RoutingView:
    """moesim.routing's expected balanced routing, as the same view for every micro-batch."""
    r = expected_balanced_routing(scenario)
    layers, m = len(program.moe_layers), program.context.num_micro_batches
    assert r.traffic_tokens.shape[0] == layers, "program and model disagree on MoE layers"
    tokens = np.broadcast_to(r.recv_tokens_per_expert[:, None], (layers, m)
                             + r.recv_tokens_per_expert.shape[1:]).copy()
    return RoutingView(
        tokens, r.traffic_tokens[:, None], r.bytes_per_token_dispatch, r.bytes_per_token_combine,
        np.zeros((layers, m)), "expected balanced (closed form)",
        draw_of_micro_batch=np.zeros(m, dtype=np.int64),
        node_tokens=r.distinct_node_tokens[:, None], distinct_tokens=r.distinct_tokens[:, None],
        expert_tokens=tokens.reshape(layers, m, -1))  # contiguous placement, no replicas
