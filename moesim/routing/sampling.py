"""Count-level samplers: copies per (source EP rank, routed expert) for one micro-batch.

Nothing here loops over tokens. Each sampler returns an int64 array ``[S, E]``: row ``s`` is
what the ``T`` tokens of source rank ``s`` send to each expert (one copy per token-expert
pair, before capacity). Rows are independent (tokens are i.i.d. given the popularity).

Top-k model ("urn"). ``T`` tokens each pick ``k`` distinct experts. Per source rank the counts
are drawn as a multivariate hypergeometric sample of ``T k`` copies from an urn holding
``N q_e`` balls of expert ``e`` (``q = pi / k``, ``pi`` the inclusion probabilities). With
``N = (T k (E - 1) - (E - k)) / (k - 1)`` the covariance is exactly ``T k (E - k) / (E (E - 1))
(I - 11'/E)``, that of ``T`` uniform k-subsets (derivation in docs/routing.md); ``k = 1``, or
many experts per pick (see ``MULTINOMIAL_ABOVE``), is a plain multinomial. For skewed popularity the means are exact and the covariance approximate.
Experts every token picks (``pi = 1``) get exactly ``T``.
"""

from __future__ import annotations

import math

import numpy as np

from moesim.routing.loads import inclusion_probabilities

# The urn's covariance is the multinomial's times f = (E - k) / (E - 1). When f is this close to
# 1 (standard deviations within 2.5%, e.g. E=256, k=8: f=0.973) the plain multinomial is used:
# numpy's multivariate hypergeometric costs ~3x a multinomial per category (bench_routing.py).
MULTINOMIAL_ABOVE = 0.95


def balanced_counts(num_sources: int, tokens: int, k: int, num_experts: int) -> np.ndarray:
    """Exactly T k / E copies per (source, expert); remainders rotate so totals stay even."""
    base, rem = divmod(tokens * k, num_experts)
    counts = np.full((num_sources, num_experts), base, dtype=np.int64)
    if rem:
        cols = (np.arange(num_sources)[:, None] * rem + np.arange(rem)[None, :]) % num_experts
        np.add.at(counts, (np.repeat(np.arange(num_sources), rem), cols.ravel()), 1)
    return counts


def urn_size(tokens: int, k: int, num_experts: int) -> int:
    """Balls in the urn that gives T uniform k-subsets' covariance (k >= 2)."""
    return math.ceil((tokens * k * (num_experts - 1) - (num_experts - k)) / (k - 1))


