"""The result of one simulated training step: a frozen pydantic model, stable JSON.

Everything is SI: seconds, bytes, FLOP/s. ``to_json`` is deterministic (sorted keys, fixed
float formatting by the json module) so equal inputs give byte-identical files.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, field_validator

from moesim.errors import require_pandas
from moesim.results.provenance import ProvenanceResult
from moesim.results.trace import TraceEventResult, TraceResult, trace_from_events
from moesim.specs.base import FrozenSpec

# 2: the trace is a TraceResult (every op, column by column); 1 had a list of events, which
# still loads.
SCHEMA_VERSION = 2

__all__ = ["TraceEventResult", "TraceResult"]


class BreakdownResult(FrozenSpec):
    """Where the step goes, in seconds on the critical rank class (the busiest one; its idle
    time is the bubble). Sums to ~step_time_s."""

    compute_s: dict[str, float] = Field(
        default_factory=dict, description="by kind: attention, dense_mlp, experts, router, ...")
    exposed_communication_s: dict[str, float] = Field(
        default_factory=dict, description="by kind: tp, cp, ep_dispatch, ep_combine, dp, pp, ...")
    pipeline_bubble_s: float = 0.0
    pipeline_phases_s: dict[str, float] = Field(
        default_factory=dict, description="DualPipe only: the rank's time in unpaired forward "
        "chunks (forward), unpaired backward chunks (backward), deferred weight-gradient "
        "chunks (weight) and overlapped forward-backward pairs (overlapped)")
    imbalance_wait_s: float = 0.0
    host_wait_s: float = Field(
        default=0.0, description="device idle waiting for the host to issue ops (docs/engine.md, "
        "Host)")
    optimizer_s: float = 0.0
    other_s: float = 0.0


class MemoryRankResult(FrozenSpec):
    """Peak bytes on one rank class with the breakdown that makes it."""

    breakdown_bytes: dict[str, float]
    peak_bytes: float
    capacity_bytes: float
    headroom_bytes: float
    fits: bool


class RankClassMemoryResult(FrozenSpec):
    rank_class: str = Field(description="e.g. 'pp0' or 'pp3/hot-ep'")
    multiplicity: int = Field(ge=1, description="ranks that share this class")
    memory: MemoryRankResult


class RoutingLayerResult(FrozenSpec):
    layer: int
    tokens_per_expert: list[float] = Field(
        description="copies routed to each logical expert, mean over micro-batches, after top-k "
        "and before capacity")
    max_tokens_per_rank: float = Field(
        description="copies the busiest EP rank computes (kept + padding, replicas split), mean "
        "over micro-batches")
    mean_tokens_per_rank: float
    drop_fraction: float
    intra_node_bytes_per_rank: float
    inter_node_bytes_per_rank: float


class RoutingResult(FrozenSpec):
    layers: list[RoutingLayerResult] = Field(default_factory=list)
    drop_fraction: float = 0.0
    imbalance_max_over_mean: float = 1.0
    dispatch_traffic_bytes: list[list[float]] = Field(
        default_factory=list, description="EP x EP, one representative layer and micro-batch")


class LinkUsageResult(FrozenSpec):
    link: str
    tier: str
    capacity_bytes_per_s: float
    utilization: float = Field(ge=0.0, description="busy fraction of the step")
    bytes: float


class SimulationResult(FrozenSpec):
    """One step of one scenario."""

    schema_version: int = SCHEMA_VERSION
    scenario: str
    fidelity: Literal["des", "analytic"]
    num_devices: int
    step_time_s: float
    tokens_per_step: int
    tokens_per_s: float
    tokens_per_s_per_device: float
    model_flops_per_step: float
    model_tflops_per_device: float
    mfu: float = Field(description="model FLOP/s per device over dense BF16 (or dtype) peak")
    breakdown: BreakdownResult
    memory: list[RankClassMemoryResult] = Field(default_factory=list)
    fits_memory: bool
    most_loaded_rank_class: str = ""
    routing: RoutingResult = Field(default_factory=RoutingResult)
    links: list[LinkUsageResult] = Field(default_factory=list)
    trace: TraceResult = Field(default_factory=TraceResult,
                               description="every op interval of the step (DES only)")
    cost_sources: dict[str, int] = Field(
        default_factory=dict, description="op prices by the path that gave them: measured, "
        "derived (from measurements by a documented rule), roofline, network; a routed op "
        "counts one price per (layer, routing draw, EP rank)")
    compute_time_by_source_s: dict[str, float] = Field(
        default_factory=dict, description="the critical rank class's compute time (mean rank) "
        "by the path that priced it: measured, derived, roofline")

    @property
    def measured_compute_share(self) -> float:
        """Share of compute time priced from measurements (measured or derived), 0..1."""
        total = sum(self.compute_time_by_source_s.values())
        good = sum(v for k, v in self.compute_time_by_source_s.items()
                   if k in ("measured", "derived"))
        return good / total if total > 0 else 0.0
    parallelism: dict[str, int | str | bool] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    provenance: ProvenanceResult | None = Field(
        default=None, description="the resolved scenario, overrides, moesim version and "
        "calibration table of the run (moesim run and moesim.simulate set it)")

    @field_validator("trace", mode="before")
    @classmethod
    def _events_as_trace(cls, v: Any) -> Any:
        """A list of events (schema 1, tests, hand-made results) becomes a TraceResult."""
        if isinstance(v, (list, tuple)):
            return trace_from_events(v)
        return v

    def to_json(self, *, include_trace: bool = True) -> str:
        data = self.model_dump(mode="json", exclude=None if include_trace else {"trace"})
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SimulationResult:
        return cls.model_validate_json(text)

    def flat_metrics(self) -> dict[str, Any]:
        """The step's numbers as one flat mapping (SI units, unit in the key): the headline
        scalars, ``breakdown.*`` seconds, the tightest memory headroom, and ``parallelism.*``."""
        out: dict[str, Any] = {k: getattr(self, k) for k in (
            "scenario", "fidelity", "num_devices", "step_time_s", "tokens_per_step",
            "tokens_per_s", "tokens_per_s_per_device", "model_flops_per_step",
            "model_tflops_per_device", "mfu", "fits_memory")}
        b = self.breakdown
        for group, parts in (("compute", b.compute_s),
                             ("exposed_communication", b.exposed_communication_s)):
            out |= {f"breakdown.{group}.{k}_s": v for k, v in sorted(parts.items())}
        out |= {"breakdown.pipeline_bubble_s": b.pipeline_bubble_s,
                "breakdown.imbalance_wait_s": b.imbalance_wait_s,
                "breakdown.host_wait_s": b.host_wait_s,
                "breakdown.optimizer_s": b.optimizer_s, "breakdown.other_s": b.other_s}
        if self.memory:
            out["peak_bytes"] = max(m.memory.peak_bytes for m in self.memory)
            out["min_headroom_bytes"] = min(m.memory.headroom_bytes for m in self.memory)
        out["drop_fraction"] = self.routing.drop_fraction
        out["imbalance_max_over_mean"] = self.routing.imbalance_max_over_mean
        out |= {f"parallelism.{k}": v for k, v in sorted(self.parallelism.items())}
        return out

    def to_dataframe(self) -> Any:
        """A one-row pandas DataFrame of :meth:`flat_metrics` (rows of several results
        concatenate with ``pandas.concat``). Needs pandas."""
        pd = require_pandas("SimulationResult.to_dataframe()")
        return pd.DataFrame([self.flat_metrics()])
