"""build_program(scenario): every rank class's op lists and schedule for one training step.

A rank class is one pipeline stage: all devices of a stage run the same program (TP, CP, EP
and DP peers move in lockstep), so a stage is simulated once with multiplicity devices / PP.
"""

from __future__ import annotations

from dataclasses import dataclass

from moesim.program.context import (
    ProgramContext,
    layer_param_shards,
    layer_split,
    make_context,
)
from moesim.program.layers import (
    OpLists,
    attention_block,
    dense_mlp_block,
    moe_block,
    norm_bytes,
)
from moesim.program.ops import (
    CollectiveShape,
    GemmShape,
    MemoryShape,
    Op,
    SendShape,
    comm,
    compute,
)
from moesim.program.schedule import Action, schedule_for
from moesim.specs.scenario import ScenarioSpec
from moesim.units import dtype_bytes


@dataclass(frozen=True)
class ChunkProgram:
    """One model chunk (a stage's share of layers, or one virtual stage of it)."""

    chunk: int
    stage: int
    virtual: int
    layers: tuple[int, ...]
    forward: tuple[Op, ...]
    backward_input: tuple[Op, ...]
    backward_weight: tuple[Op, ...]
    recompute: tuple[Op, ...]
    grad_sync: tuple[Op, ...]  # data-parallel gradient buckets, one per layer, backward order
    param_gather: tuple[Op, ...]  # distributed-optimizer parameter all-gathers, once per step
    send_forward: Op | None  # activation to the next chunk
    send_backward: Op | None  # gradient to the previous chunk
    # ZeRO-3 / FSDP per-use all-gathers, one per FSDP unit (layer, embedding, LM head) in
    # forward order: run before every forward and every backward of every micro-batch.
    param_regather: tuple[Op, ...] = ()


@dataclass(frozen=True)
class StageProgram:
    """A rank class: one pipeline stage, its chunks, its action order and its optimizer."""

    stage: int
    multiplicity: int
    chunks: tuple[int, ...]
    actions: tuple[Action, ...]  # empty for DualPipe: schedule.rank_program orders it
    optimizer: tuple[Op, ...]
    local_params: float  # parameters whose optimizer state this rank updates

    @property
    def name(self) -> str:
        return f"pp{self.stage}"


@dataclass(frozen=True)
class StepProgram:
    """The whole step: chunks in pipeline order and one program per rank class."""

    context: ProgramContext
    schedule: str
    chunks: tuple[ChunkProgram, ...]
    stages: tuple[StageProgram, ...]
    moe_layers: tuple[int, ...]
    num_devices: int

    @property
    def num_micro_batches(self) -> int:
        return self.context.num_micro_batches


def build_program(scenario: ScenarioSpec, *, with_actions: bool = True) -> StepProgram:
    """The op DAG of one optimizer step of ``scenario`` (no costs).

    ``with_actions=False`` leaves each stage's action order empty (the analytic fidelity
    uses the pipeline formula, not the order).
    """
    ctx = make_context(scenario)
    split = layer_split(ctx)
    moe_layers = tuple(ctx.model.moe_layer_indices)
    moe_pos = {layer: i for i, layer in enumerate(moe_layers)}
    chunks = tuple(_chunk(ctx, c, split[c], moe_pos) for c in range(ctx.num_chunks))
    kind = scenario.parallelism.pipeline_schedule.kind
    stages = []
    for s in range(ctx.pp):
        own = tuple(c.chunk for c in chunks if c.stage == s)
        extra = 1 if ctx.parallelism.overlap_moe_expert_parallel_comm else 0
        actions = (tuple(schedule_for(kind, s, ctx.pp, ctx.num_micro_batches, ctx.num_virtual,
                                      extra)) if with_actions else ())
        local = _local_params(ctx, [layer for c in own for layer in chunks[c].layers], s)
        stages.append(StageProgram(
            stage=s, multiplicity=scenario.devices // ctx.pp, chunks=own, actions=actions,
            optimizer=_optimizer_ops(scenario, local), local_params=local))
    return StepProgram(context=ctx, schedule=kind, chunks=chunks, stages=tuple(stages),
                       moe_layers=moe_layers, num_devices=scenario.devices)


