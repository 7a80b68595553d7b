"""The per-rank-class timeline of one step: a Gantt of streams, binned when huge.

Lanes are (rank class, stream) pairs: rank classes in the order the trace first names them,
streams in :data:`STREAM_ORDER`. A large trace keeps at most ``max_intervals`` intervals
binned per lane: each bar is a run of bins in which one op kind was the busiest, about a
pixel wide at most, and the title says so, with how many of the step's ops trace.json
holds (every op unless the engine's trace cap cut it short).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from moesim.report import plain
from moesim.report.plain import Figure, axis_title
from moesim.report.style import FIG_WIDTH_PX, kind_colors
from moesim.results.schema import SimulationResult, TraceEventResult, TraceResult
from moesim.results.trace import trace_from_events
from moesim.units import MS

if TYPE_CHECKING:
    import plotly.graph_objects as go

# Streams of one rank, top to bottom; unknown streams follow in name order.
STREAM_ORDER = ("compute", "comm", "comm_tp", "comm_ep", "comm_pp", "comm_dp")

# About what a browser draws smoothly as SVG paths (issue 8 asks for "~20k intervals").
MAX_TIMELINE_INTERVALS = 20_000

# A binned lane has at most this many bins: about one per pixel of the figure's width.
MAX_BINS_PER_LANE = 1200

# Pixels per lane of the Gantt; bars are drawn as thick line segments a bit thinner.
LANE_HEIGHT_PX = 22


def _stream_rank(stream: str) -> tuple[int, str]:
    return (STREAM_ORDER.index(stream), "") if stream in STREAM_ORDER else (len(STREAM_ORDER), stream)


def as_trace(events: TraceResult | list[TraceEventResult]) -> TraceResult:
    return events if isinstance(events, TraceResult) else trace_from_events(events)


def lane_keys(trace: TraceResult | list[TraceEventResult]) -> list[tuple[str, str]]:
    """Every (rank class, stream) lane of the trace, in display order: rank classes in the
    order the trace first names them, streams in :data:`STREAM_ORDER`."""
    trace = as_trace(trace)
    classes = list(dict.fromkeys(rc for rc, _ in trace.lanes))
    streams: dict[str, set[str]] = {c: set() for c in classes}
    for rc, st in trace.lanes:
        streams[rc].add(st)
    return [(c, s) for c in classes for s in sorted(streams[c], key=_stream_rank)]


@dataclass(frozen=True)
class TimelineBars:
    """Bars to draw, as parallel arrays (seconds; lane and kind indices) with hover labels.

    ``bin_s`` is None when every interval is drawn as it is, else the bin width of a binned
    timeline (each bar is a run of bins in which that kind was the busiest).
    """

    lanes: list[tuple[str, str]]
    kinds: list[str]
    start_s: np.ndarray
    duration_s: np.ndarray
    lane: np.ndarray
    kind: np.ndarray
    labels: list[str]
    total: int
    bin_s: float | None

    @property
    def shown(self) -> int:
        return int(self.start_s.size)


def timeline_bars(events: TraceResult | list[TraceEventResult],
                  max_intervals: int = MAX_TIMELINE_INTERVALS) -> TimelineBars:
    """All intervals if they fit in ``max_intervals``, else at most that many binned bars."""
    trace = as_trace(events)
    lanes = lane_keys(trace)
    lane_of = {k: i for i, k in enumerate(lanes)}
    kinds = sorted(set(trace.kinds))
    kind_of = {k: i for i, k in enumerate(kinds)}
    a = trace.arrays()
    start, dur = a["start_s"].astype(float), a["duration_s"].astype(float)
    lane = np.array([lane_of[x] for x in trace.lanes], dtype=np.int64)[a["lane"]] \
        if trace.events else np.zeros(0, dtype=np.int64)
    kind = np.array([kind_of[x] for x in trace.kinds], dtype=np.int64)[a["kind"]] \
        if trace.events else np.zeros(0, dtype=np.int64)
    if trace.events <= max_intervals:
        names = trace.names
        # one label per distinct (op name, duration): a step repeats them per micro-batch
        keys = list(zip(a["name"].tolist(), dur.tolist(), strict=True))
        text = {k: f"{names[k[0]]} ({k[1] / MS:.3f} ms)" for k in dict.fromkeys(keys)}
        labels = list(map(text.__getitem__, keys))
        return TimelineBars(lanes, kinds, start, dur, lane, kind, labels, trace.events, None)
    num_bins = int(np.clip(max_intervals // len(lanes), 1, MAX_BINS_PER_LANE))
    t0, t1 = float(start.min()), float((start + dur).max())
    edges = np.linspace(t0, t1, num_bins + 1)
    rows = [_lane_runs(start[lane == i], dur[lane == i], kind[lane == i], len(kinds), edges)
            for i in range(len(lanes))]
    bars = [(i, a, b, k) for i, runs in enumerate(rows) for a, b, k in runs]
    bin_s = (t1 - t0) / num_bins
    return TimelineBars(
        lanes, kinds, np.array([edges[a] for _, a, _, _ in bars]),
        np.array([edges[b] - edges[a] for _, a, b, _ in bars]),
        np.array([i for i, _, _, _ in bars], dtype=np.int64),
        np.array([k for _, _, _, k in bars], dtype=np.int64),
        [f"{kinds[k]} busiest, {(edges[b] - edges[a]) / MS:.2f} ms" for _, a, b, k in bars],
        trace.events, bin_s)


def _busy_at(t: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Busy seconds of the intervals [start, end) before each time in ``t`` (prefix sums)."""
    s, e = np.sort(start), np.sort(end)
    cs = np.concatenate([[0.0], np.cumsum(s)])
    ce = np.concatenate([[0.0], np.cumsum(e)])
    ns = np.searchsorted(s, t, side="right")
    ne = np.searchsorted(e, t, side="right")
    return (ns * t - cs[ns]) - (ne * t - ce[ne])


