"""A scenario: a topology, a model, a layout, a workload and a router, plus a seed."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag

from moesim.specs import bounds as B
from moesim.specs.base import FrozenSpec
from moesim.specs.hardware import TopologySpec
from moesim.specs.model import MoEModelSpec
from moesim.specs.parallelism import ParallelismSpec
from moesim.specs.routing import RoutingSpec
from moesim.specs.serving import DeploymentSpec, ServingWorkloadSpec
from moesim.specs.workload import TrainingWorkloadSpec


def _workload_kind(value: Any) -> str:
    """The workload's ``kind``; a workload without one is a training workload (every scenario
    written before serving existed)."""
    kind = value.get("kind", "training") if isinstance(value, dict) else getattr(
        value, "kind", "training")
    return kind if kind in ("training", "serving") else str(kind)


# Training or serving, on ``kind`` (default training).
WorkloadSpec = Annotated[
    Annotated[TrainingWorkloadSpec, Tag("training")] | Annotated[ServingWorkloadSpec, Tag("serving")],
    Discriminator(_workload_kind)]


class MeasuredSpec(FrozenSpec):
    """A published measurement the scenario reproduces (for ``moesim check``)."""

    metric: str = Field(description="a result field, e.g. step_time_s or model_tflops_per_device")
    value: float
    units: str
    category: str = Field(default="training_throughput")
    source: str
    date: str = Field(default="", description="when it was published or measured; shown "
                      "beside the source in check results")
    note: str = ""
    in_sample: bool = Field(
        default=False, description="a moesim constant was fitted to this point (among others); "
        "it checks consistency, not prediction (docs/validation.md names the constant)")


class ScenarioSpec(FrozenSpec):
    """Everything one simulation needs. ``topology`` and ``model`` are a path or embedded."""

    name: str
    description: str = ""
    topology: str | TopologySpec
    topology_overrides: dict[str, Any] = Field(
        default_factory=dict, description="dotted paths into the topology, e.g. tiers.1.num_domains")
    model: str | MoEModelSpec
    num_devices: int | None = Field(default=None, ge=1, le=B.MAX_DEVICES, description="default: all in the topology")
    parallelism: ParallelismSpec = Field(default_factory=ParallelismSpec)
    workload: WorkloadSpec
    deployment: DeploymentSpec | None = Field(
        default=None, description="serving only: the roles that serve the requests "
        "(docs/serving.md)")
    routing: RoutingSpec = Field(default_factory=RoutingSpec)
    seed: int = Field(default=0, ge=0, le=B.MAX_SEED)
    calibration: str | None = Field(
        default=None, description="path to a calibration table; null: the accelerator's shipped "
        "measured table (calibration/, docs/compute.md); none: the roofline")
    measured: tuple[MeasuredSpec, ...] = ()

    # After loading, topology and model are always embedded; these narrow the types.
    @property
    def topology_spec(self) -> TopologySpec:
        assert isinstance(self.topology, TopologySpec), "scenario not resolved: use load_scenario"
        return self.topology

    @property
    def model_spec(self) -> MoEModelSpec:
        assert isinstance(self.model, MoEModelSpec), "scenario not resolved: use load_scenario"
        return self.model

    @property
    def is_serving(self) -> bool:
        return self.workload.kind == "serving"

    @property
    def devices(self) -> int:
        return self.num_devices or self.topology_spec.num_devices

    @property
    def data_parallel_degree(self) -> int:
        return self.parallelism.data_parallel_degree(self.devices)

    @property
    def expert_data_parallel_degree(self) -> int:
        return self.parallelism.expert_data_parallel_degree(self.devices)

    @property
    def num_micro_batches(self) -> int:
        """Micro-batches each pipeline runs per step (gradient-accumulation steps)."""
        per_replica = self.workload.global_batch_size // self.data_parallel_degree
        return per_replica // self.parallelism.micro_batch_size

    @property
    def experts_per_rank(self) -> int:
        m = self.model_spec
        return (m.num_experts + self.routing.num_redundant_experts) // (
            self.parallelism.expert_parallel_degree)