def _chunk(ctx: ProgramContext, c: int, layers: list[int], moe_pos: dict[int, int]) -> ChunkProgram:
    ops = OpLists(fp8=ctx.gemm_dtype == "fp8")
    first, last = c == 0, c == ctx.num_chunks - 1
    if first:
        _embedding(ops, ctx)
    for layer in layers:
        attention_block(ops, ctx, layer)
        if layer in moe_pos:
            moe_block(ops, ctx, layer, moe_pos[layer])
        else:
            dense_mlp_block(ops, ctx, layer)
    if last:
        _lm_head(ops, ctx)
        for depth in range(ctx.model.num_mtp_layers):
            _mtp(ops, ctx, depth, moe_pos)
    act = ctx.activation_bytes(ctx.tokens_sp)
    return ChunkProgram(
        chunk=c, stage=c % ctx.pp, virtual=c // ctx.pp, layers=tuple(layers),
        forward=tuple(ops.forward), backward_input=tuple(reversed(ops.backward_input)),
        backward_weight=tuple(reversed(ops.backward_weight)),
        recompute=tuple(_recompute_ops(ctx, ops)),
        grad_sync=tuple(_grad_buckets(ctx, layers + _mtp_layers(ctx, last), first, last)),
        param_gather=tuple(_param_gather(ctx, layers + _mtp_layers(ctx, last))),
        param_regather=tuple(_param_regather(ctx, layers + _mtp_layers(ctx, last), first,
                                             last)),
        send_forward=None if last else comm(
            f"chunk{c}.send_fwd", "pp", "comm_pp", SendShape(act, "next"), blocking=False),
        send_backward=None if first else comm(
            f"chunk{c}.send_bwd", "pp", "comm_pp", SendShape(act, "prev"), blocking=False))


def _mtp_layers(ctx: ProgramContext, last: bool) -> list[int]:
    """The MTP modules' layer indices on the last chunk (none elsewhere)."""
    return [mtp_layer(ctx, d) for d in range(ctx.model.num_mtp_layers)] if last else []


def _embedding(ops: OpLists, ctx: ProgramContext) -> None:
    ops.memory("embedding", "embedding", 2.0 * ctx.activation_bytes(ctx.tokens))
    if ctx.tp > 1:  # vocab-parallel embedding: partial sums reduced (scattered with SP)
        ops.collective("embedding.tp_rs", "tp", "reduce_scatter", "tp",
                       ctx.activation_bytes(ctx.tokens))


