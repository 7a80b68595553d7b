"""Hugging Face ``config.json`` families mapped to :class:`~moesim.specs.model.MoEModelSpec`.

One converter per family reads the fields that shape the model (their meaning as the
family's ``transformers`` modeling code uses them) and returns moesim's fields. What moesim
cannot model exactly is mapped to the nearest feature, with a note for the YAML header.
``FAMILIES`` maps each ``architectures`` entry to its converter; ``MODEL_TYPES`` maps the
``model_type`` of a config without ``architectures``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moesim.specs.hf_fields import ConfigFields, fit_layer_pattern, gated_activation

Converter = Callable[[ConfigFields, list[str]], dict[str, Any]]

# Fields of every family that change no shape and no cost moesim models: token ids, numerics
# (norm epsilons, initialization, dropout), positional-encoding constants, bookkeeping.
IGNORED_FIELDS = frozenset({
    "_name_or_path", "architectures", "model_type", "transformers_version", "torch_dtype",
    "dtype", "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range",
    "rms_norm_eps", "layer_norm_eps", "attention_dropout", "hidden_dropout", "use_cache",
    "rope_theta", "rope_scaling", "rope_parameters", "rope_interleave", "partial_rotary_factor",
    "pretraining_tp", "auto_map", "output_router_logits", "router_aux_loss_coef",
    "router_z_loss_coef", "router_jitter_noise", "aux_loss_alpha", "seq_aux", "norm_topk_prob",
    "ep_size", "tokenizer_class", "_attn_implementation_autoset", "initial_context_length",
    "for_llm_compressor", "attn_scale", "attn_temperature_tuning", "floor_scale",
    "cache_implementation", "moe_router_dtype", "use_return_dict", "return_dict",
    "output_attentions", "output_hidden_states", "is_encoder_decoder",
})


# --- shared pieces -----------------------------------------------------------------------

def _base(f: ConfigFields) -> dict[str, Any]:
    """Depth, width, vocabulary, tying and context length (every family names them alike)."""
    return {"num_layers": f.get_int("num_hidden_layers"), "hidden_size": f.get_int("hidden_size"),
            "vocab_size": f.get_int("vocab_size"),
            "tied_embeddings": f.get_bool("tie_word_embeddings", False),
            "max_position_embeddings": f.get_int("max_position_embeddings", None)}


def _gqa(f: ConfigFields, *, qkv_bias: bool = False, out_bias: bool = False,
         qk_norm: bool = False) -> dict[str, Any]:
    """Grouped-query attention; head_dim defaults to hidden / heads as in transformers."""
    heads = f.get_int("num_attention_heads")
    return {"kind": "gqa", "num_heads": heads,
            "num_kv_heads": f.get_int("num_key_value_heads", heads),
            "head_dim": f.get_int("head_dim", f.get_int("hidden_size") // heads),
            "qkv_bias": qkv_bias, "out_bias": out_bias, "qk_norm": qk_norm}


def _pattern(out: dict[str, Any], moe: list[bool], where: str, notes: list[str]) -> None:
    dense, freq, note = fit_layer_pattern(moe, where)
    out.update(num_dense_layers=dense, moe_layer_frequency=freq)
    if note:
        notes.append(note)


def _sliding(f: ConfigFields, notes: list[str], *, enabled: bool | None = None,
             out: dict[str, Any] | None = None) -> None:
    """A sliding-window setting: every layer windowed (``out`` given: set moesim's fields),
    else noted as modelled by full causal attention."""
    window = f.raw("sliding_window")
    if not window or not (enabled if enabled is not None else True):
        return
    if out is not None and isinstance(window, int) and window > 0:
        out["sliding_window"] = window
        return
    notes.append(f"sliding_window={window}: moesim models full causal attention on every "
                 "layer (the nearest), so attention FLOPs are overcounted at sequences "
                 f"longer than {window} tokens")


def _window_pattern(out: dict[str, Any], kinds: list[Any], window: Any,
                    notes: list[str]) -> None:
    """``layer_types`` of sliding and full layers as moesim's window every Nth layer."""
    sliding = [i for i, k in enumerate(kinds) if k == "sliding_attention"]
    if not sliding or not isinstance(window, int) or window < 1:
        return
    for freq in range(1, len(kinds) + 1):
        if all((i % freq == 0) == (i in sliding) for i in range(len(kinds))):
            out.update(sliding_window=window, sliding_window_frequency=freq)
            return
    notes.append(f"layer_types: {len(sliding)} of {len(kinds)} layers use {window}-token "
                 "sliding windows in a pattern moesim cannot express (every Nth layer from "
                 "layer 0); modelled as full causal attention, so their attention FLOPs are "
                 "overcounted")


def _quantization(f: ConfigFields, notes: list[str]) -> None:
    q = f.raw("quantization_config")
    if isinstance(q, dict):
        how = q.get("quant_method") or q.get("fmt") or "quantized"
        notes.append(f"quantization_config ({how}): how the checkpoint stores its weights; "
                     "the training precision is the scenario's workload.dtype")


def _group_routing(f: ConfigFields, notes: list[str]) -> None:
    """Router settings of the DeepSeek router (scoring, groups): routing, not the model."""
    n_group = f.get_int("n_group", 1)
    topk_group = f.get_int("topk_group", n_group)
    how = ", ".join(f"{k}={f.raw(k)}" for k in ("scoring_func", "topk_method",
                                                  "routed_scaling_factor") if f.has(k))
    text = (f"n_group={n_group}, topk_group={topk_group}" + (f", {how}" if how else "")
            + ": routing settings, not part of the model")
    if topk_group < n_group:
        text += (f"; each token's experts come from at most {topk_group} of {n_group} expert "
                 f"groups: in a scenario write routing.max_nodes_per_token: {topk_group} "
                 "where each group lives on one node")
    notes.append(text)


# --- families ----------------------------------------------------------------------------

def mixtral(f: ConfigFields, notes: list[str]) -> dict[str, Any]:
    """MixtralForCausalLM: every layer MoE, experts as wide as intermediate_size."""
    width = f.get_int("intermediate_size")
    _sliding(f, notes)
    return {**_base(f), "attention": _gqa(f), "ffn_hidden_size": width,
            "activation": gated_activation(f), "num_experts": f.get_int("num_local_experts"),
            "expert_ffn_hidden_size": width, "top_k": f.get_int("num_experts_per_tok")}


def deepseek(f: ConfigFields, notes: list[str]) -> dict[str, Any]:
    """DeepseekV2/V3ForCausalLM (and Kimi-K2): MLA, shared + routed experts, dense leaders."""
    out = _base(f)
    f.raw("num_key_value_heads")  # MLA: every head has its own K and V from the latent
    out["attention"] = {
        "kind": "mla", "num_heads": f.get_int("num_attention_heads"),
        "q_lora_rank": f.get_int("q_lora_rank", None), "kv_lora_rank": f.get_int("kv_lora_rank"),
        "qk_nope_head_dim": f.get_int("qk_nope_head_dim"),
        "qk_rope_head_dim": f.get_int("qk_rope_head_dim"), "v_head_dim": f.get_int("v_head_dim")}
    if f.get_bool("attention_bias", False):
        notes.append("attention_bias=true: projection biases are not counted (moesim's MLA "
                     "has none)")
    out.update(ffn_hidden_size=f.get_int("intermediate_size"), activation=gated_activation(f),
               num_mtp_layers=f.get_int("num_nextn_predict_layers", 0, minimum=0))
    experts = f.get_int("n_routed_experts", 0, minimum=0)
    first = f.get_int("first_k_dense_replace", 0, minimum=0)
    freq = f.get_int("moe_layer_freq", 1)
    top_k = f.get_int("num_experts_per_tok", 0, minimum=0)
    width = f.get_int("moe_intermediate_size", 0, minimum=0)
    shared = f.get_int("n_shared_experts", 0, minimum=0)
    if experts:
        out.update(num_experts=experts, top_k=top_k, expert_ffn_hidden_size=width,
                   num_shared_experts=shared)
        moe = [i >= first and i % freq == 0 for i in range(out["num_layers"])]
        _pattern(out, moe, "first_k_dense_replace, moe_layer_freq", notes)
        _group_routing(f, notes)
    _quantization(f, notes)
    return out


def qwen_moe(f: ConfigFields, notes: list[str], *, qwen3: bool) -> dict[str, Any]:
    """Qwen2MoeForCausalLM / Qwen3MoeForCausalLM: decoder_sparse_step, mlp_only_layers."""
    out = _base(f)
    if qwen3:
        bias = f.get_bool("attention_bias", False)
        out["attention"] = _gqa(f, qkv_bias=bias, out_bias=bias, qk_norm=True)
    else:  # Qwen2: biases on q, k and v only (qkv_bias, default true)
        out["attention"] = _gqa(f, qkv_bias=f.get_bool("qkv_bias", True))
    experts = f.get_int("num_experts", 0, minimum=0)
    step = f.get_int("decoder_sparse_step", 1)
    only_mlp = set(f.get_int_list("mlp_only_layers") or [])
    shared_width = f.get_int("shared_expert_intermediate_size", 0, minimum=0)
    top_k = f.get_int("num_experts_per_tok", 0, minimum=0)
    width = f.get_int("moe_intermediate_size", 0, minimum=0)
    out.update(ffn_hidden_size=f.get_int("intermediate_size"), activation=gated_activation(f))
    if experts:
        out.update(num_experts=experts, top_k=top_k, expert_ffn_hidden_size=width)
        if shared_width:
            out.update(num_shared_experts=1, shared_expert_ffn_hidden_size=shared_width)
            notes.append("shared_expert_gate (one hidden x 1 sigmoid gate per MoE layer, "
                         f"{out['hidden_size']:,} parameters each) is not modelled")
        moe = [i not in only_mlp and (i + 1) % step == 0 for i in range(out["num_layers"])]
        _pattern(out, moe, "decoder_sparse_step, mlp_only_layers", notes)
    _sliding(f, notes, enabled=f.get_bool("use_sliding_window", False))
    f.raw("layer_types")
    f.raw("max_window_layers")
    return out


def gpt_oss(f: ConfigFields, notes: list[str]) -> dict[str, Any]:
    """GptOssForCausalLM: every layer MoE; alternating sliding/full attention; sinks."""
    out = _base(f)
    bias = f.get_bool("attention_bias", True)
    out["attention"] = _gqa(f, qkv_bias=bias, out_bias=bias)
    experts = f.get_int("num_local_experts")
    top_k = f.get_int("num_experts_per_tok", None) or f.get_int("experts_per_token")
    if f.has("experts_per_token") and f.get_int("experts_per_token") != top_k:
        raise f.error("experts_per_token", f"disagrees with num_experts_per_tok={top_k}")
    width = f.get_int("intermediate_size")
    out.update(ffn_hidden_size=width, activation=gated_activation(f), num_experts=experts,
               expert_ffn_hidden_size=width, top_k=top_k)
    _window_pattern(out, f.raw("layer_types") or [], f.raw("sliding_window"), notes)
    n = out["num_layers"]
    heads = out["attention"]["num_heads"]
    notes.append(f"attention sinks (one learned logit per head: {n} x {heads} = "
                 f"{n * heads:,} parameters) are not modelled; they add no GEMM")
    notes.append(f"expert and router biases ({n} x ({experts} x 3 x {width} + {experts}) = "
                 f"{n * experts * (3 * width + 1):,} parameters) are not modelled")
    if f.has("swiglu_limit"):
        notes.append(f"swiglu_limit={f.raw('swiglu_limit')}: the clamped SwiGLU costs what "
                     "SwiGLU costs")
    _quantization(f, notes)
    return out


def llama4(f: ConfigFields, notes: list[str]) -> dict[str, Any]:
    """Llama4 text model: interleaved MoE layers with one shared expert, chunked attention."""
    out = _base(f)
    out["attention"] = _gqa(f, qkv_bias=f.get_bool("attention_bias", False),
                            out_bias=f.get_bool("attention_bias", False))
    if f.get_bool("use_qk_norm", False):
        notes.append("use_qk_norm: Llama 4's q/k L2 norm has no weights (nothing to count)")
    experts = f.get_int("num_local_experts")
    width = f.get_int("intermediate_size")
    step = f.get_int("interleave_moe_layer_step", 1)
    n = out["num_layers"]
    listed = f.get_int_list("moe_layers")
    moe_set = set(listed) if listed is not None else set(range(step - 1, n, step))
    out.update(ffn_hidden_size=f.get_int("intermediate_size_mlp"),
               activation=gated_activation(f), num_experts=experts,
               expert_ffn_hidden_size=width, top_k=f.get_int("num_experts_per_tok"),
               num_shared_experts=1, shared_expert_ffn_hidden_size=width)
    _pattern(out, [i in moe_set for i in range(n)], "interleave_moe_layer_step, moe_layers",
             notes)
    chunk = f.raw("attention_chunk_size")
    no_rope = f.raw("no_rope_layers")
    f.raw("no_rope_layer_interval")
    if chunk:
        notes.append(f"attention_chunk_size={chunk}: the RoPE layers attend within "
                     f"{chunk}-token chunks; moesim models full causal attention on every "
                     "layer (the nearest), so their attention FLOPs are overcounted at "
                     f"sequences longer than {chunk} tokens" + (
                         " (no_rope_layers marks the global ones)" if no_rope else ""))
    return out


def glm4_moe(f: ConfigFields, notes: list[str]) -> dict[str, Any]:
    """Glm4MoeForCausalLM (GLM-4.5): dense leaders, shared expert, q/k norm, MTP."""
    out = _base(f)
    out["attention"] = _gqa(f, qkv_bias=f.get_bool("attention_bias", False),
                            qk_norm=f.get_bool("use_qk_norm", False))
    experts = f.get_int("n_routed_experts")
    first = f.get_int("first_k_dense_replace", 0, minimum=0)
    f.raw("decoder_sparse_step")  # in the config class, unused by its modeling code
    out.update(ffn_hidden_size=f.get_int("intermediate_size"), activation=gated_activation(f),
               num_experts=experts, top_k=f.get_int("num_experts_per_tok"),
               expert_ffn_hidden_size=f.get_int("moe_intermediate_size"),
               num_shared_experts=f.get_int("n_shared_experts", 0, minimum=0),
               num_mtp_layers=f.get_int("num_nextn_predict_layers", 0, minimum=0))
    _pattern(out, [i >= first for i in range(out["num_layers"])], "first_k_dense_replace",
             notes)
    _group_routing(f, notes)
    notes.append(f"e_score_correction_bias ({experts} per MoE layer, aux-loss-free balancing) "
                 "is not counted")
    return out


def dense(f: ConfigFields, notes: list[str], *, family: str) -> dict[str, Any]:
    """LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM: a dense decoder (num_experts 0)."""
    out = _base(f)
    if family == "qwen2":  # Qwen2: biases on q, k and v, none on the output projection
        out["attention"] = _gqa(f, qkv_bias=True)
    else:
        bias = f.get_bool("attention_bias", False)
        out["attention"] = _gqa(f, qkv_bias=bias, out_bias=bias, qk_norm=family == "qwen3")
    if family == "llama" and f.get_bool("mlp_bias", False):
        notes.append("mlp_bias=true: MLP biases are not counted")
    _sliding(f, notes, enabled=f.get_bool("use_sliding_window", family == "llama"))
    f.raw("layer_types")
    f.raw("max_window_layers")
    return {**out, "ffn_hidden_size": f.get_int("intermediate_size"),
            "activation": gated_activation(f)}


FAMILIES: dict[str, Converter] = {
    "MixtralForCausalLM": mixtral,
    "DeepseekV2ForCausalLM": deepseek,
    "DeepseekV3ForCausalLM": deepseek,
    "Qwen2MoeForCausalLM": lambda f, n: qwen_moe(f, n, qwen3=False),
    "Qwen3MoeForCausalLM": lambda f, n: qwen_moe(f, n, qwen3=True),
    "GptOssForCausalLM": gpt_oss,
    "Llama4ForConditionalGeneration": llama4,  # reads text_config (see moesim.specs.hf)
    "Llama4ForCausalLM": llama4,
    "Glm4MoeForCausalLM": glm4_moe,
    "LlamaForCausalLM": lambda f, n: dense(f, n, family="llama"),
    "Qwen2ForCausalLM": lambda f, n: dense(f, n, family="qwen2"),
    "Qwen3ForCausalLM": lambda f, n: dense(f, n, family="qwen3"),
}

# model_type -> architecture, for configs that omit "architectures".
MODEL_TYPES: dict[str, str] = {
    "mixtral": "MixtralForCausalLM", "deepseek_v2": "DeepseekV2ForCausalLM",
    "deepseek_v3": "DeepseekV3ForCausalLM", "kimi_k2": "DeepseekV3ForCausalLM",
    "qwen2_moe": "Qwen2MoeForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
    "gpt_oss": "GptOssForCausalLM", "llama4": "Llama4ForConditionalGeneration",
    "llama4_text": "Llama4ForCausalLM", "glm4_moe": "Glm4MoeForCausalLM",
    "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
}
