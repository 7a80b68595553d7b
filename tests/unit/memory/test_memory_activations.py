"""Per-layer activation bytes against Korthikanti et al. 2022 (arXiv:2205.05198) closed forms.

The paper's setting: a dense layer with multi-head attention, a non-gated 4h MLP (GeLU), dropout,
16-bit activations and no flash attention. Its §4.1 derives per layer and micro-batch
sbh(34 + 5as/h) bytes (11sbh + 5as^2b attention, 19sbh MLP, 4sbh two layer norms), §4.2 the TP
and TP+SP forms, §5 selective recompute of the attention core (34sbh/t) and full recompute (2sbh).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from moesim.memory.activations import (
    KORTHIKANTI_SELECTIVE,
    ActivationContext,
    balanced_recv_copies,
    expert_bytes_per_copy,
    layer_bytes,
)
from moesim.specs.model import GQAAttentionSpec, MoEModelSpec

# GPT-3 175B as in Korthikanti Table 3: h 12288, a 96, s 2048, t 8.
H, A, S, B, T = 12288, 96, 2048, 1, 8
PAPER = MoEModelSpec(
    name="gpt3-175b-layer", num_layers=1, hidden_size=H,
    attention=GQAAttentionSpec(num_heads=A, num_kv_heads=A, head_dim=H // A),
    ffn_hidden_size=4 * H, activation="gelu", vocab_size=51200)
BASE = ActivationContext(seq_len=S, micro_batch=B, flash_attention=False, dropout=True)
SBH = S * B * H


def test_no_tp_no_recompute():
    # sbh(34 + 5as/h)
    assert layer_bytes(PAPER, 0, BASE) == pytest.approx(SBH * (34 + 5 * A * S / H))


def test_tp_without_sequence_parallel():
    # sbh(10 + 24/t + 5as/(ht)): norms, QKV/FC1 inputs and masks stay replicated over TP.
    ctx = replace(BASE, tp=T)
    assert layer_bytes(PAPER, 0, ctx) == pytest.approx(SBH * (10 + 24 / T + 5 * A * S / (H * T)))


def test_tp_with_sequence_parallel():
    # sbh(34/t + 5as/(ht))
    ctx = replace(BASE, tp=T, sequence_parallel=True)
    assert layer_bytes(PAPER, 0, ctx) == pytest.approx(SBH * (34 / T + 5 * A * S / (H * T)))


def test_selective_recompute_with_tp_sp_is_34sbh_over_t():
    # The paper's selective recompute (attention core): 34 sbh / t.
    ctx = replace(BASE, tp=T, sequence_parallel=True, recompute="selective",
                  recompute_modules=KORTHIKANTI_SELECTIVE)
    assert layer_bytes(PAPER, 0, ctx) == pytest.approx(34 * SBH / T)


def test_moesim_selective_also_recomputes_norm_outputs():
    # moesim's default selective set adds 'layernorm': the two norm outputs that feed the QKV
    # and FC1 GEMMs (2sbh each) are recomputed, so 34 - 4 = 30 sbh / t.
    ctx = replace(BASE, tp=T, sequence_parallel=True, recompute="selective")
    assert layer_bytes(PAPER, 0, ctx) == pytest.approx(30 * SBH / T)


def test_full_recompute_keeps_the_layer_input():
    # 2sbh without SP, 2sbh/t with SP.
    assert layer_bytes(PAPER, 0, replace(BASE, tp=T, recompute="full")) == pytest.approx(2 * SBH)
    ctx = replace(BASE, tp=T, sequence_parallel=True, recompute="full")
    assert layer_bytes(PAPER, 0, ctx) == pytest.approx(2 * SBH / T)


def test_flash_attention_replaces_scores_by_log_sum_exp():
    # Flash attention keeps an fp32 log-sum-exp per head and query: 34 sbh + 4 a s b.
    ctx = replace(BASE, flash_attention=True)
    assert layer_bytes(PAPER, 0, ctx) == pytest.approx(34 * SBH + 4 * A * S * B)


MIXTRAL = MoEModelSpec(
    name="mixtral-8x7b", num_layers=32, hidden_size=4096,
    attention=GQAAttentionSpec(num_heads=32, num_kv_heads=8, head_dim=128),
    ffn_hidden_size=14336, activation="swiglu", num_experts=8, expert_ffn_hidden_size=14336,
    top_k=2, vocab_size=32000)


def test_moe_layer_by_hand_mixtral():
    # Mixtral layer, s 4096, b 1, no TP, bf16, flash attention, no dropout; per token:
    # norms 2*2h = 16384; QKV input 2h = 8192; Q 2*4096 + K 2*1024 + V 2*1024 = 12288;
    # out-proj input 2*4096 = 8192; LSE 4*32 = 128; router input 2h = 8192; probs 4*8 = 32;
    # per routed copy: expert input 2h = 8192 + SwiGLU input 2*2*14336 = 57344 + output 2*14336
    # = 28672 -> 94208; balanced copies per token = top_k = 2.
    ctx = ActivationContext(seq_len=4096, micro_batch=1)
    per_copy = 8192 + 57344 + 28672
    assert expert_bytes_per_copy(MIXTRAL, ctx) == per_copy
    assert balanced_recv_copies(MIXTRAL, ctx) == 4096 * 2
    fixed = 16384 + 8192 + 12288 + 8192 + 128 + 8192 + 32
    assert layer_bytes(MIXTRAL, 0, ctx) == pytest.approx(4096 * (fixed + 2 * per_copy))


def test_moe_part_scales_with_routed_copies():
    # An EP rank that receives twice its share stores twice the expert activations.
    ctx = ActivationContext(seq_len=4096, micro_batch=1)
    even = balanced_recv_copies(MIXTRAL, ctx)
    extra = layer_bytes(MIXTRAL, 0, ctx, 2 * even) - layer_bytes(MIXTRAL, 0, ctx, even)
    assert extra == pytest.approx(even * expert_bytes_per_copy(MIXTRAL, ctx))
