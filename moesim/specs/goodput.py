"""What a real run loses to failures, checkpoints and stragglers, and what it costs in energy.

A ``GoodputSpec`` joins four parts, each with the sources of its figures in the shipped
defaults (``topologies/goodput/defaults.yaml``, docs/goodput.md):

* ``reliability``: failure sources by kind (accelerator, node, link, software, planned), each a
  rate per unit-hour where the unit is a device or a host; the job's failure rate is their
  sum over the cluster (a synchronous job stops when any one of them fails). Plus the time to
  detect a failure and to restart the job (the checkpoint reload is priced from ``checkpoint``).
* ``checkpoint``: what is saved (weights, optimizer states), whether every rank writes its
  shard, the storage bandwidth per host and in aggregate, and asynchronous saving.
* ``stragglers``: the per-rank, per-step slowdown distribution (log-normal jitter times an
  occasional straggler whose extra slowdown is exponential); the slowest of the synchronous
  ranks sets the step.
* ``host`` (power per device, the devices of one host) and ``pue``, for energy.

Rates are per hour (``_per_unit_hour``), power in watts (``_w``); times and bandwidths use the
project's suffixes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from moesim.specs.base import FrozenSpec
from moesim.units import GBYTE_PER_S

FailureKind = Literal["accelerator", "node", "link", "software", "planned"]
HOUR_S = 3600.0  # seconds in an hour: rates are quoted per unit-hour
MAX_RATE_PER_UNIT_HOUR = 1.0  # one failure per device-hour: 10^4x Llama 3's accelerator rate
MAX_TIME_S = 30 * 86400.0  # a month to detect or restart: beyond any real job
MAX_STORAGE_GBYTE_PER_S = 1e6  # 1 PB/s: 140x Llama 3's peak Tectonic throughput
MAX_POWER_W = 1e6  # 1 MW per device or host


class FailureSourceSpec(FrozenSpec):
    """One kind of job interruption, at a rate per unit (device or host) and hour."""

    name: str
    kind: FailureKind
    per: Literal["device", "host"] = Field(
        default="device", description="the unit that fails: a device (GPU, TPU chip, its NIC "
        "rail) or a host (the server: CPU, memory, SSD, power supply)")
    failures_per_unit_hour: float = Field(
        ge=0, le=MAX_RATE_PER_UNIT_HOUR, description="interruptions per unit and hour")
    source: str = ""


class ReliabilitySpec(FrozenSpec):
    """Failure sources of a synchronous job and the time each interruption takes to recover."""

    sources: tuple[FailureSourceSpec, ...] = ()
    detect_s: float = Field(default=60.0, ge=0, le=MAX_TIME_S,
                            description="from the failure to the job being stopped")
    restart_s: float = Field(default=540.0, ge=0, le=MAX_TIME_S,
                             description="rescheduling, replacing the failed host, process and "
                             "communicator start-up; the checkpoint reload is added from its bytes")
    source: str = ""

    def failures_per_s(self, devices: int, devices_per_host: int) -> float:
        """The job's interruption rate (1/s): every source summed over its units."""
        hosts = -(-devices // max(1, devices_per_host))
        total = sum(s.failures_per_unit_hour * (devices if s.per == "device" else hosts)
                    for s in self.sources)
        return total / HOUR_S

    def rate_by_kind(self, devices: int, devices_per_host: int) -> dict[str, float]:
        """Interruptions per second by kind (accelerator, node, link, software, planned)."""
        hosts = -(-devices // max(1, devices_per_host))
        out: dict[str, float] = {}
        for s in self.sources:
            units = devices if s.per == "device" else hosts
            out[s.kind] = out.get(s.kind, 0.0) + s.failures_per_unit_hour * units / HOUR_S
        return out


class CheckpointSpec(FrozenSpec):
    """What a checkpoint holds and how fast it reaches storage and comes back."""

    save_weights: bool = True
    save_optimizer_states: bool = Field(
        default=True, description="fp32 master weights and the optimizer moments (moesim.memory "
        "bytes per parameter); gradients are never saved")
    sharded: bool = Field(
        default=True, description="every rank writes its own shard (torch.distributed.checkpoint, "
        "Megatron dist-ckpt); false: one data-parallel replica writes everything")
    async_save: bool = Field(
        default=False, description="copy the state to host memory, then write in the background: "
        "training waits only for the copy")
    host_write_gbyte_per_s: float = Field(
        gt=0, le=MAX_STORAGE_GBYTE_PER_S, description="storage write bandwidth of one host")
    host_read_gbyte_per_s: float = Field(gt=0, le=MAX_STORAGE_GBYTE_PER_S)
    aggregate_write_gbyte_per_s: float = Field(
        gt=0, le=MAX_STORAGE_GBYTE_PER_S, description="what the storage system sustains in all")
    aggregate_read_gbyte_per_s: float = Field(gt=0, le=MAX_STORAGE_GBYTE_PER_S)
    snapshot_gbyte_per_s: float = Field(
        default=50.0, gt=0, le=MAX_STORAGE_GBYTE_PER_S,
        description="device-to-host copy per device for asynchronous saving (PCIe)")
    interval_s: float | None = Field(
        default=None, gt=0, le=MAX_TIME_S,
        description="compute time between checkpoints; null: Daly's optimum")
    source: str = ""

    @model_validator(mode="after")
    def _saves_something(self) -> CheckpointSpec:
        if not (self.save_weights or self.save_optimizer_states):
            raise ValueError("save_weights and save_optimizer_states are both false: a checkpoint "
                             "must save something; set save_weights: true")
        return self

    def bytes_per_s(self, which: str) -> float:
        return float(getattr(self, f"{which}_gbyte_per_s")) * GBYTE_PER_S


class StragglerSpec(FrozenSpec):
    """Per-rank, per-step compute slowdown: X = exp(sigma Z) (1 + B S), B ~ Bernoulli(p),
    S ~ Exponential(mean ``straggler_slowdown``). The step waits for the slowest rank."""

    jitter_sigma: float = Field(default=0.0, ge=0, le=1.0,
                                description="log-normal sigma of every rank's compute time")
    straggler_probability: float = Field(default=0.0, ge=0, le=1.0,
                                         description="chance a rank straggles in a step")
    straggler_slowdown: float = Field(default=0.0, ge=0, le=100.0,
                                      description="mean extra compute fraction of a straggler")
    source: str = ""

    @property
    def active(self) -> bool:
        return self.jitter_sigma > 0 or (self.straggler_probability > 0
                                         and self.straggler_slowdown > 0)


class HostSpec(FrozenSpec):
    """Power of one device with its share of the host (CPUs, NICs, fans, switches), and how many
    devices one host (the unit of node failures) holds."""

    devices_per_host: int = Field(default=8, ge=1, le=1024)
    device_tdp_w: float | None = Field(default=None, gt=0, le=MAX_POWER_W)
    it_power_per_device_w: float | None = Field(
        default=None, gt=0, le=MAX_POWER_W, description="the host's (or rack's) maximum IT power "
        "over its devices; null: not published (energy is not reported)")
    source: str = ""


class GoodputSpec(FrozenSpec):
    """Everything the goodput estimate needs beyond the scenario and its step time."""

    reliability: ReliabilitySpec
    checkpoint: CheckpointSpec
    stragglers: StragglerSpec = Field(default_factory=StragglerSpec)
    host: HostSpec = Field(default_factory=HostSpec)
    pue: float = Field(default=1.56, ge=1.0, le=3.0,
                       description="facility power over IT power")
    monte_carlo_runs: int = Field(default=2000, ge=10, le=100_000)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1,
                             description="Monte Carlo seed; null: the scenario's")
    source: str = ""


class GoodputDefaultsSpec(FrozenSpec):
    """The shipped defaults: one goodput spec without a host, and a host per accelerator name."""

    reliability: ReliabilitySpec
    checkpoint: CheckpointSpec
    stragglers: StragglerSpec = Field(default_factory=StragglerSpec)
    pue: float = Field(default=1.56, ge=1.0, le=3.0)
    monte_carlo_runs: int = Field(default=2000, ge=10, le=100_000)
    hosts: dict[str, HostSpec] = Field(default_factory=dict)
    source: str = ""
