"""What a training process holds besides model states and activations.

- Framework reserve: the CUDA context plus communication-library buffers. The context alone
  costs ~0.7-0.8 GB the moment a process touches a GPU (723 MiB after the first CUDA call in
  discuss.pytorch.org thread 73021; "~700+MB" depending on CUDA version and device in thread
  81330); we take 0.75 GiB. NCCL keeps per-channel send/receive buffers of NCCL_BUFFSIZE
  (NCCL's documented default: 4 MiB) for each communicator; we assume 16 channels (a typical
  NVLink / NDR ring setting) and one communicator per parallel group wider than one rank.
- DeepEP buffers: DeepEP's normal kernels keep NVLink and RDMA receive buffers sized by its
  size hints (deepseek-ai/DeepEP csrc/legacy/config.hpp get_nvl_buffer_size_hint and
  get_rdma_buffer_size_hint; Megatron-Core's fused_a2a.get_buffer takes the larger of the
  dispatch and combine configs): per channel (num_sms / 2), per NVLink peer (<= 8) and per
  RDMA node, the configured chunk of received tokens, each token its hidden bytes (at least
  2 per element) plus top-k indices, weights and scales (128 each at most). Chunk sizes per
  EP size are DeepEP's recommended configs (deep_ep/buffers/legacy.py).
- Allocator fragmentation: PyTorch's caching allocator rounds large blocks to 2 MiB and
  carves 20 MiB segments, so memory freed between micro-batches cannot always be reused
  (the reason Megatron / NeMo recommend ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True``).
  No source gives one number; we assume 5 % of the memory that churns during the step
  (activations and transient buffers), an assumption to calibrate against measured peaks.
- Communication buckets: Megatron-Core's DDP keeps gradients in one contiguous buffer whose
  buckets are views (``distributed_data_parallel_config.py``: bucket_size defaults to
  ``max(40_000_000, 1_000_000 x dp)`` parameters), so ZeRO 0/1 need nothing extra. ZeRO-2
  reduces full-size buckets into a sharded gradient: two buckets are alive (one filling, one
  reducing). ZeRO-3 / FSDP gathers each layer's full weights before use: the current and the
  prefetched layer (``overlap_param_gather``), plus one layer's full gradient to reduce-scatter.
"""

from __future__ import annotations

from moesim.memory.params import StateBytesPerParam
from moesim.specs.scenario import ScenarioSpec
from moesim.units import GIB, MIB

CUDA_CONTEXT_BYTES = 0.75 * GIB  # discuss.pytorch.org threads 73021 (723 MiB) and 81330
NCCL_BUFFSIZE_BYTES = 4 * MIB  # NCCL_BUFFSIZE default (NCCL environment variables docs)
NCCL_CHANNELS = 16  # assumption: a typical channel count on NVLink / NDR rings
FRAGMENTATION_FRACTION = 0.05  # assumption, see the module docstring
MCORE_MIN_BUCKET_PARAMS = 40_000_000  # MCore DDP default bucket: max(40M, 1M x dp) params
MCORE_BUCKET_PARAMS_PER_DP = 1_000_000


def num_communicators(s: ScenarioSpec) -> int:
    """Parallel groups wider than one rank (TP, CP, PP, DP, EP, ETP, EDP)."""
    par = s.parallelism
    sizes = [par.tensor_parallel_degree, par.context_parallel_degree,
             par.pipeline_parallel_degree, s.data_parallel_degree]
    if s.model_spec.is_moe:
        sizes += [par.expert_parallel_degree, par.expert_tensor_parallel_degree,
                  s.expert_data_parallel_degree]
    return sum(1 for n in sizes if n > 1)


def framework_reserve_bytes(s: ScenarioSpec) -> float:
    """CUDA context, NCCL buffers (send and receive) per communicator and DeepEP's buffers,
    in bytes."""
    nccl = num_communicators(s) * 2 * NCCL_CHANNELS * NCCL_BUFFSIZE_BYTES
    return CUDA_CONTEXT_BYTES + nccl + deepep_buffer_bytes(s)


# DeepEP's recommended receive chunks (tokens) per EP size: (NVLink, RDMA); dispatch and
# combine configs agree on them (deep_ep/buffers/legacy.py get_dispatch/combine_config).
DEEPEP_RECV_CHUNKS = {2: (256, 128), 4: (256, 128), 8: (256, 128), 16: (288, 128),
                      24: (288, 128), 32: (288, 128), 48: (288, 128), 64: (288, 128),
                      96: (480, 128), 128: (560, 128), 144: (720, 128), 160: (720, 128)}
DEEPEP_MAX_TOPK = DEEPEP_MAX_SCALES = 128  # kNumMaxTopK, kNumMaxScales (config.hpp)
DEEPEP_NVL_PEERS = 8  # LEGACY_NUM_MAX_NVL_PEERS


def deepep_buffer_bytes(s: ScenarioSpec) -> float:
    """DeepEP's NVLink plus RDMA buffers on one rank (0 without a DeepEP dispatcher), bytes."""
    par, model = s.parallelism, s.model_spec
    sms = getattr(par.all_to_all, "num_sms", None)
    n = par.expert_parallel_degree
    if sms is None or not model.is_moe or n < 2:
        return 0.0
    key = min(DEEPEP_RECV_CHUNKS, key=lambda k: (abs(k - n), k))
    nvl_recv, rdma_recv = DEEPEP_RECV_CHUNKS[key]
    channels = max(1, sms // 2)
    nvl, rdma = min(n, DEEPEP_NVL_PEERS), max(n // DEEPEP_NVL_PEERS, 1)
    hidden = model.hidden_size * 2.0
    per_token = hidden + 8.0 + DEEPEP_MAX_TOPK * (8.0 + 4.0) + DEEPEP_MAX_SCALES * 4.0
    nvl_bytes = channels * nvl * ((2 * rdma + 3) * 4.0 + nvl_recv * per_token)
    rdma_bytes = 0.0
    if n > DEEPEP_NVL_PEERS:
        rdma_bytes = channels * rdma * 2.0 * ((DEEPEP_NVL_PEERS * 2 + 2) * 4.0
                                              + rdma_recv * (per_token + 16.0))
    return nvl_bytes + rdma_bytes


def fragmentation_bytes(churning_bytes: float) -> float:
    """Allocator fragmentation on memory allocated and freed during the step, in bytes."""
    return FRAGMENTATION_FRACTION * churning_bytes


def comm_bucket_bytes(s: ScenarioSpec, per: StateBytesPerParam, rank_params: float,
                      largest_layer_params: float) -> float:
    """Extra gradient-reduce / weight-gather buffers for the ZeRO stage, in bytes.

    ``rank_params``: the unsharded parameters of the rank; ``largest_layer_params``: the
    unsharded parameters of its largest layer (both element counts).
    """
    stage = s.parallelism.effective_zero_stage
    if stage <= 1:
        return 0.0
    if stage == 2:
        bucket = max(MCORE_MIN_BUCKET_PARAMS, MCORE_BUCKET_PARAMS_PER_DP * s.data_parallel_degree)
        return per.gradients * min(2 * bucket, rank_params)
    gather = 2 * largest_layer_params * per.weights
    return gather + largest_layer_params * per.gradients


def optimizer_step_temporaries(per: StateBytesPerParam, sharded_params: float) -> float:
    """fp32 main gradients the optimizer step makes from 16-bit gradients of its shard."""
    return max(0.0, 4.0 - per.gradients) * sharded_params
