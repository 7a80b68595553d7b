"""The calibration table: measured kernel and collective times, one accelerator and dtype.

``moesim profile`` (moesim/profiling/, the torch side) writes it; the kernel cost model
(:mod:`moesim.compute.model`) reads it. Both use these pydantic models, so the JSON file is
validated on both sides. The format is versioned by ``schema_version``: a reader refuses a
newer major version with a clear message. Times are seconds; sizes are bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from moesim.errors import SpecError
from moesim.io import write_text_atomic
from moesim.specs.base import FrozenSpec

SCHEMA_VERSION = 1


class TimingStats(FrozenSpec):
    """Statistics over the timed repeats of one op (after warm-up), seconds per call."""

    median_s: float = Field(gt=0)
    min_s: float | None = Field(default=None, gt=0, description="fastest repeat")
    p10_s: float = Field(gt=0, description="10th percentile of the repeats")
    p90_s: float = Field(gt=0, description="90th percentile of the repeats")
    num_repeats: int = Field(ge=1)
    calls_per_repeat: int = Field(default=1, ge=1, description="calls timed together per sample")

    def value(self, statistic: str = "median") -> float:
        """The time a cost model uses: the median, or the fastest repeat (``"min"``)."""
        if statistic == "min" and self.min_s is not None:
            return self.min_s
        return self.median_s

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: the relative spread of the samples."""
        return (self.p90_s - self.p10_s) / self.median_s


class EnvironmentRecord(FrozenSpec):
    """Where the table was measured."""

    device_kind: Literal["cuda", "cpu"]
    device_name: str
    device_count: int = Field(ge=1)
    driver: str = Field(default="", description="CUDA driver version; empty on CPU")
    torch_version: str
    cuda_version: str = Field(default="", description="CUDA runtime torch was built with")
    num_threads: int = Field(default=1, ge=1, description="torch intra-op threads (CPU)")
    memory_gb: float | None = Field(default=None, gt=0, description="device (or host) memory")
    num_sms: int | None = Field(default=None, ge=1, description="CUDA multiprocessors")
    hostname_hash: str = Field(default="", description="short hash, to tell machines apart")
    date: str = Field(description="ISO 8601 UTC time the profile started")


class GemmPoint(FrozenSpec):
    """One dense GEMM: (batch of) m x k times k x n."""

    m: int = Field(ge=1)
    n: int = Field(ge=1)
    k: int = Field(ge=1)
    batch: int = Field(default=1, ge=1)
    timing: TimingStats

    @property
    def flops(self) -> float:
        return 2.0 * self.batch * self.m * self.n * self.k


class GroupedGemmPoint(FrozenSpec):
    """Experts' GEMMs in one call: expert i multiplies tokens_i x k by k x n."""

    tokens_per_expert: tuple[int, ...] = Field(min_length=1)
    n: int = Field(ge=1)
    k: int = Field(ge=1)
    method: Literal["grouped_mm", "bmm_padded", "loop"] = Field(
        description="torch._grouped_mm where the build has it, else padded bmm, else a loop")
    timing: TimingStats

    @property
    def flops(self) -> float:
        return 2.0 * sum(self.tokens_per_expert) * self.n * self.k


class AttentionPoint(FrozenSpec):
    """scaled_dot_product_attention: q [b, h, s_q, d], k/v [b, kv, s_kv, d]."""

    batch: int = Field(ge=1)
    seq_q: int = Field(ge=1)
    seq_kv: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    causal: bool = True
    backward: bool = False
    timing: TimingStats


class MemoryOpPoint(FrozenSpec):
    """A memory-bound op; ``bytes_moved`` counts every byte read plus every byte written."""

    kind: Literal["elementwise", "permute", "unpermute", "norm", "activation", "optimizer"]
    bytes_moved: float = Field(gt=0)
    timing: TimingStats

    def bytes_per_s(self, statistic: str = "median") -> float:
        """Achieved bandwidth, bytes/s, from the chosen repeat statistic."""
        return self.bytes_moved / self.timing.value(statistic)


class CollectivePoint(FrozenSpec):
    """One torch.distributed collective over ``world_size`` local processes."""

    op: Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all"]
    backend: Literal["nccl", "gloo"]
    world_size: int = Field(ge=2)
    bytes_per_rank: float = Field(
        gt=0, description="the full vector: input of all-reduce, reduce-scatter and all-to-all, "
        "output of all-gather")
    timing: TimingStats


class CalibrationTable(FrozenSpec):
    """Measured times for one accelerator and one dtype (see docs/compute.md)."""

    schema_version: int = SCHEMA_VERSION
    name: str
    dtype: Literal["bf16", "fp16", "fp8", "fp32"]
    accelerator: str | None = Field(
        default=None, description="AcceleratorSpec.name this table is attached to")
    environment: EnvironmentRecord
    quick: bool = False
    statistic: Literal["median", "min"] = Field(
        default="median", description="which repeat statistic the cost model uses: the "
        "median on a dedicated GPU; the minimum on a shared CPU, where time-slicing by other "
        "processes only ever adds delay")
    gemm: tuple[GemmPoint, ...] = ()
    grouped_gemm: tuple[GroupedGemmPoint, ...] = ()
    attention: tuple[AttentionPoint, ...] = ()
    memory: tuple[MemoryOpPoint, ...] = ()
    collectives: tuple[CollectivePoint, ...] = ()
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check_version(self) -> CalibrationTable:
        if self.schema_version > SCHEMA_VERSION:
            raise ValueError(f"schema_version={self.schema_version} is newer than this moesim "
                             f"reads ({SCHEMA_VERSION}); upgrade moesim")
        return self

    def attached_to(self, accelerator: str) -> CalibrationTable:
        """A copy of this table attached to the accelerator named ``accelerator``."""
        return self.model_copy(update={"accelerator": accelerator})


def load_calibration(path: str | Path) -> CalibrationTable:
    """Read and validate a calibration table; any problem is one SpecError line."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"calibration table not found: {p}; measure one with "
                        "`moesim profile --out PATH`", file=str(p))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"not a JSON calibration table: {exc}", file=str(p)) from None
    try:
        return CalibrationTable.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in err["loc"]) or "table"
        msg = err["msg"].removeprefix("Value error, ")
        raise SpecError(f"{where}: {msg}", file=str(p), field=where) from None


def save_calibration(table: CalibrationTable, path: str | Path) -> Path:
    """Write ``table`` as indented JSON, whole or not at all."""
    text = json.dumps(table.model_dump(mode="json"), indent=1, sort_keys=False)
    return write_text_atomic(path, text + "\n")


def calibration_json_schema() -> dict[str, object]:
    """The JSON Schema of the calibration table file (draft 2020-12)."""
    sch = CalibrationTable.model_json_schema()
    sch["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    sch["title"] = f"moesim calibration table v{SCHEMA_VERSION}"
    return sch
