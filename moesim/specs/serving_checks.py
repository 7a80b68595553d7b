"""Cross-field consistency of a serving scenario: roles that fit the topology, layouts the
model divides, dispatchers the fabric runs, KV caches that hold a request.

Messages follow DESIGN.md: the dotted field first, the value, what it must satisfy, the valid
choices. The KV-cache check here covers an explicit ``kv_cache_tokens``; a cache sized from
HBM is checked when it is sized (moesim.memory.serving, InfeasibleError).
"""

from __future__ import annotations

from moesim.errors import SpecError
from moesim.specs.checks import _check_node_limit, _valid, check_fp8_units
from moesim.specs.hardware import FatTreeSpec, NVSwitchDomainSpec
from moesim.specs.model import GQAAttentionSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.serving import (
    AggregatedDeploymentSpec,
    FixedLengthSpec,
    RoleSpec,
    ServingWorkloadSpec,
    TraceArrivalSpec,
)
from moesim.specs.serving_view import role_scenario


def check_serving(s: ScenarioSpec) -> None:
    """Raise SpecError on the first inconsistency of a serving scenario."""
    wl, dep = s.workload, s.deployment
    assert isinstance(wl, ServingWorkloadSpec)
    if dep is None:
        raise SpecError("deployment is required with workload.kind='serving': give kind "
                        "aggregated (role) or disaggregated (prefill, decode)", field="deployment")
    if "parallelism" in s.model_fields_set:
        raise SpecError("parallelism: a serving scenario gives each role's layout under "
                        "deployment (attention_tp_degree, attention_dp_degree, "
                        "expert_parallel_degree); drop parallelism", field="parallelism")
    topo = s.topology_spec
    if s.devices > topo.num_devices:
        raise SpecError(f"num_devices={s.devices} exceeds the {topo.num_devices} devices of "
                        f"topology {topo.name!r}", field="num_devices")
    roles = dep.roles
    longest = _longest_request(s)
    for name, role in roles.items():
        _check_role(s, name, role, longest)
    used = sum(r.num_devices for name, r in roles.items() if _serves(wl, dep, name))
    if used > s.devices:
        shown = " + ".join(f"{n} {r.num_devices}" for n, r in roles.items())
        raise SpecError(f"deployment: the roles need {used} devices ({shown}) but the scenario "
                        f"has {s.devices}; lower num_instances or raise num_devices",
                        field="deployment")
    check_fp8_units(s)


def _serves(wl: ServingWorkloadSpec, dep: object, name: str) -> bool:
    """Whether role ``name`` takes part (an isolated phase leaves the other role idle)."""
    if isinstance(dep, AggregatedDeploymentSpec):
        return True
    return not ((wl.isolate == "prefill" and name == "decode")
                or (wl.isolate == "decode" and name == "prefill"))


def _longest_request(s: ScenarioSpec) -> tuple[int, int]:
    """(longest prompt, longest output) the workload can send, in tokens."""
    wl = s.workload
    assert isinstance(wl, ServingWorkloadSpec)
    if isinstance(wl.arrival, TraceArrivalSpec):
        from moesim.specs.serving_trace import read_trace

        tr = read_trace(wl.arrival.path, limit=wl.num_requests)
        return int(tr.input_tokens.max()), int(tr.output_tokens.max())
    assert wl.input_length is not None and wl.output_length is not None
    return _max_len(wl.input_length), _max_len(wl.output_length)


def _max_len(spec: object) -> int:
    return spec.tokens if isinstance(spec, FixedLengthSpec) else int(spec.max_tokens)  # type: ignore[attr-defined]


