"""The per-rank-class timeline of one step: a Gantt of streams, sampled when huge.

Lanes are (rank class, stream) pairs: rank classes in the order the trace first names them,
streams in :data:`STREAM_ORDER`. A large trace keeps at most ``max_intervals`` intervals
(the longest of each lane, in proportion to its share) and the title says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from moesim.report.style import base_layout, empty_figure, kind_colors
from moesim.results.schema import SimulationResult, TraceEventResult
from moesim.units import MS

# Streams of one rank, top to bottom; unknown streams follow in name order.
STREAM_ORDER = ("compute", "comm", "comm_tp", "comm_ep", "comm_pp", "comm_dp")

# About what a browser draws smoothly as SVG paths (issue 8 asks for "~20k intervals").
MAX_TIMELINE_INTERVALS = 20_000

# Pixels per lane of the Gantt; bars are drawn as thick line segments a bit thinner.
LANE_HEIGHT_PX = 22


def _stream_rank(stream: str) -> tuple[int, str]:
    return (STREAM_ORDER.index(stream), "") if stream in STREAM_ORDER else (len(STREAM_ORDER), stream)


def lane_keys(events: list[TraceEventResult]) -> list[tuple[str, str]]:
    """Every (rank class, stream) lane of ``events``, in display order."""
    classes = list(dict.fromkeys(e.rank_class for e in events))
    streams: dict[str, set[str]] = {c: set() for c in classes}
    for e in events:
        streams[e.rank_class].add(e.stream)
    return [(c, s) for c in classes for s in sorted(streams[c], key=_stream_rank)]


@dataclass(frozen=True)
class SampledIntervals:
    """Intervals chosen for drawing, as parallel arrays (seconds; lane and kind indices)."""

    lanes: list[tuple[str, str]]
    kinds: list[str]
    start_s: np.ndarray
    duration_s: np.ndarray
    lane: np.ndarray
    kind: np.ndarray
    names: list[str]
    total: int

    @property
    def shown(self) -> int:
        return int(self.start_s.size)


def sample_intervals(events: list[TraceEventResult],
                     max_intervals: int = MAX_TIMELINE_INTERVALS) -> SampledIntervals:
    """Keep all intervals if they fit, else the longest ones of each lane (about ``max``)."""
    lanes = lane_keys(events)
    lane_of = {k: i for i, k in enumerate(lanes)}
    kinds = sorted({e.kind for e in events})
    kind_of = {k: i for i, k in enumerate(kinds)}
    start = np.array([e.start_s for e in events], dtype=float)
    dur = np.array([e.duration_s for e in events], dtype=float)
    lane = np.array([lane_of[(e.rank_class, e.stream)] for e in events], dtype=np.int64)
    kind = np.array([kind_of[e.kind] for e in events], dtype=np.int64)
    keep = _keep_longest_per_lane(lane, dur, len(lanes), max_intervals)
    return SampledIntervals(lanes, kinds, start[keep], dur[keep], lane[keep], kind[keep],
                            [events[i].name for i in keep], len(events))


def _keep_longest_per_lane(lane: np.ndarray, dur: np.ndarray, num_lanes: int,
                           max_intervals: int) -> np.ndarray:
    """Indices to keep, in input order: each lane keeps its share of ``max_intervals``."""
    n = lane.size
    if n <= max_intervals:
        return np.arange(n)
    counts = np.bincount(lane, minlength=num_lanes)
    budget = np.maximum(1, (max_intervals * counts) // n)
    kept: list[np.ndarray] = []
    for i in range(num_lanes):
        idx = np.flatnonzero(lane == i)
        if idx.size > budget[i]:
            order = np.argsort(-dur[idx], kind="stable")[: budget[i]]
            idx = np.sort(idx[order])
        kept.append(idx)
    return np.sort(np.concatenate(kept))


def _segments(s: SampledIntervals, kind_index: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """x, y arrays of line segments [start, end, gap] and hover text for one kind."""
    sel = np.flatnonzero(s.kind == kind_index)
    x = np.full(3 * sel.size, np.nan)
    y = np.full(3 * sel.size, np.nan)
    x[0::3] = s.start_s[sel] / MS
    x[1::3] = (s.start_s[sel] + s.duration_s[sel]) / MS
    y[0::3] = s.lane[sel]
    y[1::3] = s.lane[sel]
    text: list[str] = []
    for i in sel:
        label = f"{s.names[i]} ({s.duration_s[i] / MS:.3f} ms)"
        text += [label, label, ""]
    return x, y, text


def fig_timeline(result: SimulationResult,
                 max_intervals: int = MAX_TIMELINE_INTERVALS) -> go.Figure:
    """Gantt of every stream of every rank class over one step (x in ms)."""
    title = "timeline of one step per rank class and stream"
    if not result.trace:
        return empty_figure(title, "the result has no trace (run with the DES fidelity)")
    s = sample_intervals(result.trace, max_intervals)
    colors = kind_colors(s.kinds)
    fig = go.Figure()
    for k, kind in enumerate(s.kinds):
        x, y, text = _segments(s, k)
        if x.size == 0:
            continue
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines", name=kind, hovertext=text, hoverinfo="text",
            line={"color": colors[kind], "width": LANE_HEIGHT_PX - 6},
        ))
    fig.update_xaxes(title_text="time in step (ms)")
    fig.update_yaxes(title_text="rank class / stream",
                     tickvals=list(range(len(s.lanes))),
                     ticktext=[f"{c} {st}" for c, st in s.lanes],
                     range=[len(s.lanes) - 0.5, -0.5])
    if s.shown < s.total:
        title += f" (sampled: longest {s.shown:,} of {s.total:,} intervals shown)"
    else:
        title += f" ({s.total:,} intervals)"
    return base_layout(fig, title, height_px=160 + LANE_HEIGHT_PX * len(s.lanes))
