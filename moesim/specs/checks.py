"""Cross-field consistency of a resolved scenario, with DESIGN.md's message format."""

from __future__ import annotations

import math

from moesim.errors import SpecError
from moesim.specs.parallelism import DualPipeScheduleSpec, InterleavedScheduleSpec
from moesim.specs.routing import BalancedLoadSpec, ExpertChoiceRouterSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.work import WorkEstimate, check_work, estimate

_INT32 = 2**31  # routing keeps per-rank token counts as int32 (routing.step._assemble)
_DIVISOR_SEARCH = 10**5  # trial division bound: exact for n <= 1e10, ample for any real layout


def divisors(n: int) -> list[int]:
    """Divisors of ``n`` in ascending order (exact for n <= 1e10, by trial up to sqrt(n))."""
    if n < 1:
        return []
    small, large = [], []
    for d in range(1, min(math.isqrt(n), _DIVISOR_SEARCH) + 1):
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
    return small + large[::-1]


def _valid(n: int, limit: int = 12) -> str:
    ds: list[int | str] = list(divisors(n))
    shown = ds if len(ds) <= limit else ds[: limit - 1] + ["...", ds[-1]]
    return ", ".join(str(d) for d in shown)


def check_fp8_units(s: ScenarioSpec) -> None:
    """An FP8 workload needs an accelerator with FP8 tensor cores (training and serving)."""
    acc = s.topology_spec.accelerator
    if s.workload.dtype == "fp8" and acc.fp8_dense_tflops is None:
        raise SpecError(f"workload.dtype='fp8' but accelerator {acc.name!r} has no FP8 units; "
                        "use bf16", field="workload.dtype")


def check_scenario(s: ScenarioSpec) -> None:
    """Raise SpecError on the first inconsistency; the message says how to fix it."""
    if s.workload.kind == "serving":
        from moesim.specs.serving_checks import check_serving

        check_serving(s)
        return
    if s.deployment is not None:
        raise SpecError("deployment is for serving scenarios (workload.kind: serving); a "
                        "training scenario gives its layout under parallelism",
                        field="deployment")
    topo, model, par, wl, rt = s.topology_spec, s.model_spec, s.parallelism, s.workload, s.routing
    n = s.devices
    if n > topo.num_devices:
        raise SpecError(f"num_devices={n} exceeds the {topo.num_devices} devices of topology "
                        f"{topo.name!r}; lower num_devices or enlarge the topology "
                        "(topology_overrides)", field="num_devices")
    tp, cp, pp = par.tensor_parallel_degree, par.context_parallel_degree, par.pipeline_parallel_degree
    ep, etp = par.expert_parallel_degree, par.expert_tensor_parallel_degree
    mp = tp * cp * pp
    if n % mp:
        raise SpecError(
            f"parallelism: tensor x context x pipeline = {tp} x {cp} x {pp} = {mp} must divide "
            f"num_devices={n} (data parallel is the quotient); valid products: {_valid(n)}",
            field="parallelism")
    dp = n // mp
    attn = model.attention
    if attn.num_heads % tp:
        raise SpecError(f"parallelism.tensor_parallel_degree={tp} must divide "
                        f"model.attention.num_heads={attn.num_heads}; valid: {_valid(attn.num_heads)}",
                        field="parallelism.tensor_parallel_degree")
    if attn.num_kv_heads % tp:
        raise SpecError(f"parallelism.tensor_parallel_degree={tp} must divide "
                        f"model.attention.num_kv_heads={attn.num_kv_heads}; valid: "
                        f"{_valid(attn.num_kv_heads)}", field="parallelism.tensor_parallel_degree")
    _check_pipeline(s, pp)
    _check_experts(s, ep, etp, tp, cp, dp)
    mbs = par.micro_batch_size
    if wl.global_batch_size % (mbs * dp):
        raise SpecError(
            f"workload.global_batch_size={wl.global_batch_size} must be a multiple of "
            f"micro_batch_size x data_parallel = {mbs} x {dp} = {mbs * dp}; change one of them",
            field="workload.global_batch_size")
    m = wl.global_batch_size // (mbs * dp)
    if isinstance(par.pipeline_schedule, InterleavedScheduleSpec) and m % pp:
        raise SpecError(f"parallelism.pipeline_schedule: interleaved 1F1B needs micro-batches ({m}) "
                        "to be a multiple of "
                        f"parallelism.pipeline_parallel_degree={pp} (as Megatron requires)",
                        field="parallelism.pipeline_schedule")
    if isinstance(par.pipeline_schedule, DualPipeScheduleSpec) and (pp % 2 or m % 2):
        # DSV3 §3.2.1: DualPipe needs pipeline stages and micro-batches divisible by 2.
        raise SpecError("parallelism.pipeline_schedule: DualPipe needs an even "
                        f"pipeline_parallel_degree ({pp}) and an even "
                        f"number of micro-batches ({m}) (DeepSeek-V3 §3.2.1)",
                        field="parallelism.pipeline_schedule")
    if isinstance(par.pipeline_schedule, DualPipeScheduleSpec) and m < 2 * pp:
        # deepseek-ai/DualPipe dualpipe.py: `assert num_chunks >= num_ranks * 2`.
        raise SpecError("parallelism.pipeline_schedule: DualPipe needs at least 2 x "
                        f"pipeline_parallel_degree = {2 * pp} "
                        f"micro-batches per step, got {m} (deepseek-ai/DualPipe asserts it); "
                        "raise workload.global_batch_size or lower the pipeline degree",
                        field="parallelism.pipeline_schedule")
    if wl.sequence_length % (2 * cp if cp > 1 else 1):
        raise SpecError(f"workload.sequence_length={wl.sequence_length} must be a multiple of "
                        f"2 x context_parallel_degree = {2 * cp} (load-balanced causal CP)",
                        field="workload.sequence_length")
    limit = model.max_position_embeddings
    if limit is not None and wl.sequence_length > limit:
        raise SpecError(f"workload.sequence_length={wl.sequence_length} is longer than the "
                        f"model's max_position_embeddings={limit}; lower the sequence length or "
                        "raise model.max_position_embeddings (a context-extended model)",
                        field="workload.sequence_length")
    check_fp8_units(s)
    if isinstance(rt.router, ExpertChoiceRouterSpec) and rt.capacity_factor is None:
        raise SpecError("routing.router.kind='expert_choice' needs routing.capacity_factor "
                        "(each expert takes tokens x CF / experts)", field="routing.capacity_factor")
    if rt.pad_to_capacity and rt.capacity_factor is None:
        raise SpecError("routing.pad_to_capacity=true needs routing.capacity_factor",
                        field="routing.pad_to_capacity")
    if model.is_moe:
        _check_routing_sizes(s)
    check_work(scenario_work(s))


