"""Plan and sweep pages: offline HTML (plotly.js inlined once), one figure builder each.

``fig_pareto``: layouts of a search, throughput against memory headroom (or cost), with the
Pareto front. ``fig_sweep_axis``: one swept axis against throughput and peak memory.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.offline
from plotly.subplots import make_subplots

from moesim.io import write_text_atomic
from moesim.plan.search import PlanResult, pareto_front
from moesim.report.style import base_layout, empty_figure
from moesim.units import GB


def pareto_points(res: PlanResult, versus: str) -> tuple[list[tuple[float, float]], str]:
    """(tokens/s, second coordinate to maximize) per ranked layout and the axis title.

    ``versus`` 'memory': headroom in GB; 'cost': minus USD per million tokens (cheaper is
    better, so the front maximizes its negative).
    """
    pts: list[tuple[float, float]] = []
    for c in res.ranked:
        if versus == "cost":
            usd = res.usd_per_million_tokens(c)
            pts.append((c.tokens_per_s, -(usd if usd is not None else 0.0)))
        else:
            pts.append((c.tokens_per_s, c.memory.headroom_bytes / GB))
    title = "USD per million tokens" if versus == "cost" else "memory headroom (GB)"
    return pts, title


def fig_pareto(res: PlanResult, versus: str = "memory") -> go.Figure:
    """Every layout that fits as a dot; the Pareto front as a line; hover shows the layout."""
    title = f"{res.scenario} on {res.devices} devices: {len(res.ranked)} layouts that fit"
    if not res.ranked:
        return empty_figure(title, "no layout fits")
    pts, ytitle = pareto_points(res, versus)
    sign = -1.0 if versus == "cost" else 1.0
    labels = [c.layout.label for c in res.ranked]
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=[p[0] for p in pts], y=[sign * p[1] for p in pts], mode="markers", name="layouts",
        text=labels, marker={"size": 5, "opacity": 0.5},
        hovertemplate="%{text}<br>%{x:.4g} tokens/s<br>%{y:.4g}<extra></extra>"))
    front = sorted(pareto_front(pts), key=lambda i: pts[i][0])
    fig.add_trace(go.Scatter(
        x=[pts[i][0] for i in front], y=[sign * pts[i][1] for i in front], mode="lines+markers",
        name="Pareto front", text=[labels[i] for i in front],
        hovertemplate="%{text}<br>%{x:.4g} tokens/s<br>%{y:.4g}<extra></extra>"))
    fig.update_xaxes(title="throughput (tokens/s, analytic or DES)")
    fig.update_yaxes(title=ytitle)
    return base_layout(fig, title, height_px=600)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def fig_sweep_axis(records: list[dict[str, Any]], axis: str) -> go.Figure:
    """Throughput and peak memory of every ok point against one swept axis."""
    ok = [r for r in records if r["status"] == "ok"]
    title = f"{axis}: {len(ok)} of {len(records)} points ok"
    if not ok:
        return empty_figure(title, "no point succeeded")
    xs = [r["overrides"].get(axis) for r in ok]
    if not _numeric(xs):
        xs = [json.dumps(x, sort_keys=True) for x in xs]
    hover = [", ".join(f"{k}={v}" for k, v in r["overrides"].items()) for r in ok]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("throughput", "peak memory"))
    tps = [r["metrics"].get("tokens_per_s") for r in ok]
    mem = [(r["metrics"].get("peak_bytes") or 0.0) / GB for r in ok]
    for col, ys, name in ((1, tps, "tokens/s"), (2, mem, "peak GB")):
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=name, text=hover,
                                 hovertemplate="%{text}<br>%{y:.4g}<extra></extra>"),
                      row=1, col=col)
        fig.update_xaxes(title=axis, row=1, col=col)
    fig.update_yaxes(title="tokens/s", row=1, col=1)
    fig.update_yaxes(title="peak memory (GB)", row=1, col=2)
    return base_layout(fig, title)


def page(title: str, figures: list[go.Figure], notes: list[str] | None = None) -> str:
    """One self-contained HTML page; plotly.js is inlined once, no network needed."""
    esc = html.escape(title)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc}</title>",
             f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script>",
             f"</head><body style='font-family:sans-serif'><h1>{esc}</h1>"]
    parts += [f"<p>{html.escape(n)}</p>" for n in notes or []]
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{i}",
                                 config={"displaylogo": False}))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_plan_html(res: PlanResult, path: str | Path, versus: str = "memory") -> Path:
    """The Pareto page of a layout search."""
    excluded = ", ".join(f"{k}: {v}" for k, v in res.excluded.most_common())
    notes = [f"{res.considered} layouts considered; excluded: {excluded or 'none'}"]
    return write_text_atomic(path, page(f"moesim plan: {res.scenario}",
                                        [fig_pareto(res, versus)], notes))


def write_sweep_html(records: list[dict[str, Any]], axes: list[str], path: str | Path,
                     name: str) -> Path:
    """One figure per swept axis."""
    figs = [fig_sweep_axis(records, a) for a in axes]
    return write_text_atomic(path, page(f"moesim sweep: {name}", figs))
