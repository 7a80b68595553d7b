"""Megatron-LM model arguments mapped one to one onto :class:`~moesim.specs.model.MoEModelSpec`.

The arguments come as a mapping (JSON or YAML, keys with or without the leading ``--``,
dashes or underscores) or as an argument list (``--num-layers 32 --swiglu ...``, a shell
script's ``MODEL_ARGS=( ... )`` too). Defaults are Megatron's own (GELU without ``--swiglu``,
biases on every linear layer without ``--disable-bias-linear``, tied embeddings without
``--untie-embeddings-and-output-weights``). Arguments that do not shape the model (training,
parallelism, data, logging) are not read; the YAML header counts them.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from moesim.errors import SpecError
from moesim.specs.hf_fields import ConfigFields, fit_layer_pattern

ARCHITECTURE = "Megatron-LM arguments"

# The arguments that name a model's shape; any one of them marks a mapping as Megatron's.
SHAPE_ARGS = ("num-layers", "hidden-size", "num-attention-heads", "ffn-hidden-size")

# Router and capacity arguments: routing settings, not part of the model.
ROUTING_ARGS = ("moe-router-topk-limited-devices", "moe-router-num-groups",
                "moe-router-group-topk", "moe-router-load-balancing-type",
                "moe-router-score-function", "moe-router-topk-scaling-factor",
                "moe-router-enable-expert-bias", "moe-expert-capacity-factor",
                "moe-token-drop-policy", "moe-pad-expert-input-to-capacity",
                "moe-aux-loss-coeff")

_TERM = re.compile(r"^\[\s*([\d\s,]*)\]\s*(?:\*\s*(\d+))?$")


def normalize(name: str) -> str:
    """``--num_layers`` / ``num_layers`` / ``num-layers`` -> ``num-layers``."""
    return name.lstrip("-").replace("_", "-")


def parse_argument_text(text: str, file: str) -> dict[str, Any]:
    """``{name: value}`` of every ``--name [value ...]`` in an argument list.

    A flag alone is ``True``; one value is a string; several are a list. Tokens outside an
    argument (a launcher, ``MODEL_ARGS=(``, ``)``) are skipped."""
    try:
        tokens = shlex.split(text.replace("\\\n", " "), comments=True)
    except ValueError as exc:
        raise SpecError(f"cannot split the argument list: {exc}", file=file) from None
    out: dict[str, Any] = {}
    key: str | None = None
    for tok in tokens:
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok.partition("=")
            key = normalize(name)
            out[key] = value if eq else True
            key = None if eq else key
        elif tok in ("(", ")") or "=(" in tok:
            key = None
        elif key is not None:
            prev = out[key]
            out[key] = tok if prev is True else [*prev, tok] if isinstance(prev, list) else [
                prev, tok]
    return out


def _shell_variables(args: dict[str, Any], file: str) -> None:
    for k, v in args.items():
        if isinstance(v, str) and "$" in v:
            raise SpecError(f"--{k}={v!r} is a shell variable; write its value", file=file,
                            field=f"--{k}")


def layer_flags(fields: ConfigFields, num_layers: int) -> list[bool]:
    """Which layers are MoE, from ``--moe-layer-freq``: an integer N (layer i is MoE when
    i % N == 0, Megatron's rule) or a list such as ``([0]*3+[1]*58)``."""
    raw = fields.raw("moe-layer-freq", 1)
    if isinstance(raw, list) and all(isinstance(x, int) for x in raw):
        flags = [bool(x) for x in raw]
    elif isinstance(raw, (int, str)) and str(raw).strip().isdigit():
        freq = fields.get_int("moe-layer-freq")
        return [i % freq == 0 for i in range(num_layers)]
    else:
        flags = []
        text = "".join(raw) if isinstance(raw, list) else str(raw)
        text = text.strip().removeprefix("(").removesuffix(")")
        for term in text.split("+"):
            m = _TERM.match(term.strip())
            if not m:
                raise fields.error("moe-layer-freq", "is not an integer or a list such as "
                                   "([0]*3+[1]*58)")
            values = [int(x) for x in m.group(1).replace(",", " ").split()]
            flags += [bool(x) for x in values] * int(m.group(2) or 1)
    if len(flags) != num_layers:
        raise fields.error("moe-layer-freq", f"has {len(flags)} entries; --num-layers is "
                           f"{num_layers}")
    return flags


def _attention(f: ConfigFields, hidden: int, heads: int, notes: list[str]) -> dict[str, Any]:
    if f.get_bool("multi-latent-attention", False):
        # Megatron's MLA defaults: full-rank Q, KV rank 32, q/k 128 + 64 (RoPE), v 128.
        return {"kind": "mla", "num_heads": heads, "q_lora_rank": f.get_int("q-lora-rank", None),
                "kv_lora_rank": f.get_int("kv-lora-rank", 32),
                "qk_nope_head_dim": f.get_int("qk-head-dim", 128),
                "qk_rope_head_dim": f.get_int("qk-pos-emb-head-dim", 64),
                "v_head_dim": f.get_int("v-head-dim", 128)}
    gqa = f.get_bool("group-query-attention", False)
    groups = f.get_int("num-query-groups", None)
    if groups and not gqa:
        notes.append("--num-query-groups without --group-query-attention: Megatron runs "
                     "multi-head attention, and so does this model")
    kv = (groups or 1) if gqa else heads
    bias_linear = f.get_bool("add-bias-linear", True) and not f.get_bool(
        "disable-bias-linear", False)
    if bias_linear:
        notes.append("biases on every linear layer (Megatron's default without "
                     "--disable-bias-linear): counted on the attention projections only")
    return {"kind": "gqa", "num_heads": heads, "num_kv_heads": kv,
            "head_dim": f.get_int("kv-channels", hidden // heads),
            "qkv_bias": bias_linear or f.get_bool("add-qkv-bias", False),
            "out_bias": bias_linear, "qk_norm": f.get_bool("qk-layernorm", False)}


def _activation(f: ConfigFields) -> str:
    for unsupported in ("squared-relu", "openai-gelu", "onnx-safe"):
        if f.get_bool(unsupported, False):
            raise f.error(unsupported, "is not an activation moesim models; supported: "
                          "Megatron's default GELU and --swiglu")
    return "swiglu" if f.get_bool("swiglu", False) else "gelu"


def _positions(f: ConfigFields, notes: list[str]) -> None:
    kind = f.get_str("position-embedding-type", "learned_absolute")
    if f.get_bool("use-rotary-position-embeddings", False):
        kind = "rope"
    if kind == "learned_absolute":
        notes.append("learned absolute position embeddings (Megatron's default without "
                     "--position-embedding-type rope) are not counted")
    if f.get_str("normalization", "LayerNorm") == "LayerNorm":
        notes.append("LayerNorm (Megatron's default without --normalization RMSNorm): its "
                     "biases are not counted")


def convert(f: ConfigFields, notes: list[str]) -> dict[str, Any]:
    """moesim's model fields from Megatron arguments."""
    _shell_variables(dict(f.data), f.file)
    layers, hidden = f.get_int("num-layers"), f.get_int("hidden-size")
    heads = f.get_int("num-attention-heads")
    if not f.has("vocab-size"):
        raise SpecError("--vocab-size is missing (Megatron takes it from the tokenizer); add "
                        "--vocab-size N, the tokenizer's size", file=f.file, field="--vocab-size")
    activation = _activation(f)
    # Megatron's default FFN width: 4h, or 2/3 of it rounded down to a multiple of 64 (SwiGLU).
    default_ffn = int(4 * hidden * 2 / 3 / 64) * 64 if activation == "swiglu" else 4 * hidden
    out: dict[str, Any] = {
        "num_layers": layers, "hidden_size": hidden, "vocab_size": f.get_int("vocab-size"),
        "attention": _attention(f, hidden, heads, notes),
        "ffn_hidden_size": f.get_int("ffn-hidden-size", default_ffn), "activation": activation,
        "tied_embeddings": not f.get_bool("untie-embeddings-and-output-weights", False),
        "max_position_embeddings": f.get_int("max-position-embeddings", None),
        "num_mtp_layers": f.get_int("mtp-num-layers", 0, minimum=0)}
    _positions(f, notes)
    experts = f.get_int("num-experts", 0, minimum=0)
    if experts:
        shared = f.get_int("moe-shared-expert-intermediate-size", 0, minimum=0)
        out.update(num_experts=experts, top_k=f.get_int("moe-router-topk", 2),
                   expert_ffn_hidden_size=f.get_int("moe-ffn-hidden-size", out["ffn_hidden_size"]))
        if shared:  # Megatron's width is all shared experts together: one of that width
            out.update(num_shared_experts=1, shared_expert_ffn_hidden_size=(
                None if shared == out["expert_ffn_hidden_size"] else shared))
        dense, freq, note = fit_layer_pattern(layer_flags(f, layers), "--moe-layer-freq")
        out.update(num_dense_layers=dense, moe_layer_frequency=freq)
        if note:
            notes.append(note)
    routing = [f"--{k}={f.raw(k)}" for k in ROUTING_ARGS if f.has(k)]
    if routing:
        notes.append(", ".join(routing) + ": routing settings, not part of the model (the "
                     "scenario's routing section)")
    return out
