"""Monte Carlo of a checkpointed run: the distribution of its wall time, and the simulated
best checkpoint interval.

The model is Daly's (:mod:`moesim.goodput.daly`), drawn rather than averaged: failures are a
Poisson process of mean gap M; a run is floor(T_s / tau) segments of tau + delta seconds and a
remainder segment; a failure inside a segment loses the time since the segment began and
starts a restart of R seconds, which a failure can interrupt too. Per run the failures of n
segments are a negative-binomial count (failures before n successes, success probability
e^(-(tau + delta)/M)), each failure's lost time a truncated exponential on (0, tau + delta),
and likewise for failed restarts on (0, R). So a run costs draws in proportion to its
failures, not its segments; past a thousand losses in one run their sum is drawn from its
normal limit (the truncated exponential's mean and variance). Streams come from one
SeedSequence keyed by name; no global RNG.
"""

from __future__ import annotations

import math

import numpy as np

from moesim.goodput.daly import segments

GOODPUT_STREAM = 0x676F6F64  # "good": first spawn-key word of the goodput streams
WALL = 0  # purpose: run wall times
_DRAWS_PER_CHUNK = 2_000_000  # bound on the truncated-exponential draws held at once
EXACT_UP_TO = 1000  # per run, losses drawn one by one up to this many; their normal limit past it


def stream(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    ss = np.random.SeedSequence(seed, spawn_key=(GOODPUT_STREAM, purpose, *keys))
    return np.random.Generator(np.random.PCG64(ss))


def _failures(rng: np.random.Generator, successes: int, p_ok: float, runs: int) -> np.ndarray:
    """Failures before ``successes`` failure-free attempts, per run."""
    if successes <= 0 or p_ok >= 1.0:
        return np.zeros(runs, dtype=np.int64)
    return rng.negative_binomial(successes, p_ok, size=runs).astype(np.int64)


def _trunc_exp_moments(length_s: float, mtbf_s: float) -> tuple[float, float]:
    """Mean and variance of X ~ Exp(mean M) conditioned on X < L."""
    r = length_s / mtbf_s
    if r < 1e-4:  # nearly uniform on (0, L)
        return length_s / 2.0, length_s * length_s / 12.0
    e = math.expm1(r)
    mean = mtbf_s - length_s / e
    second = 2.0 * mtbf_s * mtbf_s - (length_s * length_s + 2.0 * length_s * mtbf_s) / e
    return mean, max(0.0, second - mean * mean)


def _lost(rng: np.random.Generator, counts: np.ndarray, length_s: float,
          mtbf_s: float) -> np.ndarray:
    """Per run, the sum of ``counts`` truncated-exponential losses on (0, length_s); a run
    with more than ``EXACT_UP_TO`` of them draws the sum from its normal limit instead."""
    out = np.zeros(len(counts))
    big = counts > EXACT_UP_TO
    if big.any():
        mean, var = _trunc_exp_moments(length_s, mtbf_s)
        k = counts[big].astype(np.float64)
        out[big] = np.maximum(0.0, k * mean + np.sqrt(k * var) * rng.standard_normal(len(k)))
    small = np.where(big, 0, counts)
    total = int(small.sum())
    if total == 0:
        return out
    u = rng.random(total)
    x = -mtbf_s * np.log1p(u * math.expm1(-length_s / mtbf_s))
    owner = np.repeat(np.arange(len(counts)), small)
    return out + np.bincount(owner, weights=x, minlength=len(counts))


def _chunk(rng: np.random.Generator, n_full: int, rest_s: float, interval_s: float,
           delta_s: float, restart_s: float, mtbf_s: float, runs: int) -> np.ndarray:
    seg = interval_s + delta_s
    f_full = _failures(rng, n_full, math.exp(-seg / mtbf_s), runs)
    wall = n_full * seg + _lost(rng, f_full, seg, mtbf_s)
    fails = f_full
    if rest_s > 0:
        last = rest_s + delta_s
        f_last = _failures(rng, 1, math.exp(-last / mtbf_s), runs)
        wall = wall + last + _lost(rng, f_last, last, mtbf_s)
        fails = fails + f_last
    if restart_s > 0:
        q_ok = math.exp(-restart_s / mtbf_s)
        redo = np.zeros(runs, dtype=np.int64)
        has = fails > 0
        if has.any():
            redo[has] = rng.negative_binomial(fails[has], q_ok)
        wall = wall + fails * restart_s + _lost(rng, redo, restart_s, mtbf_s)
    return wall


def simulate_walls(solve_s: float, interval_s: float, delta_s: float, restart_s: float,
                   mtbf_s: float, runs: int, seed: int, key: int = 0) -> np.ndarray:
    """Wall seconds of ``runs`` independent runs (sorted by run index, not by value)."""
    if math.isinf(mtbf_s):
        return np.full(runs, solve_s)
    n_full, rest = segments(solve_s, interval_s)
    rng = stream(seed, WALL, key)
    per_run = min(2.0 * EXACT_UP_TO, max(1.0, 2.0 * (solve_s / mtbf_s)
                                         * math.exp(min(restart_s / mtbf_s, 50.0))))
    size = max(1, int(_DRAWS_PER_CHUNK // per_run))
    out = [_chunk(rng, n_full, rest, interval_s, delta_s, restart_s, mtbf_s, min(size, runs - i))
           for i in range(0, runs, size)]
    return np.concatenate(out)


def simulated_best_interval(solve_s: float, center_s: float, delta_s: float, restart_s: float,
                            mtbf_s: float, runs: int, seed: int,
                            points: int = 17) -> tuple[float, list[tuple[float, float]]]:
    """The interval with the least mean simulated wall time on a grid of ``center_s`` x 2^[-2, 2]
    (the same streams for every interval), and the (interval, mean wall) pairs."""
    grid = [center_s * 2.0 ** (4.0 * i / (points - 1) - 2.0) for i in range(points)]
    means = [(t, float(simulate_walls(solve_s, t, delta_s, restart_s, mtbf_s, runs, seed,
                                      key=1).mean())) for t in grid]
    best = min(means, key=lambda tm: tm[1])[0]
    return best, means
