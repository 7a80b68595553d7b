"""Upper bounds of spec fields, where the physics has them, and why.

Each bound sits far above every real system, model and workload (a 64k-device cluster, a
1M-token context and a million-expert layer all validate) and far below where the cost
models would overflow a float or an int64, or allocate more than a laptop has. Spec fields
use them as ``Field(le=...)``; a value above one gets the reason below in its message
(``REASONS``, keyed by field name). Cross-field limits (what a whole scenario implies) are in
:mod:`moesim.specs.work`.
"""

from __future__ import annotations

# --- the cluster -----------------------------------------------------------------------------
# Devices in one topology or scenario: 2^18 = 262,144, above the largest training cluster
# built (xAI Colossus, about 200k GPUs, 2025). moesim's cluster graph costs about 2 KB and
# 30 us per device (a 65,536-device DeepSeek-V3 run is 2 s analytic, 5 s DES on a 2-core VM).
MAX_DEVICES = 1 << 18
# Small hardware counts (SMs, NICs per domain, NVSwitch chips, switch radix, ICI links, cores
# per chip, chips per host): a few hundred at most today (MI300X 304 CUs, H100 132 SMs,
# NVL576 576 NICs per rack, 512-port switch ASICs); 65,536 is 100x any of them.
MAX_HARDWARE_COUNT = 1 << 16
# Dense peak per device per dtype: 100 PFLOP/s, 20x a B200's 4.5 PFLOP/s dense FP8.
MAX_TFLOPS = 1e5
# HBM per device: 10 TB, 35x the largest today (288 GB on MI355X and B300).
MAX_HBM_GB = 1e4
# Memory bandwidth per device: 100 PB/s, 5x wafer-scale SRAM (Cerebras WSE-3, 21 PB/s).
MAX_HBM_GBYTE_PER_S = 1e8
# A scale-up link per device per direction: 100 TB/s, 100x NVLink 5 (900 GB/s).
MAX_LINK_GBYTE_PER_S = 1e5
# A NIC or DCN share per device per direction: 100 Tb/s, 60x a 1.6 Tb/s NIC.
MAX_NIC_GBIT_PER_S = 1e5
# Any latency, launch cost or host floor: 1 s, 10x an intercontinental round trip; no fabric
# hop, kernel launch or host-side op issue is slower.
MAX_LATENCY_US = 1e6
# Leaf down:up ratio: real fat trees run 1:1 to 4:1; 1024 stands for "almost no uplink".
MAX_OVERSUBSCRIPTION = 1024.0
# USD per device-hour: an H100 rents for about 2-10 USD; 10,000 is 1000x that.
MAX_PRICE_PER_DEVICE_HOUR = 1e4

# --- the model -------------------------------------------------------------------------------
# Layers: 4096, 30x the deepest published transformers (PaLM 540B 118, Llama 3.1 405B 126).
MAX_LAYERS = 4096
# Hidden, FFN and low-rank widths: 2^20, 20x the widest FFN published (Llama 3.1 405B: 53,248;
# hidden 16,384).
MAX_WIDTH = 1 << 20
# Attention heads and head dimensions: 16,384, 128x today's largest (128 heads; head_dim 256).
MAX_HEADS = 1 << 14
# Routed experts per layer: 2^20, the most published (PEER, "Mixture of A Million Experts",
# He 2024: 1024^2 experts).
MAX_EXPERTS = 1 << 20
# Vocabulary: 2^24, 64x the largest in use (Gemma, 256k).
MAX_VOCAB = 1 << 24

# --- the workload and layout -----------------------------------------------------------------
# Tokens per sequence: 2^30, 100x a 10M-token context (Llama 4 Scout); a 1M-token context
# validates.
MAX_SEQUENCE = 1 << 30
# Sequences per optimizer step: 2^24, 1000x DeepSeek-V3's 15,360.
MAX_BATCH = 1 << 24
# All-to-all chunks overlapped with expert GEMMs: Megatron overlaps 2, Tutel's adaptive
# pipelining degree goes to 8; every chunk adds a launch per expert GEMM, so past a few dozen
# the launches cost more than the overlap saves. 256 is 32x Tutel's largest.
MAX_OVERLAP_CHUNKS = 256
# Seeds: numpy's SeedSequence takes any non-negative integer; 64 bits is what a seed is.
MAX_SEED = (1 << 64) - 1

