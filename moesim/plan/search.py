"""Layout search: every valid layout on N devices, pruned by memory, ranked, best few simulated.

The funnel, cheapest filter first: spec checks and fabric rules on ``model_copy`` specs;
the memory model; the analytic engine for every layout that fits; the DES for the top
``des_top``. Each dropped layout is counted under the reason that dropped it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from moesim.constants import DEFAULT_ANALYTIC_BUDGET  # analytic evaluations by default
from moesim.errors import InfeasibleError, SpecError, require_pandas
from moesim.goodput import steady_efficiency
from moesim.plan.evaluate import Backend, MemoryVerdict, Metrics
from moesim.plan.executors import Executor, LocalExecutor, SerialExecutor
from moesim.plan.explore import explore
from moesim.plan.layouts import (
    Layout,
    SearchSpaceSpec,
    from_parallelism,
    structures,
    with_layout,
    with_shipped,
)
from moesim.plan.screen import (
    REASON_MEMORY,
    Fitting,
    ScreenTask,
    groups,
    run_screen,
)
from moesim.specs.goodput import GoodputSpec
from moesim.specs.overrides import scenario_with_sets
from moesim.specs.scenario import ScenarioSpec
from moesim.units import S

Objective = Literal["throughput", "cost"]
HOUR_S = 3600.0 * S  # seconds in an hour, for USD per device-hour prices

MILLION = 1e6  # tokens per "million tokens" in USD-per-million-token prices
REASON_BUDGET = "fits, not ranked: over the analytic budget"


@dataclass
class Candidate:
    """A layout that fits, with its analytic numbers and (for the best few) DES numbers."""

    layout: Layout
    memory: MemoryVerdict
    analytic: Metrics
    des: Metrics | None = None
    des_error: str = ""
    goodput_efficiency: float | None = None  # long-run useful fraction (failures, stragglers)

    @property
    def metrics(self) -> Metrics:
        """The best-fidelity numbers available (DES where simulated)."""
        return self.des if self.des is not None else self.analytic

    @property
    def fidelity(self) -> str:
        return "des" if self.des is not None else "analytic"

    @property
    def tokens_per_s(self) -> float:
        return float(self.metrics.get("tokens_per_s") or 0.0)

    @property
    def goodput_tokens_per_s(self) -> float | None:
        """Tokens/s over a long run after failures, checkpoints and stragglers."""
        if self.goodput_efficiency is None:
            return None
        return self.tokens_per_s * self.goodput_efficiency


@dataclass
class PlanResult:
    """The outcome of one search on ``devices`` devices."""

    scenario: str
    devices: int
    objective: Objective
    considered: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    ranked: list[Candidate] = field(default_factory=list)
    price_per_device_hour: float | None = None
    fitting: int = 0  # layouts that passed the memory screen (ranked or over the budget)
    memory_calls: int = 0  # estimate_memory calls the screening made
    phase_s: dict[str, float] = field(default_factory=dict)  # wall seconds per phase
    goodput: GoodputSpec | None = None  # the goodput the candidates' efficiencies price

    def top(self, k: int) -> list[Candidate]:
        return self.ranked[:k]

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    def to_dataframe(self) -> Any:
        """Every ranked layout as a pandas DataFrame, best first (the columns of
        :func:`summary_rows`). Needs pandas."""
        pd = require_pandas("PlanResult.to_dataframe()")
        return pd.DataFrame(summary_rows(self, len(self.ranked)))

    def usd_per_million_tokens(self, c: Candidate, goodput: bool = False) -> float | None:
        """Device-hours per token x price, scaled to one million tokens (USD); at the goodput
        rate with ``goodput`` (None when the candidate has none)."""
        rate = c.goodput_tokens_per_s if goodput else c.tokens_per_s
        if self.price_per_device_hour is None or not rate or rate <= 0:
            return None
        return self.devices * self.price_per_device_hour / HOUR_S / rate * MILLION


@dataclass(frozen=True)
class ChunkTask:
    """Layouts of one base scenario to simulate at one fidelity (picklable, for executors)."""

    backend: Backend
    base: ScenarioSpec
    layouts: tuple[Layout, ...]
    fidelity: str


def run_chunk(task: ChunkTask) -> list[Metrics | str]:
    """Metrics per layout, or the reason it was excluded (a string)."""
    out: list[Metrics | str] = []
    for lay in task.layouts:
        try:
            m = task.backend.simulate(with_layout(task.base, lay), task.fidelity)
        except SpecError as exc:
            out.append(f"invalid: {exc.field or 'spec'}")
            continue
        except InfeasibleError as exc:
            out.append(REASON_MEMORY if exc.reason == "memory" else f"infeasible: {exc.reason}")
            continue
        out.append(REASON_MEMORY if m.get("fits_memory") is False else m)
    return out


def _chunks(base: ScenarioSpec, fitting: Fitting, backend: Backend, fidelity: str,
            size: int) -> list[ChunkTask]:
    return [ChunkTask(backend, base, tuple(lay for lay, _ in fitting[i:i + size]), fidelity)
            for i in range(0, len(fitting), size)]


def sized(scenario: ScenarioSpec, devices: int) -> ScenarioSpec:
    """The scenario on the first ``devices`` devices of its topology."""
    total = scenario.topology_spec.num_devices
    if devices < 1 or devices > total:
        raise SpecError(f"--devices {devices}: the topology {scenario.topology_spec.name!r} has "
                        f"{total} devices; valid: 1 to {total}", field="num_devices")
    return scenario.model_copy(update={"num_devices": devices})


def plan(scenario: ScenarioSpec | str | Path, devices: int | None = None, *,
         objective: Objective = "throughput", des_top: int = 3,
         analytic_budget: int = DEFAULT_ANALYTIC_BUDGET, workers: int = 1,
         sets: Mapping[str, Any] | Iterable[str] | None = None,
         progress: Progress | None = None) -> PlanResult:
    """Search every layout of ``scenario`` (a spec or a YAML path; ``sets`` applied as
    ``--set`` either way) on ``devices`` devices (default: the scenario's); ``moesim.plan(...)``.

    Layouts are screened by the memory model, ranked with the analytic engine (at most
    ``analytic_budget`` of them), and the best ``des_top`` simulated with the DES.
    ``result.ranked`` is best first; ``result.excluded`` counts why the rest were dropped;
    ``result.to_dataframe()`` tabulates the ranked layouts. ``workers`` > 1 runs on a
    process pool; ``progress(phase, done, total)`` hears of each phase's headway."""
    spec = scenario_with_sets(scenario, sets)
    return plan_layouts(spec, devices or spec.devices, objective=objective, des_top=des_top,
                        analytic_budget=analytic_budget,
                        executor=LocalExecutor(workers) if workers > 1 else None,
                        progress=progress)


def plan_layouts(scenario: ScenarioSpec, devices: int, *, objective: Objective = "throughput",
                 des_top: int = 3, backend: Backend | None = None,
                 space: SearchSpaceSpec | None = None, executor: Executor | None = None,
                 price_per_device_hour: float | None = None,
                 analytic_budget: int = DEFAULT_ANALYTIC_BUDGET,
                 goodput: GoodputSpec | None = None,
                 progress: Progress | None = None) -> PlanResult:
    """Search every layout of ``scenario`` on ``devices`` devices; ranked best first.

    With a fixed device count, cost per token is device count x price / throughput, so both
    objectives give the same order; 'cost' changes what tables and the Pareto page show.
    The analytic and DES phases run on ``executor`` (default: in this process); at most
    ``analytic_budget`` fitting layouts get an analytic evaluation (``explore`` picks them).
    ``progress(phase, done, total)`` hears of each phase's headway (a command's progress bar).
    With ``goodput`` every ranked layout also gets its long-run goodput efficiency (the order
    stays the ideal one).
    """
    say = progress or _silent
    backend = backend or Backend()
    space = space or SearchSpaceSpec()
    base = sized(scenario, devices)
    price = (price_per_device_hour if price_per_device_hour is not None
             else scenario.topology_spec.price_per_device_hour)
    res = PlanResult(scenario=scenario.name, devices=devices, objective=objective,
                     price_per_device_hour=price)
    ex = executor or SerialExecutor()
    try:
        t0 = time.perf_counter()
        fitting = _screen(base, space, backend, ex, res, say)
        t1 = time.perf_counter()
        _rank_analytic(base, fitting, backend, ex, res, analytic_budget, say)
        t2 = time.perf_counter()
        n_des = min(des_top, len(res.ranked))
        say("simulating the best layouts (DES)", 0, n_des)
        _refine_with_des(base, res, des_top, backend, ex)
        say("simulating the best layouts (DES)", n_des, n_des)
        res.phase_s = {"screen": t1 - t0, "analytic": t2 - t1,
                       "des": time.perf_counter() - t2}
    finally:
        ex.close()
    if goodput is not None:
        _price_goodput(base, res, goodput)
    return res


def _price_goodput(base: ScenarioSpec, res: PlanResult, goodput: GoodputSpec) -> None:
    res.goodput = goodput
    for c in res.ranked:
        m = c.metrics
        step, comp = m.get("step_time_s"), m.get("compute_s")
        share = min(1.0, float(comp) / float(step)) if step and comp is not None else 1.0
        c.goodput_efficiency = steady_efficiency(with_layout(base, c.layout), goodput,
                                                 res.devices, share)


def _screen(base: ScenarioSpec, space: SearchSpaceSpec, backend: Backend, ex: Executor,
            res: PlanResult, say: Progress) -> Fitting:
    todo = groups(with_shipped(base, list(structures(base, space))))
    # Dealt round-robin: neighbouring structures cost alike, so slices would load one
    # worker with the expensive corner of the lattice.
    n = max(1, min(len(todo), 8 * _workers(ex) if _workers(ex) > 1 else 1))
    tasks = [ScreenTask(backend, base, space, tuple(todo[i::n])) for i in range(n)]
    fitting: Fitting = []
    say("screening layouts for memory", 0, len(tasks))
    for done, (considered, fit, excluded, calls) in enumerate(ex.run(run_screen, tasks), 1):
        say("screening layouts for memory", done, len(tasks))
        res.considered += considered
        res.excluded.update(excluded)
        res.memory_calls += calls
        fitting += fit
    fitting.sort(key=lambda lv: lv[0].label)  # completion order must not matter
    res.fitting = len(fitting)
    return fitting


def _rank_analytic(base: ScenarioSpec, fitting: Fitting, backend: Backend, ex: Executor,
                   res: PlanResult, budget: int, say: Progress) -> None:
    verdicts = {lay: v for lay, v in fitting}
    metrics: dict[Layout, Metrics] = {}
    total, scored = min(budget, len(fitting)), 0
    say("ranking layouts (analytic)", 0, total)

    def score(layouts: list[Layout]) -> dict[Layout, float | None]:
        size = max(1, min(64, len(layouts) // (4 * _workers(ex)) or 1))
        chunk_in = [(lay, verdicts[lay]) for lay in layouts]
        out: dict[Layout, float | None] = {}
        for task, outs in zip_results(ex, _chunks(base, chunk_in, backend, "analytic", size)):
            for lay, o in zip(task.layouts, outs, strict=True):
                if isinstance(o, str):
                    res.excluded[o] += 1
                    out[lay] = None
                else:
                    metrics[lay] = o
                    out[lay] = float(o.get("tokens_per_s") or 0.0)
        nonlocal scored
        scored += len(layouts)
        say("ranking layouts (analytic)", min(scored, total), total)
        return out

    seen = explore([lay for lay, _ in fitting], budget, score,
                   first=shipped_candidates(base, [lay for lay, _ in fitting]))
    if len(fitting) > len(seen):
        res.excluded[REASON_BUDGET] += len(fitting) - len(seen)
    res.ranked = [Candidate(lay, verdicts[lay], m) for lay, m in metrics.items()]
    res.ranked.sort(key=_analytic_key)


def shipped_candidates(base: ScenarioSpec, fitting: list[Layout]) -> list[Layout]:
    """The fitting layouts closest to the scenario's own layout, so a search always
    evaluates it: the same degrees, micro-batch and ZeRO setting, with the least
    recomputation that fits (which is never slower), its all-to-all algorithm if kept."""
    own = from_parallelism(base.parallelism)
    same = [lay for lay in fitting
            if replace(lay, recompute=own.recompute, all_to_all=own.all_to_all) == own]
    exact = [lay for lay in same if lay.all_to_all == own.all_to_all]
    return (exact or same)[:1]


Progress = Callable[[str, int, int], None]


def _silent(_phase: str, _done: int, _total: int) -> None:
    pass


def _workers(ex: Executor) -> int:
    return int(getattr(ex, "workers", 1))


def zip_results(ex: Executor, tasks: list[ChunkTask]) -> list[tuple[ChunkTask, Any]]:
    """Run chunks on ``ex``; pairs each result with its task (results arrive in any order)."""
    indexed = [_Indexed(i, t) for i, t in enumerate(tasks)]
    got = dict(ex.run(_run_indexed, indexed))
    return [(t, got[i]) for i, t in enumerate(tasks)]


@dataclass(frozen=True)
class _Indexed:
    index: int
    task: ChunkTask


def _run_indexed(item: _Indexed) -> tuple[int, list[Metrics | str]]:
    return item.index, run_chunk(item.task)


def _analytic_key(c: Candidate) -> tuple[float, str]:
    # Highest throughput first; the label breaks ties so the order is deterministic.
    return (-float(c.analytic.get("tokens_per_s") or 0.0), c.layout.label)


def _refine_with_des(base: ScenarioSpec, res: PlanResult, des_top: int, backend: Backend,
                     ex: Executor) -> None:
    """Simulate the analytic top ``des_top`` with the DES and reorder them by its numbers."""
    head = res.ranked[:des_top]
    tasks = [ChunkTask(backend, base, (c.layout,), "des") for c in head]
    for c, (_task, outs) in zip(head, zip_results(ex, tasks), strict=True):
        if isinstance(outs[0], str):
            c.des_error = outs[0]
        else:
            c.des = outs[0]
    ok = sorted((c for c in head if c.des is not None),
                key=lambda c: (-c.tokens_per_s, c.layout.label))
    res.ranked = ok + [c for c in head if c.des is None] + res.ranked[des_top:]


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (both maximized)."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front: list[int] = []
    best_y = float("-inf")
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return front


def summary_rows(res: PlanResult, k: int) -> list[dict[str, Any]]:
    """The top ``k`` as plain rows (for tables and JSON)."""
    rows = []
    for rank, c in enumerate(res.top(k), start=1):
        m = c.metrics
        rows.append({"rank": rank, "layout": c.layout.label, "fidelity": c.fidelity,
                     **c.layout.degrees(),
                     "tokens_per_s": m.get("tokens_per_s"), "step_time_s": m.get("step_time_s"),
                     "mfu": m.get("mfu"), "peak_bytes": c.memory.peak_bytes,
                     "headroom_bytes": c.memory.headroom_bytes,
                     "usd_per_million_tokens": res.usd_per_million_tokens(c),
                     "goodput_tokens_per_s": c.goodput_tokens_per_s,
                     "goodput_efficiency": c.goodput_efficiency,
                     "goodput_usd_per_million_tokens": res.usd_per_million_tokens(c, True),
                     "des_error": c.des_error})
    return rows
