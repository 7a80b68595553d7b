"""Frozen pydantic specs: what a user writes in YAML."""

from moesim.specs.hardware import (
    AcceleratorSpec,
    DcnSpec,
    FatTreeSpec,
    NVSwitchDomainSpec,
    TierSpec,
    TopologySpec,
    TorusSpec,
)
from moesim.specs.loader import load_model, load_scenario, load_topology, validate_file
from moesim.specs.model import GQAAttentionSpec, MLAAttentionSpec, MoEModelSpec
from moesim.specs.parallelism import ParallelismSpec
from moesim.specs.routing import RoutingSpec
from moesim.specs.scenario import MeasuredSpec, ScenarioSpec
from moesim.specs.workload import TrainingWorkloadSpec, WorkloadSpec

__all__ = [
    "AcceleratorSpec", "DcnSpec", "FatTreeSpec", "NVSwitchDomainSpec", "TierSpec", "TopologySpec",
    "TorusSpec", "GQAAttentionSpec", "MLAAttentionSpec", "MoEModelSpec", "ParallelismSpec",
    "RoutingSpec", "MeasuredSpec", "ScenarioSpec", "TrainingWorkloadSpec", "WorkloadSpec",
    "load_model", "load_scenario", "load_topology", "validate_file",
]
