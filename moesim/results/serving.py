"""The result of one simulated serving run: latencies, throughput, goodput, per-role detail.

Frozen pydantic like the training result, SI units (seconds, bytes), deterministic JSON.
Definitions (docs/serving.md, Results):

- TTFT: first token time minus arrival; TPOT: (last token time - first token time) /
  (output tokens - 1), per request with more than one output token; E2E: last token time
  minus arrival. Percentiles are numpy's linear interpolation over requests.
- throughput: tokens over the run's span (first arrival to last token), overall and per
  node of the deployment; per role, tokens that role processed over its active window (first
  iteration start to last iteration end) per node of the role, which under a saturating
  load is the role's capacity;
- goodput: the arrival rate times the share of requests meeting both SLOs (DistServe, OSDI
  2024, counts the rate served within the SLOs); for a burst, such requests per second of
  the span;
- mean in system: the time average of requests arrived and not finished over the span
  (Little's law: it equals the arrival rate times the mean E2E latency).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
from pydantic import Field

from moesim.specs.base import FrozenSpec

SCHEMA_VERSION = 1
MAX_REQUEST_ROWS = 100_000  # per-request rows kept in the result (the first, by arrival)
MAX_TIMELINE = 4_000  # iterations kept for the timeline figure


class LatencySummary(FrozenSpec):
    """Seconds over ``count`` samples (all 0 when there are none)."""

    count: int = 0
    mean_s: float = 0.0
    p50_s: float = 0.0
    p90_s: float = 0.0
    p99_s: float = 0.0
    max_s: float = 0.0


def summarize(values: np.ndarray) -> LatencySummary:
    """Mean, p50, p90, p99 and max of the finite ``values``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return LatencySummary()
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return LatencySummary(count=int(v.size), mean_s=float(v.mean()), p50_s=float(p50),
                          p90_s=float(p90), p99_s=float(p99), max_s=float(v.max()))


class ServingMemoryResult(FrozenSpec):
    """One device of a role (bytes)."""

    capacity_bytes: float
    weights_bytes: dict[str, float]
    kv_bytes_per_token: float
    kv_pool_bytes: float
    kv_tokens_per_rank: int
    workspace_bytes: float
    reserve_bytes: float
    peak_bytes: float
    max_sequences_per_rank: int = Field(description="requests of the workload's mean size one "
                                        "DP-attention rank holds at once")


class RoleResult(FrozenSpec):
    """One role (aggregated, prefill or decode) over the run."""

    role: str
    num_instances: int
    devices_per_instance: int
    num_devices: int
    num_nodes: float
    layout: dict[str, int | str | bool] = Field(default_factory=dict)
    iterations: int = 0
    busy_s: float = Field(default=0.0, description="iteration time summed over instances")
    window_s: float = Field(default=0.0, description="first iteration start to last end")
    utilization: float = Field(default=0.0, description="busy / (window x instances)")
    prefill_tokens: int = 0
    decode_tokens: float = 0.0
    input_tokens_per_s_per_node: float = 0.0
    output_tokens_per_s_per_node: float = 0.0
    mean_decode_batch_per_rank: float = 0.0
    iteration: LatencySummary = Field(default_factory=LatencySummary)
    breakdown_s: dict[str, float] = Field(
        default_factory=dict, description="mean seconds per iteration by op kind, before "
        "overlap (two micro-batches counted both), host the time the host added")
    memory: ServingMemoryResult | None = None
    peak_kv_tokens_per_rank: int = 0
    peak_running_per_rank: int = 0
    cost_sources: dict[str, int] = Field(default_factory=dict)


class IterationRecord(FrozenSpec):
    role: str
    instance: int
    start_s: float
    duration_s: float
    prefill_tokens: int
    decode_tokens: int


class RequestTable(FrozenSpec):
    """Per-request times (seconds; NaN never appears: unfinished rows are not kept)."""

    arrival_s: list[float] = Field(default_factory=list)
    first_token_s: list[float] = Field(default_factory=list)
    finish_s: list[float] = Field(default_factory=list)
    input_tokens: list[int] = Field(default_factory=list)
    output_tokens: list[int] = Field(default_factory=list)


class ServingResult(FrozenSpec):
    """One serving run of one scenario."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["serving"] = "serving"
    scenario: str
    description: str = ""
    deployment: str
    isolate: str = "none"
    num_devices: int
    num_nodes: float
    num_requests: int
    completed: int
    duration_s: float
    offered_rate_per_s: float
    ttft: LatencySummary
    tpot: LatencySummary
    e2e: LatencySummary
    input_tokens_per_s: float
    output_tokens_per_s: float
    input_tokens_per_s_per_node: float
    output_tokens_per_s_per_node: float
    slo_ttft_s: float | None = None
    slo_tpot_s: float | None = None
    slo_attainment: float | None = None
    goodput_requests_per_s: float | None = None
    mean_in_system: float
    roles: list[RoleResult]
    requests: RequestTable = Field(default_factory=RequestTable)
    timeline: list[IterationRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def role(self, name: str) -> RoleResult:
        return next(r for r in self.roles if r.role == name)

    @property
    def prefill(self) -> RoleResult:
        """The role that prefills (prefill or aggregated)."""
        return next(r for r in self.roles if r.role in ("prefill", "aggregated"))

    @property
    def decode(self) -> RoleResult:
        """The role that decodes (decode or aggregated)."""
        return next(r for r in self.roles if r.role in ("decode", "aggregated"))

    def to_json(self, *, include_requests: bool = True) -> str:
        data = self.model_dump(mode="json", exclude=None if include_requests else {
            "requests", "timeline"})
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServingResult:
        return cls.model_validate_json(text)

    def flat_metrics(self) -> dict[str, Any]:
        """The headline numbers as one flat mapping (unit in the key)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in (
            "scenario", "deployment", "num_devices", "num_requests", "completed", "duration_s",
            "input_tokens_per_s", "output_tokens_per_s", "input_tokens_per_s_per_node",
            "output_tokens_per_s_per_node", "goodput_requests_per_s", "slo_attainment",
            "mean_in_system")}
        for name in ("ttft", "tpot", "e2e"):
            s: LatencySummary = getattr(self, name)
            out |= {f"{name}.{k}": v for k, v in s.model_dump().items()}
        for r in self.roles:
            out |= {f"{r.role}.input_tokens_per_s_per_node": r.input_tokens_per_s_per_node,
                    f"{r.role}.output_tokens_per_s_per_node": r.output_tokens_per_s_per_node,
                    f"{r.role}.iteration.mean_s": r.iteration.mean_s,
                    f"{r.role}.utilization": r.utilization}
        return out


def mean_in_system(arrival: np.ndarray, finish: np.ndarray) -> float:
    """Time-average of requests arrived and not finished, over first arrival to last finish."""
    if arrival.size == 0:
        return 0.0
    span = float(finish.max() - arrival.min())
    if span <= 0:
        return 0.0
    return float((finish - arrival).sum() / span)


def goodput(ttft: np.ndarray, tpot: np.ndarray, slo_ttft_s: float, slo_tpot_s: float,
            span_s: float) -> tuple[float, float]:
    """(share of requests meeting both SLOs, such requests per second of ``span_s``). A
    request with one output token has no TPOT and meets the TPOT SLO."""
    ok = (ttft <= slo_ttft_s) & (~np.isfinite(tpot) | (tpot <= slo_tpot_s))
    n = int(ok.sum())
    return n / max(1, ttft.size), (n / span_s if span_s > 0 else 0.0)
