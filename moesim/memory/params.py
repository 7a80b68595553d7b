"""Parameters on one pipeline rank after TP/PP/EP/ETP sharding, and their model-state bytes.

Sharding follows Megatron-Core's semantics (MoE mechanics reference §8, MCore): attention, dense
FFN and shared-expert weights are split over TP; norms and the router are replicated over TP;
each MoE layer keeps ``experts_per_rank`` experts, each split over ETP; the vocabulary of the
embedding and LM head is split over TP. CP never shards weights.

Model states per parameter (ZeRO, arXiv:1910.02054 §3.1: 2 + 2 + K with K = 12 for
mixed-precision Adam): weights in ``param_dtype``, gradients in ``grad_dtype`` (Megatron
accumulates in fp32: 18 bytes in all), an fp32 master copy unless the weights already are
fp32, and the optimizer moments (Adam: 2, SGD with momentum: 1) in ``optimizer_state_dtype``.
ZeRO-1 (Megatron's distributed optimizer) shards master weights and moments, ZeRO-2 also the
gradients, ZeRO-3 / FSDP also the weights, over the data-parallel group of the weight: DP x CP
for dense weights, the expert-data-parallel group for expert weights (MCore parallel folding).
"""

from __future__ import annotations

from dataclasses import dataclass

from moesim.memory.layout import ChunkSpan, rank_chunks
from moesim.specs.model import MoEModelSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.units import dtype_bytes


@dataclass(frozen=True)
class RankParams:
    """Parameter counts (elements, not bytes) held by one rank of one pipeline stage."""

    dense: float
    expert: float

    @property
    def total(self) -> float:
        return self.dense + self.expert


def _mtp_params(model: MoEModelSpec) -> tuple[int, int]:
    """(dense, expert) of one DeepSeek-V3 MTP module (``MoEModelSpec.mtp_params``: a layer like
    the last one, a 2h x h projection and three RMSNorms; embedding and head are shared)."""
    dense, expert = model.layer_params(model.num_layers - 1)
    h = model.hidden_size
    return dense + 2 * h * h + 3 * h, expert


def _dense_layer_per_rank(model: MoEModelSpec, index: int, tp: int) -> float:
    dense, _ = model.layer_params(index)
    replicated = model.norm_params_per_layer + (
        model.router_params if model.is_moe_layer(index) else 0)
    return (dense - replicated) / tp + replicated


def layer_params_per_rank(s: ScenarioSpec, index: int) -> RankParams:
    """Dense and expert parameters of layer ``index`` on one rank, before ZeRO (elements)."""
    model, par = s.model_spec, s.parallelism
    dense = _dense_layer_per_rank(model, index, par.tensor_parallel_degree)
    expert = 0.0
    if model.is_moe_layer(index):
        expert = s.experts_per_rank * model.expert_params / par.expert_tensor_parallel_degree
    return RankParams(dense=float(dense), expert=float(expert))


def _first_dense(model: MoEModelSpec) -> int:
    """The first layer without routed experts (there is one when this is asked)."""
    return next(i for i in range(model.num_layers) if i not in model.moe_layer_set)


def chunk_params(s: ScenarioSpec, chunk: ChunkSpan) -> RankParams:
    """Dense and expert parameters of one chunk on one rank (elements)."""
    model, par = s.model_spec, s.parallelism
    tp, etp = par.tensor_parallel_degree, par.expert_tensor_parallel_degree
    # A layer's counts depend on it only through whether it is an MoE layer.
    moe_set = model.moe_layer_set
    n_moe = sum(1 for i in chunk.layers if i in moe_set)
    n_dense = len(chunk.layers) - n_moe
    dense = expert = 0.0
    for count, index in ((n_moe, model.moe_layer_indices[0] if n_moe else -1),
                         (n_dense, _first_dense(model) if n_dense else -1)):
        if count:
            p = layer_params_per_rank(s, index)
            dense += count * p.dense
            expert += count * p.expert
    per_expert = model.expert_params / etp
    vocab_shard = model.vocab_size * model.hidden_size / tp
    if chunk.has_embedding:
        dense += vocab_shard
    if chunk.has_head:
        # Untied: the LM head; tied with PP > 1: Megatron keeps a copy on the last stage.
        if not model.tied_embeddings or not chunk.has_embedding:
            dense += vocab_shard
        dense += model.hidden_size  # final norm
        mtp_dense, mtp_expert = _mtp_params(model)
        mtp_norms = model.norm_params_per_layer + model.hidden_size  # replicated over TP
        dense += model.num_mtp_layers * ((mtp_dense - mtp_norms) / tp + mtp_norms)
        if mtp_expert:
            expert += model.num_mtp_layers * s.experts_per_rank * per_expert
    return RankParams(dense=float(dense), expert=float(expert))


def rank_params(s: ScenarioSpec, rank: int) -> RankParams:
    """Parameters pipeline rank ``rank`` holds (every chunk; both for DualPipe)."""
    parts = [chunk_params(s, c) for c in rank_chunks(s.model_spec.num_layers, s.parallelism, rank)]
    return RankParams(dense=sum(p.dense for p in parts), expert=sum(p.expert for p in parts))


def parameter_bytes_per_rank(s: ScenarioSpec) -> list[dict[str, float]]:
    """Weight bytes per pipeline rank: ``{"dense": bytes, "expert": bytes}``, after ZeRO-3/FSDP."""
    out = []
    for r in range(s.parallelism.pipeline_parallel_degree):
        st = model_state_bytes(s, rank_params(s, r))
        out.append({"dense": st["weights_dense"], "expert": st["weights_expert"]})
    return out


@dataclass(frozen=True)
class StateBytesPerParam:
    """Bytes per parameter of each model state, before any sharding."""

    weights: float
    gradients: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer


def bytes_per_param(s: ScenarioSpec) -> StateBytesPerParam:
    """Weights, gradients and optimizer bytes per parameter (16 / 18 for mixed-precision Adam)."""
    wl = s.workload
    master = 4.0 if wl.master_weights and wl.param_dtype != "fp32" else 0.0  # fp32 copy
    moments = 2 if wl.optimizer == "adam" else 1  # Adam m and v; SGD momentum
    return StateBytesPerParam(
        weights=dtype_bytes(wl.param_dtype),
        gradients=dtype_bytes(wl.grad_dtype),
        optimizer=master + moments * dtype_bytes(wl.optimizer_state_dtype),
    )


def shard_groups(s: ScenarioSpec) -> tuple[int, int]:
    """(dense, expert) data-parallel group sizes that ZeRO/FSDP shard over."""
    dense = s.data_parallel_degree * s.parallelism.context_parallel_degree
    expert = s.expert_data_parallel_degree if s.model_spec.is_moe else dense
    return dense, max(expert, 1)


def model_state_bytes(s: ScenarioSpec, params: RankParams) -> dict[str, float]:
    """Bytes of weights (dense, expert), gradients and optimizer states on one rank."""
    per = bytes_per_param(s)
    stage = s.parallelism.effective_zero_stage
    g_dense, g_expert = shard_groups(s)

    def sharded(count: float, group: int, from_stage: int) -> float:
        return count / group if stage >= from_stage else count

    return {
        "weights_dense": per.weights * sharded(params.dense, g_dense, 3),
        "weights_expert": per.weights * sharded(params.expert, g_expert, 3),
        "gradients": per.gradients * (sharded(params.dense, g_dense, 2)
                                      + sharded(params.expert, g_expert, 2)),
        "optimizer_states": per.optimizer * (sharded(params.dense, g_dense, 1)
                                             + sharded(params.expert, g_expert, 1)),
    }
