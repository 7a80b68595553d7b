"""Derived sizes one step program needs: tokens per rank, local head counts, layer split.

Everything here is arithmetic on the scenario (no costs): how many tokens a micro-batch puts
on one rank, how the layers fall onto (virtual) pipeline stages, how many parameters of each
layer one rank holds and reduces.
"""

from __future__ import annotations

from dataclasses import dataclass

from moesim.errors import SpecError
from moesim.specs.model import MLAAttentionSpec, MoEModelSpec
from moesim.specs.parallelism import ParallelismSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.units import dtype_bytes


@dataclass(frozen=True)
class ProgramContext:
    """Per-rank dimensions of one micro-batch under one layout (all counts, bytes per element)."""

    model: MoEModelSpec
    parallelism: ParallelismSpec
    micro_batch_size: int
    seq_local: int  # tokens of one sequence on one CP rank
    seq_full: int
    tp: int
    cp: int
    ep: int
    etp: int
    pp: int
    num_virtual: int
    dp: int
    edp: int
    num_micro_batches: int
    act_bytes: float  # bytes per activation element (BF16 activations even with FP8 GEMMs)
    param_bytes: float
    grad_bytes: float
    causal: bool
    experts_per_rank: int
    gemm_dtype: str = "bf16"  # the workload dtype the linear layers' GEMMs run in

    @property
    def tokens(self) -> int:
        """Tokens of one micro-batch on one rank before sequence-parallel splitting."""
        return self.micro_batch_size * self.seq_local

    @property
    def tokens_sp(self) -> int:
        """Tokens one rank holds between TP regions (sequence parallel splits them over TP)."""
        if self.tp > 1 and self.parallelism.sequence_parallel:
            return max(1, self.tokens // self.tp)
        return self.tokens

    @property
    def hidden(self) -> int:
        return self.model.hidden_size

    @property
    def num_chunks(self) -> int:
        """Model chunks along the pipeline: stages x virtual stages."""
        return self.pp * self.num_virtual

    def activation_bytes(self, tokens: int) -> float:
        """Bytes of one hidden-state tensor of ``tokens`` tokens."""
        return tokens * self.hidden * self.act_bytes


def make_context(scenario: ScenarioSpec) -> ProgramContext:
    """The per-rank dimensions of ``scenario`` (raises SpecError on an impossible split)."""
    par, wl, model = scenario.parallelism, scenario.workload, scenario.model_spec
    if wl.sequence_length % par.context_parallel_degree:
        raise SpecError(
            f"workload.sequence_length={wl.sequence_length} must be divisible by "
            f"parallelism.context_parallel_degree={par.context_parallel_degree}")
    m = scenario.num_micro_batches
    if m < 1:
        raise SpecError(
            f"workload.global_batch_size={wl.global_batch_size} gives no micro-batch per "
            f"data-parallel replica (DP={scenario.data_parallel_degree}, "
            f"micro_batch_size={par.micro_batch_size}); raise the batch or lower DP")
    return ProgramContext(
        model=model, parallelism=par, micro_batch_size=par.micro_batch_size,
        seq_local=wl.sequence_length // par.context_parallel_degree,
        seq_full=wl.sequence_length, tp=par.tensor_parallel_degree,
        cp=par.context_parallel_degree, ep=par.expert_parallel_degree,
        etp=par.expert_tensor_parallel_degree, pp=par.pipeline_parallel_degree,
        num_virtual=par.num_virtual_stages, dp=max(1, scenario.data_parallel_degree),
        edp=max(1, scenario.expert_data_parallel_degree), num_micro_batches=m,
        act_bytes=dtype_bytes("bf16") if wl.dtype == "fp8" else dtype_bytes(wl.dtype),
        param_bytes=dtype_bytes(wl.param_dtype), grad_bytes=dtype_bytes(wl.grad_dtype),
        causal=True, experts_per_rank=max(1, scenario.experts_per_rank), gemm_dtype=wl.dtype)


def layer_split(ctx: ProgramContext) -> list[list[int]]:
    """Layer indices of each model chunk, in pipeline order (chunk = virtual * PP + stage)."""
    n, chunks = ctx.model.num_layers, ctx.num_chunks
    split = ctx.parallelism.pipeline_layer_split
    if split is not None:
        if len(split) != chunks or sum(split) != n:
            raise SpecError(
                f"parallelism.pipeline_layer_split={list(split)} must have {chunks} entries "
                f"(PP x virtual stages) summing to model.num_layers={n}")
        counts = list(split)
    else:
        if n < chunks:
            raise SpecError(
                f"model.num_layers={n} is fewer than PP x virtual stages={chunks}; "
                "lower pipeline_parallel_degree or num_virtual_stages")
        base, extra = divmod(n, chunks)
        # Uneven splits put the extra layers on the middle chunks: the first holds the
        # embedding and the last the LM head and loss.
        start = (chunks - extra) // 2
        counts = [base + (1 if start <= c < start + extra else 0) for c in range(chunks)]
    out, i = [], 0
    for c in counts:
        out.append(list(range(i, i + c)))
        i += c
    return out


def local_heads(ctx: ProgramContext) -> tuple[int, int]:
    """(query heads, KV heads) on one TP rank."""
    att = ctx.model.attention
    heads = max(1, att.num_heads // ctx.tp)
    kv = max(1, att.num_kv_heads // ctx.tp)
    return heads, kv


def attention_projection_dims(ctx: ProgramContext) -> list[tuple[str, int, int]]:
    """(name, in_dim, out_dim) of every attention projection on one TP rank, in order."""
    att, h, tp = ctx.model.attention, ctx.hidden, ctx.tp
    if isinstance(att, MLAAttentionSpec):
        nh = att.num_heads // tp if att.num_heads >= tp else 1
        dims: list[tuple[str, int, int]] = []
        if att.q_lora_rank:
            dims += [("q_down", h, att.q_lora_rank), ("q_up", att.q_lora_rank, nh * att.head_dim)]
        else:
            dims.append(("q_proj", h, nh * att.head_dim))
        dims.append(("kv_down", h, att.kv_lora_rank + att.qk_rope_head_dim))
        dims.append(("kv_up", att.kv_lora_rank, nh * (att.qk_nope_head_dim + att.v_head_dim)))
        return dims
    heads, kv = local_heads(ctx)
    return [("qkv_proj", h, (heads + 2 * kv) * att.head_dim)]


def attention_out_dim(ctx: ProgramContext) -> int:
    """Input width of the attention output projection on one TP rank."""
    att = ctx.model.attention
    heads, _ = local_heads(ctx)
    if isinstance(att, MLAAttentionSpec):
        return heads * att.v_head_dim
    return heads * att.head_dim


def layer_param_shards(ctx: ProgramContext, layer: int) -> tuple[float, float]:
    """(dense, expert) parameters of ``layer`` one rank holds (dense / TP, experts / EP / ETP).

    Indices past the last layer are MTP modules: a copy of the last layer plus their 2h x h
    projection and three norms (MoEModelSpec.mtp_params)."""
    model = ctx.model
    if layer >= model.num_layers:
        dense, expert = model.layer_params(model.num_layers - 1)
        h = model.hidden_size
        dense += 2 * h * h + 3 * h
    else:
        dense, expert = model.layer_params(layer)
    return dense / ctx.tp, expert / (ctx.ep * ctx.etp)
