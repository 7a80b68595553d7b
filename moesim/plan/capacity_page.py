"""Capacity page: days to train against devices, ideal and with failures (goodput).

``fig_days_vs_devices`` draws, for every size the capacity search visited, the failure-free
days (tokens / best tokens/s) and the expected days with failures, checkpoints and stragglers,
with the Monte Carlo p50-p90 band, and the deadline. Offline HTML with plotly.min.js beside it.
"""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go

from moesim.plan.capacity import DAY_S, CapacityResult
from moesim.report.assets import figure_div, head, write_page
from moesim.report.style import base_layout, empty_figure

_STYLE = ("body{font-family:sans-serif;margin:16px 24px;color:#222}.notes{color:#555;"
          "font-size:13px}table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;"
          "border-bottom:1px solid #ddd;text-align:right}th{background:#f4f4f4}")


def curves(res: CapacityResult) -> list[dict[str, float | None]]:
    """Per visited size with a rate: devices, ideal days, expected, p50 and p90 goodput days."""
    rows: list[dict[str, float | None]] = []
    for n, rate in sorted(res.visited.items()):
        if rate <= 0:
            continue
        g = res.visited_goodput.get(n)
        rows.append({"devices": n, "ideal_days": res.tokens / rate / DAY_S,
                     "goodput_days": g.expected_wall_s / DAY_S if g else None,
                     "p50_days": g.p50_s / DAY_S if g else None,
                     "p90_days": g.p90_s / DAY_S if g else None,
                     "efficiency": g.efficiency if g else None})
    return rows


def fig_days_vs_devices(res: CapacityResult) -> go.Figure:
    title = f"Days to train {res.tokens:.3g} tokens against devices"
    rows = curves(res)
    if not rows:
        return empty_figure(title, "no visited size has a layout that runs")
    x = [r["devices"] for r in rows]
    fig = go.Figure()
    good = [r for r in rows if r["goodput_days"] is not None]
    if good:
        gx = [r["devices"] for r in good]
        fig.add_trace(go.Scatter(x=gx + gx[::-1], y=[r["p90_days"] for r in good]
                                 + [r["p50_days"] for r in good][::-1], fill="toself",
                                 fillcolor="rgba(214,39,40,0.15)", line={"width": 0},
                                 name="goodput p50-p90", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=gx, y=[r["goodput_days"] for r in good], mode="lines+markers",
                                 name="goodput (expected)", line={"color": "#d62728"}))
    fig.add_trace(go.Scatter(x=x, y=[r["ideal_days"] for r in rows], mode="lines+markers",
                             name="ideal (no failures)", line={"color": "#1f77b4", "dash": "dash"}))
    fig.add_hline(y=res.days, line_dash="dot", line_color="black",
                  annotation_text=f"deadline {res.days:g} days", annotation_position="top right")
    if res.devices:
        fig.add_vline(x=res.devices, line_dash="dot", line_color="#2ca02c",
                      annotation_text=f"answer {res.devices}", annotation_position="bottom right")
    fig.update_xaxes(title="devices", type="log")
    fig.update_yaxes(title="days to train", type="log")
    return base_layout(fig, title, height_px=480)


def _table(res: CapacityResult) -> str:
    head_ = "".join(f"<th>{c}</th>" for c in ("devices", "ideal days", "goodput days",
                                              "p50", "p90", "efficiency"))
    body = []
    for r in curves(res):
        cells = [f"{r['devices']:,}"] + [
            "-" if r[k] is None else f"{r[k]:.2f}"
            for k in ("ideal_days", "goodput_days", "p50_days", "p90_days")]
        cells.append("-" if r["efficiency"] is None else f"{100 * r['efficiency']:.1f}%")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head_}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_capacity_html(res: CapacityResult, name: str) -> str:
    title = f"moesim capacity: {name}"
    note = ("Each dot is a size the search visited with its best layout. Ideal: tokens over "
            "the failure-free throughput. Goodput: the expected wall time with failures, "
            "checkpoints and stragglers (Daly's closed form), and the Monte Carlo p50-p90 "
            "band (docs/goodput.md).")
    return "".join([head(title, _STYLE), f"<h1>{html.escape(title)}</h1>",
                    f"<p class='notes'>{html.escape(note)}</p>",
                    figure_div(fig_days_vs_devices(res), "fig-days"), _table(res),
                    "</body></html>"])


def write_capacity_html(res: CapacityResult, path: str | Path, name: str) -> Path:
    """The capacity page, with plotly.min.js beside it."""
    return write_page(path, render_capacity_html(res, name))
