"""Case files for ``moesim check`` that are not training scenarios.

A file under ``scenarios/published/`` is either a scenario (it has ``workload``; its
``measured:`` block names result fields) or a case with a ``case:`` kind:

- ``collective``: an NCCL collective on a topology (op, ranks, size, algorithm, how it was
  timed), metrics ``busbw_gbyte_per_s``, ``algbw_gbyte_per_s``, ``time_s`` (nccl-tests
  definitions);
- ``gemm``: one GEMM m x k @ k x n on the topology's accelerator, priced as scenarios price
  it (the accelerator's measured table, else the roofline), metrics ``tflops``, ``time_s``;
- ``grouped_gemm``: one grouped (MoE) GEMM, ``groups`` experts of ``tokens_per_group`` rows each
  against their own k x n weights, metrics ``tflops``, ``time_s``;
- ``deepep``: DeepEP's benchmark (dispatch or combine) at an EP size, normal kernels or
  low-latency kernels (``mode``), metrics ``bandwidth_gbyte_per_s`` in DeepEP's own accounting
  and ``latency_us`` (moesim.network.deepep);
- ``ratio``: a result field of one scenario over the same field of another (published
  relative speeds), metric ``ratio``;
- ``serving``: runs of one serving scenario with ``--set`` overrides per point, metrics from
  the serving result (per-role tokens/s per node, latency percentiles, goodput) or a role's
  dispatch / combine latency at a token count (``*_latency_us``).

Each case holds ``points``; a point carries its shape and its ``measured`` list. Specs are
frozen and reject unknown fields; a bad file is one SpecError line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from moesim.errors import SpecError
from moesim.specs.base import FrozenSpec
from moesim.specs.loader import read_yaml, validate_as
from moesim.specs.scenario import MeasuredSpec
from moesim.units import parse_size

CASE_METRICS: dict[str, tuple[str, ...]] = {
    "collective": ("busbw_gbyte_per_s", "algbw_gbyte_per_s", "time_s"),
    "gemm": ("tflops", "time_s"),
    "grouped_gemm": ("tflops", "time_s"),
    "deepep": ("bandwidth_gbyte_per_s", "latency_us"),
    "ratio": ("ratio",),
    "serving": tuple(
        [f"{role}.{m}" for role in ("prefill", "decode", "aggregated") for m in (
            "input_tokens_per_s_per_node", "output_tokens_per_s_per_node", "iteration.mean_s",
            "utilization", "dispatch_latency_us", "combine_latency_us")]
        + [f"{s}.{q}" for s in ("ttft", "tpot", "e2e") for q in ("mean_s", "p50_s", "p90_s",
                                                                  "p99_s")]
        + ["input_tokens_per_s_per_node", "output_tokens_per_s_per_node",
           "goodput_requests_per_s", "slo_attainment"]),
}


class _PointSpec(FrozenSpec):
    label: str = Field(description="short name of the point, unique in its case")
    measured: tuple[MeasuredSpec, ...] = Field(min_length=1)


class CollectivePointSpec(_PointSpec):
    """One collective: ``op`` over ``ranks`` (the first N devices, or explicit ``groups``)."""

    op: Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all"]
    ranks: int | None = Field(default=None, ge=2, description="one group: devices 0..ranks-1")
    groups: tuple[tuple[int, ...], ...] | None = Field(
        default=None, description="explicit groups of device ids, run at once (contend)")
    size_bytes: float = Field(gt=0, description="per rank as nccl-tests counts it; 16GiB accepted")
    algorithm: str | None = Field(default=None, description="None: what NCCL would pick")
    timing: Literal["nccl-tests", "torch-one-call"] | None = Field(
        default=None, description="how the published figure was timed; None: the case's")

    @field_validator("size_bytes", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return parse_size(v) if isinstance(v, str) else v

    def group_list(self) -> list[list[int]]:
        """The groups of device ids this point runs."""
        if self.groups is not None:
            return [list(g) for g in self.groups]
        if self.ranks is None:
            raise SpecError(f"point {self.label!r}: give ranks (a count) or groups (device ids)",
                            field="ranks")
        return [list(range(self.ranks))]


class GemmPointSpec(_PointSpec):
    """A (batched) GEMM m x k @ k x n in ``dtype``."""

    m: int = Field(ge=1)
    n: int = Field(ge=1)
    k: int = Field(ge=1)
    batch: int = Field(default=1, ge=1)
    dtype: Literal["bf16", "fp16", "fp8", "fp8_block", "fp32", "tf32"] = "bf16"


class GroupedGemmPointSpec(_PointSpec):
    """A grouped GEMM: ``groups`` experts, each ``tokens_per_group`` x k @ its own k x n.

    DeepGEMM's contiguous layout (groups concatenated along M) and masked layout (a fixed
    [groups, M] buffer with a count per group, every count = M in its benchmark) run the same
    arithmetic; ``layout`` records which one the source measured.
    """

    groups: int = Field(ge=1, description="experts in the call")
    tokens_per_group: int = Field(ge=1, description="rows (tokens) of each group: M per group")
    n: int = Field(ge=1)
    k: int = Field(ge=1)
    dtype: Literal["bf16", "fp16", "fp8", "fp8_block", "fp32", "tf32"] = "bf16"
    layout: Literal["contiguous", "masked"] = "contiguous"


class DeepEPPointSpec(_PointSpec):
    """DeepEP's test: ``num_tokens`` per rank, top-k of ``num_experts``, one kernel mode.

    ``mode: normal`` (training / prefill kernels, NVLink + RDMA forwarding, node-limited to
    ``num_topk_groups``) or ``low_latency`` (decode kernels: one message per token and expert,
    RDMA to other nodes and, with ``nvlink``, NVLink inside the domain; no group limit).
    ``token_dtype`` None is DeepEP's benchmark setting: FP8 dispatch, BF16 combine.
    """

    num_ranks: int = Field(ge=2, description="EP size")
    phase: Literal["dispatch", "combine"]
    mode: Literal["normal", "low_latency"] = "normal"
    num_tokens: int = Field(default=4096, ge=1)
    hidden: int = Field(default=7168, ge=1)
    num_topk: int = Field(default=8, ge=1)
    num_experts: int = Field(default=256, ge=1)
    num_topk_groups: int = Field(default=4, ge=1, description="nodes a token may reach (normal)")
    token_dtype: Literal["fp8", "bf16"] | None = Field(
        default=None, description="None: FP8 dispatch, BF16 combine (DeepEP's benchmarks)")
    nvlink: bool = Field(default=True, description="low_latency: same-domain peers over NVLink "
                         "(DeepEP since June 2025); false: every peer over RDMA")


class ScenarioRefSpec(FrozenSpec):
    """A scenario file (relative to the case file) and ``--set`` overrides."""

    scenario: str
    sets: tuple[str, ...] = ()


class RatioPointSpec(_PointSpec):
    """``field`` of ``numerator`` over ``field`` of ``denominator`` (both simulated)."""

    field: str = Field(description="a numeric result field, e.g. tokens_per_s")
    numerator: ScenarioRefSpec
    denominator: ScenarioRefSpec


class ServingPointSpec(_PointSpec):
    """One run of the case's serving scenario with ``sets`` applied; a ``*_latency_us``
    metric prices that role's dispatch or combine of one MoE layer at ``tokens_per_rank``
    tokens per DP-attention rank (the path the role's iterations price it by), without
    running the request stream."""

    sets: tuple[str, ...] = ()
    tokens_per_rank: int | None = Field(default=None, ge=1, le=1 << 30)


class _CaseSpec(FrozenSpec):
    name: str
    description: str = ""
    sources: dict[str, str] = Field(
        default_factory=dict, description="named source strings, for YAML anchors (&name)")


class _TopologyCaseSpec(_CaseSpec):
    topology: str = Field(description="topology file, relative to the case file")
    topology_overrides: dict[str, Any] = Field(default_factory=dict)
    num_devices: int | None = Field(default=None, ge=1,
                                    description="the first N devices of the topology; default all")


class CollectiveCaseSpec(_TopologyCaseSpec):
    """Collectives timed by ``timing``: ``nccl-tests`` (back-to-back calls of the NCCL C API,
    the per-call host cost hidden) or ``torch-one-call`` (one ``torch.distributed`` call per
    trial on an idle device, between CUDA events: the call's host cost is inside the time,
    moesim.network.efficiency.TORCH_ONE_CALL_S)."""

    case: Literal["collective"]
    timing: Literal["nccl-tests", "torch-one-call"] = "nccl-tests"
    points: tuple[CollectivePointSpec, ...] = Field(min_length=1)

    def point_timing(self, point: CollectivePointSpec) -> str:
        """How ``point``'s published figure was timed (its own field, else the case's)."""
        return point.timing or self.timing


class _KernelCaseSpec(_TopologyCaseSpec):
    calibration: str | None = Field(
        default=None, description="kernel table: None for the accelerator's shipped table "
        "(as scenarios price), 'none' for the roofline, or a path relative to the case file")


class GemmCaseSpec(_KernelCaseSpec):
    case: Literal["gemm"]
    points: tuple[GemmPointSpec, ...] = Field(min_length=1)


class GroupedGemmCaseSpec(_KernelCaseSpec):
    case: Literal["grouped_gemm"]
    points: tuple[GroupedGemmPointSpec, ...] = Field(min_length=1)


class DeepEPCaseSpec(_TopologyCaseSpec):
    case: Literal["deepep"]
    points: tuple[DeepEPPointSpec, ...] = Field(min_length=1)


class RatioCaseSpec(_CaseSpec):
    case: Literal["ratio"]
    points: tuple[RatioPointSpec, ...] = Field(min_length=1)


class ServingCaseSpec(_CaseSpec):
    case: Literal["serving"]
    scenario: str = Field(description="serving scenario file, relative to the case file")
    points: tuple[ServingPointSpec, ...] = Field(min_length=1)


CASE_KINDS: dict[str, type[FrozenSpec]] = {
    "collective": CollectiveCaseSpec, "gemm": GemmCaseSpec, "grouped_gemm": GroupedGemmCaseSpec,
    "deepep": DeepEPCaseSpec, "ratio": RatioCaseSpec, "serving": ServingCaseSpec,
}
AnyCaseSpec = (CollectiveCaseSpec | GemmCaseSpec | GroupedGemmCaseSpec | DeepEPCaseSpec
               | RatioCaseSpec | ServingCaseSpec)


def is_case_file(data: Any) -> bool:
    """True when parsed YAML is a ``case:`` file rather than a scenario."""
    return isinstance(data, dict) and "case" in data


def load_case(path: str | Path) -> AnyCaseSpec:
    """Load and check one case file; every failure is a one-line SpecError naming the file."""
    p = Path(path)
    data = read_yaml(p)
    kind = data.get("case") if isinstance(data, dict) else None
    if kind not in CASE_KINDS:
        raise SpecError(f"case={kind!r} is not a case kind; valid: {', '.join(CASE_KINDS)}",
                        file=str(p), field="case")
    spec = validate_as(CASE_KINDS[kind], data, file=str(p))
    assert isinstance(spec, AnyCaseSpec)
    _check_points(spec, str(p))
    return spec


def _check_points(spec: AnyCaseSpec, file: str) -> None:
    """Unique labels; every measured metric is one this case kind can predict."""
    valid = CASE_METRICS[spec.case]
    seen: set[str] = set()
    for i, point in enumerate(spec.points):
        if point.label in seen:
            raise SpecError(f"label {point.label!r} appears twice; labels must be unique",
                            file=file, field=f"points.{i}.label")
        seen.add(point.label)
        for j, m in enumerate(point.measured):
            if m.metric not in valid:
                raise SpecError(f"metric={m.metric!r} is not predicted by a {spec.case} case; "
                                f"valid: {', '.join(valid)}", file=file,
                                field=f"points.{i}.measured.{j}.metric")
        latency = any(m.metric.endswith("_latency_us") for m in point.measured)
        if isinstance(point, ServingPointSpec) and latency and point.tokens_per_rank is None:
            raise SpecError("a *_latency_us metric needs tokens_per_rank", file=file,
                            field=f"points.{i}.tokens_per_rank")
        if isinstance(point, CollectivePointSpec) and point.ranks is None and not point.groups:
            raise SpecError("give ranks (a count) or groups (device ids)", file=file,
                            field=f"points.{i}.ranks")
