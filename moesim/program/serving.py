"""Forward-only programs of one serving iteration on one DP-attention rank, in the op vocabulary.

A serving iteration runs the model forward once over the new tokens of a batch: the prompt
chunks being prefilled and one (or, with speculative decoding, 1 + draft) token per decoding
request. Everything but the attention core depends only on the number of new tokens ``T``
(GEMMs, norms, the router, dispatch and combine, the experts); the attention core depends on
what each token attends (a prompt chunk of q tokens over q + its prefix, a decode token over
its cached context). So a layer is built as its *body* (``layer_body``: the ops of T tokens
with the position where the core goes) and its *core* (``attention_core``: the ops of the
attention work), and the engine prices and memoizes each on its own.

The ops are the training vocabulary's (moesim.program.ops), built by the training layer
builders where the forward is the same (the MoE block and the dense MLP of
moesim.program.layers), with what inference does differently:

- no backward, no loss: only the forward list of each block is kept;
- MLA decode runs absorbed (DeepSeek-V2 section 2.1.3, FlashMLA): W_UK is folded into the
  query (a batched GEMM per head, qk_nope -> kv_lora_rank) and W_UV into the output
  (kv_lora_rank -> v_head_dim), the core attends the cached latent (each absorbed projection
  priced as one GEMM of its FLOPs and weight bytes); MLA prefill expands the
  latent of the chunk and its prefix to per-head K and V (kv_up over every attended token),
  as SGLang's and vLLM's MLA prefill paths do;
- FP8 GEMMs quantize their BF16 input once per GEMM: read 2 bytes, write 1 (DeepGEMM's
  per-token 1x128 groups; scales left out), a 3 bytes-per-element memory op instead of
  Transformer Engine's training cast-transpose; routed tokens arrive quantized by the FP8
  dispatch and the experts' second GEMM takes its input from the fused activation kernel;
- the LM head computes logits only for the rows that sample (a decode token, the last token
  of a prompt), and no loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moesim.program.context import ProgramContext, attention_out_dim, local_heads
from moesim.program.layers import OpLists, dense_mlp_block, moe_block, norm_bytes
from moesim.program.ops import (
    AttentionShape,
    CollectiveShape,
    GemmShape,
    GroupedMemoryShape,
    MemoryShape,
    Op,
    comm,
    compute,
)
from moesim.specs.model import MLAAttentionSpec, MoEModelSpec
from moesim.specs.parallelism import ParallelismSpec

FP8_QUANT_BYTES_PER_ELEMENT = 3.0  # read BF16 (2 B), write FP8 (1 B)


class ForwardOps(OpLists):
    """OpLists whose FP8 casts are inference's one-way quantization (module docstring)."""

    def cast(self, name: str, kind: str, fwd_elems: float, bwd_elems: float) -> None:
        if self.fp8:
            self.forward.append(compute(f"{name}.fp8_quant", "fp8_cast", MemoryShape(
                bytes_moved=FP8_QUANT_BYTES_PER_ELEMENT * fwd_elems, kind="cast")))

    def forward_ops(self) -> list[Op]:
        """The forward list without the routed FP8 casts (see the module docstring)."""
        return [o for o in self.forward
                if not (o.kind == "fp8_cast" and isinstance(o.shape, GroupedMemoryShape))]


def iteration_context(model: MoEModelSpec, parallelism: ParallelismSpec, tokens: int, *,
                      gemm_dtype: str, experts_per_rank: int) -> ProgramContext:
    """The per-device dimensions of ``tokens`` new tokens on one DP-attention rank (its TP
    group shares them; each device routes tokens / TP of them)."""
    return ProgramContext(
        model=model, parallelism=parallelism, micro_batch_size=1, seq_local=max(1, tokens),
        seq_full=max(1, tokens), tp=parallelism.tensor_parallel_degree, cp=1,
        ep=parallelism.expert_parallel_degree, etp=parallelism.expert_tensor_parallel_degree,
        pp=1, num_virtual=1, dp=1, edp=1, num_micro_batches=1, act_bytes=2.0, param_bytes=2.0,
        grad_bytes=2.0, causal=True, experts_per_rank=max(1, experts_per_rank),
        gemm_dtype=gemm_dtype)