def _check_role(s: ScenarioSpec, name: str, role: RoleSpec, longest: tuple[int, int]) -> None:
    f = f"deployment.{name}" if name != "aggregated" else "deployment.role"
    model, topo = s.model_spec, s.topology_spec
    tp, devices = role.attention_tp_degree, role.devices_per_instance
    att = model.attention
    if att.num_heads % tp:
        raise SpecError(f"{f}.attention_tp_degree={tp} must divide model.attention.num_heads="
                        f"{att.num_heads}; valid: {_valid(att.num_heads)}",
                        field=f"{f}.attention_tp_degree")
    if isinstance(att, GQAAttentionSpec) and att.num_kv_heads % tp and tp % att.num_kv_heads:
        raise SpecError(f"{f}.attention_tp_degree={tp}: model.attention.num_kv_heads="
                        f"{att.num_kv_heads} must divide it or be divisible by it (KV heads are "
                        "split, or replicated when fewer)", field=f"{f}.attention_tp_degree")
    per = topo.devices_per_domain
    if not (devices <= per and per % devices == 0 or devices % per == 0):
        raise SpecError(f"{f}: an instance of attention_tp_degree x attention_dp_degree = "
                        f"{devices} devices must divide or be a multiple of the {per}-device "
                        "scale-up domain (instances tile whole nodes)", field=f"{f}.attention_dp_degree")
    _check_experts(s, f, role)
    _check_dispatcher(s, f, role)
    if role.speculative is not None:
        if model.num_mtp_layers < 1:
            raise SpecError(f"{f}.speculative: model {model.name!r} has no MTP module "
                            "(num_mtp_layers=0) to draft with", field=f"{f}.speculative")
        if name == "prefill":
            raise SpecError(f"{f}.speculative: the prefill role does not decode; give it to "
                            "the decode role", field=f"{f}.speculative")
    need = longest[0] if name == "prefill" else longest[0] + longest[1]
    if role.kv_cache_tokens is not None and role.kv_cache_tokens < need:
        what = "prompt" if name == "prefill" else "prompt + output"
        raise SpecError(f"{f}.kv_cache_tokens={role.kv_cache_tokens} cannot hold one request: "
                        f"the longest {what} is {need} tokens; raise it or shorten the requests",
                        field=f"{f}.kv_cache_tokens")


def _check_experts(s: ScenarioSpec, f: str, role: RoleSpec) -> None:
    model, ep, devices = s.model_spec, role.ep, role.devices_per_instance
    if not model.is_moe:
        if role.expert_parallel_degree not in (None, 1):
            raise SpecError(f"{f}.expert_parallel_degree={ep}: model {model.name!r} has no "
                            "experts; drop it", field=f"{f}.expert_parallel_degree")
        if role.num_redundant_experts:
            raise SpecError(f"{f}.num_redundant_experts: model {model.name!r} has no experts",
                            field=f"{f}.num_redundant_experts")
        return
    if devices % ep:
        raise SpecError(f"{f}.expert_parallel_degree={ep} must divide the instance's "
                        f"{devices} devices; valid: {_valid(devices)}",
                        field=f"{f}.expert_parallel_degree")
    slots = model.num_experts + role.num_redundant_experts
    if slots % ep:
        what = (f"model.num_experts={model.num_experts}" if not role.num_redundant_experts else
                f"model.num_experts + {f}.num_redundant_experts = {slots}")
        raise SpecError(f"{f}.expert_parallel_degree={ep} must divide {what}; valid: "
                        f"{_valid(slots)}", field=f"{f}.expert_parallel_degree")
    if role.num_redundant_experts > model.num_experts:
        raise SpecError(f"{f}.num_redundant_experts={role.num_redundant_experts} exceeds "
                        f"model.num_experts={model.num_experts}", field=f"{f}.num_redundant_experts")
    etp = devices // ep
    if model.expert_ffn_hidden_size % etp:
        raise SpecError(f"{f}: MoE TP = devices / expert_parallel_degree = {etp} must divide "
                        f"model.expert_ffn_hidden_size={model.expert_ffn_hidden_size}",
                        field=f"{f}.expert_parallel_degree")
    try:
        _check_node_limit(role_scenario(s, role), model.num_experts, model.top_k, ep)
    except SpecError as exc:
        raise SpecError(f"{exc.bare} (in {f})", field=exc.field) from None


def _check_dispatcher(s: ScenarioSpec, f: str, role: RoleSpec) -> None:
    if not s.model_spec.is_moe or not role.dispatcher.startswith("deepep") or role.ep == 1:
        return
    tiers = s.topology_spec.tiers
    if not isinstance(tiers[0], NVSwitchDomainSpec):
        raise SpecError(f"{f}.dispatcher={role.dispatcher!r}: DeepEP runs on NVSwitch domains "
                        f"(topology tier 0 is {tiers[0].kind!r}); use dispatcher: nccl",
                        field=f"{f}.dispatcher")
    multi_node = role.devices_per_instance > s.topology_spec.devices_per_domain
    if multi_node and not any(isinstance(t, FatTreeSpec) for t in tiers[1:]):
        raise SpecError(f"{f}.dispatcher={role.dispatcher!r}: DeepEP across nodes needs RDMA "
                        "NICs (a fat_tree tier); use dispatcher: nccl", field=f"{f}.dispatcher")