REASONS: dict[str, str] = {
    "num_devices": "above the largest cluster built (about 200k GPUs)",
    "num_domains": "a topology has at most 2^18 devices",
    "num_slices": "a topology has at most 2^18 devices",
    "dims": "a topology has at most 2^18 devices",
    "cube_dims": "a topology has at most 2^18 devices",
    "domains_per_leaf_group": "a topology has at most 2^18 devices",
    "num_sms": "no accelerator has more than a few hundred SMs or CUs",
    "nics_per_domain": "no scale-up domain has more than a few hundred NICs",
    "num_switches": "no scale-up domain has more than a few hundred switch chips",
    "leaf_radix": "no switch ASIC has more than a few hundred ports",
    "spine_radix": "no switch ASIC has more than a few hundred ports",
    "links_per_chip": "no chip has more than a few dozen links",
    "cores_per_chip": "no chip has more than a few hundred cores",
    "chips_per_host": "no host holds more than a few dozen chips",
    "bf16_dense_tflops": "100 PFLOP/s per device is 20x the fastest chip",
    "fp16_dense_tflops": "100 PFLOP/s per device is 20x the fastest chip",
    "fp8_dense_tflops": "100 PFLOP/s per device is 20x the fastest chip",
    "fp32_dense_tflops": "100 PFLOP/s per device is 20x the fastest chip",
    "hbm_capacity_gib": "no accelerator has more than a few hundred GiB of HBM",
    "hbm_gbyte_per_s": "100 PB/s is 5x wafer-scale SRAM",
    "link_gbyte_per_s": "100 TB/s per direction is 100x NVLink 5",
    "nic_gbit_per_s": "100 Tb/s is 60x the fastest NIC",
    "per_device_gbit_per_s": "100 Tb/s is 60x the fastest NIC",
    "latency_us": "no fabric hop takes a second",
    "kernel_launch_us": "no kernel launch takes a second",
    "host_op_us": "no host-side op issue takes a second",
    "oversubscription": "real fat trees are 1:1 to 4:1",
    "price_per_device_hour": "1000x what a GPU-hour rents for",
    "num_layers": "the deepest published transformers have about 120 layers",
    "num_dense_layers": "the deepest published transformers have about 120 layers",
    "num_mtp_layers": "the deepest published transformers have about 120 layers",
    "sliding_window_frequency": "the deepest published transformers have about 120 layers",
    "sliding_window": "a window longer than the longest context attends to everything",
    "moe_layer_frequency": "the deepest published transformers have about 120 layers",
    "num_virtual_stages": "the deepest published transformers have about 120 layers",
    "hidden_size": "20x the widest published model",
    "ffn_hidden_size": "20x the widest published model",
    "expert_ffn_hidden_size": "20x the widest published model",
    "shared_expert_ffn_hidden_size": "20x the widest published model",
    "q_lora_rank": "20x the widest published model",
    "kv_lora_rank": "20x the widest published model",
    "num_heads": "128x the most heads published",
    "num_kv_heads": "128x the most heads published",
    "head_dim": "64x the widest head published",
    "qk_nope_head_dim": "64x the widest head published",
    "qk_rope_head_dim": "64x the widest head published",
    "v_head_dim": "64x the widest head published",
    "num_experts": "the most experts published is 2^20 (PEER)",
    "num_shared_experts": "the most experts published is 2^20 (PEER)",
    "num_redundant_experts": "the most experts published is 2^20 (PEER)",
    "top_k": "the most experts published is 2^20 (PEER)",
    "vocab_size": "64x the largest vocabulary in use",
    "max_position_embeddings": "100x a 10M-token context",
    "sequence_length": "100x a 10M-token context",
    "global_batch_size": "1000x DeepSeek-V3's 15,360 sequences",
    "micro_batch_size": "1000x DeepSeek-V3's 15,360 sequences",
    "tensor_parallel_degree": "a parallel degree cannot exceed the 2^18 devices of a topology",
    "pipeline_parallel_degree": "a parallel degree cannot exceed the 2^18 devices of a topology",
    "expert_parallel_degree": "a parallel degree cannot exceed the 2^18 devices of a topology",
    "expert_tensor_parallel_degree": "a parallel degree cannot exceed the 2^18 devices of a topology",
    "context_parallel_degree": "a parallel degree cannot exceed the 2^18 devices of a topology",
    "max_nodes_per_token": "a topology has at most 2^18 devices",
    "moe_overlap_chunks": "past a few dozen chunks the extra launches cost more than the overlap saves",
    "capacity_factor": "above num_experts / top_k a capacity never binds",
    "exponent": "at a Zipf exponent of 10 the hottest expert already takes 99.9% of tokens",
    "seed": "a seed is a 64-bit non-negative integer",
}


def reason(field: str) -> str | None:
    """Why ``field`` (a dotted path; its last part is looked up) has the bound it has."""
    last = field.rsplit(".", 1)[-1]
    if last.isdigit() and "." in field:  # an element of a list field: dims.2
        last = field.rsplit(".", 2)[-2]
    return REASONS.get(last)
