"""Activation bytes one layer stores for its backward pass, per micro-batch, on one rank.

The accounting is Korthikanti et al. 2022 (arXiv:2205.05198 §4), term by term, so that a
dense layer with multi-head attention, a non-gated 4h MLP and dropout reproduces the paper:
``sbh(34 + 5as/h)`` bytes without TP, ``sbh(10 + 24/t + 5as/(ht))`` with TP,
``sbh(34/t + 5as/(ht))`` with TP + sequence parallelism, ``34 sbh / t`` when the attention
core is recomputed (the paper's selective recompute), ``2 sbh`` (``/t`` with SP) with full
recompute. docs/memory.md explains the generalization to GQA, MLA, gated MLPs, FP8 and MoE.

Per token, with ``e`` the bytes of a stored GEMM input (2; 1 when GEMMs run in FP8, since
Transformer Engine and DeepSeek-V3 §3.3.3 keep the FP8-cast input for the weight gradient):

- norms: the input of both norms, 2 bytes x h each;
- attention: the QKV-projection input ``e h``, Q and K (``2 (a + kv) d``) and V (``2 kv d``)
  for the attention core, the output-projection input ``e a d``, a 1-byte dropout mask ``h``,
  and without flash attention the scores ``5 a s`` (softmax 2, dropout mask 1, dropout
  output 2); flash attention keeps instead an fp32 log-sum-exp per head, ``4 a``;
- MLP of width F (gated: the first GEMM is 2F wide): its input ``e h``, the activation-function
  input ``2 g F``, its output ``e F``, a dropout mask ``h``;
- MoE: per source token the router input ``2 h``, fp32 router probabilities ``4 E`` and a
  dropout mask ``h``; per routed copy the rank receives: the expert input ``e h``, the
  activation input ``2 g F / etp`` and output ``e F / etp``. The gate probabilities are applied
  inside the expert activation (Megatron-Core's grouped MLP), so no expert output is kept for
  their gradient. Shared experts are a dense MLP on the source tokens.

Selective recompute drops, per Megatron-Core ``--recompute-modules``: ``core_attn`` the
attention scores; ``layernorm`` the norm outputs that feed GEMMs (QKV, FC1, router, MLA
latents); ``mla_up_proj`` the MLA up-projection outputs Q, K, V; ``moe_act`` the expert
activation output, keeping its input in the GEMM dtype (DeepSeek-V3 §3.3.2-3 recomputes
RMSNorm, MLA up-projections and the MoE SwiGLU output, caching SwiGLU inputs in FP8);
``mlp`` a dense MLP, ``shared_experts`` the shared experts and ``moe`` the whole MoE layer
(router, routed copies, shared experts), each keeping only its input (a checkpoint).
Dropout masks are counted only with ``dropout=True``: the models moesim ships train without
dropout (attention_dropout 0.0 in the Mixtral, DeepSeek-V3 and Qwen3 Hugging Face configs).
"""

from __future__ import annotations

from dataclasses import dataclass

from moesim.specs.model import GQAAttentionSpec, MLAAttentionSpec, MoEModelSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.units import dtype_bytes

ACT_BYTES = 2.0  # bf16/fp16 activations, as Korthikanti assumes (16-bit)
MASK_BYTES = 1.0  # dropout masks are stored as one byte per element (Korthikanti §4.1)
LSE_BYTES = 4.0  # flash attention keeps an fp32 log-sum-exp per query and head (Dao 2022)
PROB_BYTES = 4.0  # Megatron keeps router logits / probabilities in fp32 (MCore router)

ALL_SELECTIVE = frozenset({"core_attn", "layernorm", "mla_up_proj", "moe_act"})
KORTHIKANTI_SELECTIVE = frozenset({"core_attn"})  # the paper's selective recompute


