"""The calibration table: measured kernel and collective times for one accelerator.

``moesim profile`` (moesim/profiling/, the torch side) and the importers beside this module
(:mod:`moesim.compute.aiconfigurator`) write it; the kernel cost model
(:mod:`moesim.compute.model`) reads it. Both use these pydantic models, so the JSON file is
validated on both sides. The format is versioned by ``schema_version``: a reader refuses a
newer version with a clear message; version 1 files (point lists only) still load.

Version 2 adds ``provenance`` (where the numbers came from) and the compact families of
:mod:`moesim.compute.families` (GEMM grids per dtype, MoE, attention, MLA, NCCL, DeepEP and
memory-bound series). The v1 point lists keep their meaning: seconds, bytes, and ``dtype``
is the dtype of those points; each v2 family carries its own dtype and times in
microseconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from moesim.compute.families import (
    AttentionSeries,
    CollectiveCurve,
    DeepEPSeries,
    GemmGrid,
    MemoryCurve,
    MLASeries,
    MoESeries,
    Provenance,
)
from moesim.errors import SpecError
from moesim.io import write_text_atomic
from moesim.specs.base import FrozenSpec

SCHEMA_VERSION = 2


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
    """Measured times for one accelerator (see docs/compute.md)."""

    schema_version: int = SCHEMA_VERSION
    name: str
    dtype: Literal["bf16", "fp16", "fp8", "fp32"] | None = Field(
        default=None, description="dtype of the v1 point lists (gemm, grouped_gemm, "
        "attention); v2 families carry their own")
    accelerator: str | None = Field(
        default=None, description="AcceleratorSpec.name this table is attached to")
    environment: EnvironmentRecord | None = Field(
        default=None, description="where it was measured; optional when provenance says")
    provenance: Provenance | None = None
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
    gemm_grids: tuple[GemmGrid, ...] = ()
    moe_series: tuple[MoESeries, ...] = ()
    attention_series: tuple[AttentionSeries, ...] = ()
    mla_series: tuple[MLASeries, ...] = ()
    collective_curves: tuple[CollectiveCurve, ...] = ()
    deepep_series: tuple[DeepEPSeries, ...] = ()
    memory_curves: tuple[MemoryCurve, ...] = ()
    notes: tuple[str, ...] = ()
    _path: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _check(self) -> CalibrationTable:
        if self.schema_version > SCHEMA_VERSION:
            raise ValueError(f"schema_version={self.schema_version} is newer than this moesim "
                             f"reads ({SCHEMA_VERSION}); upgrade moesim")
        if self.schema_version < 1:
            raise ValueError(f"schema_version={self.schema_version} is not a version; valid: "
                             f"1..{SCHEMA_VERSION}")
        if self.environment is None and self.provenance is None:
            raise ValueError("a table needs an environment (measured here) or a provenance "
                             "(converted from elsewhere)")
        if (self.gemm or self.grouped_gemm or self.attention) and self.dtype is None:
            raise ValueError("dtype must name the dtype of the gemm, grouped_gemm and "
                             "attention points")
        dtypes = [g.dtype for g in self.gemm_grids]
        if len(set(dtypes)) != len(dtypes):
            raise ValueError(f"gemm_grids has two grids of one dtype: {sorted(dtypes)}")
        return self

    def __eq__(self, other: object) -> bool:
        # Equal fields make equal tables, wherever each was read from (``_path`` aside).
        return type(other) is type(self) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((self.name, self.schema_version, self.accelerator))

    @property
    def source_path(self) -> str:
        """The file this table was read from ('' if built in memory)."""
        return self._path

    @property
    def device_name(self) -> str:
        """The measured device's name, from the environment or the provenance."""
        if self.environment is not None:
            return self.environment.device_name
        return self.provenance.device_name if self.provenance else ""

    def attached_to(self, accelerator: str) -> CalibrationTable:
        """A copy of this table attached to the accelerator named ``accelerator``."""
        out = self.model_copy(update={"accelerator": accelerator})
        out._path = self._path
        return out

    def gemm_dtypes(self) -> tuple[str, ...]:
        """Dtypes the table has dense GEMMs for (v1 points and v2 grids)."""
        grids = tuple(g.dtype for g in self.gemm_grids)
        return ((self.dtype,) if self.gemm and self.dtype else ()) + grids

    def gemm_grid(self, dtype: str) -> GemmGrid | None:
        """The v2 dense GEMM grid of ``dtype``, if any."""
        return next((g for g in self.gemm_grids if g.dtype == dtype), None)

    # --- measured collectives and DeepEP: pure accessors ----------------------------------
    def collective_time(self, op: str, num_gpus: int, size_bytes: float,
                        dtype: str | None = None) -> float | None:
        """Seconds of a measured NCCL collective, or None where the table has no measurement.

        Log-log interpolation between the measured sizes of the curve for exactly this op
        and GPU count (``dtype`` picks the element type; default the 16-bit curve, else any);
        None for another GPU count or a size outside the measured range.
        """
        curves = [c for c in self.collective_curves if c.op == op and c.num_gpus == num_gpus]
        if dtype is not None:
            curves = [c for c in curves if c.dtype == dtype]
        else:
            curves.sort(key=lambda c: c.dtype not in ("fp16", "bf16"))
        if not curves or size_bytes <= 0:
            return None
        c = curves[0]
        return _loglog(size_bytes, c.size_bytes, c.time_us)

    def deepep_time(self, kind: str, num_nodes: int, hidden_size: int, num_tokens: float,
                    top_k: int, num_experts: int, num_sms: int | None = None
                    ) -> tuple[float, float] | None:
        """(dispatch, combine) seconds of a measured DeepEP configuration, or None.

        The configuration (kind, nodes, hidden, top-k, experts) must be measured exactly;
        ``num_sms`` picks the normal-mode SM count (default: the most SMs measured); tokens
        per rank are interpolated log-log inside the measured range, None outside.
        """
        rows = [s for s in self.deepep_series if s.kind == kind and s.num_nodes == num_nodes
                and s.hidden_size == hidden_size and s.top_k == top_k
                and s.num_experts == num_experts]
        if num_sms is not None:
            rows = [s for s in rows if s.num_sms == num_sms]
        if not rows or num_tokens <= 0:
            return None
        s = max(rows, key=lambda r: r.num_sms or 0)
        d = _loglog(num_tokens, s.num_tokens, s.dispatch_us)
        c = _loglog(num_tokens, s.num_tokens, s.combine_us)
        return None if d is None or c is None else (d, c)


