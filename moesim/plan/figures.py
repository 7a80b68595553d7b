"""Plan and sweep pages: offline HTML that loads plotly.min.js from its own folder.

Plan page: ``fig_pareto`` (every ranked layout, throughput against memory headroom or cost,
the Pareto front, the best ranks numbered) beside a sortable table of the ranked layouts.
Sweep page: ``fig_sweep_parallel`` (one parallel-coordinates line per point, swept axes then
metrics, infeasible points in red), ``fig_sweep_scatter`` (throughput against peak memory with
the HBM capacity) and a sortable table of every point, invalid ones included.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from moesim.plan.search import Candidate, PlanResult, pareto_front, summary_rows
from moesim.report.assets import SORT_SCRIPT, TABLE_STYLE, figure_div, head, write_page
from moesim.report.style import base_layout, empty_figure
from moesim.units import GIB

# How many of the best layouts get their rank printed beside their dot.
NUMBERED = 10
STATUS_COLORS = (("ok", "#1f77b4"), ("infeasible", "#d62728"))

_STYLE = ("body{font-family:sans-serif;margin:16px 24px;color:#222}h2{font-size:18px}"
          ".row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}"
          ".scroll{max-height:640px;overflow:auto}.notes{color:#555;font-size:13px}"
          ".row>.scroll{flex:1 1 480px;min-width:0}"
          + TABLE_STYLE + "#ranked{font-size:12px}#ranked td.layout{white-space:normal;"
          "min-width:190px;max-width:230px;text-align:left}")


# --- plan -------------------------------------------------------------------------------

def pareto_points(res: PlanResult, versus: str) -> tuple[list[tuple[float, float]], str]:
    """(tokens/s, second coordinate to maximize) per ranked layout and the y axis title.

    ``versus`` 'memory': headroom in GiB; 'cost': minus USD per million tokens (cheaper is
    better, so the front maximizes its negative).
    """
    pts: list[tuple[float, float]] = []
    for c in res.ranked:
        if versus == "cost":
            usd = res.usd_per_million_tokens(c)
            pts.append((c.tokens_per_s, -(usd if usd is not None else 0.0)))
        else:
            pts.append((c.tokens_per_s, c.memory.headroom_bytes / GIB))
    title = ("cost (USD per million tokens)" if versus == "cost"
             else "memory headroom on the tightest device (GiB)")
    return pts, title


def _hover(c: Candidate, rank: int) -> str:
    return (f"#{rank} {c.layout.label} ({c.fidelity})<br>{c.tokens_per_s:,.0f} tokens/s, "
            f"peak {c.memory.peak_bytes / GIB:,.2f} GiB")


def fig_pareto(res: PlanResult, versus: str = "memory") -> go.Figure:
    """Every ranked layout as a dot (diamonds: simulated with the DES), the Pareto front as
    a line, the best ``NUMBERED`` numbered by rank and the best one named in the title."""
    title = f"{res.scenario} on {res.devices} devices: {len(res.ranked)} ranked layouts"
    if not res.ranked:
        return empty_figure(title, "no layout fits")
    pts, ytitle = pareto_points(res, versus)
    sign = -1.0 if versus == "cost" else 1.0
    xs, ys = [p[0] for p in pts], [sign * p[1] for p in pts]
    fig = go.Figure()
    front = sorted(pareto_front(pts), key=lambda i: pts[i][0])
    fig.add_trace(go.Scatter(
        x=[xs[i] for i in front], y=[ys[i] for i in front], mode="lines", name="Pareto front",
        line={"color": "#ff7f0e", "width": 2}, hoverinfo="skip"))
    for fidelity, symbol in (("analytic", "circle"), ("des", "diamond")):
        idx = [i for i, c in enumerate(res.ranked) if c.fidelity == fidelity]
        if not idx:
            continue
        fig.add_trace(go.Scatter(
            x=[xs[i] for i in idx], y=[ys[i] for i in idx], mode="markers+text",
            name=f"layouts ({'DES' if fidelity == 'des' else 'analytic'})",
            marker={"symbol": symbol, "size": 9 if fidelity == "des" else 7,
                    "color": "#1f77b4" if fidelity == "analytic" else "#2ca02c",
                    "line": {"width": 1, "color": "white"}},
            text=[f"#{i + 1}" if i < NUMBERED else "" for i in idx], textposition="top center",
            textfont={"size": 11}, hovertext=[_hover(res.ranked[i], i + 1) for i in idx],
            hovertemplate="%{hovertext}<extra></extra>"))
    best = res.ranked[0]
    title += (f"<br><span style='font-size:12px'>#1 {html.escape(best.layout.label)} "
              f"({best.tokens_per_s:,.0f} tokens/s, {best.fidelity})</span>")
    fig.update_xaxes(title="throughput (tokens/s)", rangemode="tozero")
    fig.update_yaxes(title=ytitle)
    fig = base_layout(fig, title, height_px=600)
    fig.update_layout(width=560, legend={"orientation": "h", "y": -0.15},
                      margin={"l": 70, "r": 20, "t": 90, "b": 60})
    return fig


def _fmt(v: Any, scale: float = 1.0, spec: str = ",.4g") -> tuple[str, str]:
    """(cell text, sort value) of a number that may be missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-", ""
    return format(v / scale, spec), repr(v / scale)


