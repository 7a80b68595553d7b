"""Deployment search for a serving scenario: which split of N nodes into prefill and decode
instances, at which EP, serves the scenario's request stream with the most goodput per device;
and the fewest nodes that meet its SLOs.

Candidates keep every field of the scenario's roles (dispatcher, TBO, CUDA graphs, batch and
KV limits, attention TP) and change what a deployment search decides:

- disaggregated: prefill nodes p = 1 .. N-1 and decode nodes N - p; per role, instances of
  one size: the role's own instance size (in nodes) where it divides the role's nodes, or one
  instance over all of them; EP = the instance's devices, redundant experts the fewest
  (from the role's own count up) that make E + R divisible by EP;
- aggregated: instances of each size (in nodes) that divides N.

Each candidate runs the serving DES (moesim.serving) on the scenario's workload, by default
cut to ``requests`` requests so a search stays within minutes; its score is goodput (requests
meeting both SLOs per second) per device, or output tokens/s per device without SLOs. No cost
logic lives here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from moesim.errors import InfeasibleError, MoesimError, SpecError
from moesim.serving import simulate_serving
from moesim.specs.checks import check_scenario
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.serving import (
    AggregatedDeploymentSpec,
    DisaggregatedDeploymentSpec,
    RoleSpec,
    ServingWorkloadSpec,
    TraceArrivalSpec,
)

DEFAULT_REQUESTS = 1000
MAX_CANDIDATES = 400


@dataclass(frozen=True)
class ServingCandidate:
    label: str
    scenario: ScenarioSpec


@dataclass(frozen=True)
class ServingPlanRow:
    label: str
    num_devices: int
    score: float  # goodput (or output tokens/s) per device
    goodput_requests_per_s: float | None
    slo_attainment: float | None
    output_tokens_per_s: float
    ttft_p90_s: float
    tpot_p90_s: float
    layout: dict[str, dict[str, int | str | bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class ServingPlanResult:
    nodes: int
    objective: str
    ranked: list[ServingPlanRow]
    considered: int
    excluded: Counter[str]

    @property
    def best(self) -> ServingPlanRow | None:
        return self.ranked[0] if self.ranked else None


def _redundant(num_experts: int, ep: int, start: int) -> int | None:
    """The fewest redundant experts >= ``start`` making num_experts + R divisible by EP."""
    for r in range(start, num_experts + 1):
        if (num_experts + r) % ep == 0:
            return r
    return None


def _role(role: RoleSpec, nodes: int, instance_nodes: int, per: int,
          num_experts: int) -> RoleSpec | None:
    devices = instance_nodes * per
    if devices % role.attention_tp_degree:
        return None
    red = role.num_redundant_experts
    if num_experts:
        red = _redundant(num_experts, devices, role.num_redundant_experts)
        if red is None:
            return None
    return role.model_copy(update={
        "num_instances": nodes // instance_nodes,
        "attention_dp_degree": devices // role.attention_tp_degree,
        "expert_parallel_degree": None, "num_redundant_experts": red})


def _sizes(role: RoleSpec, nodes: int, per: int) -> list[int]:
    own = max(1, role.devices_per_instance // per)
    return sorted({k for k in (own, nodes) if nodes % k == 0})


def serving_candidates(s: ScenarioSpec, nodes: int) -> list[ServingCandidate]:
    """Every deployment of ``nodes`` nodes the search tries (module docstring)."""
    dep, per = s.deployment, s.topology_spec.devices_per_domain
    experts = s.model_spec.num_experts
    out: list[ServingCandidate] = []
    if isinstance(dep, AggregatedDeploymentSpec):
        for k in [k for k in range(1, nodes + 1) if nodes % k == 0]:
            role = _role(dep.role, nodes, k, per, experts)
            if role is not None:
                out.append(_candidate(s, AggregatedDeploymentSpec(role=role), nodes,
                                      f"{nodes // k} x {k}-node instances"))
        return out
    assert isinstance(dep, DisaggregatedDeploymentSpec)
    for p in range(1, nodes):
        d = nodes - p
        for kp in _sizes(dep.prefill, p, per):
            for kd in _sizes(dep.decode, d, per):
                pre = _role(dep.prefill, p, kp, per, experts)
                dec = _role(dep.decode, d, kd, per, experts)
                if pre is None or dec is None:
                    continue
                label = (f"prefill {p} node{'s' if p > 1 else ''} ({p // kp} x EP{kp * per}), "
                         f"decode {d} node{'s' if d > 1 else ''} ({d // kd} x EP{kd * per})")
                out.append(_candidate(s, DisaggregatedDeploymentSpec(prefill=pre, decode=dec),
                                      nodes, label))
    return out[:MAX_CANDIDATES]


def _candidate(s: ScenarioSpec, dep: object, nodes: int, label: str) -> ServingCandidate:
    n = nodes * s.topology_spec.devices_per_domain
    return ServingCandidate(label, s.model_copy(update={"deployment": dep, "num_devices": n}))


def _cut(s: ScenarioSpec, requests: int | None) -> ScenarioSpec:
    wl = s.workload
    assert isinstance(wl, ServingWorkloadSpec)
    if requests is None or isinstance(wl.arrival, TraceArrivalSpec) and wl.num_requests is None:
        return s
    n = min(requests, wl.num_requests) if wl.num_requests else requests
    return s.model_copy(update={"workload": wl.model_copy(update={"num_requests": n})})


def plan_serving(s: ScenarioSpec, nodes: int, *,
                 requests: int | None = DEFAULT_REQUESTS) -> ServingPlanResult:
    """Rank the deployments of ``nodes`` nodes for ``s``'s workload (module docstring)."""
    if nodes < 1 or nodes * s.topology_spec.devices_per_domain > s.topology_spec.num_devices:
        raise SpecError(f"moesim plan: {nodes} nodes do not fit topology "
                        f"{s.topology_spec.name!r} ({s.topology_spec.num_devices} devices)",
                        field="--devices")
    wl = s.workload
    assert isinstance(wl, ServingWorkloadSpec)
    objective = "goodput per device" if wl.slo is not None else "output tokens/s per device"
    rows: list[ServingPlanRow] = []
    excluded: Counter[str] = Counter()
    cands = serving_candidates(_cut(s, requests), nodes)
    for c in cands:
        try:
            check_scenario(c.scenario)
            r = simulate_serving(c.scenario)
        except (SpecError, InfeasibleError, MoesimError) as exc:
            excluded[_reason(exc)] += 1
            continue
        per_device = (r.goodput_requests_per_s if r.goodput_requests_per_s is not None
                      else r.output_tokens_per_s) / r.num_devices
        rows.append(ServingPlanRow(
            label=c.label, num_devices=r.num_devices, score=per_device,
            goodput_requests_per_s=r.goodput_requests_per_s, slo_attainment=r.slo_attainment,
            output_tokens_per_s=r.output_tokens_per_s, ttft_p90_s=r.ttft.p90_s,
            tpot_p90_s=r.tpot.p90_s, layout={x.role: x.layout for x in r.roles}))
    rows.sort(key=lambda x: (-x.score, x.label))
    return ServingPlanResult(nodes, objective, rows, len(cands), excluded)


