"""Serving: a request stream (arrivals, lengths, SLOs) and a deployment (roles and layouts).

A serving scenario has ``workload.kind: serving`` and a ``deployment``. The workload says
what arrives (an arrival process, input and output length distributions or a trace file, the
SLOs the answers are held to); the deployment says what serves it: one aggregated role, or a
prefill role and a decode role (prefill/decode disaggregation), each with its own instances,
layout (attention TP or DP-attention, EP, EPLB replicas), MoE dispatcher, batching and KV-cache
limits. docs/serving.md describes the model; :mod:`moesim.specs.serving_checks` the
cross-field checks.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from moesim.specs import bounds as B
from moesim.specs.base import FrozenSpec

# Requests in one simulation: 2^22 = 4.2M; 10,000 requests simulate in about a second on a
# 2-core VM (benchmarks/bench_serving.py), so the bound is about ten minutes of CPU.
MAX_REQUESTS = 1 << 22
# Request rate: 10^7 per second, 1000x the busiest public LLM API's reported rate.
MAX_RATE_PER_S = 1e7
# Any time in a serving spec (an SLO, a dwell time, a trace offset): a day.
MAX_TIME_S = 86_400.0
MAX_TIME_MS = MAX_TIME_S * 1e3
# Draft tokens per speculative step: EAGLE and MTP deployments use 1-8.
MAX_DRAFT_TOKENS = 64

B.REASONS.update({
    "num_requests": "2^22 requests is about ten minutes of CPU; sample fewer",
    "rate_per_s": "10^7 requests per second is 1000x the busiest public API",
    "rates_per_s": "10^7 requests per second is 1000x the busiest public API",
    "ttft_ms": "an SLO longer than a day is no SLO",
    "tpot_ms": "an SLO longer than a day is no SLO",
    "num_draft_tokens": "speculative decoding drafts 1-8 tokens per step",
    "num_instances": "a deployment has at most 2^18 devices",
    "attention_tp_degree": "a parallel degree cannot exceed the 2^18 devices of a topology",
    "attention_dp_degree": "a parallel degree cannot exceed the 2^18 devices of a topology",
    "dispatcher_num_sms": "no accelerator has more than a few hundred SMs or CUs",
    "max_batch_requests": "1000x DeepSeek-V3's 15,360 sequences",
    "max_batch_tokens": "100x a 10M-token context",
    "chunked_prefill_tokens": "100x a 10M-token context",
    "kv_cache_tokens": "100x a 10M-token context",
    "tokens": "100x a 10M-token context",
    "min_tokens": "100x a 10M-token context",
    "max_tokens": "100x a 10M-token context",
    "mean_tokens": "100x a 10M-token context",
    "cv": "a coefficient of variation of 100 is one burst per ten thousand gaps",
    "time_scale": "a million-fold stretch of a trace is no longer the trace",
    "at_s": "a serving simulation covers at most a day",
})


# --- arrivals -------------------------------------------------------------------------------

class PoissonArrivalSpec(FrozenSpec):
    """Exponential inter-arrival times at ``rate_per_s`` (the open-loop default of vLLM's and
    SGLang's serving benchmarks, request_rate)."""

    kind: Literal["poisson"] = "poisson"
    rate_per_s: float = Field(gt=0, le=MAX_RATE_PER_S, description="mean requests per second")


class GammaArrivalSpec(FrozenSpec):
    """Gamma inter-arrival times: mean 1 / rate, coefficient of variation ``cv`` (1: Poisson;
    above 1 bursty, below 1 regular; vLLM's benchmark_serving ``--burstiness`` is 1 / cv^2)."""

    kind: Literal["gamma"] = "gamma"
    rate_per_s: float = Field(gt=0, le=MAX_RATE_PER_S)
    cv: float = Field(gt=0, le=100.0, description="std / mean of the inter-arrival time")


class MMPPArrivalSpec(FrozenSpec):
    """Markov-modulated Poisson process: state i emits at ``rates_per_s[i]`` for an
    exponential time of mean ``mean_dwell_s[i]``, then moves to the next state (cyclically)."""

    kind: Literal["mmpp"] = "mmpp"
    rates_per_s: tuple[Annotated[float, Field(ge=0, le=MAX_RATE_PER_S)], ...] = Field(
        min_length=2, max_length=64)
    mean_dwell_s: tuple[Annotated[float, Field(gt=0, le=MAX_TIME_S)], ...] = Field(
        min_length=2, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> MMPPArrivalSpec:
        if len(self.rates_per_s) != len(self.mean_dwell_s):
            raise ValueError(f"rates_per_s has {len(self.rates_per_s)} states but mean_dwell_s "
                             f"has {len(self.mean_dwell_s)}; give one dwell time per state")
        if not any(r > 0 for r in self.rates_per_s):
            raise ValueError("rates_per_s: at least one state must have a rate above 0")
        return self

    @property
    def mean_rate_per_s(self) -> float:
        total = sum(self.mean_dwell_s)
        return sum(r * d for r, d in zip(self.rates_per_s, self.mean_dwell_s,
                                         strict=True)) / total


class BurstArrivalSpec(FrozenSpec):
    """Every request at ``at_s``: a saturation (offline) benchmark, as SGLang's and vLLM's
    throughput benchmarks run with an infinite request rate."""

    kind: Literal["burst"] = "burst"
    at_s: float = Field(default=0.0, ge=0, le=MAX_TIME_S)


class TraceArrivalSpec(FrozenSpec):
    """Requests read from a file: CSV with a header naming ``arrival_s``, ``input_tokens``
    and ``output_tokens`` (other columns ignored), or JSON Lines with those keys; rows sorted
    by arrival or not (they are sorted). Paths are relative to the scenario file."""

    kind: Literal["trace"] = "trace"
    path: str = Field(min_length=1)
    time_scale: float = Field(default=1.0, gt=0, le=1e6,
                              description="arrival times are multiplied by it (0.5: twice the rate)")


ArrivalSpec = Annotated[
    PoissonArrivalSpec | GammaArrivalSpec | MMPPArrivalSpec | BurstArrivalSpec
    | TraceArrivalSpec, Field(discriminator="kind")]


# --- lengths --------------------------------------------------------------------------------

class FixedLengthSpec(FrozenSpec):
    kind: Literal["fixed"] = "fixed"
    tokens: int = Field(ge=1, le=B.MAX_SEQUENCE)

    @property
    def max_tokens(self) -> int:
        return self.tokens


class _TokenRange(FrozenSpec):
    """Lengths drawn in [min_tokens, max_tokens] (the subclass declares both fields)."""

    @model_validator(mode="after")
    def _check_range(self) -> _TokenRange:
        lo, hi = getattr(self, "min_tokens"), getattr(self, "max_tokens")  # noqa: B009
        if lo > hi:
            raise ValueError(f"min_tokens={lo} exceeds max_tokens={hi}")
        return self


class UniformLengthSpec(_TokenRange):
    """Integers uniform in [min_tokens, max_tokens] (SGLang's bench_serving ``random`` dataset
    draws lengths uniformly in [range_ratio x L, L])."""

    kind: Literal["uniform"] = "uniform"
    min_tokens: int = Field(ge=1, le=B.MAX_SEQUENCE)
    max_tokens: int = Field(ge=1, le=B.MAX_SEQUENCE)


class LogNormalLengthSpec(_TokenRange):
    """Log-normal lengths of mean ``mean_tokens`` and coefficient of variation ``cv``, rounded
    and clipped to [min_tokens, max_tokens] (conversation datasets such as ShareGPT are
    roughly log-normal)."""

    kind: Literal["lognormal"] = "lognormal"
    mean_tokens: float = Field(gt=0, le=B.MAX_SEQUENCE)
    cv: float = Field(gt=0, le=100.0)
    min_tokens: int = Field(default=1, ge=1, le=B.MAX_SEQUENCE)
    max_tokens: int = Field(ge=1, le=B.MAX_SEQUENCE)


LengthSpec = Annotated[FixedLengthSpec | UniformLengthSpec | LogNormalLengthSpec,
                       Field(discriminator="kind")]


class SLOSpec(FrozenSpec):
    """Latency targets a request must meet to count in the goodput (DistServe's definition:
    completed requests that meet both, per second)."""

    ttft_ms: float = Field(gt=0, le=MAX_TIME_MS, description="time to first token")
    tpot_ms: float = Field(gt=0, le=MAX_TIME_MS, description="time per output token after the "
                           "first (mean over the request's tokens)")


class ServingWorkloadSpec(FrozenSpec):
    """A stream of inference requests."""

    kind: Literal["serving"] = "serving"
    num_requests: int | None = Field(
        default=None, ge=1, le=MAX_REQUESTS, description="requests to simulate; a trace: its "
        "first N rows (default all)")
    arrival: ArrivalSpec
    input_length: LengthSpec | None = Field(default=None, description="prompt tokens (not with a trace)")
    output_length: LengthSpec | None = Field(default=None, description="generated tokens, the "
                                             "first included (not with a trace)")
    slo: SLOSpec | None = None
    dtype: Literal["bf16", "fp16", "fp8"] = Field(default="bf16", description="GEMM dtype")
    fp8_recipe: Literal["tensorwise", "blockwise", "mxfp8"] = Field(
        default="blockwise", description="with dtype fp8: per-tensor scales, 1x128 / 128x128 "
        "blocks (DeepSeek-V3 and DeepGEMM), or MXFP8")
    kv_cache_dtype: Literal["bf16", "fp16", "fp8"] = "bf16"
    isolate: Literal["none", "prefill", "decode"] = Field(
        default="none", description="simulate one phase with the other unlimited, as published "
        "serving benchmarks measure them: prefill (requests leave after their first token) or "
        "decode (requests arrive with their prompt already in the decode instance's KV cache)")

    @model_validator(mode="after")
    def _check(self) -> ServingWorkloadSpec:
        trace = isinstance(self.arrival, TraceArrivalSpec)
        if trace and (self.input_length is not None or self.output_length is not None):
            raise ValueError("input_length and output_length come from the trace file; drop them "
                             "or use another arrival kind")
        if not trace:
            if self.input_length is None or self.output_length is None:
                raise ValueError("input_length and output_length are required (or give a "
                                 "trace file as arrival)")
            if self.num_requests is None:
                raise ValueError("num_requests is required (except with a trace)")
        return self

    @property
    def gemm_kernel_dtype(self) -> str:
        if self.dtype != "fp8":
            return self.dtype
        return {"blockwise": "fp8_block", "mxfp8": "mxfp8"}.get(self.fp8_recipe, "fp8")


# --- the deployment -------------------------------------------------------------------------

class SpeculativeSpec(FrozenSpec):
    """Speculative decoding with the model's own multi-token-prediction module as the draft
    (DeepSeek-V3 MTP; SGLang's EAGLE with the MTP head): each decode step drafts
    ``num_draft_tokens`` tokens (one MTP forward each) and verifies them in one target forward;
    draft token i is accepted with probability ``acceptance_rate`` if the ones before it were."""

    kind: Literal["mtp"] = "mtp"
    num_draft_tokens: int = Field(default=1, ge=1, le=MAX_DRAFT_TOKENS)
    acceptance_rate: float = Field(ge=0.0, lt=1.0, description="per draft token (DeepSeek-V3 "
                                   "reports 85-90% for the second token, section 5.4.3)")

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens one verify step emits: sum_{i=0..k} a^i."""
        a, k = self.acceptance_rate, self.num_draft_tokens
        return sum(a ** i for i in range(k + 1))


Dispatcher = Literal["deepep_normal", "deepep_low_latency", "nccl"]


class RoleSpec(FrozenSpec):
    """One role's instances: each instance is ``attention_tp_degree x attention_dp_degree``
    devices that run the model together (all its MoE layers over one EP group)."""

    num_instances: int = Field(default=1, ge=1, le=B.MAX_DEVICES)
    attention_tp_degree: int = Field(default=1, ge=1, le=B.MAX_DEVICES,
                                     description="tensor parallel degree of attention")
    attention_dp_degree: int = Field(
        default=1, ge=1, le=B.MAX_DEVICES, description="DP-attention ranks per instance (SGLang "
        "--enable-dp-attention --dp): each holds its own requests and KV cache")
    expert_parallel_degree: int | None = Field(
        default=None, ge=1, le=B.MAX_DEVICES, description="default: every device of the "
        "instance; fewer splits each expert over the rest (MoE TP)")
    num_redundant_experts: int = Field(
        default=0, ge=0, le=B.MAX_EXPERTS, description="extra copies of hot experts (EPLB; "
        "SGLang runs DeepSeek-V3 with 32: 288 physical experts)")
    dispatcher: Dispatcher = Field(
        default="deepep_normal", description="MoE token exchange: DeepEP normal kernels "
        "(prefill), DeepEP low-latency kernels (decode), or NCCL all-to-all")
    dispatcher_num_sms: int = Field(default=20, ge=1, le=B.MAX_HARDWARE_COUNT,
                                    description="SMs DeepEP's normal kernels take (its default 20)")
    two_batch_overlap: bool = Field(
        default=False, description="split each batch in two micro-batches so one's dispatch and "
        "combine run under the other's compute (SGLang --enable-two-batch-overlap)")
    cuda_graph: bool = Field(default=False, description="decode iterations replay a CUDA "
                             "graph: one launch, no per-op host issue time")
    max_batch_requests: int = Field(
        default=256, ge=1, le=B.MAX_BATCH, description="running requests per DP-attention rank "
        "(decode batch size limit)")
    max_batch_tokens: int = Field(
        default=16384, ge=1, le=B.MAX_SEQUENCE, description="new tokens per DP-attention rank "
        "per iteration (prefill tokens plus decode tokens)")
    chunked_prefill_tokens: int | None = Field(
        default=None, ge=1, le=B.MAX_SEQUENCE, description="longest prefill chunk; null: a "
        "prompt is cut only where max_batch_tokens cuts it")
    kv_cache_tokens: int | None = Field(
        default=None, ge=1, le=B.MAX_SEQUENCE, description="KV-cache tokens per DP-attention "
        "rank; null: what fits in HBM (docs/serving.md, Memory)")
    memory_fraction: float = Field(
        default=0.9, gt=0.0, le=1.0, description="share of HBM for weights and KV cache "
        "(SGLang --mem-fraction-static); the rest is activation workspace and reserve")
    host_op_us: float | None = Field(
        default=None, ge=0, le=B.MAX_LATENCY_US, description="host time to issue one op outside "
        "CUDA graphs; null: the accelerator's kernel_launch_us (docs/serving.md, Host)")
    speculative: SpeculativeSpec | None = None

    @property
    def devices_per_instance(self) -> int:
        return self.attention_tp_degree * self.attention_dp_degree

    @property
    def num_devices(self) -> int:
        return self.num_instances * self.devices_per_instance

    @property
    def ep(self) -> int:
        return self.expert_parallel_degree or self.devices_per_instance

    @property
    def ranks(self) -> int:
        """DP-attention ranks (independent batches) in the whole role."""
        return self.num_instances * self.attention_dp_degree


class AggregatedDeploymentSpec(FrozenSpec):
    """Every instance prefills and decodes (continuous batching mixes prefill chunks and decode
    tokens in one iteration, as vLLM and SGLang with chunked prefill do)."""

    kind: Literal["aggregated"] = "aggregated"
    role: RoleSpec

    @property
    def roles(self) -> dict[str, RoleSpec]:
        return {"aggregated": self.role}


class DisaggregatedDeploymentSpec(FrozenSpec):
    """Prefill instances hand each request's KV cache to a decode instance over the fabric
    (DistServe, Mooncake, SGLang PD disaggregation)."""

    kind: Literal["disaggregated"] = "disaggregated"
    prefill: RoleSpec
    decode: RoleSpec

    @property
    def roles(self) -> dict[str, RoleSpec]:
        return {"prefill": self.prefill, "decode": self.decode}


DeploymentSpec = Annotated[AggregatedDeploymentSpec | DisaggregatedDeploymentSpec,
                           Field(discriminator="kind")]

UNION_TAGS = {"poisson", "gamma", "mmpp", "burst", "trace", "fixed", "uniform", "lognormal",
              "aggregated", "disaggregated", "mtp", "training", "serving"}
