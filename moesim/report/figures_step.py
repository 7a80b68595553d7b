"""Step-level figures: the headline table, the step breakdown and memory per rank class.

Every builder reads a :class:`~moesim.results.schema.SimulationResult` only and returns a
plotly figure; displayed times are milliseconds and memory GiB (factors from ``moesim.units``).
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from moesim.report.style import base_layout, empty_figure, kind_colors
from moesim.results.schema import SimulationResult
from moesim.units import GIB, MS


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


def fig_headline(result: SimulationResult) -> go.Figure:
    """The headline table (step time, tokens/s, TFLOP/s per device, MFU, headroom, drops)."""
    rows = headline_rows(result)
    fig = go.Figure(go.Table(
        columnwidth=[2, 3],
        header={"values": ["metric", "value"], "align": "left", "font": {"size": 14}},
        cells={"values": [[r.label for r in rows], [r.display for r in rows]],
               "align": "left", "font": {"size": 13}, "height": 26},
    ))
    return base_layout(fig, f"{result.scenario}: headline", height_px=160 + 28 * (len(rows) + 1))


def breakdown_segments(result: SimulationResult) -> list[tuple[str, float]]:
    """(label, seconds) of every non-zero part of the step, compute first, waits last."""
    b = result.breakdown
    parts = [(f"compute: {k}", v) for k, v in sorted(b.compute_s.items())]
    parts += [(f"exposed comm: {k}", v) for k, v in sorted(b.exposed_communication_s.items())]
    parts += [("pipeline bubble", b.pipeline_bubble_s), ("imbalance wait", b.imbalance_wait_s),
              ("host wait", b.host_wait_s), ("optimizer", b.optimizer_s), ("other", b.other_s)]
    return [(label, s) for label, s in parts if s > 0.0]


def fig_breakdown(result: SimulationResult) -> go.Figure:
    """Stacked bar of the step (ms): compute kinds, exposed comm kinds, bubble, imbalance."""
    title = "step breakdown"
    segments = breakdown_segments(result)
    if not segments:
        return empty_figure(title, "the result has no step breakdown")
    colors = kind_colors([label for label, _ in segments])
    who = result.most_loaded_rank_class or "critical rank class"
    fig = go.Figure()
    for label, seconds in segments:
        fig.add_trace(go.Bar(
            y=[who], x=[seconds / MS], name=label, orientation="h",
            marker_color=colors[label],
            hovertemplate=f"{label}: %{{x:.3f}} ms<extra></extra>",
        ))
    fig.add_vline(x=result.step_time_s / MS, line_dash="dash", line_color="black",
                  annotation_text=f"step {result.step_time_s / MS:,.2f} ms")
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="time per step (ms)")
    fig.update_yaxes(title_text="rank class")
    # tall enough for one legend entry per segment (about 20 px each)
    return base_layout(fig, f"{title} on {who} (sum {sum(s for _, s in segments) / MS:,.2f} ms)",
                       height_px=max(330, 150 + 20 * len(segments)))


def fig_memory(result: SimulationResult) -> go.Figure:
    """Peak memory per rank class (GiB) stacked by kind, with each class's HBM capacity."""
    title = "peak memory per device, by rank class"
    if not result.memory:
        return empty_figure(title, "the result has no memory breakdown")
    classes = [m.rank_class for m in result.memory]
    kinds = sorted({k for m in result.memory for k in m.memory.breakdown_bytes})
    colors = kind_colors(kinds)
    fig = go.Figure()
    for kind in kinds:
        fig.add_trace(go.Bar(
            x=classes, name=kind, marker_color=colors[kind],
            y=[m.memory.breakdown_bytes.get(kind, 0.0) / GIB for m in result.memory],
            hovertemplate=f"{kind}: %{{y:.2f}} GiB<extra>%{{x}}</extra>",
        ))
    fig.add_trace(go.Scatter(
        x=classes, y=[m.memory.capacity_bytes / GIB for m in result.memory],
        name="HBM capacity", mode="lines+markers",
        line={"color": "black", "dash": "dash", "shape": "hvh"},
    ))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="rank class", type="category")
    fig.update_yaxes(title_text="memory per device (GiB)")
    mult = ", ".join(f"{m.rank_class} x{m.multiplicity}" for m in result.memory[:8])
    more = " ..." if len(result.memory) > 8 else ""
    return base_layout(fig, f"{title} ({mult}{more})", height_px=480)
