"""Frozen pydantic specs: what a user writes in YAML.

The names below are loaded on first use (``moesim.specs.bounds`` and the other light
modules import without building every spec class).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(("AcceleratorSpec", "DcnSpec", "FatTreeSpec", "NVSwitchDomainSpec",
                     "TierSpec", "TopologySpec", "TorusSpec"), "moesim.specs.hardware"),
    **dict.fromkeys(("load_model", "load_scenario", "load_topology", "validate_file"),
                    "moesim.specs.loader"),
    **dict.fromkeys(("GQAAttentionSpec", "MLAAttentionSpec", "MoEModelSpec"),
                    "moesim.specs.model"),
    "ParallelismSpec": "moesim.specs.parallelism", "RoutingSpec": "moesim.specs.routing",
    "MeasuredSpec": "moesim.specs.scenario", "ScenarioSpec": "moesim.specs.scenario",
    "TrainingWorkloadSpec": "moesim.specs.workload", "WorkloadSpec": "moesim.specs.workload",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'moesim.specs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
