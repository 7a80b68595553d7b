"""How many devices: the smallest cluster (and its best layout) that trains T tokens in D days.

Candidate sizes are multiples of the scale-up domain up to the topology's size. Each size
asked is one layout search (``plan_layouts``). The sizes are searched by doubling from one
domain until a size is fast enough, then by bisection between the last too-slow and the
first fast-enough size; this assumes the best throughput does not drop as devices are
added, which holds while the global batch still divides (a size where no layout is valid
counts as too slow). The sizes visited are returned so a caller can see the path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from moesim.errors import InfeasibleError, SpecError
from moesim.plan.evaluate import Backend
from moesim.plan.executors import Executor
from moesim.plan.layouts import SearchSpaceSpec
from moesim.plan.search import HOUR_S, PlanResult, plan_layouts
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


def plan_capacity(scenario: ScenarioSpec, tokens: float, days: float, *,
                  price_per_device_hour: float | None = None, backend: Backend | None = None,
                  space: SearchSpaceSpec | None = None, des_top: int = 1,
                  executor_factory: Callable[[], Executor] | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> CapacityResult:
    """The smallest device count whose best layout trains ``tokens`` within ``days``;
    ``progress(phase, done, total)`` hears of each size's search (a progress bar)."""
    rate = required_rate(tokens, days)
    price = (price_per_device_hour if price_per_device_hour is not None
             else scenario.topology_spec.price_per_device_hour)
    res = CapacityResult(tokens=tokens, days=days, required_tokens_per_s=rate,
                         price_per_device_hour=price)
    plans: dict[int, PlanResult] = {}

    def fast(n: int) -> bool:
        ex = executor_factory() if executor_factory else None
        def say(phase: str, done: int, total: int) -> None:
            if progress is not None:
                progress(f"{n:,} devices: {phase}", done, total)

        p = plan_layouts(scenario, n, des_top=des_top, backend=backend, space=space,
                         executor=ex, price_per_device_hour=price, progress=say)
        plans[n] = p
        res.visited[n] = p.best.tokens_per_s if p.best else 0.0
        return res.visited[n] >= rate

    sizes = candidate_sizes(scenario)
    idx = smallest_fast_enough(sizes, fast)
    if idx is None:
        best = max(res.visited.values(), default=0.0)
        raise InfeasibleError(
            f"no size up to {sizes[-1] if sizes else 0:,} devices trains {eng(tokens, 'tokens')} in "
            f"{days:g} days: that needs {eng(rate, 'tokens/s')}, the best found is "
            f"{eng(best, 'tokens/s')}; "
            "allow more days or a larger topology", reason="capacity")
    n = sizes[idx]
    res.devices, res.plan = n, plans[n]
    best_rate = plans[n].best.tokens_per_s if plans[n].best else 0.0
    seconds = tokens / best_rate
    res.train_days = seconds / DAY_S
    if price is not None:
        res.cost_usd = n * price * seconds / HOUR_S
    return res
