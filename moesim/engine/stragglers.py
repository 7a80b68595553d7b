"""Stragglers: per-rank compute slowdowns, and the slowest of the ranks a synchronous step waits for.

Each rank's compute time in a step is multiplied by X = exp(sigma Z) (1 + B S), with
Z ~ N(0, 1), B ~ Bernoulli(p) and S ~ Exponential(mean s) (``StragglerSpec``). Ranks of one
pipeline stage meet in every tensor-, expert- and data-parallel collective, so a stage runs at
the pace of its slowest rank: its compute is scaled by max_i X_i over its ranks.

* Closed form (analytic fidelity, goodput): E[max of n] = integral_0^inf 1 - F(x)^n dx with
  F the exact CDF of X; for sigma > 0 the straggler part of F is a Gauss-Laguerre sum over S.
* DES: one draw of every rank's X per step from a named stream of the scenario seed, the
  stage factor the maximum over its ranks.

The engine change is a post-pricing one and off by default: ``Simulation(stragglers=...)``
scales the compute steps of each stage's priced chunk plans by its factor before the event
loop (or the closed form) runs them. Communication is not slowed; the extra time shows up as
load imbalance in the breakdown.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from moesim.engine.timeline import ChunkPlan, PhasePlan, Step
from moesim.specs.goodput import StragglerSpec

# First spawn-key word of the straggler stream ("strg"), apart from the routing streams.
STRAGGLER_STREAM = 0x73747267
_LAGUERRE_NODES = 48
_GRID = 6001
_ERFC = np.frompyfunc(math.erfc, 1, 1)
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def _normal_survival(z: np.ndarray) -> np.ndarray:
    """P(Z > z) for a standard normal, elementwise."""
    return 0.5 * np.asarray(_ERFC(np.asarray(z, dtype=np.float64) / math.sqrt(2.0)),
                            dtype=np.float64)


def survival(spec: StragglerSpec, x: np.ndarray) -> np.ndarray:
    """P(X > x) of one rank's slowdown factor, elementwise over ``x`` (> 0)."""
    x = np.asarray(x, dtype=np.float64)
    sigma, p, s = spec.jitter_sigma, spec.straggler_probability, spec.straggler_slowdown
    if sigma == 0.0:
        base = (x < 1.0).astype(np.float64)
        strag = base if s == 0.0 else np.where(x < 1.0, 1.0, np.exp(-(x - 1.0) / s))
        return (1.0 - p) * base + p * strag
    logx = np.log(np.maximum(x, 1e-300))
    base = _normal_survival(logx / sigma)
    if p == 0.0 or s == 0.0:
        return base
    t, w = np.polynomial.laguerre.laggauss(_LAGUERRE_NODES)  # integral e^-t f(t) dt
    shifts = np.log1p(s * t)  # ln(1 + S) at the nodes
    strag = (w[None, :] * _normal_survival((logx[:, None] - shifts[None, :]) / sigma)).sum(axis=1)
    return (1.0 - p) * base + p * strag


def _upper(spec: StragglerSpec, n: int) -> float:
    """A point past which n * P(X > x) is negligible (< 1e-12)."""
    sigma, p, s = spec.jitter_sigma, spec.straggler_probability, spec.straggler_slowdown
    jitter = math.exp(sigma * (8.0 + math.sqrt(2.0 * math.log(max(n, 2)))))
    tail = 1.0 + (s * (math.log(max(n * p, 1.0)) + 28.0) if p > 0 and s > 0 else 0.0)
    return jitter * tail


def expected_max(spec: StragglerSpec, n: int) -> float:
    """E[max of n iid slowdown factors]: 1 when the spec is off; grows with n."""
    if n < 1:
        raise ValueError(f"expected_max needs n >= 1 ranks, got {n}")
    if not spec.active:
        return 1.0
    if spec.jitter_sigma == 0.0:  # X = 1 + B S: E[max] = 1 + integral of P(max B S > u)
        p, s = spec.straggler_probability, spec.straggler_slowdown
        u = np.linspace(0.0, s * (math.log(max(n * p, 1.0)) + 28.0), _GRID)
        hit = np.minimum(p * np.exp(-u / s), 1.0 - 1e-16)  # P(one rank > 1 + u)
        tail = -np.expm1(n * np.log1p(-hit))
        return 1.0 + float(_trapezoid(tail, u))
    hi = _upper(spec, n)
    x = np.linspace(0.0, hi, _GRID)
    surv = np.clip(survival(spec, x), 0.0, 1.0)
    below = -np.expm1(n * np.log1p(-np.minimum(surv, 1.0 - 1e-16)))  # 1 - F(x)^n
    below = np.where(surv >= 1.0 - 1e-16, 1.0, below)
    return float(_trapezoid(below, x))


def stream(seed: int, step: int) -> np.random.Generator:
    """The generator of one step's straggler draws (no global RNG)."""
    ss = np.random.SeedSequence(seed, spawn_key=(STRAGGLER_STREAM, step))
    return np.random.Generator(np.random.PCG64(ss))


def draw(spec: StragglerSpec, n: int, rng: np.random.Generator, size: int = 1) -> np.ndarray:
    """``size`` draws of n ranks' factors: an array [size, n]."""
    x = np.ones((size, n))
    if spec.jitter_sigma > 0:
        x *= np.exp(spec.jitter_sigma * rng.standard_normal((size, n)))
    if spec.straggler_probability > 0 and spec.straggler_slowdown > 0:
        hit = rng.random((size, n)) < spec.straggler_probability
        x *= 1.0 + hit * rng.exponential(spec.straggler_slowdown, (size, n))
    return x


def draw_max(spec: StragglerSpec, n: int, rng: np.random.Generator, size: int = 1) -> np.ndarray:
    """``size`` draws of the slowest of n ranks (in chunks, so memory stays bounded)."""
    out = np.empty(size)
    chunk = max(1, 4_000_000 // max(n, 1))
    for i in range(0, size, chunk):
        k = min(chunk, size - i)
        out[i:i + k] = draw(spec, n, rng, k).max(axis=1)
    return out


def stage_factors(spec: StragglerSpec, num_stages: int, ranks_per_stage: int, *,
                  expected: bool, seed: int = 0, step: int = 0) -> list[float]:
    """Each stage's compute factor: the closed-form expectation, or one seeded draw."""
    if expected:
        return [expected_max(spec, ranks_per_stage)] * num_stages
    rng = stream(seed, step)
    return [float(v) for v in draw(spec, ranks_per_stage, rng, num_stages).max(axis=1)]


def _scale_step(s: Step, f: float) -> Step:
    if not s.compute or f == 1.0:
        return s
    busy = s.slow if s.exposed is None else s.slow - s.exposed  # the compute part
    return replace(s, slow=s.slow + (f - 1.0) * busy)


def _scale_phase(p: PhasePlan, f: float) -> PhasePlan:
    return PhasePlan(steps=[_scale_step(s, f) for s in p.steps], buckets=list(p.buckets))


def scale_plans(plans: dict[tuple[int, int], ChunkPlan],
                factors: list[float]) -> dict[tuple[int, int], ChunkPlan]:
    """The priced chunk plans with every compute step of stage i slowed by ``factors[i]``."""
    out = {}
    for (stage, chunk), plan in plans.items():
        f = factors[stage]
        out[(stage, chunk)] = replace(
            plan, forward=_scale_phase(plan.forward, f), backward=_scale_phase(plan.backward, f),
            backward_input=_scale_phase(plan.backward_input, f),
            backward_weight=_scale_phase(plan.backward_weight, f))
    return out