@dataclass(frozen=True)
class AttentionWork:
    """What the attention core of one layer attends, on one DP-attention rank.

    ``decode``: (sequences, query tokens each, mean cached context) of the decoding requests;
    ``chunks``: (count, query tokens, attended tokens) groups of prompt chunks (a chunk of q
    tokens after a cached prefix p attends q + p)."""

    decode_batch: int = 0
    decode_queries: int = 1
    decode_context: int = 0
    chunks: tuple[tuple[int, int, int], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class LayerBody:
    """The ops of one layer that depend on the token count, with the core's position."""

    ops: tuple[Op, ...]
    core_at: int  # the attention core's ops go before ops[core_at]


def _linear(ops: ForwardOps, name: str, kind: str, m: int, k: int, n: int, batch: int = 1) -> None:
    ops.cast(name, kind, m * k * batch, 0)
    ops.forward.append(compute(name, kind, GemmShape(m=m, n=n, k=k, batch=batch)))


def attention_body(ops: ForwardOps, ctx: ProgramContext, layer: int) -> int:
    """Norm, (TP all-gather), the projections of every new token, [core], the output
    projection, (TP reduce-scatter), the residual; returns the core's position."""
    p, t, tsp, att = f"L{layer}.attn", ctx.tokens, ctx.tokens_sp, ctx.model.attention
    ops.memory(f"{p}.norm", "norm", norm_bytes(ctx, tsp))
    if ctx.tp > 1:
        ops.collective(f"{p}.tp_ag", "tp", "all_gather", "tp", ctx.activation_bytes(t))
    heads, kv = local_heads(ctx)
    if isinstance(att, MLAAttentionSpec):
        if att.q_lora_rank:
            _linear(ops, f"{p}.q_down", "attention", t, ctx.hidden, att.q_lora_rank)
            _linear(ops, f"{p}.q_up", "attention", t, att.q_lora_rank, heads * att.head_dim)
        else:
            _linear(ops, f"{p}.q_proj", "attention", t, ctx.hidden, heads * att.head_dim)
        _linear(ops, f"{p}.kv_down", "attention", t, ctx.hidden,
                att.kv_lora_rank + att.qk_rope_head_dim)
    else:
        _linear(ops, f"{p}.qkv_proj", "attention", t, ctx.hidden,
                (heads + 2 * kv) * att.head_dim)
    core_at = len(ops.forward)
    _linear(ops, f"{p}.out_proj", "attention", t, attention_out_dim(ctx), ctx.hidden)
    if ctx.tp > 1:
        ops.collective(f"{p}.tp_rs", "tp", "reduce_scatter", "tp", ctx.activation_bytes(t))
    ops.memory(f"{p}.residual", "elementwise", 3.0 * ctx.activation_bytes(tsp))
    return core_at


def attention_core(ctx: ProgramContext, layer: int, work: AttentionWork,
                   kv_cache_dtype: str | None = None) -> list[Op]:
    """The attention core of ``work`` on one device (the absorbed or expanded MLA GEMMs
    around it included; see the module docstring)."""
    att, p = ctx.model.attention, f"L{layer}.attn"
    heads, kv = local_heads(ctx)
    window = ctx.model.attention_window(layer)
    out: list[Op] = []
    mla = isinstance(att, MLAAttentionSpec)
    d, dv = att.head_dim, (att.v_head_dim if mla else att.head_dim)  # type: ignore[union-attr]
    if work.decode_batch:
        rows = work.decode_batch * work.decode_queries
        # One query row per decode token: a verify step's draft tokens are rows of their own
        # over the same cache (priced as a decode batch of rows, each over the context).
        # The absorbed projections are one batched GEMM over the heads each; priced as one
        # GEMM of the same FLOPs and weight bytes (m x heads*n x k): one kernel runs every
        # head, so the table's per-GEMM launch floor is paid once, not once per head.
        if mla:
            out.append(compute(f"{p}.absorb_q", "attention", GemmShape(
                m=rows, n=heads * att.kv_lora_rank, k=att.qk_nope_head_dim)))  # type: ignore[union-attr]
        out.append(compute(f"{p}.core_decode", "attention", AttentionShape(
            batch=rows, seq_q=1, seq_kv=max(2, work.decode_context), num_heads=heads,
            num_kv_heads=heads if mla else kv, head_dim=d, causal=True,
            head_dim_v=dv if mla else None, window=window, kv_cache_dtype=kv_cache_dtype)))
        if mla:
            out.append(compute(f"{p}.absorb_v", "attention", GemmShape(
                m=rows, n=heads * att.v_head_dim, k=att.kv_lora_rank)))  # type: ignore[union-attr]
    for i, (count, q, attended) in enumerate(work.chunks):
        if mla:
            out.append(compute(f"{p}.kv_up.{i}", "attention", GemmShape(
                m=count * attended, n=heads * (att.qk_nope_head_dim + att.v_head_dim),  # type: ignore[union-attr]
                k=att.kv_lora_rank)))  # type: ignore[union-attr]
        out.append(compute(f"{p}.core_prefill.{i}", "attention", AttentionShape(
            batch=count, seq_q=q, seq_kv=attended, num_heads=heads,
            num_kv_heads=heads if mla else kv, head_dim=d, causal=True,
            head_dim_v=dv if mla else None, window=window)))
    return out


def layer_body(ctx: ProgramContext, layer: int, moe_index: int | None) -> LayerBody:
    """One transformer layer's token-count ops (attention body, then the MoE or dense MLP)."""
    ops = ForwardOps(fp8=ctx.gemm_dtype == "fp8")
    core_at = attention_body(ops, ctx, layer)
    if moe_index is not None:
        moe_block(ops, ctx, layer, moe_index)
    else:
        dense_mlp_block(ops, ctx, layer)
    return LayerBody(tuple(ops.forward_ops()), core_at)


def embedding_ops(ctx: ProgramContext) -> list[Op]:
    """The embedding lookup (and its TP reduction when the vocabulary is split)."""
    out = [compute("embedding", "embedding", MemoryShape(2.0 * ctx.activation_bytes(ctx.tokens)))]
    if ctx.tp > 1:
        out.append(comm("embedding.tp_rs", "tp", "comm_tp", CollectiveShape(
            "reduce_scatter", "tp", ctx.activation_bytes(ctx.tokens))))
    return out


def head_ops(ctx: ProgramContext, rows: int, prefix: str = "") -> list[Op]:
    """Final norm, the LM head over the ``rows`` that sample, and sampling over FP32 logits
    (read and write once: softmax and top-p)."""
    ops = ForwardOps(fp8=False)
    ops.memory(f"{prefix}final_norm", "norm", norm_bytes(ctx, ctx.tokens_sp))
    rows = max(1, rows)
    vocab = max(1, ctx.model.vocab_size // ctx.tp)
    _linear(ops, f"{prefix}lm_head", "lm_head", rows, ctx.hidden, vocab)
    ops.memory(f"{prefix}sample", "lm_head", 2.0 * rows * vocab * 4.0)
    return ops.forward_ops()


def mtp_pre_ops(ctx: ProgramContext) -> list[Op]:
    """An MTP draft step before its transformer layer: embedding, two norms, and the 2h -> h
    projection of the concatenated states (DeepSeek-V3 section 2.2)."""
    ops = ForwardOps(fp8=ctx.gemm_dtype == "fp8")
    t, h = ctx.tokens, ctx.hidden
    ops.memory("mtp.embedding", "embedding", 2.0 * ctx.activation_bytes(t))
    ops.memory("mtp.norms", "norm", 2.0 * norm_bytes(ctx, ctx.tokens_sp))
    _linear(ops, "mtp.eh_proj", "mtp", t, 2 * h, max(1, h // ctx.tp))
    return ops.forward_ops()


def layer_classes(model: MoEModelSpec) -> list[tuple[bool, int | None, int]]:
    """(is MoE, sliding window, layer count) of each kind of layer of ``model``: layers of
    one class run the same body and the same core."""
    counts: dict[tuple[bool, int | None], int] = {}
    for i in range(model.num_layers):
        key = (model.is_moe_layer(i), model.attention_window(i))
        counts[key] = counts.get(key, 0) + 1
    return [(moe, window, n) for (moe, window), n in counts.items()]


def class_layer(model: MoEModelSpec, moe: bool, window: int | None) -> int:
    """The first layer index of a class (its ops are named and routed after it)."""
    return next(i for i in range(model.num_layers)
                if model.is_moe_layer(i) == moe and model.attention_window(i) == window)
