"""Closed forms for a checkpointed job under Poisson failures (Young 1974; Daly 2006).

Symbols, all in seconds: M the job's mean time between interruptions, delta the time a
checkpoint blocks training, R the restart time (detect + restart + reload), tau the compute
time between checkpoints, T_s the failure-free solve time.

* Young's interval: tau = sqrt(2 delta M) (first order).
* Daly's interval: tau = sqrt(2 delta M) (1 + x/3 + x^2/9) - delta, x = sqrt(delta / 2M), for
  delta < 2M; tau = M otherwise (Daly, "A higher order estimate of the optimum checkpoint
  interval for restart dumps", Future Generation Computer Systems 22(3), 2006).
* Daly's expected wall time of one segment of w compute seconds and its checkpoint, failures
  possible during compute, checkpoint and restart (every failure returns to the last
  checkpoint): E[T(w)] = M e^(R/M) (e^((w + delta)/M) - 1). The run is floor(T_s/tau) full
  segments and one remainder segment.

With no failures (M infinite) the run needs no checkpoint: its wall time is T_s.
"""

from __future__ import annotations

import math


def young_interval_s(delta_s: float, mtbf_s: float) -> float:
    """sqrt(2 delta M); infinite without failures."""
    if math.isinf(mtbf_s):
        return math.inf
    return math.sqrt(2.0 * delta_s * mtbf_s)


def daly_interval_s(delta_s: float, mtbf_s: float) -> float:
    """Daly's higher-order optimum (compute seconds between checkpoints)."""
    if math.isinf(mtbf_s):
        return math.inf
    if delta_s >= 2.0 * mtbf_s:
        return mtbf_s
    x = math.sqrt(delta_s / (2.0 * mtbf_s))
    return math.sqrt(2.0 * delta_s * mtbf_s) * (1.0 + x / 3.0 + x * x / 9.0) - delta_s


def segment_wall_s(work_s: float, delta_s: float, restart_s: float, mtbf_s: float) -> float:
    """Expected wall time of ``work_s`` compute seconds followed by one checkpoint."""
    if math.isinf(mtbf_s):
        return work_s + delta_s
    return mtbf_s * math.exp(restart_s / mtbf_s) * math.expm1((work_s + delta_s) / mtbf_s)


def segments(solve_s: float, interval_s: float) -> tuple[int, float]:
    """(full segments, remainder compute seconds) of a run checkpointed every ``interval_s``."""
    if math.isinf(interval_s) or interval_s >= solve_s:
        return 0, solve_s
    n = int(solve_s // interval_s)
    return n, max(0.0, solve_s - n * interval_s)


def expected_wall_s(solve_s: float, interval_s: float, delta_s: float, restart_s: float,
                    mtbf_s: float) -> float:
    """Daly's expected wall time of the whole run; T_s exactly when nothing fails."""
    if math.isinf(mtbf_s):
        return solve_s
    n, rest = segments(solve_s, interval_s)
    wall = n * segment_wall_s(interval_s, delta_s, restart_s, mtbf_s)
    return wall + (segment_wall_s(rest, delta_s, restart_s, mtbf_s) if rest > 0 else 0.0)


def steady_efficiency(interval_s: float, delta_s: float, restart_s: float, mtbf_s: float) -> float:
    """Useful compute over wall time for a long run (one segment's ratio)."""
    if math.isinf(mtbf_s):
        return 1.0
    return interval_s / segment_wall_s(interval_s, delta_s, restart_s, mtbf_s)


def lost_work_per_failure_s(interval_s: float, delta_s: float, mtbf_s: float) -> float:
    """Expected segment time a failure throws away: E[X | X < tau + delta], X ~ Exp(M)."""
    length = interval_s + delta_s
    if math.isinf(mtbf_s) or math.isinf(length):
        return length / 2.0 if not math.isinf(length) else math.inf
    return mtbf_s - length / math.expm1(length / mtbf_s)


def restart_per_failure_s(restart_s: float, mtbf_s: float) -> float:
    """Expected time from a failure to resumed training, restarts that fail again included."""
    if math.isinf(mtbf_s):
        return restart_s
    return mtbf_s * math.expm1(restart_s / mtbf_s)


def expected_failures(solve_s: float, interval_s: float, delta_s: float, restart_s: float,
                      mtbf_s: float) -> float:
    """Expected interruptions over the run (those that hit a restart included)."""
    if math.isinf(mtbf_s):
        return 0.0
    n, rest = segments(solve_s, interval_s)
    per = math.exp(restart_s / mtbf_s)
    total = n * math.expm1((interval_s + delta_s) / mtbf_s)
    if rest > 0:
        total += math.expm1((rest + delta_s) / mtbf_s)
    return total * per