def _reason(exc: Exception) -> str:
    if isinstance(exc, InfeasibleError):
        return f"infeasible ({exc.reason})"
    return "invalid layout"


@dataclass(frozen=True)
class ServingCapacityResult:
    nodes: int | None
    plan: ServingPlanResult | None
    tried: dict[int, float | None]  # nodes -> best SLO attainment


def serving_capacity(s: ScenarioSpec, *, attainment: float = 0.9, max_nodes: int | None = None,
                     requests: int | None = DEFAULT_REQUESTS) -> ServingCapacityResult:
    """The fewest nodes whose best deployment meets the SLOs for at least ``attainment`` of
    the scenario's requests at its arrival rate (nodes tried in increasing order)."""
    wl = s.workload
    assert isinstance(wl, ServingWorkloadSpec)
    if wl.slo is None:
        raise SpecError("workload.slo: a capacity question needs SLOs (ttft_ms, tpot_ms)",
                        field="workload.slo")
    per = s.topology_spec.devices_per_domain
    limit = max_nodes or s.topology_spec.num_devices // per
    start = 2 if isinstance(s.deployment, DisaggregatedDeploymentSpec) else 1
    tried: dict[int, float | None] = {}
    for n in range(start, limit + 1):
        res = plan_serving(s, n, requests=requests)
        best = max((r.slo_attainment or 0.0 for r in res.ranked), default=None)
        tried[n] = best
        if best is not None and best >= attainment:
            ranked = sorted(res.ranked, key=lambda r: (-(r.slo_attainment or 0.0), -r.score))
            return ServingCapacityResult(n, ServingPlanResult(
                n, res.objective, ranked, res.considered, res.excluded), tried)
    return ServingCapacityResult(None, None, tried)
