"""Transformer models with (or without) mixture-of-experts FFN layers.

A dense model is the same spec with ``num_experts = 0``. Parameter counts here are
closed forms over the spec; the memory and FLOP models build on them.
"""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from pydantic import Field, model_validator

from moesim.specs import bounds as B
from moesim.specs.base import FrozenSpec


class GQAAttentionSpec(FrozenSpec):
    """Multi-head attention with grouped KV heads (MHA when kv = heads, MQA when kv = 1)."""

    kind: Literal["gqa"] = "gqa"
    num_heads: int = Field(ge=1, le=B.MAX_HEADS)
    num_kv_heads: int = Field(ge=1, le=B.MAX_HEADS)
    head_dim: int = Field(ge=1, le=B.MAX_HEADS)
    qkv_bias: bool = False
    out_bias: bool = Field(default=False, description="bias on the output projection (GPT-OSS)")
    qk_norm: bool = Field(default=False, description="RMSNorm on each q and k head (Qwen3)")

    @model_validator(mode="after")
    def _check(self) -> GQAAttentionSpec:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_kv_heads={self.num_kv_heads} must divide num_heads={self.num_heads}")
        return self

    def params(self, hidden: int) -> int:
        q = hidden * self.num_heads * self.head_dim
        kv = 2 * hidden * self.num_kv_heads * self.head_dim
        o = self.num_heads * self.head_dim * hidden
        bias = (self.num_heads + 2 * self.num_kv_heads) * self.head_dim if self.qkv_bias else 0
        bias += hidden if self.out_bias else 0
        norms = 2 * self.head_dim if self.qk_norm else 0
        return q + kv + o + bias + norms