def _cell(text: str, value: str = "", cls: str = "") -> str:
    attrs = (f" data-value='{html.escape(value)}'" if value else "") + (
        f" class='{cls}'" if cls else "")
    return f"<td{attrs}>{html.escape(text)}</td>"


def plan_table(res: PlanResult) -> str:
    """The ranked layouts as a sortable table (click a header to sort)."""
    cols = ("#", "layout", "fidelity", "tokens/s", "step (s)", "MFU", "peak (GiB)",
            "headroom (GiB)", "USD/Mtok")
    headers = "".join(f"<th class='text'>{c}</th>" if c in ("layout", "fidelity")
                      else f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in summary_rows(res, len(res.ranked)):
        cells = [_cell(str(r["rank"]), str(r["rank"])), _cell(r["layout"], cls="layout"),
                 _cell(r["fidelity"], cls="text"), _cell(*_fmt(r["tokens_per_s"], spec=",.0f")),
                 _cell(*_fmt(r["step_time_s"], spec=".3f")), _cell(*_fmt(r["mfu"], spec=".3f")),
                 _cell(*_fmt(r["peak_bytes"], GIB, ".2f")),
                 _cell(*_fmt(r["headroom_bytes"], GIB, ".2f")),
                 _cell(*_fmt(r["usd_per_million_tokens"], spec=".3f"))]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='sortable' id='ranked'><thead><tr>{headers}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _excluded_table(res: PlanResult) -> str:
    rows = "".join(f"<tr><td class='text'>{html.escape(k)}</td><td>{v:,}</td></tr>"
                   for k, v in sorted(res.excluded.items(), key=lambda kv: (-kv[1], kv[0])))
    return ("<table class='sortable'><thead><tr><th class='text'>excluded because</th>"
            f"<th>layouts</th></tr></thead><tbody>{rows}</tbody></table>")


def render_plan_html(res: PlanResult, versus: str = "memory") -> str:
    title = f"moesim plan: {res.scenario} on {res.devices} devices"
    note = (f"{res.considered:,} layouts considered, {res.fitting:,} fit in memory, "
            f"{len(res.ranked)} ranked (the analytic engine; DES for the best few). Click a "
            "column header to sort.")
    return "".join([
        head(title, _STYLE), f"<h1>{html.escape(title)}</h1>",
        f"<p class='notes'>{html.escape(note)}</p><div class='row'>",
        f"<div>{figure_div(fig_pareto(res, versus), 'fig-pareto')}</div>",
        f"<div class='scroll'><h2>Ranked layouts</h2>{plan_table(res)}</div></div>",
        f"<h2>Excluded layouts</h2>{_excluded_table(res)}", SORT_SCRIPT, "</body></html>"])


def write_plan_html(res: PlanResult, path: str | Path, versus: str = "memory") -> Path:
    """The plan page, with plotly.min.js beside it."""
    return write_page(path, render_plan_html(res, versus))


# --- sweep ------------------------------------------------------------------------------

def value_label(v: Any) -> str:
    """A swept value as a short label: null, true, 1.25, zipf exponent=0.5."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        kind = v.get("kind")
        rest = " ".join(f"{k}={value_label(x)}" for k, x in v.items() if k != "kind")
        return " ".join(x for x in (str(kind) if kind is not None else "", rest) if x) or "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value_label(x) for x in v) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _axis_dimension(axis: str, values: list[Any]) -> dict[str, Any]:
    """A parcoords dimension for one swept axis: numeric with ticks at the swept values, or
    categorical (one tick per distinct value, in sweep order, labelled readably)."""
    label = axis.rsplit(".", 1)[-1]
    if _numeric(values):
        ticks = sorted(set(values))
        return {"label": label, "values": values, "tickvals": ticks,
                "ticktext": [value_label(t) for t in ticks]}
    order: dict[str, int] = {}
    for v in values:
        order.setdefault(value_label(v), len(order))
    codes = [order[value_label(v)] for v in values]
    return {"label": label, "values": codes, "tickvals": list(order.values()),
            "ticktext": list(order), "range": [-0.5, len(order) - 0.5] if len(order) == 1
            else [0, len(order) - 1]}


def _plotted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points with numbers to draw: ok, and infeasible ones the engine still priced."""
    pts = [r for r in records if r["status"] in ("ok", "infeasible")
           and r["metrics"].get("tokens_per_s") is not None]
    return sorted(pts, key=lambda r: r["status"] == "ok")  # ok last


def fig_sweep_parallel(records: list[dict[str, Any]], axes: list[str]) -> go.Figure:
    """One line per point through the swept axes and the metrics (tokens/s, step time, peak
    memory); blue lines ran, red lines do not fit (infeasible). Drag along an axis to filter."""
    counts = {s: sum(r["status"] == s for r in records) for s in ("ok", "infeasible", "invalid")}
    title = (f"{len(records)} points: {counts['ok']} ok (blue), {counts['infeasible']} "
             f"infeasible (red), {counts['invalid']} invalid (not drawn, see the table)")
    pts = _plotted(records)
    if not pts:
        return empty_figure(title, "no point has numbers to draw")
    dims = [_axis_dimension(a, [r["overrides"].get(a) for r in pts]) for a in axes]
    for key, label, scale in (("tokens_per_s", "throughput (tokens/s)", 1.0),
                              ("step_time_s", "step time (s)", 1.0),
                              ("peak_bytes", "peak memory (GiB)", GIB)):
        vals = [r["metrics"].get(key) for r in pts]
        if all(isinstance(v, (int, float)) for v in vals):
            dims.append({"label": label, "values": [v / scale for v in vals]})
    colors = dict(STATUS_COLORS)
    codes = [1 if r["status"] == "ok" else 0 for r in pts]  # higher values draw on top
    fig = go.Figure(go.Parcoords(
        dimensions=dims, labelangle=0, labelside="top",
        line={"color": codes, "cmin": 0, "cmax": 1, "showscale": True,
              "colorscale": [[0, colors["infeasible"]], [0.5, colors["infeasible"]],
                             [0.5, colors["ok"]], [1, colors["ok"]]],
              "colorbar": {"tickvals": [0.25, 0.75], "ticktext": ["infeasible", "ok"],
                           "title": {"text": "status"}, "len": 0.5}}))
    fig = base_layout(fig, title, height_px=520)
    fig.update_layout(margin={"l": 80, "r": 80, "t": 120, "b": 40})
    return fig


def fig_sweep_scatter(records: list[dict[str, Any]]) -> go.Figure:
    """Throughput against peak memory per point, infeasible ones as red crosses, with the
    device memory capacity (where every point has the same)."""
    title = "throughput against peak memory per device"
    pts = _plotted(records)
    if not pts:
        return empty_figure(title, "no point has numbers to draw")
    fig = go.Figure()
    for status, symbol in (("ok", "circle"), ("infeasible", "x")):
        sel = [r for r in pts if r["status"] == status]
        if not sel:
            continue
        fig.add_trace(go.Scatter(
            x=[(r["metrics"].get("peak_bytes") or 0.0) / GIB for r in sel],
            y=[r["metrics"]["tokens_per_s"] for r in sel], mode="markers",
            name=f"{status} ({len(sel)})", marker={"symbol": symbol, "size": 9,
                                                  "color": dict(STATUS_COLORS)[status]},
            hovertext=[", ".join(f"{k}={value_label(v)}" for k, v in r["overrides"].items())
                       for r in sel], hovertemplate="%{hovertext}<br>%{y:,.0f} tokens/s, "
            "peak %{x:.2f} GiB<extra></extra>"))
    # capacity = peak + headroom, to the MB (float noise must not split equal capacities)
    caps = {round(((r["metrics"].get("peak_bytes") or 0.0) + r["metrics"]["headroom_bytes"])
                  / 1e6) for r in pts if r["metrics"].get("headroom_bytes") is not None}
    if len(caps) == 1:
        cap = caps.pop() * 1e6 / GIB
        fig.add_vline(x=cap, line_dash="dash", line_color="black",
                      annotation_text=f"capacity {cap:.2f} GiB", annotation_position="top")
    fig.update_xaxes(title="peak memory per device (GiB)")
    fig.update_yaxes(title="throughput (tokens/s)")
    return base_layout(fig, title, height_px=480)


def sweep_table(records: list[dict[str, Any]], axes: list[str]) -> str:
    """Every point as a sortable table; invalid and infeasible rows in red."""
    cols = ["#", "status", *[a.rsplit(".", 1)[-1] for a in axes], "tokens/s", "step (s)",
            "peak (GiB)", "headroom (GiB)", "reason"]
    text_cols = {"status", "reason"}
    headers = "".join(f"<th class='{'text' if c in text_cols else ''}' title='{html.escape(c)}'>"
                      f"{html.escape(c)}</th>" for c in cols)
    body = []
    for r in records:
        m = r["metrics"]
        cells = [_cell(str(r["index"]), str(r["index"])), _cell(r["status"], cls="text")]
        cells += [_cell(value_label(r["overrides"].get(a))) for a in axes]
        cells += [_cell(*_fmt(m.get("tokens_per_s"), spec=",.0f")),
                  _cell(*_fmt(m.get("step_time_s"), spec=".3f")),
                  _cell(*_fmt(m.get("peak_bytes"), GIB, ".2f")),
                  _cell(*_fmt(m.get("headroom_bytes"), GIB, ".2f")),
                  _cell(_short_error(r), cls="text")]
        bad = " class='bad'" if r["status"] != "ok" else ""
        body.append(f"<tr{bad}>" + "".join(cells) + "</tr>")
    return (f"<table class='sortable' id='points'><thead><tr>{headers}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _short_error(record: dict[str, Any]) -> str:
    """The record's error without the scenario file it names first (one file per sweep)."""
    err = record.get("error") or record.get("reason") or ""
    head_, sep, rest = err.partition(".yaml: ")
    return rest if sep and " " not in head_ else err


def render_sweep_html(records: list[dict[str, Any]], axes: list[str], name: str) -> str:
    title = f"moesim sweep: {name}"
    return "".join([
        head(title, _STYLE), f"<h1>{html.escape(title)}</h1>",
        "<p class='notes'>Swept: " + html.escape(", ".join(axes)) + ". Infeasible points "
        "(red) were priced but do not fit in memory; invalid points could not be built "
        "(the table says why). Click a column header to sort.</p>",
        figure_div(fig_sweep_parallel(records, axes), "fig-parallel"),
        figure_div(fig_sweep_scatter(records), "fig-scatter"),
        f"<h2>Every point</h2><div class='scroll'>{sweep_table(records, axes)}</div>",
        SORT_SCRIPT, "</body></html>"])


def write_sweep_html(records: list[dict[str, Any]], axes: list[str], path: str | Path,
                     name: str) -> Path:
    """The sweep page, with plotly.min.js beside it."""
    return write_page(path, render_sweep_html(records, axes, name))
