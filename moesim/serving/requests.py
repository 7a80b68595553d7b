"""The request stream: arrival times and lengths drawn from the workload spec, or a trace.

Draws follow DESIGN.md's determinism rule: one ``numpy.random.SeedSequence`` per scenario
seed, with a named stream per purpose (arrivals, input lengths, output lengths), so equal
inputs give equal streams and changing one distribution leaves the others' draws alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moesim.specs.serving import (
    BurstArrivalSpec,
    FixedLengthSpec,
    GammaArrivalSpec,
    LogNormalLengthSpec,
    MMPPArrivalSpec,
    PoissonArrivalSpec,
    ServingWorkloadSpec,
    TraceArrivalSpec,
    UniformLengthSpec,
)
from moesim.specs.serving_trace import Trace, read_trace

# First spawn-key word of every serving stream ("serv" in ASCII; routing's is "rout"), then
# the purpose.
SERVING_STREAM = 0x73657276
ARRIVALS, INPUTS, OUTPUTS = 0, 1, 2


@dataclass(frozen=True)
class RequestSet(Trace):
    """Requests sorted by arrival: seconds, prompt tokens, generated tokens (first included);
    a trace's rows (moesim.specs.serving_trace.Trace) or drawn ones."""

    @property
    def offered_rate_per_s(self) -> float:
        """Requests over the arrival span (0 for a burst)."""
        span = float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) > 1 else 0.0
        return (len(self) - 1) / span if span > 0 else 0.0


def _rng(seed: int, purpose: int) -> np.random.Generator:
    ss = np.random.SeedSequence(seed, spawn_key=(SERVING_STREAM, purpose))
    return np.random.Generator(np.random.PCG64(ss))


def arrivals(spec: object, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` arrival times (seconds, ascending); the first request arrives at 0 (at ``at_s``
    for a burst)."""
    if isinstance(spec, BurstArrivalSpec):
        return np.full(n, float(spec.at_s))
    if isinstance(spec, PoissonArrivalSpec):
        gaps = rng.exponential(1.0 / spec.rate_per_s, size=n)
    elif isinstance(spec, GammaArrivalSpec):
        shape = 1.0 / (spec.cv * spec.cv)
        gaps = rng.gamma(shape, 1.0 / (spec.rate_per_s * shape), size=n)
    else:
        assert isinstance(spec, MMPPArrivalSpec)
        return _mmpp(spec, n, rng)
    return np.concatenate([[0.0], np.cumsum(gaps[:-1])])


def _mmpp(spec: MMPPArrivalSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Arrivals of a cyclic Markov-modulated Poisson process, starting in state 0 at t = 0."""
    out: list[np.ndarray] = []
    t, state, have = 0.0, 0, 0
    k = len(spec.rates_per_s)
    while have < n:
        dwell = rng.exponential(spec.mean_dwell_s[state])
        rate = spec.rates_per_s[state]
        if rate > 0:
            count = rng.poisson(rate * dwell)
            if count:
                out.append(t + np.sort(rng.uniform(0.0, dwell, size=count)))
                have += int(count)
        t += dwell
        state = (state + 1) % k
    times = np.concatenate(out)[:n]
    return times - times[0]


def lengths(spec: object, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` token counts from a length distribution (integers >= 1)."""
    if isinstance(spec, FixedLengthSpec):
        return np.full(n, spec.tokens, dtype=np.int64)
    if isinstance(spec, UniformLengthSpec):
        return rng.integers(spec.min_tokens, spec.max_tokens + 1, size=n, dtype=np.int64)
    assert isinstance(spec, LogNormalLengthSpec)
    sigma2 = np.log1p(spec.cv * spec.cv)
    mu = np.log(spec.mean_tokens) - sigma2 / 2.0
    x = np.rint(rng.lognormal(mu, np.sqrt(sigma2), size=n))
    return np.clip(x, spec.min_tokens, spec.max_tokens).astype(np.int64)


def generate_requests(workload: ServingWorkloadSpec, seed: int) -> RequestSet:
    """The workload's requests (a trace's rows, or draws from its distributions)."""
    if isinstance(workload.arrival, TraceArrivalSpec):
        tr = read_trace(workload.arrival.path, limit=workload.num_requests)
        t = tr.arrival_s * workload.arrival.time_scale
        return RequestSet(t - t[0] if len(t) else t, tr.input_tokens, tr.output_tokens)
    n = workload.num_requests
    assert n is not None and workload.input_length and workload.output_length
    return RequestSet(arrivals(workload.arrival, n, _rng(seed, ARRIVALS)),
                      lengths(workload.input_length, n, _rng(seed, INPUTS)),
                      lengths(workload.output_length, n, _rng(seed, OUTPUTS)))
