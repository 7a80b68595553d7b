"""Accelerators and the fabric tiers that join them.

A topology is an accelerator plus an ordered list of tiers, innermost first. The first
tier is a scale-up domain (an NVSwitch node or rack, or a TPU torus); each later tier
joins ``num_*`` copies of everything below it (a fat tree of nodes, a DCN of pods).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from moesim.specs import bounds as B
from moesim.specs.base import FrozenSpec
from moesim.units import GBIT_PER_S, GBYTE_PER_S, GIB, TFLOPS


class AcceleratorSpec(FrozenSpec):
    """One accelerator: dense peak FLOP/s per dtype, HBM, and measured-efficiency defaults."""

    name: str
    vendor: Literal["nvidia", "google", "amd", "other"] = "nvidia"
    bf16_dense_tflops: float = Field(gt=0, le=B.MAX_TFLOPS, description="dense (no 2:4 sparsity) BF16 peak")
    fp16_dense_tflops: float | None = Field(default=None, gt=0, le=B.MAX_TFLOPS)
    fp8_dense_tflops: float | None = Field(default=None, gt=0, le=B.MAX_TFLOPS, description="None where no FP8 units")
    fp32_dense_tflops: float | None = Field(default=None, gt=0, le=B.MAX_TFLOPS)
    hbm_capacity_gib: float = Field(
        gt=0, le=B.MAX_HBM_GB, description="HBM the driver exposes, GiB (2^30 bytes; "
        "nvidia-smi's total): an \"80 GB\" A100 holds 80 GiB; what training may use is this "
        "less the CUDA context, communication buffers and the allocator's reserve (moesim.memory)")
    hbm_gbyte_per_s: float = Field(gt=0, le=B.MAX_HBM_GBYTE_PER_S)
    gemm_efficiency: float = Field(
        default=0.75, gt=0, le=1.0,
        description="best-case fraction of dense peak a large GEMM reaches (measured MAMF / peak)",
    )
    fp8_gemm_efficiency: float | None = Field(default=None, gt=0, le=1.0)
    hbm_efficiency: float = Field(default=0.85, gt=0, le=1.0)
    kernel_launch_us: float = Field(default=4.0, ge=0, le=B.MAX_LATENCY_US)
    num_sms: int | None = Field(default=None, ge=1, le=B.MAX_HARDWARE_COUNT, description="streaming multiprocessors (GPU)")
    kernels_measured_as: str | None = Field(
        default=None, description="name of the accelerator whose measured kernel tables stand "
        "for this one (same SMs, clocks and tensor cores; e.g. H800 SXM: H100-SXM); its "
        "collective tables are not used")

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``; FP8 falls back to BF16 where the chip has no FP8."""
        if dtype == "fp8":
            return (self.fp8_dense_tflops or self.bf16_dense_tflops) * TFLOPS
        if dtype == "fp16":
            return (self.fp16_dense_tflops or self.bf16_dense_tflops) * TFLOPS
        if dtype in ("fp32", "tf32"):
            return (self.fp32_dense_tflops or self.bf16_dense_tflops / 2.0) * TFLOPS
        return self.bf16_dense_tflops * TFLOPS

    def gemm_efficiency_for(self, dtype: str) -> float:
        if dtype == "fp8" and self.fp8_gemm_efficiency is not None:
            return self.fp8_gemm_efficiency
        return self.gemm_efficiency

    @property
    def hbm_bytes(self) -> float:
        return self.hbm_capacity_gib * GIB

    @property
    def hbm_bytes_per_s(self) -> float:
        return self.hbm_gbyte_per_s * GBYTE_PER_S


class NVSwitchDomainSpec(FrozenSpec):
    """A scale-up domain of GPUs joined through NVSwitch (a DGX node of 8, an NVL72 rack of 72)."""

    kind: Literal["nvswitch"] = "nvswitch"
    name: str = "nvlink"
    num_devices: int = Field(ge=1, le=B.MAX_DEVICES, description="GPUs in one domain")
    link_gbyte_per_s: float = Field(gt=0, le=B.MAX_LINK_GBYTE_PER_S, description="per-GPU NVLink bandwidth, one direction")
    latency_us: float = Field(default=2.0, ge=0, le=B.MAX_LATENCY_US)
    in_switch_reduction: bool = Field(default=False, description="NVLink SHARP (NVLS) available")
    num_switches: int = Field(default=4, ge=1, le=B.MAX_HARDWARE_COUNT)

    @property
    def size(self) -> int:
        return self.num_devices

    @property
    def device_bytes_per_s(self) -> float:
        return self.link_gbyte_per_s * GBYTE_PER_S


