"""One serving role seen as the layers below know a scenario: a training-shaped ScenarioSpec.

The cost providers, the routing draws, the memory overheads and the cluster's process groups
all take a :class:`ScenarioSpec` with a layout and a token count. A serving role's instance is
such a layout (attention TP, EP over the instance, MoE TP for the rest, DeepEP or NCCL), and
one iteration on one DP-attention rank is such a token count, so :func:`role_scenario` writes
both into a scenario the lower layers price without learning that a server asked: its
``num_devices`` is one instance, its workload one micro-batch of ``tokens`` tokens per
DP-attention rank in the role's dtype (``sequence_length = tokens``; with attention TP and
sequence parallelism each device routes ``tokens / TP`` of them, as SGLang's DP attention and
Megatron's MoE parallel folding do).
"""

from __future__ import annotations

from moesim.specs.parallelism import DeepEPAllToAllSpec, DirectAllToAllSpec, ParallelismSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.serving import RoleSpec, ServingWorkloadSpec
from moesim.specs.workload import TrainingWorkloadSpec


def role_parallelism(role: RoleSpec) -> ParallelismSpec:
    """The instance's layout: attention TP x DP-attention, EP over ``ep`` devices, the rest of
    each expert split by MoE TP (ETP = devices / EP); DeepEP (normal and low-latency alike:
    they run on the same groups) or NCCL's direct all-to-all."""
    devices = role.devices_per_instance
    a2a = (DeepEPAllToAllSpec(num_sms=role.dispatcher_num_sms)
           if role.dispatcher.startswith("deepep") else DirectAllToAllSpec())
    return ParallelismSpec(
        tensor_parallel_degree=role.attention_tp_degree, sequence_parallel=True,
        expert_parallel_degree=role.ep, expert_tensor_parallel_degree=max(1, devices // role.ep),
        zero_stage=0, micro_batch_size=1, all_to_all=a2a, overlap_grad_reduce=False,
        overlap_param_gather=False)


def role_scenario(s: ScenarioSpec, role: RoleSpec, tokens: int = 1) -> ScenarioSpec:
    """``s``'s topology, model, routing and calibration with one instance of ``role`` as its
    devices and one iteration of ``tokens`` tokens per DP-attention rank as its workload."""
    wl = s.workload
    assert isinstance(wl, ServingWorkloadSpec), "role_scenario needs a serving scenario"
    devices = role.devices_per_instance
    train = TrainingWorkloadSpec(
        global_batch_size=role.attention_dp_degree, sequence_length=max(1, int(tokens)),
        dtype=wl.dtype, fp8_recipe=wl.fp8_recipe, param_dtype="bf16", grad_dtype="bf16",
        master_weights=False, host_op_us=role.host_op_us)
    routing = s.routing.model_copy(update={"num_redundant_experts": role.num_redundant_experts})
    return s.model_copy(update={
        "num_devices": devices, "parallelism": role_parallelism(role), "workload": train,
        "routing": routing, "deployment": None, "measured": ()})


def with_tokens(role_scn: ScenarioSpec, tokens: int) -> ScenarioSpec:
    """``role_scn`` with ``tokens`` tokens per DP-attention rank in its one micro-batch."""
    wl = role_scn.workload
    return role_scn.model_copy(update={
        "workload": wl.model_copy(update={"sequence_length": max(1, int(tokens))})})
