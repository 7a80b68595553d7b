"""Step-level figures: the headline table, the step breakdown and memory per rank class.

Every builder reads a :class:`~moesim.results.schema.SimulationResult` only and returns a
plotly figure; displayed times are milliseconds and memory GiB (factors from ``moesim.units``).
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

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


def fig_breakdown(result: SimulationResult) -> go.Figure:
    """Where the step goes on the critical rank class: the composition as one bar of 100 %
    (top) and every bucket ranked by its time with ms and % of the step printed (bottom)."""
    title = "step breakdown"
    segments = breakdown_segments(result)
    if not segments:
        return empty_figure(title, "the result has no step breakdown")
    colors = breakdown_colors([label for label, _ in segments])
    who = result.most_loaded_rank_class or "critical rank class"
    total = sum(sec for _, sec in segments)
    step = result.step_time_s
    # Fixed pixel sizes whatever the bucket count: a 44 px share bar, 90 px for its axis.
    height = 300 + 26 * len(segments)
    plot_px = height - 150  # less the top and bottom margins set below
    fig = make_subplots(rows=2, cols=1, vertical_spacing=90 / plot_px,
                        row_heights=[44 / plot_px, 1 - 134 / plot_px])
    for label, sec in segments:  # compute, comm, waits: contiguous families
        pct = 100.0 * sec / step
        fig.add_trace(go.Bar(
            y=["step"], x=[pct], orientation="h", name=label, marker_color=colors[label],
            text=[f"{label.split(': ')[-1]} {pct:.0f}%"], textposition="inside",
            insidetextanchor="middle", textangle=0, showlegend=False,
            hovertemplate=f"{label}: {sec / MS:,.2f} ms ({pct:.1f}%)<extra></extra>"),
            row=1, col=1)
    ranked = sorted(segments, key=lambda ls: -ls[1])
    fig.add_trace(go.Bar(
        y=[label for label, _ in ranked], x=[sec / MS for _, sec in ranked], orientation="h",
        marker_color=[colors[label] for label, _ in ranked], showlegend=False, name="buckets",
        text=[f"{sec / MS:,.1f} ms · {100.0 * sec / step:.1f}%" for _, sec in ranked],
        textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:,.2f} ms<extra></extra>"), row=2, col=1)
    fig.update_layout(barmode="stack", uniformtext={"minsize": 10, "mode": "hide"})
    fig.update_xaxes(title_text="share of the step (%)", row=1, col=1,
                     range=[0, max(100.0, 100.0 * total / step)])
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    longest = ranked[0][1] / MS
    fig.update_xaxes(title_text="time per step (ms)", range=[0, longest * 1.25], row=2, col=1)
    fig.update_yaxes(title_text="bucket", autorange="reversed", type="category", row=2, col=1)
    fig = base_layout(fig, f"{title} on {who}: {total / MS:,.2f} ms in buckets, step "
                      f"{step / MS:,.2f} ms (percentages of the step)", height_px=height)
    fig.update_layout(margin={"l": 190, "r": 40, "t": 90, "b": 60})
    return fig


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