def urn(tokens: int, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """(balls per expert, saturated mask, copies to draw, infinite) of one source's top-k urn.

    Saturated experts (``pi = 1``) are taken by every token and are not in the urn. With one
    pick left per token the urn is infinite (a multinomial) and ``balls`` are shares.
    """
    sat = pi >= 1.0 - 1e-12
    k_rest = int(round(pi.sum())) - int(sat.sum())
    colors = np.zeros(pi.size)
    rest = ~sat
    if k_rest <= 0 or tokens == 0:
        return colors, sat, 0, True
    q = pi[rest] / pi[rest].sum()
    e_rest = int(rest.sum())
    if k_rest == 1 or (e_rest - k_rest) / (e_rest - 1) >= MULTINOMIAL_ABOVE:
        colors[rest] = q
        return colors, sat, tokens * k_rest, True
    colors[rest] = urn_size(tokens, k_rest, int(rest.sum())) * q
    return colors, sat, tokens * k_rest, False


def draw_urn(rng: np.random.Generator, colors: np.ndarray, n: int, num_sources: int,
             infinite: bool) -> np.ndarray:
    """``num_sources`` draws of ``n`` copies from an urn with ``colors`` balls per category."""
    if n == 0:
        return np.zeros((num_sources, colors.size), dtype=np.int64)
    if infinite:
        return rng.multinomial(n, colors / colors.sum(), size=num_sources)
    balls = np.floor(colors).astype(np.int64)
    balls = np.maximum(balls, (colors > 0).astype(np.int64))
    if balls.sum() < n:  # rounding can leave the urn short by a few balls
        balls[np.argmax(colors)] += n - balls.sum()
    return rng.multivariate_hypergeometric(balls, n, size=num_sources, method="marginals")


def integer_split(values: np.ndarray) -> np.ndarray:
    """Round non-negative values to integers that keep their (integer) total."""
    base = np.floor(values + 1e-9).astype(np.int64)
    short = int(round(values.sum())) - int(base.sum())
    if short > 0:
        base[np.argsort(-(values - base), kind="stable")[:short]] += 1
    return base


def topk_counts(rng: np.random.Generator, num_sources: int, tokens: int, pi: np.ndarray,
                merge: np.ndarray | None = None) -> np.ndarray:
    """Copies per (source, category) when every token picks round(sum(pi)) distinct experts.

    ``merge`` [C, E] (optional) sums experts into categories (e.g. the ranks holding them,
    with fractional weights for replicas); merging urn colors is exact for the urn model.
    """
    colors, sat, n, infinite = urn(tokens, pi)
    fixed = np.where(sat, float(tokens), 0.0)
    if merge is None:
        counts = draw_urn(rng, colors, n, num_sources, infinite) + fixed.astype(np.int64)
        cap = np.full(counts.shape, tokens, dtype=np.int64)
    else:
        counts = draw_urn(rng, merge @ colors, n, num_sources, infinite)
        counts += integer_split(merge @ fixed)[None, :]
        cap = np.broadcast_to(np.ceil(merge.sum(axis=1) * tokens).astype(np.int64), counts.shape)
    return cap_counts(rng, counts, cap)


def cap_counts(rng: np.random.Generator, counts: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Clip counts to ``cap`` per cell, moving any excess to cells of the same row with room.

    A token takes an expert at most once, so copies per (source, expert) never exceed the
    tokens that could send them. The excess is redistributed by room, all rows at once.
    """
    out = np.minimum(counts, cap)
    excess = counts.sum(axis=1) - out.sum(axis=1)
    for _ in range(64):  # each round fills at least the room it draws into; a few suffice
        rows = np.flatnonzero(excess > 0)
        if rows.size == 0:
            break
        room = (cap[rows] - out[rows]).astype(np.float64)
        total = room.sum(axis=1)
        assert (total >= excess[rows]).all(), "copies exceed what the tokens can carry"
        add = np.minimum(rng.multinomial(excess[rows], room / total[:, None]), room.astype(np.int64))
        out[rows] += add
        excess[rows] -= add.sum(axis=1)
    return out


def node_limited_counts(rng: np.random.Generator, num_sources: int, tokens: int, k: int,
                        popularity: np.ndarray, slots: np.ndarray, num_groups: int,
                        max_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Node-limited top-k (DeepSeek-V3): each token reaches at most ``max_groups`` node groups.

    Categories (experts, or the ranks holding contiguous experts) come in ``num_groups``
    contiguous groups, one per node of the EP group; ``popularity`` [C] and ``slots`` [C]
    (experts per category) describe them. Count-level model, three draws per source rank:
      1. each token visits ``m = min(max_groups, k)`` distinct groups, chosen with the groups'
         popularity (the top-k sampler over groups): distinct tokens per (source, group);
      2. every visit carries one copy; the other ``T (k - m)`` copies go to the visited groups
         in proportion to visits x popularity per visit, at most E/G - 1 more per visit;
      3. a group's copies spread over its categories by popularity, at most ``slots`` per
         visiting token (a token takes an expert once).
    Returns (copies [S, C], distinct tokens per (source, group) [S, G]).
    """
    c = popularity.size
    per_group = c // num_groups
    group_pop = popularity.reshape(num_groups, per_group).sum(axis=1)
    group_slots = int(slots.reshape(num_groups, per_group).sum(axis=1).max())
    m = min(max_groups, k, num_groups)
    pi_g = inclusion_probabilities(group_pop, m)
    visits = topk_counts(rng, num_sources, tokens, pi_g)
    copies = visits.copy()
    if k > m:
        weight = visits * (group_pop / np.maximum(pi_g, 1e-300))
        extra = rng.multinomial(tokens * (k - m), weight / weight.sum(axis=1, keepdims=True))
        copies += cap_counts(rng, extra, visits * (group_slots - 1))
    within = popularity.reshape(num_groups, per_group)
    within = within / np.maximum(within.sum(axis=1, keepdims=True), 1e-300)
    pv = np.broadcast_to(within, (num_sources, num_groups, per_group))
    split = rng.multinomial(copies, pv).reshape(num_sources, c)
    cap = np.repeat(visits, per_group, axis=1) * slots[None, :].astype(np.int64)
    return cap_within_groups(rng, split, cap, num_groups), visits


def cap_within_groups(rng: np.random.Generator, counts: np.ndarray, cap: np.ndarray,
                      num_groups: int) -> np.ndarray:
    """:func:`cap_counts` restricted to each group, so copies never move across groups."""
    if not (counts > cap).any():
        return counts
    s, e = counts.shape
    g_counts = counts.reshape(s * num_groups, e // num_groups)
    g_cap = cap.reshape(s * num_groups, e // num_groups)
    return cap_counts(rng, g_counts, g_cap).reshape(s, e)


def expert_choice_counts(num_sources: int, tokens: int, num_experts: int,
                         capacity: int) -> np.ndarray:
    """Expert choice: every expert takes its ``capacity`` top tokens of each source block."""
    return np.full((num_sources, num_experts), min(capacity, tokens), dtype=np.int64)
