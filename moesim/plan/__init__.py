"""Sweeps, layout search and capacity questions, on one machine or a Ray cluster.

The plan layer asks the engine and the memory model for every number (``evaluate``) and
owns only enumeration, pruning, bookkeeping and scheduling.

The package is also callable: ``moesim.plan(scenario, devices=64)`` is
:func:`moesim.plan.search.plan` (``moesim.plan`` is both this package and the API's search,
and Python binds a package's name on import, so the package answers the call itself).
"""

import sys
import types
from typing import Any

from moesim.plan.evaluate import Backend, MemoryVerdict, engine_memory, engine_point
from moesim.plan.executors import LocalExecutor, RayExecutor, SerialExecutor, make_executor
from moesim.plan.layouts import Layout, SearchSpaceSpec
from moesim.plan.search import Candidate, PlanResult, pareto_front, plan, plan_layouts
from moesim.plan.store import ResultStore, point_id
from moesim.plan.sweep import PointTask, SweepSummary, run_point, run_sweep, sweep_tasks

__all__ = [
    "Backend", "Candidate", "Layout", "LocalExecutor", "MemoryVerdict", "PlanResult",
    "PointTask", "RayExecutor", "ResultStore", "SearchSpaceSpec", "SerialExecutor",
    "SweepSummary", "engine_memory", "engine_point", "make_executor", "pareto_front",
    "plan", "plan_layouts", "point_id", "run_point", "run_sweep", "sweep_tasks",
]


class _CallablePackage(types.ModuleType):
    """This package, callable as :func:`moesim.plan.search.plan`."""

    def __call__(self, *args: Any, **kwargs: Any) -> PlanResult:
        return plan(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
