"""How the planner asks the engine and the memory model for numbers (adapters only).

The plan layer has no cost logic of its own: every number comes from
``moesim.engine.simulate`` (analytic or DES fidelity) and ``moesim.memory.estimate_memory``.
An evaluator is any picklable callable ``(scenario, fidelity) -> Metrics`` that raises
SpecError / InfeasibleError; tests and benchmarks inject their own by dotted name
(``module:function``), the default binds the real engine.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# the default evaluators' dotted names (engine_point, engine_memory, engine_layout below)
from moesim.constants import ENGINE_EVALUATOR, ENGINE_MEMORY, PLAN_EVALUATOR
from moesim.errors import InfeasibleError, MoesimError
from moesim.specs.scenario import ScenarioSpec
from moesim.units import GIB

Metrics = dict[str, Any]
PointEvaluator = Callable[[ScenarioSpec, str], Metrics]

# The metric names every evaluator returns (a subset may be missing; tables show "-").
METRIC_KEYS = ("step_time_s", "tokens_per_s", "tokens_per_s_per_device",
               "model_tflops_per_device", "mfu", "fits_memory", "peak_bytes", "headroom_bytes",
               "pipeline_bubble_s", "exposed_communication_s", "compute_s")

ENGINE_MEMORY_BOUND = "moesim.plan.evaluate:engine_memory_bound"
AUTO = "auto"  # the bound that belongs to the memory check: the engine's, or none


@dataclass(frozen=True)
class MemoryVerdict:
    """Whether a layout fits: peak and capacity in bytes on the most loaded rank class."""

    fits: bool
    peak_bytes: float
    capacity_bytes: float
    most_loaded: str = ""

    @property
    def headroom_bytes(self) -> float:
        return self.capacity_bytes - self.peak_bytes


MemoryCheck = Callable[[ScenarioSpec], MemoryVerdict]


def result_metrics(result: Any) -> Metrics:
    """Flatten a ``moesim.results.SimulationResult`` into the planner's metrics (SI units)."""
    peaks = [m.memory.peak_bytes for m in result.memory]
    heads = [m.memory.headroom_bytes for m in result.memory]
    b = result.breakdown
    return {
        "step_time_s": result.step_time_s,
        "tokens_per_s": result.tokens_per_s,
        "tokens_per_s_per_device": result.tokens_per_s_per_device,
        "model_tflops_per_device": result.model_tflops_per_device,
        "mfu": result.mfu,
        "fits_memory": bool(result.fits_memory),
        "peak_bytes": max(peaks) if peaks else None,
        "headroom_bytes": min(heads) if heads else None,
        "pipeline_bubble_s": b.pipeline_bubble_s,
        "exposed_communication_s": float(sum(b.exposed_communication_s.values())),
        "compute_s": float(sum(b.compute_s.values())),  # the critical rank's compute
    }


def _engine() -> Any:
    try:
        return importlib.import_module("moesim.engine")
    except ImportError as exc:
        raise MoesimError(f"the simulation engine (moesim.engine) is not available: {exc}; "
                          "pass --evaluator MODULE:FUNCTION") from None


def engine_point(scenario: ScenarioSpec, fidelity: str, *, session: Any = None) -> Metrics:
    """Simulate one scenario with the real engine at ``fidelity`` ('analytic' or 'des');
    ``session``: the moesim.engine.session.EngineSession whose caches it shares."""
    sim = _engine().Simulation(scenario, fidelity=fidelity, session=session, trace=False)
    return result_metrics(sim.run())


def engine_layout(scenario: ScenarioSpec, fidelity: str, *, session: Any = None) -> Metrics:
    """As :func:`engine_point` without the memory report (a search asked the memory model)."""
    sim = _engine().Simulation(scenario, fidelity=fidelity, include_memory=False,
                               session=session, trace=False)
    return result_metrics(sim.run())


def engine_memory(scenario: ScenarioSpec) -> MemoryVerdict:
    """Peak memory of the most loaded rank class from ``moesim.memory.estimate_memory``."""
    try:
        memory = importlib.import_module("moesim.memory")
    except ImportError as exc:
        raise MoesimError(f"the memory model (moesim.memory) is not available: {exc}") from None
    report = memory.estimate_memory(scenario)
    capacity = scenario.topology_spec.accelerator.hbm_bytes
    most = getattr(report, "most_loaded", "")
    return MemoryVerdict(fits=bool(report.fits), peak_bytes=float(report.peak_bytes),
                         capacity_bytes=float(capacity), most_loaded=str(most))