class MLAAttentionSpec(FrozenSpec):
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank Q and compressed KV."""

    kind: Literal["mla"] = "mla"
    num_heads: int = Field(ge=1, le=B.MAX_HEADS)
    q_lora_rank: int | None = Field(default=None, ge=1, le=B.MAX_WIDTH, description="None: full-rank Q")
    kv_lora_rank: int = Field(ge=1, le=B.MAX_WIDTH)
    qk_nope_head_dim: int = Field(ge=1, le=B.MAX_HEADS)
    qk_rope_head_dim: int = Field(ge=1, le=B.MAX_HEADS)
    v_head_dim: int = Field(ge=1, le=B.MAX_HEADS)

    @property
    def num_kv_heads(self) -> int:
        return self.num_heads

    @property
    def head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def params(self, hidden: int) -> int:
        h, qk = self.num_heads, self.head_dim
        if self.q_lora_rank:
            q = hidden * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * h * qk
        else:
            q = hidden * h * qk
        kv_down = hidden * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
        kv_up = self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim)
        o = h * self.v_head_dim * hidden
        return q + kv_down + kv_up + o


AttentionSpec = Annotated[GQAAttentionSpec | MLAAttentionSpec, Field(discriminator="kind")]


class MoEModelSpec(FrozenSpec):
    """A decoder-only transformer; MoE layers replace some FFNs with routed experts."""

    name: str
    num_layers: int = Field(ge=1, le=B.MAX_LAYERS)
    hidden_size: int = Field(ge=1, le=B.MAX_WIDTH)
    attention: AttentionSpec
    ffn_hidden_size: int = Field(ge=0, le=B.MAX_WIDTH, description="dense FFN intermediate size (0: no dense FFN)")
    activation: Literal["swiglu", "geglu", "gelu", "relu"] = "swiglu"
    expert_activation: Literal["swiglu", "geglu", "gelu", "relu"] | None = Field(
        default=None, description="activation of the routed experts; default: activation "
        "(GLaM gates its dense FFNs but not its experts)")
    num_experts: int = Field(default=0, ge=0, le=B.MAX_EXPERTS, description="routed experts per MoE layer; 0: dense")
    expert_ffn_hidden_size: int = Field(default=0, ge=0, le=B.MAX_WIDTH)
    top_k: int = Field(default=0, ge=0, le=B.MAX_EXPERTS)
    num_shared_experts: int = Field(default=0, ge=0, le=B.MAX_EXPERTS)
    shared_expert_ffn_hidden_size: int | None = Field(
        default=None, ge=1, le=B.MAX_WIDTH, description="per shared expert; default expert_ffn_hidden_size")
    num_dense_layers: int = Field(default=0, ge=0, le=B.MAX_LAYERS, description="dense layers before the first MoE")
    moe_layer_frequency: int = Field(default=1, ge=1, le=B.MAX_LAYERS, description="every Nth layer after those is MoE")
    vocab_size: int = Field(ge=1, le=B.MAX_VOCAB)
    tied_embeddings: bool = False
    num_mtp_layers: int = Field(default=0, ge=0, le=B.MAX_LAYERS, description="multi-token-prediction modules")
    sliding_window: int | None = Field(
        default=None, ge=1, le=B.MAX_SEQUENCE, description="sliding-window attention: keys each "
        "query attends (itself included) in the windowed layers; null: full attention everywhere")
    sliding_window_frequency: int = Field(
        default=1, ge=1, le=B.MAX_LAYERS, description="every Nth layer (0, N, 2N, ...) is "
        "windowed, the rest full (GPT-OSS alternates: 2)")
    max_position_embeddings: int | None = Field(default=None, ge=1, le=B.MAX_SEQUENCE)

    @model_validator(mode="after")
    def _check(self) -> MoEModelSpec:
        if self.num_experts:
            if self.top_k < 1 or self.top_k > self.num_experts:
                raise ValueError(
                    f"top_k={self.top_k} must be between 1 and num_experts={self.num_experts}")
            if self.expert_ffn_hidden_size < 1:
                raise ValueError("expert_ffn_hidden_size must be >= 1 when num_experts > 0")
        elif self.top_k or self.num_shared_experts:
            raise ValueError("a dense model (num_experts=0) needs top_k=0 and num_shared_experts=0")
        if self.num_dense_layers > self.num_layers:
            raise ValueError(
                f"num_dense_layers={self.num_dense_layers} exceeds num_layers={self.num_layers}")
        if self.num_experts and self.num_moe_layers == 0:
            raise ValueError("num_experts > 0 but no layer is an MoE layer; "
                             "lower num_dense_layers or moe_layer_frequency")
        if self.num_dense_layers and self.ffn_hidden_size == 0:
            raise ValueError("num_dense_layers > 0 needs ffn_hidden_size > 0")
        return self

    # --- structure -------------------------------------------------------------------------
    def attention_window(self, index: int) -> int | None:
        """Keys per query of layer ``index`` (0-based) when it is windowed, else None."""
        if self.sliding_window is None or index % self.sliding_window_frequency:
            return None
        return self.sliding_window

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def is_moe_layer(self, index: int) -> bool:
        """Whether layer ``index`` (0-based) has routed experts (an MTP module's layer, past
        the last, follows the same rule)."""
        if index < self.num_layers:
            return index in self.moe_layer_set
        return self._moe_by_rule(index)

    def _moe_by_rule(self, index: int) -> bool:
        if not self.is_moe or index < self.num_dense_layers:
            return False
        return (index - self.num_dense_layers) % self.moe_layer_frequency == (
            self.moe_layer_frequency - 1)

    @functools.cached_property
    def moe_layer_indices(self) -> tuple[int, ...]:
        # Cached: the engine, routing and memory ask for it thousands of times per point.
        return tuple(i for i in range(self.num_layers) if self._moe_by_rule(i))

    @functools.cached_property
    def moe_layer_set(self) -> frozenset[int]:
        """The MoE layers' indices as a set (membership in O(1))."""
        return frozenset(self.moe_layer_indices)

    @functools.cached_property
    def moe_layer_position(self) -> dict[int, int]:
        """Layer index -> its position among the MoE layers."""
        return {layer: j for j, layer in enumerate(self.moe_layer_indices)}

    @property
    def num_moe_layers(self) -> int:
        """MoE layers, in closed form (every ``moe_layer_frequency``-th after the dense ones)."""
        if not self.is_moe:
            return 0
        return max(self.num_layers - self.num_dense_layers, 0) // self.moe_layer_frequency

    @property
    def gated(self) -> bool:
        """Whether the dense (and shared-expert) FFNs have a gate matrix (GLU variants)."""
        return self.activation in ("swiglu", "geglu")

    @property
    def expert_gated(self) -> bool:
        """Whether the routed experts have a gate matrix."""
        return (self.expert_activation or self.activation) in ("swiglu", "geglu")

    @property
    def shared_ffn_hidden(self) -> int:
        return self.shared_expert_ffn_hidden_size or self.expert_ffn_hidden_size

    # --- parameter counts --------------------------------------------------------------------
    def ffn_params(self, intermediate: int, gated: bool | None = None) -> int:
        """Weights of one FFN of width ``intermediate`` (three matrices if gated, else two)."""
        g = self.gated if gated is None else gated
        return (3 if g else 2) * self.hidden_size * intermediate

    @property
    def expert_params(self) -> int:
        """Weights of one routed expert."""
        return self.ffn_params(self.expert_ffn_hidden_size, self.expert_gated)

    @property
    def attention_params_per_layer(self) -> int:
        return self.attention.params(self.hidden_size)

    @property
    def norm_params_per_layer(self) -> int:
        return 2 * self.hidden_size

    @property
    def router_params(self) -> int:
        return self.hidden_size * self.num_experts

    def layer_params(self, index: int) -> tuple[int, int]:
        """(dense, expert) parameters of layer ``index``; shared experts count as dense."""
        dense = self.attention_params_per_layer + self.norm_params_per_layer
        if self.is_moe_layer(index):
            dense += self.router_params + self.num_shared_experts * self.ffn_params(
                self.shared_ffn_hidden)
            return dense, self.num_experts * self.expert_params
        return dense + self.ffn_params(self.ffn_hidden_size), 0

    @property
    def embedding_params(self) -> int:
        emb = self.vocab_size * self.hidden_size
        return emb if self.tied_embeddings else 2 * emb

    @property
    def _moe_layer_dense_params(self) -> int:
        """Non-routed weights of one MoE layer beyond attention and norms: router, shared experts."""
        return self.router_params + self.num_shared_experts * self.ffn_params(
            self.shared_ffn_hidden)

    def _stack_params(self, experts_per_moe_layer: int) -> int:
        """All layers in closed form, counting ``experts_per_moe_layer`` routed experts each."""
        n_moe = self.num_moe_layers
        per_layer = self.attention_params_per_layer + self.norm_params_per_layer
        dense_ffn = (self.num_layers - n_moe) * self.ffn_params(self.ffn_hidden_size)
        moe = n_moe * (self._moe_layer_dense_params + experts_per_moe_layer * self.expert_params)
        return self.num_layers * per_layer + dense_ffn + moe

    @property
    def total_params(self) -> int:
        """All parameters (embedding, LM head unless tied, all layers, final norm; no MTP)."""
        return self._stack_params(self.num_experts) + self.embedding_params + self.hidden_size

    @property
    def active_params(self) -> int:
        """Parameters one token touches: routed experts count top_k of num_experts."""
        return self._stack_params(self.top_k) + self.embedding_params + self.hidden_size

    @property
    def mtp_params(self) -> int:
        """Multi-token-prediction modules (DeepSeek-V3 §2.2): each is one transformer layer of
        the last layer's kind, a 2h x h projection and three RMSNorms; embedding and output
        head are shared with the main model, so they are not counted again."""
        if not self.num_mtp_layers:
            return 0
        dense, expert = self.layer_params(self.num_layers - 1)
        h = self.hidden_size
        return self.num_mtp_layers * (dense + expert + 2 * h * h + 3 * h)

    @property
    def total_params_with_mtp(self) -> int:
        """``total_params`` plus the MTP modules (DeepSeek-V3: 671B + 14B = 685B)."""
        return self.total_params + self.mtp_params
