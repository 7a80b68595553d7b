"""Step-level figures: the headline table, the step breakdown and memory per rank class.

Every builder reads a :class:`~moesim.results.schema.SimulationResult` only: ``*_spec``
returns the figure as plain data (:mod:`moesim.report.plain`, what the report page draws),
``fig_*`` the same figure as a plotly Figure; displayed times are milliseconds and memory GiB
(factors from ``moesim.units``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from moesim.report import plain
from moesim.report.plain import Figure, axis_title
from moesim.report.style import FIG_WIDTH_PX, kind_colors
from moesim.results.schema import SimulationResult
from moesim.units import GIB, MS

if TYPE_CHECKING:
    import plotly.graph_objects as go


@dataclass(frozen=True)
class HeadlineRow:
    """One headline metric: a machine name (unit in the name), the SI value and its display."""

    metric: str
    label: str
    value: float | int | str
    display: str


def _min_headroom(result: SimulationResult) -> tuple[float | None, str]:
    """Smallest memory headroom over rank classes (bytes) and the class that has it."""
    if not result.memory:
        return None, ""
    worst = min(result.memory, key=lambda m: m.memory.headroom_bytes)
    return worst.memory.headroom_bytes, worst.rank_class


def headline_rows(result: SimulationResult) -> list[HeadlineRow]:
    """The headline numbers of one step, in display order."""
    headroom, worst = _min_headroom(result)
    rows = [
        HeadlineRow("step_time_s", "step time", result.step_time_s,
                    f"{result.step_time_s / MS:,.2f} ms"),
        HeadlineRow("tokens_per_s", "throughput", result.tokens_per_s,
                    f"{result.tokens_per_s:,.0f} tokens/s"),
        HeadlineRow("tokens_per_s_per_device", "throughput per device",
                    result.tokens_per_s_per_device,
                    f"{result.tokens_per_s_per_device:,.1f} tokens/s"),
        HeadlineRow("model_tflops_per_device", "model TFLOP/s per device",
                    result.model_tflops_per_device,
                    f"{result.model_tflops_per_device:,.1f} TFLOP/s"),
        HeadlineRow("mfu", "MFU", result.mfu, f"{result.mfu * 100:.1f} %"),
    ]
    if headroom is not None:
        state = "fits" if result.fits_memory else "DOES NOT FIT"
        rows.append(HeadlineRow("min_memory_headroom_bytes", "memory headroom (tightest class)",
                                headroom, f"{headroom / GIB:,.2f} GiB on {worst} ({state})"))
    b = result.breakdown
    if b.pipeline_bubble_s > 0:
        rows.append(HeadlineRow("pipeline_bubble_s", "pipeline bubble (critical class)",
                                b.pipeline_bubble_s, f"{b.pipeline_bubble_s / MS:,.2f} ms"))
    for key, label in (("forward", "unpaired forward chunks"),
                       ("backward", "unpaired backward chunks"),
                       ("weight", "deferred weight gradients"),
                       ("overlapped", "overlapped F&B pairs")):
        if key in b.pipeline_phases_s:
            v = b.pipeline_phases_s[key]
            rows.append(HeadlineRow(f"pipeline_{key}_s", f"DualPipe: {label}", v,
                                    f"{v / MS:,.2f} ms"))
    src = result.compute_time_by_source_s
    if src:
        total = sum(src.values())
        parts = ", ".join(f"{k} {v / total * 100:.1f} %" for k, v in sorted(src.items()))
        share = result.measured_compute_share
        rows.append(HeadlineRow("measured_compute_share", "compute time from measurements",
                                share, f"{share * 100:.1f} % ({parts})"))
    rows += [
        HeadlineRow("drop_fraction", "dropped tokens", result.routing.drop_fraction,
                    f"{result.routing.drop_fraction * 100:.2f} %"),
        HeadlineRow("imbalance_max_over_mean", "expert load max / mean",
                    result.routing.imbalance_max_over_mean,
                    f"{result.routing.imbalance_max_over_mean:.3f}"),
        HeadlineRow("num_devices", "devices", result.num_devices, f"{result.num_devices:,}"),
        HeadlineRow("tokens_per_step", "tokens per step", result.tokens_per_step,
                    f"{result.tokens_per_step:,}"),
        HeadlineRow("fidelity", "fidelity", result.fidelity, result.fidelity),
    ]
    return rows


def headline_spec(result: SimulationResult) -> Figure:
    """The headline table (step time, tokens/s, TFLOP/s per device, MFU, headroom, drops)."""
    rows = headline_rows(result)
    table = {
        "cells": {"align": "left", "font": {"size": 13}, "height": 26,
                  "values": [[r.label for r in rows], [r.display for r in rows]]},
        "columnwidth": [2, 3],
        "header": {"align": "left", "font": {"size": 14}, "values": ["metric", "value"]},
        "type": "table"}
    return {"data": [table], "layout": plain.layout(
        f"{result.scenario}: headline", 160 + 28 * (len(rows) + 1), width_px=FIG_WIDTH_PX)}


def fig_headline(result: SimulationResult) -> go.Figure:
    """:func:`headline_spec` as a plotly Figure."""
    return plain.to_figure(headline_spec(result))


def breakdown_segments(result: SimulationResult) -> list[tuple[str, float]]:
    """(label, seconds) of every non-zero part of the step, compute first, waits last."""
    b = result.breakdown
    parts = [(f"compute: {k}", v) for k, v in sorted(b.compute_s.items())]
    parts += [(f"exposed comm: {k}", v) for k, v in sorted(b.exposed_communication_s.items())]
    parts += [("pipeline bubble", b.pipeline_bubble_s), ("imbalance wait", b.imbalance_wait_s),
              ("host wait", b.host_wait_s), ("optimizer", b.optimizer_s), ("other", b.other_s)]
    return [(label, s) for label, s in parts if s > 0.0]


# One colour per breakdown bucket, never repeated within a step: compute kinds in blues and
# teals, exposed communication in reds and oranges, the waits in greys, purple and gold.
_COMPUTE_COLORS = ("#1f4e99", "#3b78c9", "#6a9fe0", "#a3c6f0", "#0b6e69", "#179c92", "#52c3b9",
                   "#95ddd5", "#34495e", "#5d7ea3", "#8fb0cf", "#c4d8ea")
_COMM_COLORS = ("#b03a2e", "#e0653f", "#f29b54", "#f6c453", "#c2185b", "#e87aa4", "#8e3b1d",
                "#d9956a")
_OTHER_COLORS = (("pipeline bubble", "#8c8c8c"), ("imbalance wait", "#7b3fa0"),
                 ("host wait", "#5b5b5b"), ("optimizer", "#b8860b"), ("other", "#c8c8c8"))


def breakdown_colors(labels: list[str]) -> dict[str, str]:
    """A distinct colour for each breakdown label (compute, exposed comm, waits by family)."""
    other = dict(_OTHER_COLORS)
    compute = [x for x in labels if x.startswith("compute: ")]
    comm = [x for x in labels if x.startswith("exposed comm: ")]
    out = {x: _COMPUTE_COLORS[i % len(_COMPUTE_COLORS)] for i, x in enumerate(compute)}
    out |= {x: _COMM_COLORS[i % len(_COMM_COLORS)] for i, x in enumerate(comm)}
    spare = [c for c in _COMPUTE_COLORS[len(compute):] + _COMM_COLORS[len(comm):]]
    for x in labels:
        if x not in out:
            out[x] = other.get(x) or (spare.pop() if spare else "#999999")
    return out


def breakdown_spec(result: SimulationResult) -> Figure:
    """Where the step goes on the critical rank class: the composition as one bar of 100 %
    (top) and every bucket ranked by its time with ms and % of the step printed (bottom)."""
    title = "step breakdown"
    segments = breakdown_segments(result)
    if not segments:
        return plain.empty(title, "the result has no step breakdown", width_px=FIG_WIDTH_PX)
    colors = breakdown_colors([label for label, _ in segments])
    who = result.most_loaded_rank_class or "critical rank class"
    total = sum(sec for _, sec in segments)
    step = result.step_time_s
    # Fixed pixel sizes whatever the bucket count: a 44 px share bar, 90 px for its axis.
    height = 300 + 26 * len(segments)
    plot_px = height - 150  # less the top and bottom margins set below
    top, bottom = plain.stacked_domains([44 / plot_px, 1 - 134 / plot_px], 90 / plot_px)
    data = []
    for label, sec in segments:  # compute, comm, waits: contiguous families
        pct = 100.0 * sec / step
        data.append({
            "hovertemplate": f"{label}: {sec / MS:,.2f} ms ({pct:.1f}%)<extra></extra>",
            "insidetextanchor": "middle", "marker": {"color": colors[label]}, "name": label,
            "orientation": "h", "showlegend": False,
            "text": [f"{label.split(': ')[-1]} {pct:.0f}%"], "textangle": 0,
            "textposition": "inside", "x": [pct], "y": ["step"], "type": "bar",
            "xaxis": "x", "yaxis": "y"})
    ranked = sorted(segments, key=lambda ls: -ls[1])
    data.append({
        "cliponaxis": False, "hovertemplate": "%{y}: %{x:,.2f} ms<extra></extra>",
        "marker": {"color": [colors[label] for label, _ in ranked]}, "name": "buckets",
        "orientation": "h", "showlegend": False,
        "text": [f"{sec / MS:,.1f} ms · {100.0 * sec / step:.1f}%" for _, sec in ranked],
        "textposition": "outside", "x": [sec / MS for _, sec in ranked],
        "y": [label for label, _ in ranked], "type": "bar", "xaxis": "x2", "yaxis": "y2"})
    longest = ranked[0][1] / MS
    lay = plain.layout(
        f"{title} on {who}: {total / MS:,.2f} ms in buckets, step {step / MS:,.2f} ms "
        "(percentages of the step)", height, width_px=FIG_WIDTH_PX,
        margin={"l": 190, "r": 40, "t": 90, "b": 60},
        xaxis={"anchor": "y", "domain": [0.0, 1.0], "title": {"text": "share of the step (%)"},
               "range": [0, max(100.0, 100.0 * total / step)]},
        yaxis={"anchor": "x", "domain": top, "showticklabels": False},
        xaxis2={"anchor": "y2", "domain": [0.0, 1.0], "title": {"text": "time per step (ms)"},
                "range": [0, longest * 1.25]},
        yaxis2={"anchor": "x2", "domain": bottom, "title": {"text": "bucket"},
                "autorange": "reversed", "type": "category"},
        uniformtext={"minsize": 10, "mode": "hide"}, barmode="stack")
    return {"data": data, "layout": lay}


def fig_breakdown(result: SimulationResult) -> go.Figure:
    """:func:`breakdown_spec` as a plotly Figure."""
    return plain.to_figure(breakdown_spec(result))


def memory_spec(result: SimulationResult) -> Figure:
    """Peak memory per rank class (GiB) stacked by kind, with each class's HBM capacity."""
    title = "peak memory per device, by rank class"
    if not result.memory:
        return plain.empty(title, "the result has no memory breakdown", width_px=FIG_WIDTH_PX)
    classes = [m.rank_class for m in result.memory]
    kinds = sorted({k for m in result.memory for k in m.memory.breakdown_bytes})
    colors = kind_colors(kinds)
    data = [{"hovertemplate": f"{kind}: %{{y:.2f}} GiB<extra>%{{x}}</extra>",
             "marker": {"color": colors[kind]}, "name": kind, "x": classes,
             "y": [m.memory.breakdown_bytes.get(kind, 0.0) / GIB for m in result.memory],
             "type": "bar"} for kind in kinds]
    data.append({"line": {"color": "black", "dash": "dash", "shape": "hvh"},
                 "mode": "lines+markers", "name": "HBM capacity", "x": classes,
                 "y": [m.memory.capacity_bytes / GIB for m in result.memory],
                 "type": "scatter"})
    mult = ", ".join(f"{m.rank_class} x{m.multiplicity}" for m in result.memory[:8])
    more = " ..." if len(result.memory) > 8 else ""
    return {"data": data, "layout": plain.layout(
        f"{title} ({mult}{more})", 480, width_px=FIG_WIDTH_PX, barmode="stack",
        xaxis=axis_title("rank class", type="category"),
        yaxis=axis_title("memory per device (GiB)"))}


def fig_memory(result: SimulationResult) -> go.Figure:
    """:func:`memory_spec` as a plotly Figure."""
    return plain.to_figure(memory_spec(result))
