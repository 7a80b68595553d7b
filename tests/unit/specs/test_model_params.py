"""Parameter counts from the model files, against published totals and hand derivations."""

import pytest

from moesim.specs import load_model


def _model(root, name):
    return load_model(root / f"scenarios/models/{name}.yaml")


def _rel(a: float, b: float) -> float:
    return abs(a / b - 1)


def test_mixtral_8x7b_params(root):
    # Mixtral paper (arXiv:2401.04088): 46.7B total ("47B"), 12.9B active ("13B").
    m = _model(root, "mixtral-8x7b")
    assert _rel(m.total_params, 46.7e9) < 0.01
    assert _rel(m.active_params, 12.9e9) < 0.01
    assert m.num_moe_layers == 32


def test_deepseek_v3_total_excludes_mtp(root):
    # DSV3 report: 671B total without the MTP module, 685B with it (14B MTP incl. its copies of
    # the embedding and head; without them 11.6B, so 682.6B, still within 1% of 685B).
    m = _model(root, "deepseek-v3")
    assert _rel(m.total_params, 671e9) < 0.01
    assert _rel(m.total_params_with_mtp, 685e9) < 0.01
    assert m.num_moe_layers == 58


def test_deepseek_v3_active(root):
    # DSV3 reports "37B activated", counting the LM head but not the input embedding lookup
    # (with both: 37.55B, which would round to 38B). 37B is given to two significant digits,
    # so the count must fall in [36.5B, 37.5B).
    m = _model(root, "deepseek-v3")
    without_lookup = m.active_params - m.vocab_size * m.hidden_size
    assert 36.5e9 <= without_lookup < 37.5e9


def test_deepseek_v3_mla_params_by_hand(root):
    # MLA per layer (HF config shapes): q_a 7168x1536 + norm 1536 + q_b 1536x(128x192)
    # + kv_a 7168x(512+64) + norm 512 + kv_b 512x(128x(128+128)) + o (128x128)x7168 = 187,107,328.
    m = _model(root, "deepseek-v3")
    assert m.attention_params_per_layer == 187_107_328
    # one routed expert: 3 x 7168 x 2048 = 44,040,192 (moe-mechanics §9)
    assert m.expert_params == 44_040_192


def test_qwen3_235b(root):
    # HF model card: 235B total, 22B activated.
    m = _model(root, "qwen3-235b-a22b")
    assert _rel(m.total_params, 235e9) < 0.01
    assert _rel(m.active_params, 22e9) < 0.01


def test_qwen3_30b_total(root):
    # HF model card: 30.5B total.
    m = _model(root, "qwen3-30b-a3b")
    assert _rel(m.total_params, 30.5e9) < 0.01
    # qk-norm adds 2 x head_dim per layer: 4096x2048 q + 2x2048x512 kv + 4096x2048 o + 256
    assert m.attention_params_per_layer == 2048 * 4096 * 2 + 2 * 2048 * 512 + 256


def test_mixtral_8x22b(root):
    # Mistral AI: 141B total, 39B active.
    m = _model(root, "mixtral-8x22b")
    assert _rel(m.total_params, 141e9) < 0.01
    assert _rel(m.active_params, 39e9) < 0.01


def test_gpt_oss_120b(root):
    # Model card: 116.8B total; 5.1B active per token, counted without the embedding lookup
    # (two significant digits: [5.05B, 5.15B)).
    m = _model(root, "gpt-oss-120b")
    assert _rel(m.total_params, 116.8e9) < 0.01
    assert 5.05e9 <= m.active_params - m.vocab_size * m.hidden_size < 5.15e9


def test_switch_base_128(root):
    # Switch Transformers Table 9: 7.4B parameters; 12 of 24 layers are MoE.
    m = _model(root, "switch-base-128")
    assert _rel(m.total_params, 7.4e9) < 0.01
    assert m.num_moe_layers == 12
    assert m.moe_layer_indices == tuple(range(1, 24, 2))
    assert m.expert_params == 2 * 768 * 3072  # ReLU, two matrices


def test_glam_64b_64e(root):
    # GLaM Table 4: 96.6B activated; "1.2T" total at two significant digits: [1.15T, 1.25T).
    m = _model(root, "glam-64b-64e")
    assert _rel(m.active_params, 96.6e9) < 0.01
    assert 1.15e12 <= m.total_params < 1.25e12
    assert m.expert_params == 2 * 8192 * 32768  # GELU experts, not gated
    assert m.ffn_params(m.ffn_hidden_size) == 3 * 8192 * 32768  # GEGLU dense FFN


def test_llama_3_8b_dense(root):
    # Llama 3 paper: 8.03B; dense, so active == total.
    m = _model(root, "llama-3-8b")
    assert _rel(m.total_params, 8.03e9) < 0.01
    assert m.active_params == m.total_params
    assert m.num_moe_layers == 0


@pytest.mark.parametrize("layers,dense,freq", [(61, 3, 1), (24, 0, 2), (64, 0, 2), (10, 3, 4)])
def test_closed_form_moe_layers_match_enumeration(root, layers, dense, freq):
    m = _model(root, "deepseek-v3").model_copy(
        update={"num_layers": layers, "num_dense_layers": dense, "moe_layer_frequency": freq})
    assert m.num_moe_layers == len(m.moe_layer_indices)
    by_layer = sum(sum(m.layer_params(i)) for i in range(layers))
    assert m.total_params == by_layer + m.embedding_params + m.hidden_size