def tokens_per_source(s: ScenarioSpec) -> int:
    """Tokens one EP rank routes per micro-batch (routing.step.tokens_per_source_rank)."""
    par = s.parallelism
    tokens = par.micro_batch_size * s.workload.sequence_length // par.context_parallel_degree
    if par.sequence_parallel and par.tensor_parallel_degree > 1:
        tokens //= par.tensor_parallel_degree
    return tokens


def _check_routing_sizes(s: ScenarioSpec) -> None:
    """A capacity that can bind, chunks that hold tokens, and counts that fit 32 bits."""
    model, rt, par = s.model_spec, s.routing, s.parallelism
    e, k, ep = model.num_experts, model.top_k, par.expert_parallel_degree
    t = tokens_per_source(s)
    if t < 1:
        raise SpecError("workload.sequence_length: each EP rank routes micro_batch_size x "
                        "sequence_length / CP / TP = "
                        f"{par.micro_batch_size} x {s.workload.sequence_length} / "
                        f"{par.context_parallel_degree} / {par.tensor_parallel_degree} = 0 tokens "
                        "per micro-batch; lengthen the sequence or lower the degrees",
                        field="workload.sequence_length")
    choice = isinstance(rt.router, ExpertChoiceRouterSpec)
    limit = e if choice else e / k
    if rt.capacity_factor is not None and rt.capacity_factor > limit:
        # capacity = ceil(T k CF / E) copies per (source, expert); a token takes an expert at
        # most once, so above CF = E / k (E for expert choice) the capacity never binds.
        what = "num_experts" if choice else "num_experts / top_k"
        raise SpecError(f"routing.capacity_factor={rt.capacity_factor:g} exceeds {what} = "
                        f"{limit:g}, above which no expert can drop a token; use null "
                        f"(dropless) or at most {limit:g}", field="routing.capacity_factor")
    if par.moe_overlap_chunks > t:
        raise SpecError(f"parallelism.moe_overlap_chunks={par.moe_overlap_chunks} exceeds the "
                        f"{t} tokens each EP rank routes per micro-batch; every chunk needs a "
                        "token", field="parallelism.moe_overlap_chunks")
    _check_node_limit(s, e, k, ep)
    _check_domains(s, ep)
    slots = (e + rt.num_redundant_experts) // ep
    copies = ep * t * min(k, slots)
    if rt.pad_to_capacity and rt.capacity_factor is not None:
        cap = math.ceil(t * (1 if choice else k) * rt.capacity_factor / e)
        copies = max(copies, ep * cap * slots)
    if copies >= _INT32:
        raise SpecError("workload.sequence_length: one EP rank could receive "
                        f"{copies:,} token copies per micro-batch "
                        f"(EP {ep} x {t:,} tokens x experts per rank), more than routing's "
                        "32-bit counts hold; lower micro_batch_size or sequence_length per "
                        "context-parallel rank", field="workload.sequence_length")