@dataclass(frozen=True)
class ActivationContext:
    """What shapes the activations on one rank: sizes, sharding, recompute, dtypes."""

    seq_len: int  # s: tokens per sequence (before CP)
    micro_batch: int  # b
    tp: int = 1
    sequence_parallel: bool = False
    cp: int = 1
    etp: int = 1
    recompute: str = "none"  # none | selective | full
    recompute_modules: frozenset[str] = ALL_SELECTIVE  # what "selective" recomputes
    flash_attention: bool = True
    dropout: bool = False
    gemm_input_bytes: float = ACT_BYTES

    def recomputes(self, module: str) -> bool:
        """Whether selective recompute covers ``module`` in this context."""
        return self.recompute == "selective" and module in self.recompute_modules

    @property
    def tokens(self) -> float:
        """Tokens of one micro-batch on this rank before any TP split (s b / cp)."""
        return self.seq_len * self.micro_batch / self.cp

    @property
    def replicated_div(self) -> int:
        """What divides the TP-replicated tensors: t with sequence parallelism, else 1."""
        return self.tp if self.sequence_parallel else 1

    @property
    def source_tokens(self) -> float:
        """Tokens this rank routes into an MoE layer (SP shards them over TP)."""
        return self.tokens / self.replicated_div

    @property
    def mask(self) -> float:
        return MASK_BYTES if self.dropout else 0.0

    @property
    def norm_out(self) -> float:
        """Bytes per element of a norm output kept as a GEMM input (0 if norms are recomputed)."""
        return 0.0 if self.recomputes("layernorm") else self.gemm_input_bytes


def context_for(s: ScenarioSpec, *, flash_attention: bool = True,
                dropout: bool = False) -> ActivationContext:
    """The activation context of a scenario (flash attention: Megatron-Core's default)."""
    par, wl = s.parallelism, s.workload
    modules = ALL_SELECTIVE if par.recompute_modules is None else frozenset(par.recompute_modules)
    return ActivationContext(
        seq_len=wl.sequence_length, micro_batch=par.micro_batch_size,
        tp=par.tensor_parallel_degree,
        sequence_parallel=par.sequence_parallel and par.tensor_parallel_degree > 1,
        cp=par.context_parallel_degree, etp=par.expert_tensor_parallel_degree,
        recompute=par.recompute, recompute_modules=modules, flash_attention=flash_attention,
        dropout=dropout,
        gemm_input_bytes=dtype_bytes(wl.dtype) if wl.dtype == "fp8" else ACT_BYTES)


def _attention_per_token(model: MoEModelSpec, ctx: ActivationContext) -> tuple[float, float]:
    """(TP-replicated, TP-split) bytes per token of the attention block."""
    h, e, att = model.hidden_size, ctx.gemm_input_bytes, model.attention
    replicated = ctx.norm_out * h + ctx.mask * h
    if isinstance(att, GQAAttentionSpec):
        a, kv, d = att.num_heads, att.num_kv_heads, att.head_dim
        qkv = ACT_BYTES * (a * d + kv * d) + ACT_BYTES * kv * d
        out_in = e * a * d
    else:
        assert isinstance(att, MLAAttentionSpec)
        a, dqk, dv = att.num_heads, att.head_dim, att.v_head_dim
        # The latents feed the up-projections; their norms keep their inputs (2 bytes each).
        latent = att.kv_lora_rank + (att.q_lora_rank or 0)
        replicated += (ctx.norm_out + ACT_BYTES) * latent + ACT_BYTES * att.qk_rope_head_dim
        qkv = 0.0 if ctx.recomputes("mla_up_proj") else ACT_BYTES * (2 * a * dqk + a * dv)
        out_in = e * a * dv
    split = qkv + out_in
    if ctx.flash_attention:
        split += LSE_BYTES * a
    elif not ctx.recomputes("core_attn"):
        # softmax output, its dropout mask and output; keys span the whole sequence
        split += (ACT_BYTES + ctx.mask + ACT_BYTES * (1 if ctx.dropout else 0)) * a * ctx.seq_len
    return replicated, split


def _mlp_per_token(h: int, width: int, gated: bool, ctx: ActivationContext) -> tuple[float, float]:
    """(TP-replicated, TP-split) bytes per token of a dense MLP of intermediate ``width``."""
    split = ACT_BYTES * (2 if gated else 1) * width + ctx.gemm_input_bytes * width
    return ctx.norm_out * h + ctx.mask * h, split


def _checkpointed_mlp(h: int, ctx: ActivationContext) -> tuple[float, float]:
    """(replicated, split) bytes per token of a recomputed MLP: only its input is kept."""
    return 0.0, ACT_BYTES * h


