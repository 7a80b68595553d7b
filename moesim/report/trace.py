"""Chrome trace event export (opens in Perfetto and chrome://tracing).

One process per rank class, one thread per stream, one complete ("X") event per op with
``ts``/``dur`` in microseconds, plus "M" metadata events naming processes and threads.
Events of one thread never overlap: when two ops of one stream overlap (a sampled or
merged trace), the later one goes onto an extra thread "<stream> #2", "#3", ...
"""

from __future__ import annotations

import json
from typing import Any

from moesim.report.timeline import lane_keys
from moesim.results.schema import SimulationResult, TraceEventResult
from moesim.units import US

# Timestamps are rounded to 1 ns (3 decimals of a microsecond): finer than any op the
# engine models and it keeps trace.json small. Overlaps up to 2 ns count as touching: the
# engine's picosecond float noise can round to a 1 ns overlap (seen in the default scenario).
TS_DECIMALS = 3
TOUCH_TOLERANCE_US = 2.0 * 10.0 ** -TS_DECIMALS


def _assign_sub_threads(events: list[TraceEventResult]) -> list[list[tuple[float, float, int]]]:
    """Split one stream's events into non-overlapping rows of (ts_us, dur_us, event index).

    Greedy interval partitioning in start order: each event goes on the first row whose last
    event has ended (within :data:`TOUCH_TOLERANCE_US`, clipping that sliver).
    """
    order = sorted(range(len(events)), key=lambda i: (events[i].start_s, -events[i].duration_s, i))
    rows: list[list[tuple[float, float, int]]] = []
    ends: list[float] = []
    for i in order:
        ts = round(events[i].start_s / US, TS_DECIMALS)
        end = round((events[i].start_s + events[i].duration_s) / US, TS_DECIMALS)
        r = _first_free_row(ends, ts)
        if r < 0:
            r = len(rows)
            rows.append([])
            ends.append(ts)
        ts = max(ts, ends[r])
        dur = max(0.0, end - ts)
        rows[r].append((ts, dur, i))
        ends[r] = ts + dur
    return rows


def _first_free_row(ends: list[float], ts_us: float) -> int:
    """Index of the first row that is free at ``ts_us`` (within the tolerance), else -1."""
    for r, row_end in enumerate(ends):
        if ts_us >= row_end - TOUCH_TOLERANCE_US:
            return r
    return -1


def _multiplicities(result: SimulationResult) -> dict[str, int]:
    return {m.rank_class: m.multiplicity for m in result.memory}


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}


def chrome_trace(result: SimulationResult) -> dict[str, Any]:
    """The result's trace as a Chrome trace JSON object (``traceEvents`` + ``otherData``)."""
    mult = _multiplicities(result)
    by_lane: dict[tuple[str, str], list[TraceEventResult]] = {}
    for e in result.trace:
        by_lane.setdefault((e.rank_class, e.stream), []).append(e)
    pids: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    next_tid: dict[int, int] = {}
    for rank_class, stream in lane_keys(result.trace):
        if rank_class not in pids:
            pid = pids[rank_class] = len(pids) + 1
            label = f"{rank_class} (x{mult[rank_class]} ranks)" if rank_class in mult else rank_class
            out.append(_meta("process_name", pid, 0, {"name": label}))
            out.append(_meta("process_sort_index", pid, 0, {"sort_index": pid}))
        pid = pids[rank_class]
        events = by_lane[(rank_class, stream)]
        for r, row in enumerate(_assign_sub_threads(events)):
            tid = next_tid[pid] = next_tid.get(pid, 0) + 1
            thread = stream if r == 0 else f"{stream} #{r + 1}"
            out.append(_meta("thread_name", pid, tid, {"name": thread}))
            out.append(_meta("thread_sort_index", pid, tid, {"sort_index": tid}))
            out += [_complete(events[i], ts, dur, pid, tid) for ts, dur, i in row]
    return {"traceEvents": out, "displayTimeUnit": "ms", "otherData": _other(result)}


def _complete(e: TraceEventResult, ts: float, dur: float, pid: int, tid: int) -> dict[str, Any]:
    return {"name": e.name, "cat": e.kind, "ph": "X", "ts": ts, "dur": dur,
            "pid": pid, "tid": tid, "args": dict(e.args)}


def _other(result: SimulationResult) -> dict[str, Any]:
    return {"scenario": result.scenario, "fidelity": result.fidelity,
            "step_time_s": result.step_time_s, "num_devices": result.num_devices,
            "schema_version": result.schema_version}


def chrome_trace_json(result: SimulationResult) -> str:
    """:func:`chrome_trace` serialized compactly and deterministically."""
    return json.dumps(chrome_trace(result), separators=(",", ":"), sort_keys=True)