def _check_node_limit(s: ScenarioSpec, e: int, k: int, ep: int) -> None:
    """Node-limited routing (routing.step.routing_plan): equal EP ranks per node, and the
    allowed nodes hold at least top_k experts."""
    m, rt = s.routing.max_nodes_per_token, s.routing
    if m is None or isinstance(rt.router, ExpertChoiceRouterSpec):
        return
    etp, per_node = s.parallelism.expert_tensor_parallel_degree, s.topology_spec.devices_per_domain
    nodes = [(r * etp) // per_node for r in range(ep)]
    g = nodes[-1] + 1
    if m >= g:
        return
    counts = [nodes.count(i) for i in range(g)]
    if e % g or len(set(counts)) > 1:
        raise SpecError(f"routing.max_nodes_per_token={m}: the EP group spans {g} nodes "
                        "unevenly; node-limited routing needs the same number of EP ranks and "
                        "experts per node", field="routing.max_nodes_per_token")
    if m * (e // g) < k:
        raise SpecError(f"routing.max_nodes_per_token={m} reaches only {m * (e // g)} experts "
                        f"({e // g} per node), fewer than model.top_k={k}",
                        field="routing.max_nodes_per_token")


def _check_domains(s: ScenarioSpec, ep: int) -> None:
    """Hierarchical and DeepEP all-to-all need every EP group spread evenly over the scale-up
    domains it touches (network.alltoall refuses it later, naming no field). EP rank e of the
    group at offset b sits on device b + e x ETP (cluster.groups: grid pp x edp x ep x etp)."""
    kind = s.parallelism.all_to_all.kind
    sms = s.topology_spec.accelerator.num_sms
    if kind == "deepep" and sms is not None and s.parallelism.all_to_all.num_sms >= sms:
        raise SpecError(f"parallelism.all_to_all.num_sms={s.parallelism.all_to_all.num_sms} "
                        f"leaves none of the accelerator's {sms} SMs to compute; give DeepEP "
                        f"fewer (DeepSeek-V3 uses 20 of 132)", field="parallelism.all_to_all.num_sms")
    if kind not in ("hierarchical", "deepep") or ep == 1:
        return
    par, d = s.parallelism, s.topology_spec.devices_per_domain
    etp, pp = par.expert_tensor_parallel_degree, par.pipeline_parallel_degree
    per_stage, width = s.devices // pp, ep * etp
    if width <= d and d % width == 0 or width % d == 0:
        return  # groups tile the domains: each lies in one domain or covers whole ones
    residues = {(st * per_stage + j * width + t) % d for st in range(min(pp, d))
                for j in range(min(per_stage // width, d)) for t in range(etp)}
    for r in sorted(residues):
        counts = [0] * ((r + (ep - 1) * etp) // d + 1)
        for i in range(ep):
            counts[(r + i * etp) // d] += 1
        used = [c for c in counts if c]
        if len(set(used)) > 1:
            raise SpecError(f"parallelism.all_to_all.kind={kind!r} needs every EP group spread "
                            f"evenly over the {d}-device scale-up domains, but EP x ETP = {width} "
                            f"ranks fall {' + '.join(map(str, used))} per domain; make EP x ETP "
                            f"a divisor or a multiple of {d}, or use kind: direct",
                            field="parallelism.all_to_all")


def scenario_work(s: ScenarioSpec, micro_batches: int | None = None,
                  draws: int | None = None) -> WorkEstimate:
    """The work of one step of ``s`` (``micro_batches``/``draws``: the routing command's)."""
    model, rt = s.model_spec, s.routing
    per_expert = (rt.capacity_factor is not None or isinstance(rt.load, BalancedLoadSpec)
                  or isinstance(rt.router, ExpertChoiceRouterSpec)
                  or (rt.max_nodes_per_token is not None and rt.num_redundant_experts > 0))
    return estimate(micro_batches or s.num_micro_batches, model.num_layers,
                    model.num_moe_layers, s.parallelism.expert_parallel_degree,
                    model.num_experts, rt.num_redundant_experts, per_expert, draws)


def _check_pipeline(s: ScenarioSpec, pp: int) -> None:
    model, par = s.model_spec, s.parallelism
    vpp = par.num_virtual_stages
    chunks = pp * vpp
    if vpp > 1 and pp == 1:
        raise SpecError("parallelism.pipeline_schedule: interleaved 1F1B needs "
                        "pipeline_parallel_degree > 1", field="parallelism.pipeline_schedule")
    split = par.pipeline_layer_split
    if split is not None:
        # A chunk may hold no transformer layer (Megatron's embedding- or loss-only stages,
        # --account-for-embedding/loss-in-pipeline-split): its embedding or head still runs.
        if len(split) != chunks or sum(split) != model.num_layers or min(split) < 0:
            shown = list(split) if len(split) <= 16 else f"[{len(split)} entries]"
            raise SpecError(
                f"parallelism.pipeline_layer_split={shown} must have {chunks} entries "
                f"(pipeline x virtual stages), each >= 0, summing to model.num_layers="
                f"{model.num_layers}", field="parallelism.pipeline_layer_split")
    elif model.num_layers % chunks:
        raise SpecError(
            f"parallelism: pipeline x virtual stages = {pp} x {vpp} = {chunks} must divide "
            "model.num_layers="
            f"{model.num_layers}, or give parallelism.pipeline_layer_split; valid: "
            f"{_valid(model.num_layers)}", field="parallelism.pipeline_parallel_degree")


def _check_experts(s: ScenarioSpec, ep: int, etp: int, tp: int, cp: int, dp: int) -> None:
    model, rt = s.model_spec, s.routing
    if not model.is_moe:
        if ep > 1 or etp > 1:
            raise SpecError(f"parallelism.expert_parallel_degree={ep}: model {model.name!r} has "
                            "no experts; use 1", field="parallelism.expert_parallel_degree")
        return
    slots = model.num_experts + rt.num_redundant_experts
    if slots % ep:
        what = (f"model.num_experts={model.num_experts}" if not rt.num_redundant_experts else
                f"model.num_experts + routing.num_redundant_experts = {slots}")
        raise SpecError(f"parallelism.expert_parallel_degree={ep} must divide {what}; "
                        f"valid: {_valid(slots)}", field="parallelism.expert_parallel_degree")
    if rt.num_redundant_experts and rt.num_redundant_experts > model.num_experts:
        raise SpecError(f"routing.num_redundant_experts={rt.num_redundant_experts} exceeds "
                        f"model.num_experts={model.num_experts}", field="routing.num_redundant_experts")
    grid = tp * cp * dp
    if grid % (ep * etp):
        raise SpecError(
            f"parallelism: expert x expert-tensor = {ep} x {etp} = {ep * etp} must divide "
            "tensor x context x "
            f"data = {tp} x {cp} x {dp} = {grid} (MoE parallel folding); valid: {_valid(grid)}",
            field="parallelism.expert_parallel_degree")
    if model.expert_ffn_hidden_size % etp:
        raise SpecError(f"parallelism.expert_tensor_parallel_degree={etp} must divide "
                        f"model.expert_ffn_hidden_size={model.expert_ffn_hidden_size}",
                        field="parallelism.expert_tensor_parallel_degree")
    if tp > 1 and ep > 1 and not s.parallelism.sequence_parallel:
        raise SpecError("parallelism.sequence_parallel must be true when tensor and expert "
                        "parallelism are combined (Megatron requires it)",
                        field="parallelism.sequence_parallel")
    if rt.max_nodes_per_token is not None and rt.max_nodes_per_token < 1:
        raise SpecError("routing.max_nodes_per_token must be >= 1", field="routing.max_nodes_per_token")
