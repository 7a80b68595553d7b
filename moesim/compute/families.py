"""Compact measured families of calibration schema v2, and where a table came from.

A v1 table lists one object per measured point; that is far too big for the roughly 100k
GEMM shapes a published measurement database holds. The families here are grids and
series: axes once, then a flat list of times (C order, ``None`` where a cell was not
measured). Times are microseconds per call in the file (``time_us``), sizes are bytes,
counts are counts; the kernel model converts to seconds when it reads them.

Dtype keys are moesim's vocabulary: ``bf16``, ``fp16``, ``fp32``, ``fp8`` (per-tensor
scaling), ``fp8_block`` (1x128 activation / 128x128 weight block scaling, DeepSeek-V3 and
DeepGEMM style), ``nvfp4`` (E2M1 with one FP8 scale per 16 values), ``int8`` (only as the
element type of a collective). See docs/compute.md for what each family means.
"""

from __future__ import annotations

import functools
import itertools
import operator
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from moesim.specs.base import FrozenSpec

KernelDtype = Literal["bf16", "fp16", "fp32", "fp8", "fp8_block", "nvfp4"]
CollectiveDtype = Literal["bf16", "fp16", "fp32", "int8"]
Times = tuple[float | None, ...]


def _ascending(name: str, values: tuple[float, ...]) -> None:
    if not values:
        raise ValueError(f"{name} is empty")
    # any(v <= 0), any(b <= a) over neighbours: the comparisons run in C (map), not a genexpr
    if any(map(operator.le, values, itertools.repeat(0))):
        raise ValueError(f"{name} must be positive")
    if any(map(operator.le, values[1:], values)):
        raise ValueError(f"{name} must be strictly ascending")


_MEASURED = functools.partial(operator.is_not, None)


def _times(name: str, times: Times, expected: int, *, allow_null: bool = True) -> None:
    if len(times) != expected:
        raise ValueError(f"{name} has {len(times)} entries; the axes need {expected}")
    has_null = None in times
    if has_null and not allow_null:
        raise ValueError(f"{name} may not contain null")
    # any(t <= 0) over the measured times, the comparisons in C (map); NaN <= 0 is false
    measured = filter(_MEASURED, times) if has_null else times
    if any(map(operator.le, measured, itertools.repeat(0))):
        raise ValueError(f"{name} must be positive (microseconds)")
    if times.count(None) == len(times):
        raise ValueError(f"{name} has no measured entry")


def times_s(times: Times) -> np.ndarray:
    """Microsecond list -> float64 seconds, NaN where unmeasured."""
    return np.array([np.nan if t is None else t for t in times], dtype=np.float64) * 1e-6


class GemmGrid(FrozenSpec):
    """Dense GEMMs m x k @ k x n of one dtype on a full (m, n, k) grid."""

    dtype: KernelDtype
    kernel_source: str = ""
    input_quantization: Literal["none", "subtracted", "included"] = Field(
        default="none", description="quantized dtypes: whether the time of quantizing the "
        "activation input was taken out ('subtracted') or is part of each time ('included')")
    m: tuple[int, ...]
    n: tuple[int, ...]
    k: tuple[int, ...]
    time_us: Times = Field(description="len(m)*len(n)*len(k) times, C order (m slowest)")

    @model_validator(mode="after")
    def _check(self) -> GemmGrid:
        for axis in ("m", "n", "k"):
            _ascending(axis, getattr(self, axis))
        _times("time_us", self.time_us, len(self.m) * len(self.n) * len(self.k))
        return self

    def times_s(self) -> np.ndarray:
        """Seconds as a [m, n, k] array, NaN where unmeasured."""
        return times_s(self.time_us).reshape(len(self.m), len(self.n), len(self.k))


class MoESeries(FrozenSpec):
    """One rank's routed-expert FFN (gate/up, activation, down) vs the EP group's tokens."""

    dtype: KernelDtype
    hidden_size: int = Field(ge=1)
    inter_size: int = Field(ge=1, description="one expert's FFN width, before TP")
    num_experts: int = Field(ge=1)
    top_k: int = Field(ge=1)
    moe_tp_degree: int = Field(default=1, ge=1)
    moe_ep_degree: int = Field(default=1, ge=1)
    gated: bool = True
    distribution: Literal["balanced"] = "balanced"
    kernel_source: str = ""
    num_tokens: tuple[int, ...] = Field(description="tokens of the EP x TP group, before top-k")
    time_us: Times

    @model_validator(mode="after")
    def _check(self) -> MoESeries:
        _ascending("num_tokens", self.num_tokens)
        _times("time_us", self.time_us, len(self.num_tokens), allow_null=False)
        return self