def _loglog(x: float, xs: tuple[float, ...], times_us: tuple[float | None, ...]
            ) -> float | None:
    """Seconds at ``x``: log-log interpolation inside [xs[0], xs[-1]], None outside."""
    lx = np.log(np.asarray(xs, dtype=np.float64))
    q = float(np.log(x))
    if q < lx[0] - 1e-12 or q > lx[-1] + 1e-12:
        return None
    ly = np.log(np.asarray(times_us, dtype=np.float64) * 1e-6)
    return float(np.exp(np.interp(q, lx, ly)))


def load_calibration(path: str | Path) -> CalibrationTable:
    """Read and validate a calibration table; any problem is one SpecError line."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"calibration table not found: {p}; measure one with "
                        "`moesim profile --out PATH`", file=str(p))
    raw = p.read_bytes()
    try:  # a good table in one pass of pydantic's JSON parser (half the time of json.loads)
        table = CalibrationTable.model_validate_json(raw)
    except ValidationError:
        table = _load_checked(p, raw)  # says what is wrong, as one line
    table._path = str(p)
    return table


def _load_checked(p: Path, raw: bytes) -> CalibrationTable:
    """The table of ``raw`` read step by step, each problem a SpecError of its own."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"not a JSON calibration table: {exc}", file=str(p)) from None
    if not isinstance(data, dict):
        raise SpecError("not a JSON calibration table: the top level must be an object",
                        file=str(p))
    version = data.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise SpecError(f"schema_version={version} is newer than this moesim reads "
                        f"({SCHEMA_VERSION}); upgrade moesim", file=str(p),
                        field="schema_version")
    try:
        table = CalibrationTable.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in err["loc"]) or "table"
        msg = err["msg"].removeprefix("Value error, ")
        raise SpecError(f"{where}: {msg}", file=str(p), field=where) from None
    return table


def calibration_json(table: CalibrationTable, *, compact: bool | None = None) -> str:
    """The file text of ``table``: indented for point lists, compact for v2 families."""
    if compact is None:
        compact = bool(table.gemm_grids or table.moe_series or table.attention_series)
    data = table.model_dump(mode="json", exclude_defaults=compact)
    if compact:
        data = {"schema_version": table.schema_version, **data}
        return json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n"
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def save_calibration(table: CalibrationTable, path: str | Path, *,
                     compact: bool | None = None) -> Path:
    """Write ``table`` as JSON (see :func:`calibration_json`), whole or not at all."""
    return write_text_atomic(path, calibration_json(table, compact=compact))


def calibration_json_schema() -> dict[str, object]:
    """The JSON Schema of the calibration table file (draft 2020-12)."""
    sch = CalibrationTable.model_json_schema()
    sch["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    sch["title"] = f"moesim calibration table v{SCHEMA_VERSION}"
    return sch
