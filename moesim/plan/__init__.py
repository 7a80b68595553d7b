"""Sweeps, layout search and capacity questions, on one machine or a Ray cluster.

The plan layer asks the engine and the memory model for every number (``evaluate``) and
owns only enumeration, pruning, bookkeeping and scheduling.
"""

from moesim.plan.evaluate import Backend, MemoryVerdict, engine_memory, engine_point
from moesim.plan.executors import LocalExecutor, RayExecutor, SerialExecutor, make_executor
from moesim.plan.layouts import Layout, SearchSpaceSpec
from moesim.plan.search import Candidate, PlanResult, pareto_front, plan_layouts
from moesim.plan.store import ResultStore, point_id
from moesim.plan.sweep import PointTask, SweepSummary, run_point, run_sweep, sweep_tasks

__all__ = [
    "Backend", "Candidate", "Layout", "LocalExecutor", "MemoryVerdict", "PlanResult",
    "PointTask", "RayExecutor", "ResultStore", "SearchSpaceSpec", "SerialExecutor",
    "SweepSummary", "engine_memory", "engine_point", "make_executor", "pareto_front",
    "plan_layouts", "point_id", "run_point", "run_sweep", "sweep_tasks",
]