class FatTreeSpec(FrozenSpec):
    """A scale-out network joining scale-up domains: a (rail-optimized) two- or three-level fat tree."""

    kind: Literal["fat_tree"] = "fat_tree"
    name: str = "infiniband"
    num_domains: int = Field(ge=1, le=B.MAX_DEVICES, description="scale-up domains (nodes, racks) joined")
    nics_per_domain: int = Field(ge=1, le=B.MAX_HARDWARE_COUNT, description="NICs per node (one per GPU when rail-optimized)")
    nic_gbit_per_s: float = Field(gt=0, le=B.MAX_NIC_GBIT_PER_S, description="per-NIC line rate, one direction")
    rail_optimized: bool = True
    domains_per_leaf_group: int = Field(
        default=32, ge=1, le=B.MAX_DEVICES, description="nodes under one set of leaf switches (a scalable unit)")
    leaf_radix: int = Field(default=64, ge=2, le=B.MAX_HARDWARE_COUNT)
    spine_radix: int = Field(default=64, ge=2, le=B.MAX_HARDWARE_COUNT)
    oversubscription: float = Field(default=1.0, ge=1.0, le=B.MAX_OVERSUBSCRIPTION, description="leaf down:up bandwidth ratio")
    latency_us: float = Field(default=5.0, ge=0, le=B.MAX_LATENCY_US)

    @model_validator(mode="after")
    def _leaf_ports(self) -> FatTreeSpec:
        # A rail-optimized scalable unit puts rail r of every node under one leaf: that leaf
        # needs domains_per_leaf_group ports down and that over the oversubscription up
        # (DGX H100 SuperPOD: 32 nodes, 32 + 32 = 64 ports of a Quantum-2 switch).
        if self.rail_optimized:
            group = min(self.domains_per_leaf_group, self.num_domains)
            up = math.ceil(group / self.oversubscription) if self.num_domains > group else 0
            if group + up > self.leaf_radix:
                raise ValueError(
                    f"leaf_radix={self.leaf_radix} is too small: a rail leaf serves one NIC of "
                    f"each of the {group} nodes under it (domains_per_leaf_group) and {up} "
                    f"uplinks (oversubscription {self.oversubscription:g}), {group + up} ports; "
                    "raise leaf_radix or lower domains_per_leaf_group")
        return self

    @property
    def size(self) -> int:
        return self.num_domains

    @property
    def nic_bytes_per_s(self) -> float:
        return self.nic_gbit_per_s * GBIT_PER_S


