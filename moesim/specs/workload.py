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
    param_dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    grad_dtype: Literal["bf16", "fp32"] = Field(
        default="fp32", description="dtype gradients are accumulated in (Megatron: fp32)")
    optimizer: Literal["adam", "sgd"] = "adam"
    optimizer_state_dtype: Literal["fp32", "bf16"] = Field(
        default="fp32", description="Adam moments (DeepSeek-V3 keeps them in bf16)")
    master_weights: bool = Field(default=True, description="fp32 master copy of the weights")
    causal_flops: bool = Field(
        default=False, description="count only the causal half of attention FLOPs in TFLOP/s")
    host_op_floor_us: float | None = Field(
        default=None, ge=0, le=B.MAX_LATENCY_US, description="least time one modeled compute op holds its stream "
        "(the framework's host-side issue time); null: moesim's fitted value on GPUs "
        "(docs/engine.md, Calibration) and 0 on TPUs (XLA); 0 for a step whose kernels are "
        "replayed from CUDA graphs")

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch_size * self.sequence_length


WorkloadSpec = TrainingWorkloadSpec
