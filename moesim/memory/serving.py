"""Memory of a serving device: weights, KV cache per token, workspace, and what fits.

Per device of one role (bytes unless named otherwise):

- weights: attention, dense FFN, shared experts and the router split over attention TP (the
  norms replicated), each MoE layer's physical experts ((E + redundant) / EP of them, each
  split over MoE TP), the embedding and the LM head split over attention TP, the MTP module
  when the role drafts with it. Linear-layer weights are stored in the GEMM dtype (FP8: one
  byte, block scales add 4 / 128^2 bytes per element and are left out); embedding, LM head
  and norms in BF16 (DeepSeek-V3 section 3.3.1 keeps the embedding, output head, MoE gating
  and normalization in their original precision);
- KV cache per token: MLA keeps the compressed latent and the decoupled RoPE key,
  (kv_lora_rank + qk_rope_head_dim) values per layer (DeepSeek-V3 section 2.1.1), on every
  attention-TP rank (the latent has no head axis to split); GQA keeps K and V of its KV heads,
  split over attention TP (replicated where TP exceeds the KV heads), 2 x heads x head_dim per
  layer; both times the KV dtype's bytes and the layers (plus the MTP layer when drafting);
- workspace: one iteration at ``max_batch_tokens`` tokens: four hidden-state buffers, plus
  the largest of the attention projections, the routed experts' inputs and intermediates on
  a device (balanced routing) and the FP32 logits of the sampled rows;
- reserve: the CUDA context and NCCL buffers (moesim.memory.overheads), DeepEP's normal
  buffers (its size hints) or its low-latency buffers (below).

The KV pool is what ``memory_fraction`` of HBM leaves after weights and communication
buffers (SGLang's ``--mem-fraction-static`` splits HBM the same way), and never more than
HBM less weights, buffers, workspace and reserve. A request reserves its prompt plus its
output (no preemption), so the concurrent sequences of one DP-attention rank are
floor(KV tokens / (input + output)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moesim.errors import InfeasibleError
from moesim.memory.overheads import (
    CUDA_CONTEXT_BYTES,
    NCCL_BUFFSIZE_BYTES,
    NCCL_CHANNELS,
    deepep_buffer_bytes,
)
from moesim.specs.model import MLAAttentionSpec, MoEModelSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.serving import RoleSpec, ServingWorkloadSpec
from moesim.specs.serving_view import role_scenario
from moesim.units import GIB, dtype_bytes

# DeepEP low-latency buffers (deepseek-ai/DeepEP csrc/legacy/config.hpp, LowLatencyLayout):
# two send buffers of max(T x msg_d, E x T x msg_c) bytes and two receive buffers of
# E x T x max(msg_d, msg_c), with msg_d = 16 + max(2D, D + 4D/128) and msg_c = 4D/128 + 2D
# (T: the most tokens a rank dispatches; E: physical experts). Signalling is left out.
LL_HEADER_BYTES = 16.0


@dataclass(frozen=True)
class ServingMemory:
    """One device of one role."""

    role: str
    capacity_bytes: float
    weights_bytes: dict[str, float]
    kv_bytes_per_token: float
    kv_pool_bytes: float
    kv_tokens: int  # per DP-attention rank
    workspace_bytes: float
    reserve_bytes: float

    @property
    def weights_total_bytes(self) -> float:
        return float(sum(self.weights_bytes.values()))

    @property
    def peak_bytes(self) -> float:
        return (self.weights_total_bytes + self.kv_pool_bytes + self.workspace_bytes
                + self.reserve_bytes)

    def max_sequences(self, input_tokens: int, output_tokens: int) -> int:
        """Requests of this size one DP-attention rank holds at once (closed form)."""
        return self.kv_tokens // max(1, input_tokens + output_tokens)


def kv_bytes_per_token(model: MoEModelSpec, kv_dtype: str, attention_tp: int,
                       mtp_layers: int = 0) -> float:
    """KV-cache bytes one device stores per cached token (see the module docstring)."""
    att, layers = model.attention, model.num_layers + mtp_layers
    b = dtype_bytes(kv_dtype)
    if isinstance(att, MLAAttentionSpec):
        return float((att.kv_lora_rank + att.qk_rope_head_dim) * layers * b)
    heads = max(1, att.num_kv_heads // attention_tp)
    return float(2 * heads * att.head_dim * layers * b)


def weight_bytes(s: ScenarioSpec, role: RoleSpec) -> dict[str, float]:
    """Weight bytes per device by part (attention, dense_ffn, shared_experts, router, experts,
    embedding, lm_head, norms, mtp)."""
    wl = s.workload
    assert isinstance(wl, ServingWorkloadSpec)
    m, tp = s.model_spec, role.attention_tp_degree
    lin = dtype_bytes("fp8" if wl.dtype == "fp8" else wl.dtype)
    bf16 = dtype_bytes("bf16")
    etp = max(1, role.devices_per_instance // role.ep)
    slots = (m.num_experts + role.num_redundant_experts) / role.ep if m.is_moe else 0.0
    n_moe = m.num_moe_layers
    shared = m.num_shared_experts * m.ffn_params(m.shared_ffn_hidden) if m.is_moe else 0
    out = {
        "attention": m.num_layers * m.attention_params_per_layer / tp * lin,
        "dense_ffn": (m.num_layers - n_moe) * m.ffn_params(m.ffn_hidden_size) / tp * lin,
        "shared_experts": n_moe * shared / tp * lin,
        "router": n_moe * m.router_params * bf16,
        "experts": n_moe * slots * m.expert_params / etp * lin,
        "embedding": m.vocab_size * m.hidden_size / tp * bf16,
        "lm_head": 0.0 if m.tied_embeddings else m.vocab_size * m.hidden_size / tp * bf16,
        "norms": (m.num_layers * m.norm_params_per_layer + m.hidden_size) * bf16,
        "mtp": 0.0,
    }
    if role.speculative is not None and m.num_mtp_layers:
        dense, expert = m.layer_params(m.num_layers - 1)
        h = m.hidden_size
        per_slot = expert / max(m.num_experts, 1)
        mtp = (dense + 2 * h * h) / tp * lin + slots * per_slot / etp * lin
        out["mtp"] = m.num_mtp_layers * mtp
    return out


def workspace_bytes(s: ScenarioSpec, role: RoleSpec) -> float:
    """Activation workspace of one iteration at the role's token budget (module docstring)."""
    m, tp = s.model_spec, role.attention_tp_degree
    t = float(role.max_batch_tokens)
    h, act = m.hidden_size, dtype_bytes("bf16")
    hidden = 4.0 * t * h * act
    att = m.attention
    if isinstance(att, MLAAttentionSpec):
        heads = att.num_heads / tp
        width = (att.q_lora_rank or 0) + heads * (att.head_dim + att.qk_nope_head_dim
                                                  + 2 * att.v_head_dim)
    else:
        width = (att.num_heads + 2 * att.num_kv_heads) / tp * att.head_dim
    attention = t * width * act
    moe = 0.0
    if m.is_moe:
        etp = max(1, role.devices_per_instance // role.ep)
        copies = t / tp * m.top_k * etp
        gate = 2 if m.expert_gated else 1
        moe = copies * (h * 1.0 + (gate + 1) * m.expert_ffn_hidden_size / etp * act + h * act)
    rows = min(t, float(role.max_batch_requests) * _draft_rows(role))
    logits = rows * m.vocab_size / tp * dtype_bytes("fp32")
    return hidden + max(attention, moe, logits)


def _draft_rows(role: RoleSpec) -> int:
    return 1 + (role.speculative.num_draft_tokens if role.speculative is not None else 0)


def low_latency_buffer_bytes(hidden: int, num_experts: int, max_tokens: int) -> float:
    """DeepEP's low-latency send and receive buffers on one rank (LL_HEADER_BYTES comment)."""
    msg_d = LL_HEADER_BYTES + max(2.0 * hidden, hidden + 4.0 * hidden / 128)
    msg_c = 4.0 * hidden / 128 + 2.0 * hidden
    send = max(max_tokens * msg_d, num_experts * max_tokens * msg_c)
    recv = num_experts * max_tokens * max(msg_d, msg_c)
    return 2.0 * send + 2.0 * recv


def reserve_bytes(s: ScenarioSpec, role: RoleSpec) -> tuple[float, float]:
    """(CUDA context and NCCL buffers, DeepEP buffers) on one device."""
    m = s.model_spec
    groups = sum(1 for n in (role.attention_tp_degree, role.ep) if n > 1)
    base = CUDA_CONTEXT_BYTES + groups * 2 * NCCL_CHANNELS * NCCL_BUFFSIZE_BYTES
    if not m.is_moe or role.ep == 1 or role.dispatcher == "nccl":
        return base, 0.0
    if role.dispatcher == "deepep_low_latency":
        tokens = role.max_batch_requests * _draft_rows(role)
        return base, low_latency_buffer_bytes(m.hidden_size, m.num_experts
                                              + role.num_redundant_experts, tokens)
    return base, deepep_buffer_bytes(role_scenario(s, role))


def role_memory(s: ScenarioSpec, name: str, role: RoleSpec) -> ServingMemory:
    """The memory of one device of ``role``; InfeasibleError when the weights do not fit or
    the KV pool cannot hold one token."""
    wl = s.workload
    assert isinstance(wl, ServingWorkloadSpec)
    m = s.model_spec
    cap = s.topology_spec.accelerator.hbm_bytes
    weights = weight_bytes(s, role)
    base, comm = reserve_bytes(s, role)
    work = workspace_bytes(s, role)
    mtp = m.num_mtp_layers if role.speculative is not None else 0
    per_token = kv_bytes_per_token(m, wl.kv_cache_dtype, role.attention_tp_degree, mtp)
    w = sum(weights.values())
    static = role.memory_fraction * cap - w - comm
    pool = min(static, cap - w - comm - work - base)
    where = "deployment.role" if name == "aggregated" else f"deployment.{name}"
    if role.kv_cache_tokens is not None:
        pool = role.kv_cache_tokens * per_token
        if w + comm + work + base + pool > cap:
            raise InfeasibleError(
                f"{where}.kv_cache_tokens={role.kv_cache_tokens}: {_gib(pool)} of KV cache with "
                f"{_gib(w)} of weights, {_gib(comm + base)} of buffers and {_gib(work)} of "
                f"workspace exceed the {_gib(cap)} HBM per device; lower it or spread the "
                "weights over more devices", reason="memory")
    if pool < per_token:
        raise InfeasibleError(
            f"{where}: weights {_gib(w)} + buffers {_gib(comm + base)} + workspace "
            f"{_gib(work)} leave no KV cache in {role.memory_fraction:g} x {_gib(cap)} of HBM "
            "per device; raise expert_parallel_degree or attention_tp_degree, or "
            "memory_fraction", reason="memory")
    tokens = int(math.floor(pool / per_token))
    return ServingMemory(role=name, capacity_bytes=cap, weights_bytes=weights,
                         kv_bytes_per_token=per_token, kv_pool_bytes=tokens * per_token,
                         kv_tokens=tokens, workspace_bytes=work,
                         reserve_bytes=base + comm)


def _gib(x: float) -> str:
    return f"{x / GIB:.2f} GiB"