def _lm_head(ops: OpLists, ctx: ProgramContext, prefix: str = "") -> None:
    ops.memory(f"{prefix}final_norm", "norm", 2.0 * ctx.activation_bytes(ctx.tokens_sp))
    if ctx.tp > 1:
        ops.collective(f"{prefix}lm_head.tp_ag", "tp", "all_gather", "tp",
                       ctx.activation_bytes(ctx.tokens))
    vocab = max(1, ctx.model.vocab_size // ctx.tp)
    ops.linear(f"{prefix}lm_head", "lm_head", ctx.tokens, ctx.hidden, vocab)
    # Cross-entropy over fp32 logits: read logits, write probabilities / gradients.
    ops.memory(f"{prefix}loss", "lm_head", 2.0 * ctx.tokens * vocab * dtype_bytes("fp32"))


def mtp_layer(ctx: ProgramContext, depth: int) -> int:
    """The layer index an MTP module's transformer layer is built and named with."""
    return ctx.model.num_layers + depth


def _mtp(ops: OpLists, ctx: ProgramContext, depth: int, moe_pos: dict[int, int]) -> None:
    """One multi-token-prediction module after the LM head (DeepSeek-V3 section 2.2,
    Megatron-Core's MultiTokenPredictionLayer): the next token's embedding and the hidden
    state normed and concatenated, a 2h -> h projection, a transformer layer of the last
    layer's kind, and the shared output head with its loss. Its MoE layer is priced with the
    last MoE layer's routing draws (the same experts' statistics)."""
    h, t, layer = ctx.hidden, ctx.tokens, mtp_layer(ctx, depth)
    p = f"mtp{depth}"
    ops.memory(f"{p}.embedding", "embedding", 2.0 * ctx.activation_bytes(t))
    ops.memory(f"{p}.norms", "norm", 2.0 * norm_bytes(ctx, ctx.tokens_sp))
    ops.linear(f"{p}.eh_proj", "mtp", t, 2 * h, max(1, h // ctx.tp))
    last = ctx.model.num_layers - 1
    attention_block(ops, ctx, layer)
    if last in moe_pos:
        moe_block(ops, ctx, layer, moe_pos[last])
    else:
        dense_mlp_block(ops, ctx, layer)
    _lm_head(ops, ctx, prefix=f"{p}.")


# Selective recompute: which forward ops each Megatron-Core --recompute-modules name re-runs,
# read from the op names the layer builders give (docs/engine.md).
SELECTIVE_DEFAULT = ("core_attn", "layernorm", "mla_up_proj", "moe_act")


def recomputed_by(module: str, name: str) -> bool:
    """Whether forward op ``name`` is re-run when ``module`` is recomputed."""
    parts = name.split(".")
    block = parts[1] if len(parts) > 1 else ""
    what = ".".join(parts[2:])
    if module == "core_attn":
        return block == "attn" and what == "core"
    if module == "layernorm":
        return what == "norm" or what == "norms"
    if module == "mla_up_proj":
        return block == "attn" and what.split(".")[0] in ("q_up", "kv_up")
    if module == "moe_act":
        return block == "moe" and what == "experts_act"
    if module == "mlp":
        return block == "mlp" and what != "norm"
    if module == "shared_experts":
        return block == "moe" and what.startswith("shared")
    return module == "moe" and block == "moe" and what != "norm"


def _recompute_ops(ctx: ProgramContext, ops: OpLists) -> list[Op]:
    """Ops re-run before the backward: the whole forward (full), or the forward ops of the
    selected modules (selective)."""
    par = ctx.parallelism
    if par.recompute == "none":
        return []
    modules = SELECTIVE_DEFAULT if par.recompute_modules is None else par.recompute_modules
    chosen = [o for o in ops.forward if par.recompute == "full"
              or any(recomputed_by(m, o.name) for m in modules)]
    return [Op(o.name + ".recompute", "recompute" if o.is_compute else o.kind, o.stream,
               o.shape, o.blocking) for o in chosen]


def _bucket(ctx: ProgramContext, name: str, axis: str, params: float) -> Op:
    """One gradient bucket of ``params`` parameters over ``axis`` (dp or edp)."""
    op = "all_reduce" if ctx.parallelism.effective_zero_stage == 0 else "reduce_scatter"
    return comm(name, axis, "comm_dp", CollectiveShape(op, axis, params * ctx.grad_bytes),  # type: ignore[arg-type]
                blocking=False)


def _grad_buckets(ctx: ProgramContext, layers: list[int], first: bool, last: bool) -> list[Op]:
    """Data-parallel gradient buckets in the order the backward finishes them."""
    emb = ctx.model.vocab_size * ctx.hidden / ctx.tp
    out = []
    if ctx.dp > 1:
        if last and not ctx.model.tied_embeddings:
            out.append(_bucket(ctx, "lm_head.dp_grad", "dp", emb))
        out += [_bucket(ctx, f"L{layer}.dp_grad", "dp", layer_param_shards(ctx, layer)[0])
                for layer in reversed(layers)]
        if first:
            out.append(_bucket(ctx, "embedding.dp_grad", "dp", emb))
    return out + _expert_grad_sync(ctx, layers)


def _expert_grad_sync(ctx: ProgramContext, layers: list[int]) -> list[Op]:
    """Expert-weight gradients reduce over the expert-data-parallel group (one bucket each)."""
    return [_bucket(ctx, f"L{layer}.edp_grad", "edp", layer_param_shards(ctx, layer)[1])
            for layer in reversed(layers)
            if layer_param_shards(ctx, layer)[1] and ctx.edp > 1]


def _param_gather(ctx: ProgramContext, layers: list[int]) -> list[Op]:
    """Distributed-optimizer (ZeRO 1/2) parameter all-gathers, once per step after the update.

    ZeRO-3 / FSDP gathers per use instead (:func:`_param_regather`).
    """
    if ctx.parallelism.effective_zero_stage in (0, 3) or ctx.dp == 1:
        return []
    out = []
    for layer in layers:
        dense, expert = layer_param_shards(ctx, layer)
        out.append(comm(f"L{layer}.dp_param_ag", "dp_param", "comm_dp", CollectiveShape(
            "all_gather", "dp", dense * ctx.param_bytes), blocking=False))
        if expert and ctx.edp > 1:
            out.append(comm(f"L{layer}.edp_param_ag", "dp_param", "comm_dp", CollectiveShape(
                "all_gather", "edp", expert * ctx.param_bytes), blocking=False))
    return out


def _fsdp_gather(ctx: ProgramContext, name: str, axis: str, params: float) -> Op:
    return comm(name, "dp_param", "comm_dp", CollectiveShape(
        "all_gather", axis, params * ctx.param_bytes), blocking=False)  # type: ignore[arg-type]


def _param_regather(ctx: ProgramContext, layers: list[int], first: bool, last: bool) -> list[Op]:
    """ZeRO-3 / FSDP2 per-use all-gathers of each FSDP unit, in forward order.

    FSDP2 ``fully_shard`` with ``reshard_after_forward=True`` (its default) frees a unit's
    gathered parameters after its forward and gathers them again for its backward, in every
    micro-batch (PyTorch FSDP2 docs, ``fully_shard``). Dense parameters are sharded over DP;
    expert weights are sharded by EP and gathered only over the expert-data-parallel group
    when EDP > 1 (NeMo Automodel's ``ep_shard`` mesh: dp_size / ep_size). The embedding and
    the LM head are units of their own.
    """
    if ctx.parallelism.effective_zero_stage != 3 or (ctx.dp == 1 and ctx.edp == 1):
        return []
    emb = ctx.model.vocab_size * ctx.hidden / ctx.tp
    out = []
    if first and ctx.dp > 1:
        out.append(_fsdp_gather(ctx, "embedding.fsdp_ag", "dp", emb))
    for layer in layers:
        dense, expert = layer_param_shards(ctx, layer)
        if ctx.dp > 1:
            out.append(_fsdp_gather(ctx, f"L{layer}.fsdp_ag", "dp", dense))
        if expert and ctx.edp > 1:
            out.append(_fsdp_gather(ctx, f"L{layer}.fsdp_edp_ag", "edp", expert))
    if last and ctx.dp > 1 and not ctx.model.tied_embeddings:
        out.append(_fsdp_gather(ctx, "lm_head.fsdp_ag", "dp", emb))
    return out


def _local_params(ctx: ProgramContext, layers: list[int], stage: int) -> float:
    """Parameters whose optimizer step this rank runs (sharded over DP / EDP with ZeRO >= 1)."""
    shard = ctx.parallelism.effective_zero_stage >= 1
    total = 0.0
    for layer in layers + ([mtp_layer(ctx, d) for d in range(ctx.model.num_mtp_layers)]
                           if stage == ctx.pp - 1 else []):
        dense, expert = layer_param_shards(ctx, layer)
        total += dense / (ctx.dp if shard else 1) + expert / (ctx.edp if shard else 1)
    emb = ctx.model.vocab_size * ctx.hidden / ctx.tp
    if stage == 0:
        total += emb / (ctx.dp if shard else 1)
    if stage == ctx.pp - 1 and not ctx.model.tied_embeddings:
        total += emb / (ctx.dp if shard else 1)
    return total


def _optimizer_ops(scenario: ScenarioSpec, local_params: float) -> tuple[Op, ...]:
    """Adam (or SGD) update as one bandwidth-bound pass over this rank's parameter shard.

    Bytes per parameter: read the gradient, the master weight and each optimizer moment,
    write the master weight, the moments and the low-precision model weight (mixed-precision
    Adam as in the ZeRO paper; moments in ``optimizer_state_dtype``).
    """
    wl = scenario.workload
    master = dtype_bytes("fp32") if wl.master_weights else dtype_bytes(wl.param_dtype)
    moments = 2 if wl.optimizer == "adam" else 0
    state = dtype_bytes(wl.optimizer_state_dtype)
    per_param = (dtype_bytes(wl.grad_dtype) + 2.0 * master + 2.0 * moments * state
                 + (dtype_bytes(wl.param_dtype) if wl.master_weights else 0.0))
    return (compute("optimizer.step", "optimizer",
                    MemoryShape(bytes_moved=local_params * per_param, kind="optimizer")),)


def gemm_ops(ops: tuple[Op, ...]) -> list[GemmShape]:
    """The dense GEMM shapes among ``ops`` (for tests and FLOP accounting)."""
    return [o.shape for o in ops if isinstance(o.shape, GemmShape)]
