"""The kernel shapes a scenario needs, from its model and layout (for coverage reports).

Per micro-batch and rank (Megatron-Core conventions):
- tokens m = micro_batch_size x sequence_length / CP; column- and row-parallel GEMMs see
  all m tokens (sequence parallelism gathers them first);
- QKV: n = (heads + 2 kv_heads) x head_dim / TP, k = hidden; output projection: n = hidden,
  k = heads x head_dim / TP; MLA uses its low-rank down and up projections instead;
- dense FFN up: n = ffn x (2 if gated) / TP, k = hidden; down: n = hidden, k = ffn / TP;
- routed experts: each of the EP ranks holds m_local = m / TP tokens (sequence-parallel
  split) with top_k assignments each; under balanced routing the EP x m_local x top_k
  assignments spread evenly over num_experts experts, so one expert's GEMM has
  m_local x top_k x EP / num_experts rows; up n = expert_ffn x (2 if gated) / ETP,
  k = hidden; down n = hidden, k = expert_ffn / ETP;
- LM head: n = vocab / TP, k = hidden;
- backward of each GEMM m x n x k: dgrad (m, k, n) and wgrad (k, n, m).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moesim.specs.model import MLAAttentionSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.units import dtype_bytes


@dataclass(frozen=True)
class GemmShape:
    label: str
    m: int
    n: int
    k: int


@dataclass(frozen=True)
class AttentionShape:
    batch: int
    seq: int
    num_heads: int
    num_kv_heads: int
    head_dim: int


@dataclass
class ScenarioShapes:
    """Forward and backward kernel shapes of one scenario, per micro-batch and rank."""

    scenario: str
    gemm: list[GemmShape] = field(default_factory=list)
    expert_rows: int = 0
    attention: list[AttentionShape] = field(default_factory=list)
    memory_bytes: list[tuple[str, float]] = field(default_factory=list)


def _div(x: int, d: int) -> int:
    return max(1, x // d)


def _attention_gemms(s: ScenarioSpec, m: int, tp: int) -> list[GemmShape]:
    model = s.model_spec
    att, h = model.attention, model.hidden_size
    if isinstance(att, MLAAttentionSpec):
        heads = _div(att.num_heads, tp)
        out = [GemmShape("kv_down", m, att.kv_lora_rank + att.qk_rope_head_dim, h),
               GemmShape("kv_up", m, heads * (att.qk_nope_head_dim + att.v_head_dim),
                         att.kv_lora_rank),
               GemmShape("attn_out", m, h, heads * att.v_head_dim)]
        if att.q_lora_rank:
            out += [GemmShape("q_down", m, att.q_lora_rank, h),
                    GemmShape("q_up", m, heads * att.head_dim, att.q_lora_rank)]
        else:
            out.append(GemmShape("q", m, heads * att.head_dim, h))
        return out
    qkv = _div((att.num_heads + 2 * att.num_kv_heads) * att.head_dim, tp)
    return [GemmShape("qkv", m, qkv, h),
            GemmShape("attn_out", m, h, _div(att.num_heads * att.head_dim, tp))]


def scenario_shapes(s: ScenarioSpec) -> ScenarioShapes:
    """Every GEMM, attention and memory-op shape ``s`` runs (forward and backward)."""
    model, par = s.model_spec, s.parallelism
    tp, etp, cp = (par.tensor_parallel_degree, par.expert_tensor_parallel_degree,
                   par.context_parallel_degree)
    seq = s.workload.sequence_length // cp
    m = par.micro_batch_size * seq
    h, gate = model.hidden_size, (2 if model.gated else 1)
    fwd = _attention_gemms(s, m, tp)
    if model.num_dense_layers or not model.is_moe:
        fwd += [GemmShape("ffn_up", m, _div(model.ffn_hidden_size * gate, tp), h),
                GemmShape("ffn_down", m, h, _div(model.ffn_hidden_size, tp))]
    rows = 0
    if model.is_moe:
        m_local = _div(m, tp)
        rows = _div(m_local * model.top_k * par.expert_parallel_degree, model.num_experts)
        fwd += [GemmShape("expert_up", rows, _div(model.expert_ffn_hidden_size * gate, etp), h),
                GemmShape("expert_down", rows, h, _div(model.expert_ffn_hidden_size, etp)),
                GemmShape("router", m_local, model.num_experts, h)]
        if model.num_shared_experts:
            f = model.shared_ffn_hidden * model.num_shared_experts
            fwd += [GemmShape("shared_up", m_local, _div(f * gate, tp), h),
                    GemmShape("shared_down", m_local, h, _div(f, tp))]
    fwd.append(GemmShape("lm_head", m, _div(model.vocab_size, tp), h))
    gemms = list(fwd)
    for g in fwd:
        gemms += [GemmShape(f"{g.label}.dgrad", g.m, g.k, g.n),
                  GemmShape(f"{g.label}.wgrad", g.k, g.n, g.m)]
    att = model.attention
    attention = [AttentionShape(par.micro_batch_size, seq, _div(att.num_heads, tp),
                                _div(att.num_kv_heads, tp), att.head_dim)]
    b = dtype_bytes(s.workload.dtype)
    m_local = _div(m, tp)
    mem = [("norm", 2.0 * b * m_local * h)]
    if model.is_moe:
        mem += [("permute", 2.0 * b * m_local * model.top_k * h),
                ("unpermute", 3.0 * b * m_local * model.top_k * h),
                ("activation", 1.5 * b * rows * gate * _div(model.expert_ffn_hidden_size, etp))]
    return ScenarioShapes(scenario=s.name, gemm=gemms, expert_rows=rows, attention=attention,
                          memory_bytes=mem)
