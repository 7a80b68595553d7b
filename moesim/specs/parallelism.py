"""Parallel layouts: DP (derived), TP+SP, PP with schedules, EP, ETP, CP, ZeRO/FSDP."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from moesim.specs import bounds as B
from moesim.specs.base import FrozenSpec


class GPipeScheduleSpec(FrozenSpec):
    kind: Literal["gpipe"] = "gpipe"


class OneFOneBScheduleSpec(FrozenSpec):
    kind: Literal["1f1b"] = "1f1b"


class InterleavedScheduleSpec(FrozenSpec):
    """Interleaved 1F1B (Megatron virtual pipeline): each rank holds ``num_virtual_stages`` chunks."""

    kind: Literal["interleaved_1f1b"] = "interleaved_1f1b"
    num_virtual_stages: int = Field(ge=1, le=B.MAX_LAYERS)


class DualPipeScheduleSpec(FrozenSpec):
    """DeepSeek's DualPipe: bidirectional, forward/backward chunks overlapped with all-to-all."""

    kind: Literal["dualpipe"] = "dualpipe"


PipelineScheduleSpec = Annotated[
    GPipeScheduleSpec | OneFOneBScheduleSpec | InterleavedScheduleSpec | DualPipeScheduleSpec,
    Field(discriminator="kind"),
]


class DirectAllToAllSpec(FrozenSpec):
    """All pairs at once (NCCL's point-to-point all-to-all)."""

    kind: Literal["direct"] = "direct"


class HierarchicalAllToAllSpec(FrozenSpec):
    """Two stages: intra-domain all-to-all, then inter-domain among same-rail peers (Tutel 2DH)."""

    kind: Literal["hierarchical"] = "hierarchical"


class DeepEPAllToAllSpec(FrozenSpec):
    """DeepEP normal mode: one IB copy per destination node to the same-rail peer, then NVLink."""

    kind: Literal["deepep"] = "deepep"
    num_sms: int = Field(default=20, ge=1, le=B.MAX_HARDWARE_COUNT, description="SMs the kernels occupy (DeepSeek-V3: 20)")
    backend: Literal["deepep", "hybridep"] = Field(
        default="deepep", description="deepep: DeepEP's normal kernels, whose SMs bound the "
        "rate (num_sms x the per-SM rate of the accelerator's measured DeepEP series); "
        "hybridep: NVIDIA's Hybrid-EP (Megatron's flex dispatcher backend), TMA copies, no "
        "measured per-SM rate: its SMs are charged to compute only")


AllToAllSpec = Annotated[
    DirectAllToAllSpec | HierarchicalAllToAllSpec | DeepEPAllToAllSpec,
    Field(discriminator="kind"),
]


class ParallelismSpec(FrozenSpec):
    """A layout. The data-parallel degree is derived: devices / (TP x CP x PP)."""

    tensor_parallel_degree: int = Field(default=1, ge=1, le=B.MAX_DEVICES)
    sequence_parallel: bool = Field(default=True, description="with TP > 1 (Megatron SP)")
    pipeline_parallel_degree: int = Field(default=1, ge=1, le=B.MAX_DEVICES)
    pipeline_schedule: PipelineScheduleSpec = Field(default_factory=OneFOneBScheduleSpec)
    pipeline_layer_split: tuple[int, ...] | None = Field(
        default=None, description="layers per (virtual) stage; default: even split")
    expert_parallel_degree: int = Field(default=1, ge=1, le=B.MAX_DEVICES)
    expert_tensor_parallel_degree: int = Field(default=1, ge=1, le=B.MAX_DEVICES)
    context_parallel_degree: int = Field(default=1, ge=1, le=B.MAX_DEVICES)
    zero_stage: Literal[0, 1, 2, 3] = Field(
        default=1, description="0 none; 1 optimizer (Megatron distributed optimizer); 2 +grads; 3 +params")
    fsdp: bool = Field(default=False, description="FSDP: parameters sharded over DP (like ZeRO-3)")
    micro_batch_size: int = Field(default=1, ge=1, le=B.MAX_BATCH, description="sequences per micro-batch")
    recompute: Literal["none", "selective", "full"] = "none"
    recompute_modules: tuple[Literal["core_attn", "layernorm", "mla_up_proj", "moe_act",
                                     "mlp", "moe", "shared_experts"], ...] | None = Field(
        default=None, description="with recompute=selective: what is recomputed, in "
        "Megatron-Core's --recompute-modules names (mlp: the dense MLP; moe: the whole MoE "
        "layer with its dispatch and combine; shared_experts); None: core_attn, layernorm, "
        "mla_up_proj and moe_act (DeepSeek-V3's choice, see docs/memory.md)")
    all_to_all: AllToAllSpec = Field(default_factory=DirectAllToAllSpec)
    overlap_grad_reduce: bool = True
    overlap_param_gather: bool = True
    overlap_moe_expert_parallel_comm: bool = Field(
        default=False, description="Megatron-Core's 1F1B all-to-all overlap: in the steady "
        "state one micro-batch's forward runs merged with another's backward, each one's EP "
        "dispatch/combine hidden under the other's compute (needs delay_wgrad_compute)")
    moe_shared_expert_overlap: bool = Field(
        default=False, description="the shared experts run beside the dispatch/combine "
        "all-to-all (Megatron-Core moe_shared_expert_overlap)")
    tp_comm_overlap: bool = Field(
        default=False, description="TP all-gathers and reduce-scatters overlapped with the "
        "adjacent GEMMs (Transformer Engine userbuffers, Megatron tp_comm_overlap)")
    cp_comm_type: Literal["p2p", "all_gather", "a2a"] = Field(
        default="p2p", description="context parallelism: p2p ring (K/V chunks exchanged "
        "while attention computes), all_gather (gathered before attention), a2a (Ulysses "
        "head exchange); Megatron-Core cp_comm_type")
    moe_overlap_chunks: int = Field(
        default=1, ge=1, le=B.MAX_OVERLAP_CHUNKS, description="chunks the all-to-all is split into to overlap expert GEMMs")

    @property
    def num_virtual_stages(self) -> int:
        s = self.pipeline_schedule
        return s.num_virtual_stages if isinstance(s, InterleavedScheduleSpec) else 1

    @property
    def model_parallel_size(self) -> int:
        """Devices one data-parallel replica spans (TP x CP x PP)."""
        return (self.tensor_parallel_degree * self.context_parallel_degree
                * self.pipeline_parallel_degree)

    @property
    def effective_zero_stage(self) -> int:
        return 3 if self.fsdp else self.zero_stage

    def data_parallel_degree(self, num_devices: int) -> int:
        return num_devices // self.model_parallel_size

    def expert_data_parallel_degree(self, num_devices: int) -> int:
        """EDP = TP x CP x DP / (ETP x EP), per pipeline stage (Megatron parallel folding)."""
        per_stage = num_devices // self.pipeline_parallel_degree
        return per_stage // (self.expert_tensor_parallel_degree * self.expert_parallel_degree)
