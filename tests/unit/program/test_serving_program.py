"""Forward-only serving programs: what a layer body and an attention core hold."""

from __future__ import annotations

from moesim.program.ops import AttentionShape, GemmShape, GroupedMemoryShape, MemoryShape
from moesim.program.serving import (
    FP8_QUANT_BYTES_PER_ELEMENT,
    AttentionWork,
    attention_core,
    iteration_context,
    layer_body,
    layer_classes,
)
from moesim.specs.loader import load_model
from moesim.specs.parallelism import ParallelismSpec


def _ctx(root, model="deepseek-v3", tokens=256, dtype="fp8", ep=8):
    m = load_model(root / f"scenarios/models/{model}.yaml")
    par = ParallelismSpec(expert_parallel_degree=ep)
    return iteration_context(m, par, tokens, gemm_dtype=dtype, experts_per_rank=32)


def test_mla_decode_is_absorbed(root):
    ctx = _ctx(root)
    ops = attention_core(ctx, 3, AttentionWork(decode_batch=64, decode_context=2000))
    gemms = [o.shape for o in ops if isinstance(o.shape, GemmShape)]
    # q_nope (128) -> latent (512) for all 128 heads, then latent (512) -> v (128).
    assert [(g.m, g.n, g.k) for g in gemms] == [(64, 128 * 512, 128), (64, 128 * 128, 512)]
    core = next(o.shape for o in ops if isinstance(o.shape, AttentionShape))
    assert (core.batch, core.seq_q, core.seq_kv, core.head_dim, core.head_dim_v) == (
        64, 1, 2000, 192, 128)


def test_mla_prefill_expands_the_attended_latent(root):
    ctx = _ctx(root)
    ops = attention_core(ctx, 3, AttentionWork(chunks=((2, 512, 1536),)))
    kv_up = next(o.shape for o in ops if isinstance(o.shape, GemmShape))
    assert (kv_up.m, kv_up.n, kv_up.k) == (2 * 1536, 128 * (128 + 128), 512)
    core = next(o.shape for o in ops if isinstance(o.shape, AttentionShape))
    assert (core.batch, core.seq_q, core.seq_kv, core.causal) == (2, 512, 1536, True)


def test_gqa_decode_reads_its_cache_without_absorption(root):
    ctx = _ctx(root, "qwen3-30b-a3b", dtype="bf16")
    ops = attention_core(ctx, 0, AttentionWork(decode_batch=8, decode_context=100),
                         kv_cache_dtype="fp8")
    assert len(ops) == 1 and ops[0].shape.kv_cache_dtype == "fp8"
    assert (ops[0].shape.num_heads, ops[0].shape.num_kv_heads) == (32, 4)


def test_fp8_bodies_quantize_once_per_gemm_input_and_no_routed_casts(root):
    ctx = _ctx(root, tokens=100)
    body = layer_body(ctx, 3, 0)
    quant = [o for o in body.ops if o.kind == "fp8_cast"]
    assert quant and all(isinstance(o.shape, MemoryShape) for o in quant)
    q_down = next(o for o in quant if o.name.endswith("q_down.fp8_quant"))
    assert q_down.shape.bytes_moved == FP8_QUANT_BYTES_PER_ELEMENT * 100 * 7168
    assert not any(isinstance(o.shape, GroupedMemoryShape) and o.kind == "fp8_cast"
                   for o in body.ops)
    assert not any(".bwd" in o.name or "dgrad" in o.name for o in body.ops)


def test_deepseek_has_two_layer_classes(root):
    m = load_model(root / "scenarios/models/deepseek-v3.yaml")
    assert sorted(layer_classes(m)) == [(False, None, 3), (True, None, 58)]
