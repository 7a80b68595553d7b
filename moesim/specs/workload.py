"""What is run: training now (inference gets its own variant of the union later)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from moesim.specs import bounds as B
from moesim.specs.base import FrozenSpec


class TrainingWorkloadSpec(FrozenSpec):
    """One optimizer step of pre-training."""

    kind: Literal["training"] = "training"
    global_batch_size: int = Field(ge=1, le=B.MAX_BATCH, description="sequences per optimizer step")
    sequence_length: int = Field(ge=1, le=B.MAX_SEQUENCE, description="tokens per sequence")
    dtype: Literal["bf16", "fp16", "fp8", "fp32"] = Field(
        default="bf16", description="GEMM compute dtype")
    fp8_recipe: Literal["tensorwise", "delayed", "blockwise", "mxfp8"] = Field(
        default="tensorwise", description="with dtype fp8, how GEMM operands are scaled "
        "(Transformer Engine recipes): one scale per tensor (current or delayed scaling), "
        "1x128 / 128x128 blocks (DeepSeek-V3, DeepGEMM), or MXFP8 32-element blocks "
        "(Blackwell); selects the measured FP8 kernels")
    param_dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    grad_dtype: Literal["bf16", "fp32"] = Field(
        default="fp32", description="dtype gradients are accumulated in (Megatron: fp32)")
    optimizer: Literal["adam", "sgd"] = "adam"
    optimizer_state_dtype: Literal["fp32", "bf16"] = Field(
        default="fp32", description="Adam moments (DeepSeek-V3 keeps them in bf16)")
    master_weights: bool = Field(default=True, description="fp32 master copy of the weights")
    causal_flops: bool = Field(
        default=False, description="count only the causal half of attention FLOPs in TFLOP/s")
    count_mtp_flops: bool = Field(
        default=True, description="count the MTP modules in the model FLOPs (Megatron-LM's "
        "convention); false: the main model only (DeepSeek-V3's own figures)")
    host_op_us: float | None = Field(
        default=None, ge=0, le=B.MAX_LATENCY_US, description="host time to issue one modeled op (the framework's "
        "Python, autograd and launch work); the host runs ahead of the device and waits at "
        "synchronization points (docs/engine.md, Host); null: moesim's fitted value on GPUs "
        "and 0 on TPUs (XLA launches the compiled step once)")
    cuda_graph_modules: tuple[Literal["attn", "mlp", "moe", "moe_router", "moe_preprocess",
                                      "full_iteration"], ...] = Field(
        default=(), description="what CUDA graphs capture, in Megatron-Core's names "
        "(cuda_graph_modules; full_iteration for cuda_graph_impl=full_iteration): captured ops "
        "cost no host issue time, one launch per captured region")

    @property
    def gemm_kernel_dtype(self) -> str:
        """The kernel family the linear layers run: bf16, ..., fp8 (per-tensor scaling),
        fp8_block or mxfp8."""
        if self.dtype != "fp8":
            return self.dtype
        return {"blockwise": "fp8_block", "mxfp8": "mxfp8"}.get(self.fp8_recipe, "fp8")

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch_size * self.sequence_length


WorkloadSpec = TrainingWorkloadSpec