class AttentionSeries(FrozenSpec):
    """Fused attention of one geometry: context = causal prefill forward (seq = query and
    key length), generation = one decode step (seq = tokens in the KV cache)."""

    phase: Literal["context", "generation"]
    attn_dtype: KernelDtype
    kv_cache_dtype: KernelDtype
    num_heads: int = Field(ge=1, description="query heads on the device")
    num_kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    window: int = Field(default=0, ge=0, description="sliding window; 0 = full attention")
    kernel_source: str = ""
    batch: tuple[int, ...]
    seq: tuple[int, ...]
    time_us: Times = Field(description="len(batch)*len(seq) times, C order (batch slowest)")

    @model_validator(mode="after")
    def _check(self) -> AttentionSeries:
        _ascending("batch", self.batch)
        _ascending("seq", self.seq)
        _times("time_us", self.time_us, len(self.batch) * len(self.seq))
        return self


class MLASeries(FrozenSpec):
    """DeepSeek multi-head latent attention. Context: causal prefill with qk head dim
    nope + rope and v head dim ``v_head_dim``; generation: decode over the compressed
    cache (kv_lora_rank + rope values per token)."""

    phase: Literal["context", "generation"]
    dtype: KernelDtype
    kv_cache_dtype: KernelDtype
    num_heads: int = Field(ge=1, description="heads on the device")
    qk_nope_head_dim: int = 128
    qk_rope_head_dim: int = 64
    v_head_dim: int = 128
    kv_lora_rank: int = 512
    batch: tuple[int, ...]
    seq: tuple[int, ...]
    time_us: Times

    @model_validator(mode="after")
    def _check(self) -> MLASeries:
        _ascending("batch", self.batch)
        _ascending("seq", self.seq)
        _times("time_us", self.time_us, len(self.batch) * len(self.seq))
        return self


class CollectiveCurve(FrozenSpec):
    """NCCL time vs message size for one op and GPU count (nccl-tests size convention:
    the whole buffer in bytes, the input of all-reduce/reduce-scatter/all-to-all and the
    output of all-gather)."""

    op: Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all"]
    num_gpus: int = Field(ge=2)
    dtype: CollectiveDtype = "fp16"
    size_bytes: tuple[float, ...]
    time_us: Times

    @model_validator(mode="after")
    def _check(self) -> CollectiveCurve:
        _ascending("size_bytes", self.size_bytes)
        _times("time_us", self.time_us, len(self.size_bytes), allow_null=False)
        return self


class DeepEPSeries(FrozenSpec):
    """DeepEP dispatch and combine vs tokens per rank, for one configuration."""

    kind: Literal["normal", "low_latency"]
    num_nodes: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    top_k: int = Field(ge=1)
    num_experts: int = Field(ge=1)
    num_sms: int | None = Field(default=None, ge=1, description="SMs given to the kernels "
                                "(normal mode); None for low-latency kernels")
    num_tokens: tuple[int, ...] = Field(description="tokens per rank")
    dispatch_us: Times
    combine_us: Times

    @model_validator(mode="after")
    def _check(self) -> DeepEPSeries:
        _ascending("num_tokens", self.num_tokens)
        _times("dispatch_us", self.dispatch_us, len(self.num_tokens), allow_null=False)
        _times("combine_us", self.combine_us, len(self.num_tokens), allow_null=False)
        return self


class MemoryCurve(FrozenSpec):
    """A memory-bound kernel of known bytes: time vs bytes moved (reads plus writes)."""

    kind: str = Field(description="e.g. fp8_cast: read BF16, write FP8 (3 B per element)")
    bytes_rule: str = Field(description="how bytes were counted from the measured shape")
    size_bytes: tuple[float, ...]
    time_us: Times

    @model_validator(mode="after")
    def _check(self) -> MemoryCurve:
        _ascending("size_bytes", self.size_bytes)
        _times("time_us", self.time_us, len(self.size_bytes), allow_null=False)
        return self


class SourceFile(FrozenSpec):
    """One measured table a family was converted from."""

    family: Literal["gemm", "moe", "attention", "mla", "nccl", "deepep", "memory"]
    framework: str
    framework_version: str
    path: str = Field(description="path inside the source package")
    num_rows: int = Field(ge=0, description="rows in the source table")
    num_rows_kept: int = Field(ge=0, description="rows converted into this table")


class Provenance(FrozenSpec):
    """How a table came to be: measured by ``moesim profile``, or converted from a published
    measurement database (package, version, license, and the conversion rules)."""

    source: Literal["moesim profile", "aiconfigurator-core"]
    package: str = ""
    package_version: str = ""
    license: str = ""
    copyright: str = ""
    system: str = Field(default="", description="the source's own name for the system")
    device_name: str = Field(default="", description="device name the measurements report")
    files: tuple[SourceFile, ...] = ()
    rules: tuple[str, ...] = Field(default=(), description="conversion rules, one line each")
    left_out: tuple[str, ...] = Field(default=(), description="what was not converted, why")
