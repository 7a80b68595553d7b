"""Load models: how popular each routed expert of one MoE layer is.

A load model gives, per MoE layer, a popularity vector ``p`` over the routed experts
(``p >= 0``, ``sum(p) == 1``): the expected share of the routed token copies each expert
gets. The samplers in :mod:`moesim.routing.sampling` turn it into per-(source rank, expert)
counts for one micro-batch. Popularity is drawn once per layer (which experts are hot is a
property of the trained router), the counts once per (layer, micro-batch).

Random streams: one ``numpy.random.SeedSequence`` per stream, keyed by
``(ROUTING_STREAM, purpose, layer[, draw])`` so that the streams are fixed by name and do
not depend on how many layers or micro-batches were drawn before them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from moesim.errors import SpecError
from moesim.specs.routing import (
    BalancedLoadSpec,
    DirichletLoadSpec,
    HistogramLoadSpec,
    LoadSpec,
    MultinomialLoadSpec,
    ZipfLoadSpec,
)

# First spawn-key word of every routing stream ("rout" in ASCII), so routing streams never
# collide with children another package spawns from the same scenario seed.
ROUTING_STREAM = 0x726F7574
POPULARITY = 0  # purpose: per-layer popularity (hot-expert permutation, Dirichlet draw)
COUNTS = 1  # purpose: per-(layer, micro-batch) count draws


def stream(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    """The generator of one named routing stream (no global RNG anywhere)."""
    ss = np.random.SeedSequence(seed, spawn_key=(ROUTING_STREAM, purpose, *keys))
    return np.random.Generator(np.random.PCG64(ss))


def zipf_popularity(num_experts: int, exponent: float) -> np.ndarray:
    """p_i proportional to 1 / i^s for ranks i = 1..E, hottest first (sums to 1)."""
    ranks = np.arange(1, num_experts + 1, dtype=np.float64)
    w = ranks ** (-exponent)
    return w / w.sum()


def read_histogram(path: str | Path, num_experts: int) -> np.ndarray:
    """Per-layer expert loads from a JSON or YAML list of lists, normalized per row: [rows, E]."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise SpecError(f"routing.load.path: cannot read histogram: {exc}", file=str(p),
                        field="routing.load.path") from None
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.ndim != 2 or arr.shape[1] != num_experts:
        raise SpecError(f"routing.load.path: expected a list of lists, layer x {num_experts} "
                        f"experts; got shape {arr.shape}", file=str(p), field="routing.load.path")
    if (arr < 0).any() or (arr.sum(axis=1) <= 0).any() or not np.isfinite(arr).all():
        raise SpecError("routing.load.path: every row needs finite, non-negative loads with a "
                        "positive sum", file=str(p), field="routing.load.path")
    return arr / arr.sum(axis=1, keepdims=True)


def layer_popularity(load: LoadSpec, num_experts: int, layer: int, seed: int,
                     histogram: np.ndarray | None = None) -> np.ndarray:
    """Popularity of the routed experts of MoE layer number ``layer`` (0-based among MoE layers).

    Zipf and Dirichlet get a per-layer random permutation of which experts are hot; a
    histogram row is used as measured (rows are cycled when the file has fewer layers).
    """
    e = num_experts
    if isinstance(load, (BalancedLoadSpec, MultinomialLoadSpec)):
        return np.full(e, 1.0 / e)
    if isinstance(load, HistogramLoadSpec):
        assert histogram is not None, "read the histogram once with read_histogram"
        return histogram[layer % histogram.shape[0]].copy()
    rng = stream(seed, POPULARITY, layer)
    if isinstance(load, ZipfLoadSpec):
        return zipf_popularity(e, load.exponent)[rng.permutation(e)]
    assert isinstance(load, DirichletLoadSpec)
    p = rng.dirichlet(np.full(e, load.concentration))
    # Tiny concentrations underflow to exact zeros; keep every expert reachable.
    p = np.maximum(p, 1e-300)
    return p / p.sum()


def inclusion_probabilities(popularity: np.ndarray, k: int) -> np.ndarray:
    """Per-expert probability that one token picks it, when each token picks k distinct experts.

    Starts from ``k x p`` and water-fills: an expert cannot be picked by more than every token,
    so shares above 1 are capped and the excess goes to the others pro rata. Sums to k.
    """
    e = popularity.size
    assert 1 <= k <= e, "top_k must be within 1..num_experts"
    pi = np.zeros(e)
    free = np.ones(e, dtype=bool)
    budget = float(k)
    for _ in range(e):
        if not free.any():  # every expert capped at 1: the budget is spent exactly
            break
        w = popularity * free
        total = w.sum()
        if total <= 0:  # only zero-popularity experts left: spread the rest evenly
            pi[free] = budget / free.sum()
            break
        cand = budget * w / total
        over = free & (cand >= 1.0)
        if not over.any():
            pi[free] = cand[free]
            break
        pi[over] = 1.0
        free &= ~over
        budget = k - pi[~free].sum()
    return np.minimum(pi, 1.0)
