"""How many devices: the smallest cluster (and its best layout) that trains T tokens in D days.

Candidate sizes are multiples of the scale-up domain up to the topology's size. Each size
asked is one layout search (``plan_layouts``). The sizes are searched by doubling from one
domain until a size is fast enough, then by bisection between the last too-slow and the
first fast-enough size; this assumes the best throughput does not drop as devices are
added, which holds while the global batch still divides (a size where no layout is valid
counts as too slow). The sizes visited are returned so a caller can see the path.

With a ``GoodputSpec`` a size is fast enough when its expected wall time (failures, checkpoints
and stragglers, :mod:`moesim.goodput`) fits in the days, not its ideal rate; the ideal time is
kept beside it. ``devices`` asks about one size only, and ``keep_layout`` prices the
scenario's own layout instead of searching (one DES run per size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from moesim.errors import InfeasibleError, SpecError
from moesim.goodput import GoodputResult, estimate_goodput
from moesim.plan.evaluate import Backend, Metrics
from moesim.plan.executors import Executor
from moesim.plan.layouts import SearchSpaceSpec, from_parallelism
from moesim.plan.search import HOUR_S, Candidate, PlanResult, plan_layouts, sized
from moesim.specs.goodput import GoodputSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.units import S, eng

DAY_S = 86400.0 * S  # seconds in a day


@dataclass
class CapacityResult:
    """The answer: device count, its best plan, the time and the price to train the tokens."""

    tokens: float
    days: float
    required_tokens_per_s: float
    devices: int | None = None
    plan: PlanResult | None = None
    train_days: float | None = None
    cost_usd: float | None = None
    price_per_device_hour: float | None = None
    visited: dict[int, float] = field(default_factory=dict)  # size -> best tokens/s
    ideal_days: float | None = None
    ideal_cost_usd: float | None = None
    goodput: GoodputResult | None = None  # the answer's goodput (None: ideal only)
    visited_goodput: dict[int, GoodputResult] = field(default_factory=dict)

    @property
    def energy_mwh(self) -> float | None:
        return self.goodput.energy_mwh(self.goodput.expected_wall_s) if self.goodput else None


def candidate_sizes(scenario: ScenarioSpec) -> list[int]:
    """Multiples of the scale-up domain size, up to the topology's device count."""
    topo = scenario.topology_spec
    domain, total = topo.devices_per_domain, topo.num_devices
    return [k * domain for k in range(1, total // domain + 1)]


def required_rate(tokens: float, days: float) -> float:
    """Tokens per second that train ``tokens`` tokens in ``days`` days."""
    if tokens <= 0 or days <= 0:
        raise SpecError(f"--tokens {tokens:g} and --days {days:g} must both be > 0",
                        field="tokens")
    return tokens / (days * DAY_S)


def smallest_fast_enough(sizes: list[int], fast: Callable[[int], bool]) -> int | None:
    """Index of the first size for which ``fast`` holds: doubling, then bisection."""
    if not sizes:
        return None
    lo, hi = -1, 0  # sizes[lo] too slow (or none), sizes[hi] the next probe
    while not fast(sizes[hi]):
        if hi == len(sizes) - 1:
            return None
        lo, hi = hi, min(len(sizes) - 1, 2 * hi + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fast(sizes[mid]):
            hi = mid
        else:
            lo = mid
    return hi


def compute_fraction(metrics: Metrics) -> float:
    """The critical rank's compute share of the step (1 when the metrics do not say)."""
    step, comp = metrics.get("step_time_s"), metrics.get("compute_s")
    if not step or comp is None:
        return 1.0
    return min(1.0, max(0.0, float(comp) / float(step)))


def own_layout_plan(scenario: ScenarioSpec, devices: int, backend: Backend) -> PlanResult:
    """The scenario's own layout on ``devices`` devices, simulated with the DES (no search)."""
    base = sized(scenario, devices)
    res = PlanResult(scenario=scenario.name, devices=devices, objective="throughput",
                     considered=1, fitting=1)
    verdict = backend.check_memory(base)
    if not verdict.fits:
        res.excluded["does not fit in memory"] += 1
        return res
    try:
        metrics = backend.simulate(base, "des")
    except (SpecError, InfeasibleError) as exc:
        res.excluded[f"invalid: {getattr(exc, 'field', None) or 'spec'}"] += 1
        return res
    res.ranked = [Candidate(from_parallelism(base.parallelism), verdict, metrics, des=metrics)]
    return res


def plan_capacity(scenario: ScenarioSpec, tokens: float, days: float, *,
                  price_per_device_hour: float | None = None, backend: Backend | None = None,
                  space: SearchSpaceSpec | None = None, des_top: int = 1,
                  executor_factory: Callable[[], Executor] | None = None,
                  goodput: GoodputSpec | None = None, devices: int | None = None,
                  keep_layout: bool = False,
                  progress: Callable[[str, int, int], None] | None = None) -> CapacityResult:
    """The smallest device count whose best layout trains ``tokens`` within ``days``
    (its expected goodput wall time, with ``goodput``; its ideal rate, without);
    ``progress(phase, done, total)`` hears of each size's search (a progress bar)."""
    rate = required_rate(tokens, days)
    price = (price_per_device_hour if price_per_device_hour is not None
             else scenario.topology_spec.price_per_device_hour)
    res = CapacityResult(tokens=tokens, days=days, required_tokens_per_s=rate,
                         price_per_device_hour=price)
    plans: dict[int, PlanResult] = {}
    backend = backend or Backend()

    def fast(n: int) -> bool:
        def say(phase: str, done: int, total: int) -> None:
            if progress is not None:
                progress(f"{n:,} devices: {phase}", done, total)

        if keep_layout:
            p = own_layout_plan(scenario, n, backend)
        else:
            ex = executor_factory() if executor_factory else None
            p = plan_layouts(scenario, n, des_top=des_top, backend=backend, space=space,
                             executor=ex, price_per_device_hour=price, progress=say)
        plans[n] = p
        res.visited[n] = p.best.tokens_per_s if p.best else 0.0
        if p.best is None or res.visited[n] <= 0:
            return False
        if goodput is None:
            return res.visited[n] >= rate
        try:
            est = estimate_goodput(sized(scenario, n), goodput, tokens, res.visited[n],
                                   devices=n, compute_fraction=compute_fraction(p.best.metrics),
                                   price_per_device_hour=price)
        except InfeasibleError:  # restarts outpace progress on this size
            return False
        res.visited_goodput[n] = est
        return est.expected_wall_s <= days * DAY_S

    sizes = [devices] if devices is not None else candidate_sizes(scenario)
    idx = smallest_fast_enough(sizes, fast)
    if idx is None:
        _too_slow(res, sizes, tokens, days, rate, goodput is not None)
    n = sizes[idx]
    res.devices, res.plan = n, plans[n]
    seconds = tokens / res.visited[n]
    res.ideal_days = seconds / DAY_S
    if price is not None:
        res.ideal_cost_usd = n * price * seconds / HOUR_S
    res.goodput = res.visited_goodput.get(n)
    if res.goodput is not None:
        res.train_days = res.goodput.expected_wall_s / DAY_S
        res.cost_usd = res.goodput.cost_usd(res.goodput.expected_wall_s)
    else:
        res.train_days, res.cost_usd = res.ideal_days, res.ideal_cost_usd
    return res


def _too_slow(res: CapacityResult, sizes: list[int], tokens: float, days: float, rate: float,
              with_goodput: bool) -> None:
    best = max(res.visited.values(), default=0.0)
    if with_goodput and res.visited_goodput:
        fastest = min(g.expected_wall_s for g in res.visited_goodput.values()) / DAY_S
        detail = (f"the fastest size found needs {fastest:.3g} days with failures and "
                  "checkpoints (--ideal prices the failure-free run)")
    else:
        detail = f"that needs {eng(rate, 'tokens/s')}, the best found is {eng(best, 'tokens/s')}"
    top = max(sizes) if sizes else 0
    raise InfeasibleError(
        f"no size up to {top:,} devices trains {eng(tokens, 'tokens')} in {days:g} days: {detail}; "
        "allow more days or a larger topology", reason="capacity")