class TorusSpec(FrozenSpec):
    """A TPU slice: chips on a 2D or 3D torus (or mesh where an axis does not wrap)."""

    kind: Literal["torus"] = "torus"
    name: str = "ici"
    dims: tuple[int, ...] = Field(min_length=1, max_length=3)
    wraparound: tuple[bool, ...] | None = Field(default=None, description="per axis; default all")
    link_gbyte_per_s: float = Field(gt=0, le=B.MAX_LINK_GBYTE_PER_S, description="one ICI link, one direction")
    latency_us: float = Field(default=1.0, ge=0, le=B.MAX_LATENCY_US)
    links_per_chip: int | None = Field(
        default=None, ge=1, le=B.MAX_HARDWARE_COUNT,
        description="ICI links of one chip, a multiple of 2 x axes (each axis direction gets "
        "an equal share); None: one link per axis direction")
    chips_per_host: int | None = Field(
        default=None, ge=1, le=B.MAX_HARDWARE_COUNT,
        description="chips one host drives; a slice is whole hosts, so the slice's chip count "
        "must be a multiple; None: not checked")
    cube_dims: tuple[int, ...] | None = Field(
        default=None, description="building block joined by optical circuit switches "
        "(TPU v4/v5p: 4x4x4); None: one monolithic torus")

    @model_validator(mode="after")
    def _check_axes(self) -> TorusSpec:
        if any(d < 1 for d in self.dims) or math.prod(self.dims) > B.MAX_DEVICES:
            raise ValueError(f"dims={list(self.dims)} must all be >= 1, with a product of at "
                             f"most {B.MAX_DEVICES:,} chips ({B.REASONS['num_devices']})")
        if self.wraparound is not None and len(self.wraparound) != len(self.dims):
            raise ValueError(
                f"wraparound has {len(self.wraparound)} entries but dims has {len(self.dims)}; "
                "give one bool per axis")
        directions = 2 * len(self.dims)
        if self.links_per_chip is not None and self.links_per_chip % directions:
            raise ValueError(
                f"links_per_chip={self.links_per_chip} is not a multiple of {directions}: a "
                f"{len(self.dims)}D torus gives each of its {directions} axis directions the "
                f"same number of links; use {directions} x links per direction")
        if self.chips_per_host is not None and math.prod(self.dims) % self.chips_per_host:
            raise ValueError(
                f"dims={list(self.dims)} ({math.prod(self.dims)} chips) is not whole hosts of "
                f"chips_per_host={self.chips_per_host}; use a slice shape whose chip count is "
                f"a multiple of {self.chips_per_host}")
        if self.cube_dims is not None:
            if len(self.cube_dims) != len(self.dims) or any(
                    c < 1 or d % c for c, d in zip(self.cube_dims, self.dims, strict=True)):
                raise ValueError(f"cube_dims={list(self.cube_dims)} must have one entry per axis "
                                 f"of dims={list(self.dims)}, each dividing it")
        return self

    @property
    def wraps(self) -> tuple[bool, ...]:
        if self.wraparound is None:
            return tuple(d > 2 for d in self.dims)
        return self.wraparound

    @property
    def size(self) -> int:
        return math.prod(self.dims)

    @property
    def link_bytes_per_s(self) -> float:
        return self.link_gbyte_per_s * GBYTE_PER_S

    @property
    def links_per_direction(self) -> int:
        """ICI links from a chip along one axis direction (``links_per_chip`` shared evenly)."""
        if self.links_per_chip is None:
            return 1
        return self.links_per_chip // (2 * len(self.dims))

    @property
    def direction_bytes_per_s(self) -> float:
        """Bytes/s a chip sends along one axis direction: its links there, one direction."""
        return self.link_bytes_per_s * self.links_per_direction


class DcnSpec(FrozenSpec):
    """A data-center network tier joining TPU slices or pods."""

    kind: Literal["dcn"] = "dcn"
    name: str = "dcn"
    num_slices: int = Field(ge=1, le=B.MAX_DEVICES)
    per_device_gbit_per_s: float = Field(gt=0, le=B.MAX_NIC_GBIT_PER_S, description="DCN egress per chip, one direction")
    latency_us: float = Field(default=10.0, ge=0, le=B.MAX_LATENCY_US)

    @property
    def size(self) -> int:
        return self.num_slices


TierSpec = Annotated[
    NVSwitchDomainSpec | FatTreeSpec | TorusSpec | DcnSpec, Field(discriminator="kind")
]


class TopologySpec(FrozenSpec):
    """A real system: one accelerator kind and its tiers, innermost first."""

    name: str
    description: str = ""
    accelerator: AcceleratorSpec
    tiers: tuple[TierSpec, ...] = Field(min_length=1)
    price_per_device_hour: float | None = Field(default=None, ge=0, le=B.MAX_PRICE_PER_DEVICE_HOUR, description="USD, for cost")

    @model_validator(mode="after")
    def _check_tiers(self) -> TopologySpec:
        if self.num_devices > B.MAX_DEVICES:
            raise ValueError(f"the tiers join {self.num_devices:,} devices, more than "
                             f"{B.MAX_DEVICES:,} ({B.REASONS['num_devices']})")
        first = self.tiers[0]
        if first.kind not in ("nvswitch", "torus"):
            raise ValueError(
                f"tiers.0.kind={first.kind!r} must be a scale-up tier; valid: 'nvswitch', 'torus'")
        for i, tier in enumerate(self.tiers[1:], start=1):
            if tier.kind in ("nvswitch", "torus"):
                raise ValueError(
                    f"tiers.{i}.kind={tier.kind!r}: only the first tier may be a scale-up tier; "
                    "valid outer tiers: 'fat_tree', 'dcn'")
        return self

    @property
    def num_devices(self) -> int:
        return math.prod(t.size for t in self.tiers)

    @property
    def scale_up(self) -> NVSwitchDomainSpec | TorusSpec:
        return self.tiers[0]  # type: ignore[return-value]

    @property
    def devices_per_domain(self) -> int:
        return self.tiers[0].size

    def tier_sizes(self) -> list[int]:
        """Devices spanned by each tier, cumulative (tier i covers prod(size_0..i))."""
        out, acc = [], 1
        for t in self.tiers:
            acc *= t.size
            out.append(acc)
        return out

