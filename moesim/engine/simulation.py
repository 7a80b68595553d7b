"""One Simulation object: program + cost models + routing -> a frozen SimulationResult."""

from __future__ import annotations

from typing import Literal

import numpy as np

from moesim.engine.analytic import run_analytic
from moesim.engine.binding import ScenarioCostProvider
from moesim.engine.costs import CostProvider
from moesim.engine.des import chunk_plans, run_des
from moesim.engine.host import HostModel, host_model
from moesim.engine.links import step_link_loads
from moesim.engine.pricing import Pricer
from moesim.engine.routing_view import RoutingView, closed_form_applies, draw_routing
from moesim.engine.session import EngineSession
from moesim.engine.stragglers import scale_plans, stage_factors
from moesim.engine.timeline import TRACE_CAP
from moesim.memory import MemoryReport, estimate_memory
from moesim.program.builder import StepProgram, build_program
from moesim.results.build import build_result
from moesim.results.schema import SimulationResult
from moesim.routing import draw_step_routing
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
    ``session``: the caches shared with other simulations (moesim.engine.session; a fresh one
    by default). ``trace=False``: the DES keeps no op intervals (the result's trace is empty
    and marked incomplete) and the result has no per-layer routing table; every step number
    is the same. For callers that only read numbers (the planner).
    """

    def __init__(self, scenario: ScenarioSpec, *, fidelity: Fidelity = "des",
                 costs: CostProvider | None = None, routing: RoutingView | None = None,
                 include_memory: bool = True, host: HostModel | None = None,
                 host_op_s: float | None = None, stragglers: StragglerSpec | None = None,
                 straggler_step: int = 0, session: EngineSession | None = None,
                 trace: bool = True) -> None:
        self.scenario = scenario
        self.fidelity = fidelity
        self.session = session = session if session is not None else EngineSession()
        self.program: StepProgram = program_for(scenario, with_actions=fidelity == "des",
                                                session=session)
        self.costs = costs if costs is not None else ScenarioCostProvider(
            scenario, fidelity="analytic" if fidelity == "analytic" else "flow",
            session=session)
        self.routing = routing if routing is not None else draw_routing(
            scenario, self.program, expected=fidelity == "analytic")
        self.include_memory = include_memory
        if host is None:
            host = (host_model(scenario, host_op_s) if costs is None or host_op_s is not None
                    else HostModel(op_s=0.0))
        self.host = host
        self.pricer = Pricer(self.program, self.costs, self.routing, host,
                             trace_args=trace and fidelity == "des")
        self.ops_simulated = 0
        self.stragglers = stragglers if stragglers is not None and stragglers.active else None
        self.straggler_step = straggler_step
        self.straggler_factors: list[float] = []
        self.trace = trace

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
            outcomes = run_des(self.program, self.pricer, plans,
                               trace_cap=TRACE_CAP if self.trace else 0)
        else:
            outcomes = run_analytic(self.program, self.pricer, plans)
        self.ops_simulated = sum(o.ledger.ops for o in outcomes)  # op intervals run
        memory = None
        if self.include_memory:  # the DES's own draws; the analytic run draws them for memory
            raw = self.routing.raw if self.fidelity == "des" else None
            memory = step_memory(self.scenario, getattr(raw, "recv_tokens", None))
        links = step_link_loads(self.program, self.pricer) if self.fidelity == "des" else []
        return build_result(self.scenario, self.program, self.routing, outcomes,
                            fidelity=self.fidelity, memory=memory,
                            sources=dict(self.costs.sources), links=links, detail=self.trace)


def program_for(scenario: ScenarioSpec, *, with_actions: bool = True,
                session: EngineSession | None = None) -> StepProgram:
    """``build_program(scenario)``, memoized by value in ``session``: the program depends only
    on the model, the layout, the workload and the device count, so sweep points that vary
    anything else (fabric, routing load, calibration) share it. Programs are immutable."""
    if session is None:
        return build_program(scenario, with_actions=with_actions)
    key = (scenario.model_spec, scenario.parallelism, scenario.workload, scenario.devices,
           with_actions)
    return session.programs.get_or_make(
        key, lambda: build_program(scenario, with_actions=with_actions))


def simulate(scenario: ScenarioSpec, *, fidelity: Fidelity = "des",
             session: EngineSession | None = None) -> SimulationResult:
    """Shorthand: ``Simulation(scenario, fidelity=fidelity, session=session).run()``."""
    return Simulation(scenario, fidelity=fidelity, session=session).run()


def step_memory(scenario: ScenarioSpec, recv_tokens: np.ndarray | None = None) -> MemoryReport:
    """Peak memory per rank class with the routing load the DES step runs: its seeded
    per-micro-batch draws (``recv_tokens`` [L, M, EP] when the caller has them), or balanced
    routing where the scenario's load is balanced and dropless (the draws' expectation, and
    what they give). ``moesim memory`` and ``moesim run`` at either fidelity call this, so one
    scenario has one fit verdict; ``routing_load`` says which load it assumed."""
    moe = scenario.model_spec.is_moe and scenario.parallelism.expert_parallel_degree > 1
    if recv_tokens is None and moe and not closed_form_applies(scenario):
        recv_tokens = draw_step_routing(scenario).recv_tokens
    report = estimate_memory(scenario, recv_tokens=recv_tokens if moe else None)
    if moe and recv_tokens is not None and not closed_form_applies(scenario):
        r = scenario.routing
        load = (f"the step's routing draws ({r.load.kind} load, {recv_tokens.shape[1]} "
                f"micro-batches, seed {scenario.seed}; the hottest EP rank)")
    else:
        load = "balanced routing (every EP rank gets the mean)"
    return report.model_copy(update={"routing_load": load})
