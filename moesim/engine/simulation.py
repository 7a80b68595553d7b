"""One Simulation object: program + cost models + routing -> a frozen SimulationResult."""

from __future__ import annotations

from typing import Literal

from moesim.engine.analytic import run_analytic
from moesim.engine.binding import ScenarioCostProvider
from moesim.engine.costs import CostProvider
from moesim.engine.des import chunk_plans, run_des
from moesim.engine.host import HostModel, host_model
from moesim.engine.links import step_link_loads
from moesim.engine.pricing import Pricer
from moesim.engine.routing_view import RoutingView, draw_routing
from moesim.engine.stragglers import scale_plans, stage_factors
from moesim.memory import MemoryReport, estimate_memory
from moesim.program.builder import StepProgram, build_program
from moesim.results.build import build_result
from moesim.results.schema import SimulationResult
from moesim.specs.goodput import StragglerSpec
from moesim.specs.scenario import ScenarioSpec

Fidelity = Literal["des", "analytic"]


class Simulation:
    """Simulate one training step of ``scenario``.

    ``costs`` and ``routing`` may be injected (tests use a closed-form fake); by default the
    real cost models and the scenario's routing draws are used. ``host`` is the host model
    (:mod:`moesim.engine.host`); by default the scenario's with the real costs, and no host
    time with injected costs (so closed-form fakes stay hand-checkable); ``host_op_s``
    overrides only its issue time per op (the calibration fit varies it).
    ``stragglers`` (default off) slows each stage's compute by the slowest of its ranks
    (:mod:`moesim.engine.stragglers`): the expectation for ``analytic``, one draw of step
    ``straggler_step`` from the scenario seed for ``des``.
    """

    def __init__(self, scenario: ScenarioSpec, *, fidelity: Fidelity = "des",
                 costs: CostProvider | None = None, routing: RoutingView | None = None,
                 include_memory: bool = True, host: HostModel | None = None,
                 host_op_s: float | None = None, stragglers: StragglerSpec | None = None,
                 straggler_step: int = 0) -> None:
        self.scenario = scenario
        self.fidelity = fidelity
        self.program: StepProgram = program_for(scenario, with_actions=fidelity == "des")
        self.costs = costs if costs is not None else ScenarioCostProvider(
            scenario, fidelity="analytic" if fidelity == "analytic" else "flow")
        self.routing = routing if routing is not None else draw_routing(
            scenario, self.program, expected=fidelity == "analytic")
        self.include_memory = include_memory
        if host is None:
            host = (host_model(scenario, host_op_s) if costs is None or host_op_s is not None
                    else HostModel(op_s=0.0))
        self.host = host
        self.pricer = Pricer(self.program, self.costs, self.routing, host)
        self.ops_simulated = 0
        self.stragglers = stragglers if stragglers is not None and stragglers.active else None
        self.straggler_step = straggler_step
        self.straggler_factors: list[float] = []

    def run(self) -> SimulationResult:
        """Run the step (event loop for ``des``, closed form for ``analytic``)."""
        plans = chunk_plans(self.program, self.pricer)
        if self.stragglers is not None:
            pp = self.program.context.pp
            self.straggler_factors = stage_factors(
                self.stragglers, pp, max(1, self.scenario.devices // pp),
                expected=self.fidelity == "analytic", seed=self.scenario.seed,
                step=self.straggler_step)
            plans = scale_plans(plans, self.straggler_factors)
        if self.fidelity == "des":
            outcomes = run_des(self.program, self.pricer, plans)
        else:
            outcomes = run_analytic(self.program, self.pricer, plans)
        self.ops_simulated = sum(o.ledger.ops for o in outcomes)  # op intervals run
        memory = _memory_report(self.scenario, self.routing) if self.include_memory else None
        links = step_link_loads(self.program, self.pricer) if self.fidelity == "des" else []
        return build_result(self.scenario, self.program, self.routing, outcomes,
                            fidelity=self.fidelity, memory=memory,
                            sources=dict(self.costs.sources), links=links)


_PROGRAMS: dict[tuple[object, ...], StepProgram] = {}
_PROGRAMS_MAX = 32


def program_for(scenario: ScenarioSpec, *, with_actions: bool = True) -> StepProgram:
    """``build_program(scenario)``, memoized by value: the program depends only on the model,
    the layout, the workload and the device count, so sweep points that vary anything else
    (fabric, routing load, calibration) share it. Programs are immutable."""
    key = (scenario.model_spec, scenario.parallelism, scenario.workload, scenario.devices,
           with_actions)
    hit = _PROGRAMS.get(key)
    if hit is None:
        if len(_PROGRAMS) >= _PROGRAMS_MAX:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))  # oldest first
        hit = _PROGRAMS[key] = build_program(scenario, with_actions=with_actions)
    return hit


def simulate(scenario: ScenarioSpec, *, fidelity: Fidelity = "des") -> SimulationResult:
    """Shorthand: ``Simulation(scenario, fidelity=fidelity).run()``."""
    return Simulation(scenario, fidelity=fidelity).run()


def _memory_report(scenario: ScenarioSpec, routing: RoutingView) -> MemoryReport:
    """Peak memory per rank class, fed the routing draws this step used."""
    raw = routing.raw
    recv = getattr(raw, "recv_tokens", None) if raw is not None else None
    return estimate_memory(scenario, recv_tokens=recv)
