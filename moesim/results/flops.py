"""Model FLOPs per step, counted the way Megatron-LM's throughput report counts them.

Per token and layer, forward: 2 x (every projection's in x out), the attention scores
(QK^T and PV: 2 x 2 x seq x heads x head_dim, the full square unless ``causal_flops``),
router 2 x hidden x experts, top_k routed experts and the shared experts (or the dense FFN),
and the LM head 2 x hidden x vocab. Training is 3x forward (one forward, two backward GEMMs).
Recomputation is not counted (it is hardware FLOPs, not model FLOPs). Each MTP module counts
a layer of the last layer's kind, its 2h x h projection, its three norms and one more LM
head, as Megatron-LM's num_floating_point_operations does (megatron/training/training.py,
"MTP norms and proj", "MTP + final logit"); ``workload.count_mtp_flops: false`` leaves them
out (DeepSeek-V3's own 250 GFLOP/token does).
"""

from __future__ import annotations

from moesim.specs.model import MLAAttentionSpec, MoEModelSpec
from moesim.specs.workload import TrainingWorkloadSpec


def attention_forward_flops_per_token(model: MoEModelSpec, seq: int, *, causal: bool) -> float:
    """Projections plus scores of one layer for one token (forward, FLOPs)."""
    att, h = model.attention, model.hidden_size
    proj = 2.0 * att.params(h)
    if isinstance(att, MLAAttentionSpec):
        per_head = att.head_dim + att.v_head_dim  # QK^T over qk dims, PV over v dims
    else:
        per_head = 2 * att.head_dim
    scores = 2.0 * seq * att.num_heads * per_head
    return proj + (0.5 * scores if causal else scores)


def ffn_forward_flops_per_token(model: MoEModelSpec, layer: int) -> float:
    """The FFN part of one layer for one token (forward, FLOPs)."""
    if model.is_moe_layer(layer):
        routed = model.top_k * model.expert_params
        shared = model.num_shared_experts * model.ffn_params(model.shared_ffn_hidden)
        return 2.0 * (routed + shared + model.router_params)
    return 2.0 * model.ffn_params(model.ffn_hidden_size)


def model_flops_per_token(model: MoEModelSpec, seq: int, *, causal: bool = False,
                          mtp: bool = True) -> float:
    """Training FLOPs of one token (3x forward), Megatron convention."""
    att = attention_forward_flops_per_token(model, seq, causal=causal)
    total = sum(att + ffn_forward_flops_per_token(model, i) for i in range(model.num_layers))
    h = model.hidden_size
    total += 2.0 * h * model.vocab_size  # LM head
    if mtp and model.num_mtp_layers:
        last = att + ffn_forward_flops_per_token(model, model.num_layers - 1)
        total += model.num_mtp_layers * (last + 2.0 * (2 * h * h + 3 * h) + 2.0 * h * model.vocab_size)
    return 3.0 * total


def model_flops_per_step(model: MoEModelSpec, workload: TrainingWorkloadSpec) -> float:
    """Model FLOPs of one optimizer step (FLOPs)."""
    per_token = model_flops_per_token(model, workload.sequence_length,
                                      causal=workload.causal_flops,
                                      mtp=workload.count_mtp_flops)
    return per_token * workload.tokens_per_step
