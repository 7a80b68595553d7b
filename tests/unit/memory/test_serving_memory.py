"""Serving memory by hand: KV bytes per token, expert weights per device, DeepEP's
low-latency buffers, the concurrent sequences that fit."""

from __future__ import annotations

import pytest

from moesim.memory.serving import (
    kv_bytes_per_token,
    low_latency_buffer_bytes,
    role_memory,
    weight_bytes,
)
from moesim.specs.loader import load_model, load_scenario
from moesim.units import GB

PD_EP = "scenarios/serving/deepseek-v3-96xh100-pd-ep.yaml"


def test_mla_caches_the_latent_on_every_tp_rank(root):
    m = load_model(root / "scenarios/models/deepseek-v3.yaml")
    # (kv_lora_rank 512 + rope 64) x 61 layers x 2 bytes = 70,272 bytes (hardware.md section 10)
    assert kv_bytes_per_token(m, "bf16", 1) == 576 * 61 * 2 == 70272
    assert kv_bytes_per_token(m, "bf16", 8) == 70272  # no head axis to split
    assert kv_bytes_per_token(m, "fp8", 1) == 35136
    assert kv_bytes_per_token(m, "bf16", 1, mtp_layers=1) == 576 * 62 * 2


def test_gqa_splits_kv_heads_over_tp_and_replicates_below_one(root):
    m = load_model(root / "scenarios/models/qwen3-30b-a3b.yaml")
    assert kv_bytes_per_token(m, "bf16", 1) == 2 * 4 * 128 * 48 * 2  # K and V, 4 heads
    assert kv_bytes_per_token(m, "bf16", 2) == 2 * 2 * 128 * 48 * 2
    assert kv_bytes_per_token(m, "bf16", 8) == 2 * 1 * 128 * 48 * 2  # a head per device


def test_deepseek_decode_holds_four_fp8_experts_per_layer(root):
    s = load_scenario(root / PD_EP)
    w = weight_bytes(s, s.deployment.decode)
    # 288 physical experts over EP72 = 4 per device, 3 x 7168 x 2048 FP8 bytes each, 58 layers
    assert w["experts"] == pytest.approx(58 * 4 * 3 * 7168 * 2048)
    assert w["experts"] / GB == pytest.approx(10.2, abs=0.05)
    # Embedding and LM head in BF16, whole on each DP-attention rank: 2 x 129280 x 7168 x 2 B
    assert w["embedding"] + w["lm_head"] == pytest.approx(2 * 129280 * 7168 * 2)


def test_low_latency_buffers_match_the_reference_arithmetic():
    # hardware.md section 8: D 7168, E 256, T 128 -> about 1.9 GB of registered memory.
    assert low_latency_buffer_bytes(7168, 256, 128) / GB == pytest.approx(1.9, abs=0.05)


def test_sequences_that_fit_are_the_closed_form(root):
    s = load_scenario(root / PD_EP)
    mem = role_memory(s, "decode", s.deployment.decode)
    assert mem.kv_tokens == int(mem.kv_pool_bytes // mem.kv_bytes_per_token)
    assert mem.max_sequences(2000, 32) == mem.kv_tokens // 2032
    # SGLang ran 256 requests of a 2,000-token cache per GPU on this layout.
    assert mem.max_sequences(2000, 32) >= 256
    assert mem.peak_bytes <= mem.capacity_bytes


def test_more_memory_fraction_never_shrinks_the_cache(root):
    s = load_scenario(root / PD_EP)
    a = role_memory(s, "decode", s.deployment.decode.model_copy(update={"memory_fraction": 0.8}))
    b = role_memory(s, "decode", s.deployment.decode)
    assert a.kv_tokens <= b.kv_tokens
