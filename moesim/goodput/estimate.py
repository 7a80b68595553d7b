"""Goodput of a whole training run: failures, checkpoints and stragglers over the ideal step.

``estimate_goodput`` takes the ideal (failure-free) throughput a simulation gave and returns
the expected wall time (Daly's closed form), its Monte Carlo distribution (mean, p50, p90),
the checkpoint interval (Young, Daly, optionally the simulated best), the loss per failure,
and the cost and energy of the ideal and the expected run. Stragglers stretch the compute
part of each step by the expected slowest of the job's devices
(:func:`moesim.engine.stragglers.expected_max`) before failures are priced.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from moesim.engine.stragglers import expected_max
from moesim.errors import InfeasibleError
from moesim.goodput import daly
from moesim.goodput.checkpoint import CheckpointCost, checkpoint_cost
from moesim.goodput.montecarlo import simulate_walls, simulated_best_interval
from moesim.specs.goodput import GoodputSpec
from moesim.specs.scenario import ScenarioSpec

DAY_S = 86400.0
# A run that expects more restarts than this never finishes in practice (and its numbers
# overflow): it is reported as infeasible, with the rates that make it so.
MAX_EXPECTED_FAILURES = 1e9
HOUR_S = 3600.0
MWH_J = 3.6e9  # joules in one megawatt-hour


@dataclass(frozen=True)
class GoodputResult:
    """One run's expected and simulated time, cost and energy (seconds, USD, MWh)."""

    devices: int
    tokens: float
    ideal_tokens_per_s: float
    ideal_s: float  # tokens / ideal throughput
    straggler_factor: float  # solve time over ideal time
    solve_s: float  # failure-free time with stragglers
    mtbf_s: float  # the job's mean time between interruptions
    interruptions_per_day: float
    interruptions_per_day_by_kind: dict[str, float]
    checkpoint: CheckpointCost
    recovery_s: float  # detect + restart + reload, per interruption
    interval_young_s: float
    interval_daly_s: float
    interval_s: float  # the interval priced
    lost_work_per_failure_s: float
    restart_per_failure_s: float
    expected_failures: float
    expected_wall_s: float  # Daly's closed form
    mc_mean_s: float
    mc_sem_s: float
    p50_s: float
    p90_s: float
    runs: int
    seed: int
    price_per_device_hour: float | None = None
    it_power_per_device_w: float | None = None
    device_tdp_w: float | None = None  # the accelerator alone (its board power)
    pue: float = 1.0
    interval_simulated_s: float | None = None
    simulated_curve: list[tuple[float, float]] = field(default_factory=list)

    @property
    def efficiency(self) -> float:
        """Ideal time over expected wall time (stragglers and failures together)."""
        return self.ideal_s / self.expected_wall_s if self.expected_wall_s > 0 else 1.0

    @property
    def goodput_tokens_per_s(self) -> float:
        return self.tokens / self.expected_wall_s if self.expected_wall_s > 0 else 0.0

    def days(self, seconds: float) -> float:
        return seconds / DAY_S

    def cost_usd(self, seconds: float) -> float | None:
        if self.price_per_device_hour is None:
            return None
        return self.devices * self.price_per_device_hour * seconds / HOUR_S

    def energy_mwh(self, seconds: float) -> float | None:
        """Facility energy: devices x IT watts per device x PUE x seconds."""
        if self.it_power_per_device_w is None:
            return None
        return self.devices * self.it_power_per_device_w * self.pue * seconds / MWH_J

    def device_energy_mwh(self, seconds: float) -> float | None:
        """The accelerators' own share at their rated board power (no host, no PUE): devices x
        ``device_tdp_w`` x seconds, an upper bound on what the chips draw."""
        if self.device_tdp_w is None:
            return None
        return self.devices * self.device_tdp_w * seconds / MWH_J

    def summary(self) -> dict[str, Any]:
        """The numbers a report or --json shows (days, USD, MWh; seconds where named)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("checkpoint", "simulated_curve")}
        out["checkpoint"] = asdict(self.checkpoint)
        out.update(
            efficiency=self.efficiency, goodput_tokens_per_s=self.goodput_tokens_per_s,
            ideal_days=self.days(self.ideal_s), goodput_days=self.days(self.expected_wall_s),
            p50_days=self.days(self.p50_s), p90_days=self.days(self.p90_s),
            ideal_cost_usd=self.cost_usd(self.ideal_s),
            goodput_cost_usd=self.cost_usd(self.expected_wall_s),
            ideal_energy_mwh=self.energy_mwh(self.ideal_s),
            goodput_energy_mwh=self.energy_mwh(self.expected_wall_s),
            goodput_device_energy_mwh=self.device_energy_mwh(self.expected_wall_s),
            device_hours=self.devices * self.expected_wall_s / HOUR_S)
        return out


_expected_max = functools.lru_cache(maxsize=256)(expected_max)  # specs are frozen, hashable


def straggler_factor(spec: GoodputSpec, devices: int, compute_fraction: float) -> float:
    """How much longer the failure-free run takes: 1 + (E[max of devices] - 1) x compute share."""
    share = min(1.0, max(0.0, compute_fraction))
    return 1.0 + (_expected_max(spec.stragglers, max(1, devices)) - 1.0) * share


def _interval(spec: GoodputSpec, ck: CheckpointCost, mtbf_s: float) -> tuple[float, float, float]:
    young = daly.young_interval_s(ck.blocking_s, mtbf_s)
    best = daly.daly_interval_s(ck.blocking_s, mtbf_s)
    used = spec.checkpoint.interval_s if spec.checkpoint.interval_s is not None else best
    if spec.checkpoint.async_save:
        used = max(used, ck.write_s)  # the next snapshot waits for the last write
    return young, best, used


def estimate_goodput(scenario: ScenarioSpec, spec: GoodputSpec, tokens: float,
                     tokens_per_s: float, *, devices: int | None = None,
                     compute_fraction: float = 1.0, price_per_device_hour: float | None = None,
                     simulate_interval: bool = False) -> GoodputResult:
    """Expected and simulated wall time of training ``tokens`` at an ideal ``tokens_per_s``."""
    if tokens <= 0 or tokens_per_s <= 0:
        raise ValueError(f"tokens={tokens:g} and tokens_per_s={tokens_per_s:g} must be > 0")
    n = devices or scenario.devices
    per_host = spec.host.devices_per_host
    ideal = tokens / tokens_per_s
    factor = straggler_factor(spec, n, compute_fraction)
    solve = ideal * factor
    rate = spec.reliability.failures_per_s(n, per_host)
    mtbf = 1.0 / rate if rate > 0 else math.inf
    ck = checkpoint_cost(scenario, spec.checkpoint, n, per_host)
    recovery = spec.reliability.detect_s + spec.reliability.restart_s + ck.reload_s
    young, best, used = _interval(spec, ck, mtbf)
    delta = ck.blocking_s if not math.isinf(mtbf) else 0.0
    _check_progress(n, solve, used, delta, recovery, mtbf)
    seed = spec.seed if spec.seed is not None else scenario.seed
    walls = simulate_walls(solve, used, delta, recovery, mtbf, spec.monte_carlo_runs, seed)
    simulated, curve = None, []
    if simulate_interval and not math.isinf(mtbf):
        simulated, curve = simulated_best_interval(solve, best, delta, recovery, mtbf,
                                                   max(200, spec.monte_carlo_runs // 4), seed)
    by_kind = {k: v * DAY_S for k, v in spec.reliability.rate_by_kind(n, per_host).items()}
    return GoodputResult(
        devices=n, tokens=tokens, ideal_tokens_per_s=tokens_per_s, ideal_s=ideal,
        straggler_factor=factor, solve_s=solve, mtbf_s=mtbf, interruptions_per_day=rate * DAY_S,
        interruptions_per_day_by_kind=by_kind, checkpoint=ck, recovery_s=recovery,
        interval_young_s=young, interval_daly_s=best, interval_s=used,
        lost_work_per_failure_s=daly.lost_work_per_failure_s(used, delta, mtbf),
        restart_per_failure_s=daly.restart_per_failure_s(recovery, mtbf),
        expected_failures=daly.expected_failures(solve, used, delta, recovery, mtbf),
        expected_wall_s=daly.expected_wall_s(solve, used, delta, recovery, mtbf),
        mc_mean_s=float(walls.mean()), mc_sem_s=float(walls.std(ddof=1) / math.sqrt(len(walls))),
        p50_s=float(np.percentile(walls, 50)), p90_s=float(np.percentile(walls, 90)),
        runs=len(walls), seed=seed, price_per_device_hour=price_per_device_hour,
        it_power_per_device_w=spec.host.it_power_per_device_w,
        device_tdp_w=spec.host.device_tdp_w, pue=spec.pue,
        interval_simulated_s=simulated, simulated_curve=curve)


def _check_progress(devices: int, solve: float, interval: float, delta: float, recovery: float,
                    mtbf: float) -> None:
    if math.isinf(mtbf):
        return
    exponent = (min(interval, solve) + delta + recovery) / mtbf
    failures = (math.inf if exponent > 700 else
                daly.expected_failures(solve, interval, delta, recovery, mtbf))
    if not failures <= MAX_EXPECTED_FAILURES:
        raise InfeasibleError(
            f"on {devices:,} devices the job is interrupted every {mtbf:.3g} s on average but "
            f"needs {recovery:.3g} s to recover and {min(interval, solve) + delta:.3g} s between "
            f"checkpoints: it would restart about {failures:.3g} times; lower the failure "
            "rates, shorten the restart or use fewer devices", reason="goodput")


def steady_efficiency(scenario: ScenarioSpec, spec: GoodputSpec, devices: int,
                      compute_fraction: float = 1.0) -> float:
    """Useful work over wall time of a long run on ``devices`` (no tokens needed): Daly's
    segment ratio at the interval priced, over the straggler factor."""
    rate = spec.reliability.failures_per_s(devices, spec.host.devices_per_host)
    factor = straggler_factor(spec, devices, compute_fraction)
    if rate <= 0:
        return 1.0 / factor
    mtbf = 1.0 / rate
    ck = checkpoint_cost(scenario, spec.checkpoint, devices, spec.host.devices_per_host)
    recovery = spec.reliability.detect_s + spec.reliability.restart_s + ck.reload_s
    _, _, used = _interval(spec, ck, mtbf)
    if (used + ck.blocking_s + recovery) / mtbf > 700:  # no progress at all
        return 0.0
    return daly.steady_efficiency(used, ck.blocking_s, recovery, mtbf) / factor
