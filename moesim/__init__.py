"""moesim: a simulator and cost model for Mixture-of-Experts parallelism.

The Python API (the command line's work, as functions)::

    import moesim

    scenario = moesim.load_scenario("scenarios/default.yaml",
                                    {"parallelism.expert_parallel_degree": 4})
    result = moesim.simulate(scenario, fidelity="analytic")
    print(result.step_time_s, result.mfu)
    result.to_dataframe()                 # one row; needs pandas
    best = moesim.plan(scenario, devices=64).best
    moesim.write_report(result, "reports/mine")

The names are loaded on first use, so ``import moesim`` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module that defines it.
_EXPORTS = {
    "load_scenario": "moesim.api", "load_model": "moesim.api", "simulate": "moesim.api",
    "write_report": "moesim.api",
    "import_model": "moesim.specs.hf", "ImportedModel": "moesim.specs.hf",
    "Simulation": "moesim.engine", "EngineSession": "moesim.engine.session",
    "SimulationResult": "moesim.results.schema", "PlanResult": "moesim.plan.search",
    "Candidate": "moesim.plan.search", "ScenarioSpec": "moesim.specs.scenario",
    "MoEModelSpec": "moesim.specs.model", "TopologySpec": "moesim.specs.hardware",
    "SpecError": "moesim.errors", "InfeasibleError": "moesim.errors",
    "MoesimError": "moesim.errors",
}

__all__ = ["__version__", "plan", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # from git tags or the wheel's build (moesim._version)
        from moesim._version import version

        return version()
    if name == "plan":  # the package moesim.plan, callable as the layout search
        return importlib.import_module("moesim.plan")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'moesim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | {"plan", "__version__"})