def expert_bytes_per_copy(model: MoEModelSpec, ctx: ActivationContext) -> float:
    """Bytes one routed token copy leaves on the expert rank that processes it."""
    if ctx.recompute == "full" or ctx.recomputes("moe"):
        return 0.0
    e, g = ctx.gemm_input_bytes, (2 if model.expert_gated else 1)
    f = model.expert_ffn_hidden_size / ctx.etp
    if ctx.recomputes("moe_act"):
        return e * model.hidden_size + e * g * f  # activation input cached in the GEMM dtype
    return e * model.hidden_size + ACT_BYTES * g * f + e * f


def layer_fixed_bytes(model: MoEModelSpec, index: int, ctx: ActivationContext) -> float:
    """Bytes of layer ``index`` per micro-batch that do not depend on routing (all of a dense
    layer; for an MoE layer all but the routed copies the rank receives)."""
    h = model.hidden_size
    rdiv, t = ctx.replicated_div, ctx.tp
    if ctx.recompute == "full":
        return ACT_BYTES * h * ctx.tokens / rdiv  # only the layer input is checkpointed
    rep_a, split_a = _attention_per_token(model, ctx)
    rep = 2 * ACT_BYTES * h + rep_a  # the two norm inputs
    split = split_a
    if model.is_moe_layer(index) and ctx.recomputes("moe"):
        r, sp = _checkpointed_mlp(h, ctx)
        rep, split = rep + r, split + sp
    elif model.is_moe_layer(index):
        router_in = 0.0 if ctx.recomputes("layernorm") else ACT_BYTES
        rep += router_in * h + PROB_BYTES * model.num_experts + ctx.mask * h
        if model.num_shared_experts:
            r, sp = (_checkpointed_mlp(h, ctx) if ctx.recomputes("shared_experts") else
                     _mlp_per_token(h, model.num_shared_experts * model.shared_ffn_hidden,
                                    model.gated, ctx))
            rep, split = rep + r, split + sp
    else:
        r, sp = (_checkpointed_mlp(h, ctx) if ctx.recomputes("mlp") else
                 _mlp_per_token(h, model.ffn_hidden_size, model.gated, ctx))
        rep, split = rep + r, split + sp
    return ctx.tokens * (rep / rdiv + split / t)


def balanced_recv_copies(model: MoEModelSpec, ctx: ActivationContext) -> float:
    """Routed copies per expert rank when every expert gets its share: source tokens x top_k x
    ETP (an ETP group processes every copy sent to its experts)."""
    return ctx.source_tokens * model.top_k * ctx.etp


def layer_bytes(model: MoEModelSpec, index: int, ctx: ActivationContext,
                recv_copies: float | None = None) -> float:
    """All activation bytes of layer ``index`` per micro-batch; ``recv_copies`` is the routed
    token copies this rank's experts process (default: balanced, no capacity)."""
    fixed = layer_fixed_bytes(model, index, ctx)
    if not model.is_moe_layer(index):
        return fixed
    if recv_copies is None:
        recv_copies = balanced_recv_copies(model, ctx)
    return fixed + recv_copies * expert_bytes_per_copy(model, ctx)


def head_bytes(model: MoEModelSpec, ctx: ActivationContext) -> float:
    """Final norm input, LM head input and fp32 logits (``4 s b v / t``, Korthikanti §4.3)
    per micro-batch, plus each MTP module's extra inputs and logits (DSV3 §2.2)."""
    h, v = model.hidden_size, model.vocab_size
    rep = ACT_BYTES * h + ctx.gemm_input_bytes * h
    mtp_rep = ACT_BYTES * h + ctx.gemm_input_bytes * 2 * h  # shifted embedding, concat input
    total_rep = rep + model.num_mtp_layers * mtp_rep
    total_split = 4.0 * v * (1 + model.num_mtp_layers)
    return ctx.tokens * (total_rep / ctx.replicated_div + total_split / ctx.tp)


def a2a_transient_bytes(model: MoEModelSpec, ctx: ActivationContext, recv_copies: float,
                        dispatch_bytes: float) -> float:
    """Peak of the dispatch / combine buffers of one MoE layer (they do not coincide): the
    permuted send buffer plus the receive buffer, ``dispatch_bytes`` per element on dispatch
    (1 for FP8 dispatch, DSV3 §3.3.3) and 2 on combine (BF16)."""
    sent = ctx.source_tokens * model.top_k
    return (sent + recv_copies) * model.hidden_size * max(dispatch_bytes, ACT_BYTES)
