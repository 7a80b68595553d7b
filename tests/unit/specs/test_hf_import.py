"""Model import from Hugging Face config.json and Megatron arguments.

The fixtures in fixtures/hf/ hold the published config.json values of each family's
Hugging Face model card (fixtures/megatron/ the same models in Megatron-LM's argument names).
Each family: parameter counts against the published totals, the shipped model file where
moesim has one, and one tiny analytic step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from moesim.engine import simulate
from moesim.errors import SpecError
from moesim.specs import load_model
from moesim.specs.hf import ImportedModel, import_model
from moesim.specs.hf_fields import fit_layer_pattern, moesim_pattern
from moesim.specs.loader import load_scenario

FIXTURES = Path(__file__).parent / "fixtures"
HF = FIXTURES / "hf"


def _hf(name: str, **kw) -> ImportedModel:
    return import_model(HF / f"{name}.json", **kw)


def _rel(a: float, b: float) -> float:
    return abs(a / b - 1)


def _lookup(m) -> int:
    """The input embedding table, which published active counts usually leave out."""
    return m.vocab_size * m.hidden_size


# --- published totals ------------------------------------------------------------------------

def test_mixtral_8x7b():
    # Mixtral paper (arXiv:2401.04088): 46.7B total, 12.9B active.
    m = _hf("mixtral-8x7b-v0.1").spec
    assert _rel(m.total_params, 46.7e9) < 0.01 and _rel(m.active_params, 12.9e9) < 0.01
    assert (m.num_experts, m.top_k, m.num_moe_layers) == (8, 2, 32)


def test_deepseek_v3():
    # DSV3 report: 671B total, 685B with the MTP module, 37B activated (without the lookup).
    m = _hf("deepseek-v3").spec
    assert _rel(m.total_params, 671e9) < 0.01 and _rel(m.total_params_with_mtp, 685e9) < 0.01
    assert 36.5e9 <= m.active_params - _lookup(m) < 37.5e9
    assert (m.num_dense_layers, m.num_moe_layers, m.num_mtp_layers) == (3, 58, 1)


def test_deepseek_v2():
    # DeepSeek-V2 report (arXiv:2405.04434): 236B total, 21B activated per token.
    m = _hf("deepseek-v2").spec
    assert _rel(m.total_params, 236e9) < 0.01
    assert 20.5e9 <= m.active_params - _lookup(m) < 21.5e9
    assert (m.num_shared_experts, m.top_k, m.num_dense_layers) == (2, 6, 1)


def test_kimi_k2():
    # Kimi K2 model card: 1T total, 32B activated (moesim: 1.026T, 31.7B without the lookup).
    m = _hf("kimi-k2-instruct").spec
    assert 1.0e12 <= m.total_params < 1.05e12
    assert 31.5e9 <= m.active_params - _lookup(m) < 32.5e9
    assert (m.num_experts, m.num_dense_layers, m.num_mtp_layers) == (384, 1, 0)
    assert m.attention.num_heads == 64


def test_qwen3_30b_a3b():
    # Qwen3-30B-A3B model card: 30.5B total, 3.3B activated.
    m = _hf("qwen3-30b-a3b").spec
    assert _rel(m.total_params, 30.5e9) < 0.01 and _rel(m.active_params, 3.3e9) < 0.02
    assert m.attention.qk_norm and not m.attention.qkv_bias


def test_qwen2_moe():
    # Qwen1.5-MoE-A2.7B model card: 14.3B total, 2.7B activated; one shared expert of 5632.
    m = _hf("qwen1.5-moe-a2.7b").spec
    assert _rel(m.total_params, 14.3e9) < 0.01 and _rel(m.active_params, 2.7e9) < 0.01
    assert (m.num_shared_experts, m.shared_ffn_hidden) == (1, 5632)
    assert m.attention.qkv_bias and not m.attention.out_bias


def test_gpt_oss_120b():
    # Model card: 116.8B total; 5.1B active per token without the lookup.
    imp = _hf("gpt-oss-120b")
    m = imp.spec
    assert _rel(m.total_params, 116.8e9) < 0.01
    assert 5.05e9 <= m.active_params - _lookup(m) < 5.15e9
    # layer_types alternate sliding (from layer 0) and full: 18 of 36 windowed layers.
    assert (m.sliding_window, m.sliding_window_frequency) == (128, 2)
    assert sum(m.attention_window(i) is not None for i in range(m.num_layers)) == 18
    assert "attention sinks" in " ".join(imp.notes)


def test_llama4_scout():
    # Meta's model card: 17B active, 109B total with the vision encoder; the text decoder
    # alone (what moesim models) is 1.1% less. One expert of 16 and a shared one per layer:
    # experts 48 x 16 x 3 x 5120 x 8192 = 96.6B.
    imp = _hf("llama-4-scout-17b-16e")
    m = imp.spec
    assert m.expert_params * m.num_experts == 16 * 3 * 5120 * 8192
    assert (m.num_shared_experts, m.shared_ffn_hidden, m.ffn_hidden_size) == (1, 8192, 16384)
    assert 0.985 < m.total_params / 109e9 < 1.0
    assert _rel(m.active_params, 17e9) < 0.02
    assert any("vision encoder is not modelled" in n for n in imp.notes)
    assert any("attention_chunk_size=8192" in n for n in imp.notes)


def test_glm_45():
    # GLM-4.5 report: 355B total, 32B activated (without embedding and output head).
    # Attention per layer by hand: q 5120 x 96 x 128 + kv 2 x 5120 x 8 x 128 + o 96 x 128 x 5120
    # + q/k/v biases (96 + 16) x 128 + q/k norms 2 x 128 = 136,329,472.
    m = _hf("glm-4.5").spec
    assert m.attention_params_per_layer == 136_329_472
    assert _rel(m.total_params, 355e9) < 0.01 and _rel(m.total_params_with_mtp, 355e9) < 0.01
    assert _rel(m.active_params - m.embedding_params, 32e9) < 0.01
    assert (m.num_dense_layers, m.num_moe_layers, m.num_mtp_layers) == (3, 89, 1)


@pytest.mark.parametrize("name,total", [("meta-llama-3-8b", 8.03e9), ("qwen3-8b", 8.2e9)])
def test_dense(name, total):
    # Llama 3 paper Table 3: 8.03B; Qwen3-8B model card: 8.2B.
    m = _hf(name).spec
    assert not m.is_moe and _rel(m.total_params, total) < 0.01


# --- equal to the shipped model files ---------------------------------------------------------

@pytest.mark.parametrize("fixture,shipped", [
    ("hf/mixtral-8x7b-v0.1.json", "mixtral-8x7b"), ("hf/deepseek-v3.json", "deepseek-v3"),
    ("hf/qwen3-30b-a3b.json", "qwen3-30b-a3b"), ("hf/gpt-oss-120b.json", "gpt-oss-120b"),
    ("hf/meta-llama-3-8b.json", "llama-3-8b"), ("megatron/deepseek-v3.yaml", "deepseek-v3"),
    ("megatron/qwen3-30b-a3b.sh", "qwen3-30b-a3b")])
def test_import_equals_shipped_model(root, fixture, shipped):
    imported = import_model(FIXTURES / fixture, name=shipped).spec
    assert imported == load_model(root / f"scenarios/models/{shipped}.yaml")


def test_yaml_round_trip_and_header(tmp_path):
    imp = _hf("deepseek-v3")
    text = imp.to_yaml()
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert "deepseek-v3.json" in head[0] and "DeepseekV3ForCausalLM" in " ".join(head[:3])
    assert "routing.max_nodes_per_token: 4" in " ".join(head).replace("# ", "")
    assert all(len(ln) <= 100 for ln in text.splitlines())
    (tmp_path / "m.yaml").write_text(text)
    assert load_model(tmp_path / "m.yaml") == imp.spec


def test_megatron_notes_count_unread_arguments():
    imp = import_model(FIXTURES / "megatron/qwen3-30b-a3b.sh")
    assert imp.architecture == "Megatron-LM arguments" and imp.spec.name == "qwen3-30b-a3b"
    assert any(n.startswith("6 arguments that do not shape the model") for n in imp.notes)


def test_megatron_defaults(tmp_path):
    # Megatron's defaults: GELU, FFN 4h, MHA, tied embeddings, top-2, biases on all linears.
    p = tmp_path / "args.txt"
    p.write_text("--num-layers 4 --hidden-size 512 --num-attention-heads 8 --vocab-size 1000 "
                 "--num-experts 4 --moe-layer-freq 2\n")
    imp = import_model(p)
    m = imp.spec
    assert (m.activation, m.ffn_hidden_size, m.top_k, m.tied_embeddings) == ("gelu", 2048, 2, True)
    assert m.attention.num_kv_heads == 8 and m.attention.qkv_bias and m.attention.out_bias
    # --moe-layer-freq 2 on 4 layers is MoE at 0 and 2: moesim's nearest, 1 and 3, same count.
    assert m.moe_layer_indices == (1, 3)
    assert any("MoE layers 0, 2" in n for n in imp.notes)


# --- the layer pattern ------------------------------------------------------------------------

def test_layer_pattern_exact_cases():
    assert fit_layer_pattern([False] * 3 + [True] * 58, "x")[:2] == (3, 1)  # DeepSeek-V3
    assert fit_layer_pattern([i % 2 == 1 for i in range(48)], "x") == (0, 2, None)  # step 2
    assert fit_layer_pattern([False, True, False, False, True], "x")[2] is not None


@given(st.lists(st.booleans(), min_size=1, max_size=64))
def test_layer_pattern_keeps_counts(flags):
    dense, freq, note = fit_layer_pattern(flags, "x")
    got = moesim_pattern(len(flags), dense, freq)
    if any(flags):
        assert sum(got) == sum(flags)
    assert (note is None) == (got == flags or not any(flags))


# --- errors: one line naming the file and the field -------------------------------------------

def _write(tmp_path: Path, data: dict, name: str = "config.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_unknown_architecture(tmp_path):
    p = _write(tmp_path, {"architectures": ["FalconForCausalLM"], "hidden_size": 8})
    with pytest.raises(SpecError) as e:
        import_model(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: architectures=['FalconForCausalLM']") and e.value.field == (
        "architectures")
    assert "MixtralForCausalLM" in msg and "Glm4MoeForCausalLM" in msg and "\n" not in msg


def test_unknown_field_names_it_and_can_be_ignored(tmp_path):
    data = json.loads((HF / "mixtral-8x7b-v0.1.json").read_text()) | {"expert_layout": "x"}
    p = _write(tmp_path, data)
    with pytest.raises(SpecError, match=r"expert_layout='x' is a field moesim does not know for "
                       r"MixtralForCausalLM; .*--ignore expert_layout"):
        import_model(p)
    assert import_model(p, ignore=["expert_layout"]).spec.num_experts == 8


def test_missing_field_and_bad_activation(tmp_path):
    data = json.loads((HF / "mixtral-8x7b-v0.1.json").read_text())
    with pytest.raises(SpecError, match="num_local_experts is missing"):
        import_model(_write(tmp_path, {k: v for k, v in data.items() if k != "num_local_experts"}))
    with pytest.raises(SpecError, match="hidden_act='relu2' is not an activation"):
        import_model(_write(tmp_path, data | {"hidden_act": "relu2"}))


def test_text_config_fields_are_named_with_their_path(tmp_path):
    data = json.loads((HF / "llama-4-scout-17b-16e.json").read_text())
    data["text_config"]["num_local_experts"] = "many"
    with pytest.raises(SpecError) as e:
        import_model(_write(tmp_path, data))
    assert e.value.field == "text_config.num_local_experts"


def test_megatron_errors(tmp_path):
    p = tmp_path / "a.args"
    p.write_text("--num-layers 4 --hidden-size 64 --num-attention-heads 4")
    with pytest.raises(SpecError, match="--vocab-size is missing"):
        import_model(p)
    p.write_text("--num-layers 4 --hidden-size 64 --num-attention-heads 4 --vocab-size 10 "
                 "--num-experts 4 --moe-layer-freq '[1]*3'")
    with pytest.raises(SpecError, match="moe-layer-freq='\\[1\\]\\*3' has 3 entries"):
        import_model(p)
    p.write_text("--num-layers $LAYERS --hidden-size 64")
    with pytest.raises(SpecError, match="shell variable"):
        import_model(p)


def test_moesim_file_and_unknown_format(root, tmp_path):
    with pytest.raises(SpecError, match="already a moesim model file"):
        import_model(root / "scenarios/models/mixtral-8x7b.yaml")
    with pytest.raises(SpecError, match="cannot tell the format"):
        import_model(_write(tmp_path, {"layers": 3}))


# --- scenarios: model: hf:PATH ----------------------------------------------------------------

def _tiny_scenario(tmp_path: Path, root: Path, model_ref: str, ep: int) -> Path:
    sc = {"name": "tiny", "topology": str(root / "topologies/dgx-h100-superpod.yaml"),
          "topology_overrides": {"tiers.1.num_domains": 1}, "model": model_ref,
          "num_devices": 8, "parallelism": {"expert_parallel_degree": ep},
          "workload": {"global_batch_size": 8, "sequence_length": 1024}}
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(sc))
    return p


def test_scenario_hf_reference_equals_shipped(root, tmp_path):
    a = load_scenario(_tiny_scenario(tmp_path, root, f"hf:{HF / 'mixtral-8x7b-v0.1.json'}", 8))
    b = load_scenario(_tiny_scenario(tmp_path, root, str(root / "scenarios/models/"
                                                         "mixtral-8x7b.yaml"), 8))
    assert a.model_spec.model_copy(update={"name": "m"}) == b.model_spec.model_copy(
        update={"name": "m"})


def test_scenario_raw_config_gets_a_hint(root, tmp_path):
    p = _tiny_scenario(tmp_path, root, str(HF / "mixtral-8x7b-v0.1.json"), 8)
    with pytest.raises(SpecError, match="Hugging Face config.json.*model: hf:PATH"):
        load_scenario(p)


FAMILIES = sorted(p.stem for p in HF.glob("*.json"))


@pytest.mark.parametrize("name", FAMILIES)
def test_tiny_analytic_step(root, tmp_path, name):
    """Each family on one 8-GPU node, cut to its dense layers plus two MoE layers: the step's
    model FLOPs are 6 x (matmul parameters a token touches) + 3 x the attention scores (the
    main model: MTP modules left out of the count)."""
    m = _hf(name).spec
    ep = 1 if not m.is_moe else 8 if m.num_experts % 8 == 0 else 4
    layers = max(2, m.num_dense_layers + 2 * m.moe_layer_frequency)
    s = load_scenario(_tiny_scenario(tmp_path, root, f"hf:{HF / f'{name}.json'}", ep),
                      [f"model.num_layers={layers}", "workload.count_mtp_flops=false"])
    r = simulate(s, fidelity="analytic")
    t = s.model_spec
    assert r.tokens_per_step == 8 * 1024 and r.step_time_s > 0 and 0 < r.mfu < 1
    # Matmul parameters: active minus the lookup table (the LM head stays) and the RMSNorms.
    matmul = t.active_params - (t.embedding_params - _lookup(t)) - (2 * layers + 1) * t.hidden_size
    a = t.attention
    per_head = a.head_dim + (a.v_head_dim if a.kind == "mla" else a.head_dim)
    scores = 2 * 1024 * a.num_heads * per_head * layers
    assert r.model_flops_per_step == pytest.approx(8 * 1024 * (6 * matmul + 3 * scores), rel=1e-9)