def _rank_params(scenario: ScenarioSpec, rank: int, memory: Any, session: Any) -> Any:
    # Parameter counts depend on the model and the sharding degrees only (not on ZeRO, the
    # micro-batch or recomputation), so one count serves a whole family of layouts.
    if session is None:
        return memory.rank_params(scenario, rank)
    p = scenario.parallelism
    key = (scenario.model_spec, scenario.experts_per_rank, p.tensor_parallel_degree,
           p.pipeline_parallel_degree, p.num_virtual_stages, p.pipeline_layer_split,
           p.pipeline_schedule.kind, p.expert_tensor_parallel_degree, rank)
    return session.rank_params.get_or_make(key, lambda: memory.rank_params(scenario, rank))


def engine_memory_bound(scenario: ScenarioSpec, *, session: Any = None) -> float:
    """A lower bound on ``estimate_memory(scenario).peak_bytes``, in bytes, in ~0.1 ms.

    A rank's peak is its model states (weights, gradients, optimizer states after ZeRO) plus
    the framework reserve plus the larger of its two phases (activations and buffers, or the
    optimizer step's temporaries), each non-negative (``moesim.memory.rank.rank_breakdown``),
    so the first two alone, on the fullest pipeline rank, bound the peak from below.
    """
    try:
        params = importlib.import_module("moesim.memory.params")
        overheads = importlib.import_module("moesim.memory.overheads")
    except ImportError as exc:
        raise MoesimError(f"the memory model (moesim.memory) is not available: {exc}") from None
    states = max(sum(params.model_state_bytes(scenario,
                                              _rank_params(scenario, r, params, session))
                     .values()) for r in range(scenario.parallelism.pipeline_parallel_degree))
    return float(states + overheads.framework_reserve_bytes(scenario))


def _new_session() -> Any:
    from moesim.engine.session import EngineSession

    return EngineSession()


@functools.lru_cache(maxsize=16)
def takes_session(name: str) -> bool:
    """Whether the evaluator ``name`` accepts a ``session`` keyword (the engine's do)."""
    try:
        return "session" in inspect.signature(resolve(name)).parameters
    except (TypeError, ValueError):
        return False


@functools.lru_cache(maxsize=16)
def resolve(name: str) -> Callable[..., Any]:
    """Import ``module:function`` (cached per process, so workers import it once)."""
    module, sep, attr = name.partition(":")
    if not sep or not module or not attr:
        raise MoesimError(f"evaluator {name!r}: expected MODULE:FUNCTION, e.g. {ENGINE_EVALUATOR}")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise MoesimError(f"evaluator {name!r} cannot be imported: {exc}") from None
    if not callable(fn):
        raise MoesimError(f"evaluator {name!r} is not callable")
    return fn  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Backend:
    """The evaluator and memory check a search uses, by dotted name (picklable)."""

    evaluator: str = PLAN_EVALUATOR
    memory: str = ENGINE_MEMORY
    # A cheap lower bound on the memory check's peak bytes (MODULE:FUNCTION, scenario ->
    # bytes); "auto": the engine's bound with the engine's memory check, else none; "": none.
    bound: str = AUTO
    # The caches the evaluations of this backend share (moesim.engine.session); a pickled
    # backend (a task sent to a worker) arrives with an empty one.
    session: Any = field(default_factory=_new_session, compare=False, repr=False)

    @property
    def bound_name(self) -> str:
        if self.bound == AUTO:
            return ENGINE_MEMORY_BOUND if self.memory == ENGINE_MEMORY else ""
        return self.bound

    def memory_bound(self, scenario: ScenarioSpec) -> float | None:
        """Bytes the peak cannot be under, or None without a bound."""
        name = self.bound_name
        return float(self._call(name, scenario)) if name else None

    def simulate(self, scenario: ScenarioSpec, fidelity: str) -> Metrics:
        return self._call(self.evaluator, scenario, fidelity)  # type: ignore[no-any-return]

    def check_memory(self, scenario: ScenarioSpec) -> MemoryVerdict:
        return self._call(self.memory, scenario)  # type: ignore[no-any-return]

    def _call(self, name: str, *args: Any) -> Any:
        if takes_session(name):
            return resolve(name)(*args, session=self.session)
        return resolve(name)(*args)


def require_fit(metrics: Metrics) -> None:
    """Raise InfeasibleError(reason='memory') when the engine said the step does not fit."""
    if metrics.get("fits_memory") is False:
        peak = metrics.get("peak_bytes")
        shown = f" (peak {peak / GIB:.1f} GiB)" if isinstance(peak, (int, float)) else ""
        raise InfeasibleError(f"does not fit in device memory{shown}", reason="memory")