def _lane_runs(start: np.ndarray, dur: np.ndarray, kind: np.ndarray, num_kinds: int,
               edges: np.ndarray) -> list[tuple[int, int, int]]:
    """(first edge, last edge, kind) of each run of bins where one kind is the busiest."""
    busy = np.zeros((num_kinds, edges.size - 1))
    for k in np.unique(kind):
        sel = kind == k
        busy[k] = np.diff(_busy_at(edges, start[sel], start[sel] + dur[sel]))
    dominant = np.where(busy.max(axis=0) > 0.0, busy.argmax(axis=0), -1)
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(dominant)) + 1, [dominant.size]])
    return [(int(a), int(b), int(dominant[a])) for a, b in zip(cuts[:-1], cuts[1:], strict=True)
            if dominant[a] >= 0]


def _segments(b: TimelineBars, kind_index: int,
              min_width_s: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """x (ms), y (lane) arrays of segments [start, end, gap] and hover text for one kind.

    Bars are drawn at least ``min_width_s`` wide (about a pixel) so short ops stay visible.
    """
    sel = np.flatnonzero(b.kind == kind_index)
    # float32 keeps 7 digits (10 ns on a 100 s step) at half the bytes in the HTML
    x = np.full(3 * sel.size, np.nan, dtype=np.float32)
    y = np.full(3 * sel.size, np.nan, dtype=np.float32)
    x[0::3] = b.start_s[sel] / MS
    x[1::3] = (b.start_s[sel] + np.maximum(b.duration_s[sel], min_width_s)) / MS
    y[0::3] = b.lane[sel]
    y[1::3] = b.lane[sel]
    text = [""] * (3 * sel.size)  # hover on the start only: half the text in the HTML
    text[0::3] = map(b.labels.__getitem__, sel.tolist())
    return x, y, text


def trace_claim(trace: TraceResult) -> str:
    """What trace.json holds, as the report says it: never more than the file has."""
    if trace.complete:
        return f"trace.json has every op ({trace.events:,})"
    return (f"trace.json has {trace.events:,} of the step's {trace.ops_simulated:,} ops, "
            f"to {trace.end_s / MS:,.0f} ms")


def timeline_spec(result: SimulationResult,
                  max_intervals: int = MAX_TIMELINE_INTERVALS) -> Figure:
    """Gantt of every stream of every rank class over one step (x in ms)."""
    title = "timeline of one step per rank class and stream"
    if not result.trace:
        return plain.empty(title, "the result has no trace (run with the DES fidelity)",
                           width_px=FIG_WIDTH_PX)
    b = timeline_bars(result.trace, max_intervals)
    colors = kind_colors(b.kinds)
    span_s = float((b.start_s + b.duration_s).max() - b.start_s.min())
    data = []
    for k, kind in enumerate(b.kinds):
        x, y, text = _segments(b, k, span_s / FIG_WIDTH_PX)
        if x.size == 0:
            continue
        data.append({"hoverinfo": "text", "hovertext": text,
                     "line": {"color": colors[kind], "width": LANE_HEIGHT_PX - 6},
                     "mode": "lines", "name": kind, "x": x, "y": y, "type": "scatter"})
    held = trace_claim(result.trace)
    if b.bin_s is not None:
        title += (f" (binned: {b.total:,} intervals in {b.bin_s / MS:.2f} ms bins, each bar "
                  f"the busiest kind; {b.shown:,} bars; {held})")
    else:
        title += f" ({b.total:,} intervals; {held})"
    return {"data": data, "layout": plain.layout(
        title, 160 + LANE_HEIGHT_PX * len(b.lanes), width_px=FIG_WIDTH_PX,
        xaxis=axis_title("time in step (ms)"),
        yaxis=axis_title("rank class / stream", tickvals=list(range(len(b.lanes))),
                         ticktext=[f"{c} {st}" for c, st in b.lanes],
                         range=[len(b.lanes) - 0.5, -0.5]))}


def fig_timeline(result: SimulationResult,
                 max_intervals: int = MAX_TIMELINE_INTERVALS) -> go.Figure:
    """:func:`timeline_spec` as a plotly Figure (the hover text as a numpy string array:
    plotly validates a list element by element, most of the time on a long trace)."""
    spec = timeline_spec(result, max_intervals)
    for trace in spec["data"]:
        trace["hovertext"] = np.asarray(trace["hovertext"], dtype=str)
    return plain.to_figure(spec)
